//! `GET`/`HEAD /healthcheck` on both listeners, answered as oslo.middleware's
//! healthcheck middleware answers (the filter Nova's and Glance's paste
//! pipelines put first): no authentication, one result per check, `200`
//! (`HEAD`: `204`) when every check passes, else `503`.
//!
//! The checks, in order:
//! * `disable_by_file` (always): `DISABLED BY FILE` while the file named by
//!   `server.healthcheck_disable_by_file_path` exists, so an operator takes a
//!   node out of its load balancer's rotation before maintenance without
//!   touching the load balancer; `OK` otherwise (and when no path is set);
//! * the image backend (`server.healthcheck_backend = true` only): `OK`, or
//!   `Image backend unreachable` when it does not answer within
//!   `glance.connect_timeout_secs`.
//!
//! The body is what oslo.middleware renders for `detailed = False`, chosen by
//! `Accept` among `text/plain` (also the default), `text/html` and
//! `application/json`.

use crate::backend::ImageBackend;
use crate::config::Settings;
use actix_web::http::{header, Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The path both listeners answer.
pub const PATH: &str = "/healthcheck";

pub const DISABLED_BY_FILE: &str = "DISABLED BY FILE";
pub const BACKEND_DOWN: &str = "Image backend unreachable";

/// The checks `/healthcheck` runs.
#[derive(Clone)]
pub struct Health {
    disable_file: Option<PathBuf>,
    backend: Option<(Arc<dyn ImageBackend>, Duration)>,
}

/// One check's outcome (oslo.middleware's `HealthcheckResult`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub available: bool,
    pub reason: &'static str,
}

impl Health {
    pub fn new(settings: &Settings, backend: Arc<dyn ImageBackend>) -> Health {
        let path = settings.server.healthcheck_disable_by_file_path.trim();
        Health {
            disable_file: (!path.is_empty()).then(|| PathBuf::from(path)),
            backend: settings
                .server
                .healthcheck_backend
                .then(|| (backend, Duration::from_secs_f64(settings.glance.connect_timeout_secs))),
        }
    }

    /// Run every check.
    pub async fn check(&self) -> Vec<Outcome> {
        let disabled = self.disable_file.as_ref().is_some_and(|p| p.exists());
        let mut outcomes = vec![if disabled {
            Outcome {
                available: false,
                reason: DISABLED_BY_FILE,
            }
        } else {
            Outcome {
                available: true,
                reason: "OK",
            }
        }];
        if let Some((backend, within)) = &self.backend {
            let up = matches!(tokio::time::timeout(*within, backend.ping()).await, Ok(Ok(())));
            outcomes.push(Outcome {
                available: up,
                reason: if up { "OK" } else { BACKEND_DOWN },
            });
        }
        outcomes
    }

    /// The answer to `req` (a `GET` or `HEAD` of [`PATH`]).
    pub async fn respond(&self, req: &HttpRequest) -> HttpResponse {
        let outcomes = self.check().await;
        render(req, &outcomes)
    }
}

/// oslo.middleware's response for `outcomes`, in the format `req` accepts.
pub fn render(req: &HttpRequest, outcomes: &[Outcome]) -> HttpResponse {
    let healthy = outcomes.iter().all(|o| o.available);
    let head = req.method() == Method::HEAD;
    let status = match (healthy, head) {
        (true, true) => StatusCode::NO_CONTENT,
        (true, false) => StatusCode::OK,
        (false, _) => StatusCode::SERVICE_UNAVAILABLE,
    };
    let mut b = HttpResponse::build(status);
    if head {
        return b
            .insert_header((header::CONTENT_TYPE, "text/plain; charset=UTF-8"))
            .finish();
    }
    const OFFERS: [&str; 3] = ["text/plain", "text/html", "application/json"];
    let offer = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .and_then(|a| crate::edge::accept::best_offer(a, &OFFERS))
        .unwrap_or(0);
    let (content_type, body) = match offer {
        1 => ("text/html; charset=UTF-8", html(outcomes)),
        2 => ("application/json", json(outcomes)),
        _ => ("text/plain; charset=UTF-8", text(outcomes)),
    };
    b.insert_header((header::CONTENT_TYPE, content_type)).body(body)
}

