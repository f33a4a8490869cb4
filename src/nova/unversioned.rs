//! What Nova's paste map (`nova/api/openstack/urlmap.py`) does outside the two
//! API prefixes: the version documents (`/v2.1`, `/v2`, or any path whose
//! `Accept` names `version=2.1` / `version=2`), the versions list at `/` and the
//! 300 choices elsewhere. They are `wsgi.Resource`s: the body is checked first
//! (415, 400), and the answer's type is the `Accept` match.

use super::error::{finish, Meta, NovaError};
use super::{pipeline, versions, NovaState};
use crate::edge::forwarded::{quote_path, Origin};
use crate::edge::links::update_link_prefix;
use crate::edge::request_id;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use std::time::Duration;

const SUPPORTED: &[&str] = &["application/json", "application/vnd.openstack.compute+json"];

/// Nova's `urlmap.Accept.best_match` over the compute types: the type, and the
/// `version` parameter of the media range that matched it.
pub fn best_match(accept: &str) -> (Option<&'static str>, Option<String>) {
    let mut best: (f64, Option<&'static str>, Option<String>, usize) = (-1.0, None, None, 2);
    for offer in SUPPORTED {
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let mask = parts.next().unwrap_or("").trim();
            let mut q = Some(1.0);
            let mut version = None;
            for p in parts {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                let v = v.trim().trim_matches('"').to_string();
                match k.trim() {
                    "q" => q = v.parse::<f64>().ok(),
                    "version" => version = Some(v),
                    _ => {}
                }
            }
            let Some(q) = q else { continue };
            let stars = mask.matches('*').count();
            if q < best.0 || (q == best.0 && best.3 <= stars) {
                continue;
            }
            let matched = match mask {
                "*/*" => true,
                m if m.contains('*') => offer.split('/').next() == Some(&m[..m.len().saturating_sub(2)]),
                m => m == *offer,
            };
            if matched {
                best = (q, Some(offer), version, stars);
            }
        }
    }
    (best.1, best.2)
}

/// The `version` parameter of a `Content-Type` (`parse_options_header`: the
/// last one counts).
fn content_type_version(content_type: &str) -> Option<String> {
    content_type
        .split(';')
        .skip(1)
        .filter_map(|p| p.split_once('='))
        .filter(|(k, _)| k.trim() == "version")
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .last()
}

/// Which version document a path outside the API prefixes is answered with:
/// by the path, else by the version a header names (urlmap's content-type
/// strategy, then its accept strategy).
fn version_of(path: &str, header_version: Option<&str>) -> Option<bool> {
    match path {
        "/v2" | "/v2/" => Some(true),
        "/v2.1" | "/v2.1/" => Some(false),
        _ => match header_version {
            Some("2") => Some(true),
            Some("2.1") => Some(false),
            _ => None,
        },
    }
}

/// Answer `path` (routed form) when it is not under `/v2.1/` or `/v2/`.
pub async fn answer(
    req: &HttpRequest,
    payload: web::Payload,
    state: &NovaState,
    path: &str,
    origin: &Origin,
) -> HttpResponse {
    let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let (mime, accept_version) = accept.map(best_match).unwrap_or((None, None));
    let header_version = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(content_type_version)
        .or(accept_version);
    let content_type = mime.unwrap_or(SUPPORTED[0]);
    let prefix = &state.settings.api.compute_link_prefix;
    let max = state.max_version;
    let default_host = req.app_config().host();
    let Some(legacy) = version_of(path, header_version.as_deref()) else {
        // Picked by a header's version (one of no API), the versions
        // application gets the path as the WSGI server passed it, runs of `/`
        // kept; else as urlmap normalised it.
        let decoded;
        let path = if header_version.is_some() {
            decoded = crate::edge::path::decoded(req.uri().path());
            decoded.as_str()
        } else {
            path
        };
        let meta = Meta::default();
        if let Err(e) = checked_body(req, payload, state).await {
            return e.into_response(req, &meta);
        }
        // webob's `application_url` of the versions application (mounted at `/`).
        let root_url = update_link_prefix(&origin.application_url(default_host, ""), prefix);
        let (status, body) = if path == "/" {
            (StatusCode::OK, versions::root(&root_url, max))
        } else {
            // webob's `req.path`: the script name (the proxy's prefix) and the path, quoted.
            let req_path = quote_path(&format!("{}{path}", origin.prefix));
            (StatusCode::MULTIPLE_CHOICES, versions::choices(&root_url, &req_path))
        };
        return finish(status, &meta, content_type, crate::edge::pyjson::to_vec(&body));
    };
    let mut meta = Meta {
        request_id: Some(request_id::of(req)),
        version: None,
    };
    if !legacy {
        match pipeline::checks::negotiate(req, max) {
            Ok(v) => meta.version = Some(v.to_string()),
            Err(e) => return e.into_response(req, &meta),
        }
    }
    if let Err(e) = checked_body(req, payload, state).await {
        return e.into_response(req, &meta);
    }
    let (id, app) = if legacy { ("v2.0", "v2") } else { ("v2.1", "v2.1") };
    let self_url = update_link_prefix(&origin.application_url(default_host, &format!("/{app}")), prefix);
    let body = versions::show(id, &self_url, max);
    finish(StatusCode::OK, &meta, content_type, crate::edge::pyjson::to_vec(&body))
}

/// `wsgi.Resource` before its action: the body's type (415), then a `POST` or
/// `PUT` body must be JSON (400).
async fn checked_body(req: &HttpRequest, payload: web::Payload, state: &NovaState) -> Result<(), NovaError> {
    let server = &state.settings.server;
    let deadline = Duration::from_secs_f64(server.body_timeout_secs);
    let raw = pipeline::checks::size_limit(req, payload, server.max_request_body, deadline).await?;
    pipeline::checks::content_type(req)?;
    pipeline::checks::json_body(req.method(), crate::edge::body::content_length(req), &raw)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_picks_the_type_and_the_version_as_novas_urlmap_does() {
        let vnd = SUPPORTED[1];
        assert_eq!(best_match("*/*"), (Some(SUPPORTED[0]), None));
        assert_eq!(
            best_match("application/vnd.openstack.compute+json;version=2.1"),
            (Some(vnd), Some("2.1".into()))
        );
        assert_eq!(
            best_match("application/json;q=0.1, text/html"),
            (Some(SUPPORTED[0]), None)
        );
        assert_eq!(best_match("text/html"), (None, None));
        assert_eq!(
            best_match("application/*;version=2"),
            (Some(SUPPORTED[0]), Some("2".into()))
        );
    }

    #[test]
    fn version_documents_by_path_then_accept() {
        assert_eq!(version_of("/v2", None), Some(true));
        assert_eq!(version_of("/v2.1/", Some("2")), Some(false));
        assert_eq!(version_of("/images", Some("2.1")), Some(false));
        assert_eq!(version_of("/", Some("2")), Some(true));
        assert_eq!(version_of("/images", Some("2.55")), None);
        assert_eq!(
            content_type_version("application/json; version=2.1"),
            Some("2.1".into())
        );
        assert_eq!(
            content_type_version("application/json;version=2;version=\"3\""),
            Some("3".into())
        );
        assert_eq!(content_type_version("application/json"), None);
    }
}
