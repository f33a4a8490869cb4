//! One log line per request, written when its response has been sent (or
//! abandoned): who called (project, user, client address, User-Agent), what
//! (method, path with token-like query values masked, microversion), and how
//! it went (status, latency, bytes sent, request ids). Never a header value
//! other than those, never a body.
//!
//! The client address is the peer's, or with `[oslo_middleware]
//! enable_proxy_headers_parsing` the one the proxy names (`Forwarded: for=`,
//! else `X-Forwarded-For`), as oslo.middleware's `HTTPProxyToWSGI` sets
//! `REMOTE_ADDR`.

use crate::backend::RequestContext;
use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, USER_AGENT};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpRequest};
use bytes::Bytes;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// The log target of request lines (`log.level` can address it, e.g.
/// `info,nova_images_proxy::access=warn` silences them).
pub const TARGET: &str = "nova_images_proxy::access";

/// Who a request was authenticated as, for its log line.
#[derive(Clone, Debug)]
struct Caller {
    user_id: String,
    project_id: String,
}

/// Record who `ctx` is on `req` (called where a surface authenticates).
pub fn identified(req: &HttpRequest, ctx: RequestContext) -> RequestContext {
    req.extensions_mut().insert(Caller {
        user_id: ctx.user_id.clone(),
        project_id: ctx.project_id.clone(),
    });
    ctx
}

/// `(user_id, project_id)` of the request, once a surface has authenticated it.
pub fn caller(req: &HttpRequest) -> Option<(String, String)> {
    req.extensions()
        .get::<Caller>()
        .map(|c| (c.user_id.clone(), c.project_id.clone()))
}

pub use crate::edge::forwarded::TrustProxyHeaders;

/// Which listener a request came to (app data; a label of the log line and metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    Compute,
    Image,
}

impl Listener {
    pub fn as_str(self) -> &'static str {
        match self {
            Listener::Compute => "compute",
            Listener::Image => "image",
        }
    }
}

/// What the log line says about a request, gathered as it comes in.
struct Line {
    started: Instant,
    /// Counted in `requests_in_flight` until the line is dropped (also when
    /// the request is abandoned before its answer).
    #[allow(dead_code)]
    in_flight: Option<InFlight>,
    listener: &'static str,
    endpoint: &'static str,
    method: actix_web::http::Method,
    path: String,
    client: String,
    user_agent: String,
    request_id: String,
    global_request_id: String,
    status: u16,
    user_id: String,
    project_id: String,
    microversion: String,
    bytes: u64,
}

fn header(req: &HttpRequest, name: HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The client address: the proxy's word for it when trusted, else the peer.
pub fn client_address(req: &HttpRequest, trust_proxy: bool) -> String {
    // Untrusted, the origin names no client.
    if let Some(addr) = trust_proxy
        .then(|| crate::edge::forwarded::Origin::of(req, true).client)
        .flatten()
    {
        return addr;
    }
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "-".into())
}

/// Query parameter names whose values are never logged.
const SECRET_KEYS: [&str; 7] = [
    "token",
    "password",
    "passwd",
    "secret",
    "signature",
    "credential",
    "auth",
];

/// A value that looks like a credential: long and made of token characters
/// (Keystone's Fernet tokens are about 180 of them).
fn token_like(value: &str) -> bool {
    value.len() >= 40
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'=' | b'%' | b'.' | b':' | b'+' | b'/'))
}