fn text(outcomes: &[Outcome]) -> String {
    outcomes.iter().map(|o| o.reason).collect::<Vec<_>>().join("\n")
}

/// `json.dumps(body, indent=4, sort_keys=True)`.
fn json(outcomes: &[Outcome]) -> String {
    let reasons: Vec<String> = outcomes
        .iter()
        .map(|o| {
            format!(
                "        {}",
                String::from_utf8_lossy(&crate::edge::pyjson::to_vec(o.reason))
            )
        })
        .collect();
    let reasons = if reasons.is_empty() {
        "[]".to_string()
    } else {
        format!("[\n{}\n    ]", reasons.join(",\n"))
    };
    format!("{{\n    \"detailed\": false,\n    \"reasons\": {reasons}\n}}")
}

/// The `HTML_RESPONSE_TEMPLATE` of oslo.middleware, not detailed.
fn html(outcomes: &[Outcome]) -> String {
    let rows: String = outcomes
        .iter()
        .map(|o| format!("<TR>\n\n    <TD>{}</TD>\n\n</TR>", o.reason))
        .collect();
    format!(
        "<HTML>\n<HEAD><TITLE>Healthcheck Status</TITLE></HEAD>\n<BODY>\n\n<H2>Result of {} checks:</H2>\n\
         <TABLE bgcolor=\"#ffffff\" border=\"1\">\n<TBODY>\n<TR>\n\n<TH>\nReason\n</TH>\n</TR>\n{rows}\n\
         </TBODY>\n</TABLE>\n<HR></HR>\n\n</BODY>\n</HTML>",
        outcomes.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // Bodies as oslo.middleware 8.2.0 renders them (captured from its
    // Healthcheck middleware with backends disable_by_file and
    // disable_by_files_ports, the first disabled).
    const OK: Outcome = Outcome {
        available: true,
        reason: "OK",
    };
    const DISABLED: Outcome = Outcome {
        available: false,
        reason: DISABLED_BY_FILE,
    };

    #[test]
    fn bodies_are_oslo_middlewares() {
        assert_eq!(text(&[DISABLED, OK]), "DISABLED BY FILE\nOK");
        assert_eq!(
            json(&[DISABLED, OK]),
            "{\n    \"detailed\": false,\n    \"reasons\": [\n        \"DISABLED BY FILE\",\n        \"OK\"\n    ]\n}"
        );
        assert_eq!(
            json(&[OK]),
            "{\n    \"detailed\": false,\n    \"reasons\": [\n        \"OK\"\n    ]\n}"
        );
        assert_eq!(
            html(&[DISABLED, OK]),
            "<HTML>\n<HEAD><TITLE>Healthcheck Status</TITLE></HEAD>\n<BODY>\n\n<H2>Result of 2 checks:</H2>\n\
             <TABLE bgcolor=\"#ffffff\" border=\"1\">\n<TBODY>\n<TR>\n\n<TH>\nReason\n</TH>\n</TR>\n<TR>\n\n    \
             <TD>DISABLED BY FILE</TD>\n\n</TR><TR>\n\n    <TD>OK</TD>\n\n</TR>\n</TBODY>\n</TABLE>\n<HR></HR>\n\n\
             </BODY>\n</HTML>"
        );
        assert_eq!(
            html(&[OK]),
            "<HTML>\n<HEAD><TITLE>Healthcheck Status</TITLE></HEAD>\n<BODY>\n\n<H2>Result of 1 checks:</H2>\n\
             <TABLE bgcolor=\"#ffffff\" border=\"1\">\n<TBODY>\n<TR>\n\n<TH>\nReason\n</TH>\n</TR>\n<TR>\n\n    \
             <TD>OK</TD>\n\n</TR>\n</TBODY>\n</TABLE>\n<HR></HR>\n\n</BODY>\n</HTML>"
        );
    }
}