/// `path?query` with the values of secret-named and token-like parameters
/// replaced by `***`.
pub fn loggable_target(path: &str, query: &str) -> String {
    if query.is_empty() {
        return path.to_string();
    }
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let lower = key.to_ascii_lowercase();
            if SECRET_KEYS.iter().any(|s| lower.contains(s)) || token_like(value) {
                format!("{key}=***")
            } else {
                pair.to_string()
            }
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

/// Middleware: the request's log line, written when its body is done.
pub async fn log_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let trust = req.app_data::<TrustProxyHeaders>().is_some_and(|t| t.0);
    let listener = req.app_data::<Listener>().map_or("-", |l| l.as_str());
    let http = req.request();
    let request_id = crate::edge::request_id::of(http);
    let endpoint = crate::metrics::labels::endpoint_of(http, listener);
    let line = Line {
        started: Instant::now(),
        in_flight: InFlight::start(listener),
        listener,
        endpoint,
        method: http.method().clone(),
        path: loggable_target(http.path(), http.query_string()),
        client: client_address(http, trust),
        user_agent: header(http, USER_AGENT).unwrap_or("-").to_string(),
        global_request_id: crate::edge::request_id::global_id(
            header(http, HeaderName::from_static("x-openstack-request-id")),
            &request_id,
        ),
        request_id,
        status: 0,
        user_id: String::new(),
        project_id: String::new(),
        microversion: String::new(),
        bytes: 0,
    };
    let res = next.call(req).await?;
    let mut line = line;
    line.status = res.status().as_u16();
    if let Some(caller) = res.request().extensions().get::<Caller>() {
        line.user_id = caller.user_id.clone();
        line.project_id = caller.project_id.clone();
    }
    line.microversion = res
        .headers()
        .get("openstack-api-version")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim_start_matches("compute ").to_string())
        .unwrap_or_default();
    Ok(res.map_body(move |_, body| Counted {
        body: body.boxed(),
        line: Some(line),
    }))
}

/// A response body that counts what it sends and writes the log line when dropped.
pub struct Counted {
    body: BoxBody,
    line: Option<Line>,
}

impl MessageBody for Counted {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let polled = Pin::new(&mut self.body).poll_next(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &polled {
            if let Some(line) = self.line.as_mut() {
                line.bytes += chunk.len() as u64;
            }
        }
        polled
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        if let Some(line) = self.line.take() {
            write(&line);
        }
    }
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

struct InFlight(&'static str);

impl InFlight {
    fn start(listener: &'static str) -> Option<InFlight> {
        crate::metrics::get()?.in_flight(listener, 1);
        Some(InFlight(listener))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(m) = crate::metrics::get() {
            m.in_flight(self.0, -1);
        }
    }
}

/// The request's metrics (when metrics are on).
fn record(l: &Line, seconds: f64) {
    if let Some(m) = crate::metrics::get() {
        m.request(l.listener, l.endpoint, &l.method, l.status, seconds, l.bytes);
    }
}

fn write(l: &Line) {
    let seconds = l.started.elapsed().as_secs_f64();
    record(l, seconds);
    let latency_ms = seconds * 1000.0;
    tracing::info!(
        target: TARGET,
        listener = %l.listener,
        endpoint = %l.endpoint,
        method = %l.method,
        path = %l.path,
        status = l.status,
        latency_ms = format_args!("{latency_ms:.1}"),
        bytes = l.bytes,
        request_id = %l.request_id,
        global_request_id = %l.global_request_id,
        project_id = %or_dash(&l.project_id),
        user_id = %or_dash(&l.user_id),
        client = %l.client,
        user_agent = %l.user_agent,
        microversion = %or_dash(&l.microversion),
        "{} {} {}",
        l.method,
        l.path,
        l.status
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_token_like_values_are_masked() {
        assert_eq!(loggable_target("/v2.1/images", ""), "/v2.1/images");
        assert_eq!(
            loggable_target("/v2.1/images", "limit=2&marker=8fceaebd-9239-5d3f-8486-ca03631dd433"),
            "/v2.1/images?limit=2&marker=8fceaebd-9239-5d3f-8486-ca03631dd433"
        );
        assert_eq!(
            loggable_target("/v1/images", "X-Auth-Token=demo:x&sort_key=name"),
            "/v1/images?X-Auth-Token=***&sort_key=name"
        );
        let fernet = "gAAAAABpQ7k1nF3mK2w9xYzAbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCdEfGhIjKlMnOpQrSt";
        assert_eq!(
            loggable_target("/v2.1/images", &format!("name={fernet}&password=hunter2")),
            "/v2.1/images?name=***&password=***"
        );
    }
}
