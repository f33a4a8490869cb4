//! The stages of the Nova pipeline that may refuse a call before its handler
//! runs, in the order Nova's paste pipeline runs them: size limit, auth,
//! route, microversion, content type, body, project check, version gate and
//! the migration gate. Each returns `Result<_, NovaError>`.

use super::SUPPORTED;
use crate::auth;
use crate::backend::RequestContext;
use crate::edge::body::{self, BodyError};
use crate::nova::error::NovaError;
use crate::nova::fault::Fault;
use crate::nova::microversion::{self, Version};
use crate::nova::routes::{self, Endpoint, Route};
use crate::nova::NovaState;
use actix_web::http::{header, Method};
use actix_web::{web, HttpRequest};
use std::time::Duration;

/// oslo.middleware `sizelimit`: a `Content-Length` or a body past the limit is
/// 413; a body not all there in time 408; a broken one 400.
pub async fn size_limit(
    req: &HttpRequest,
    payload: web::Payload,
    max: usize,
    deadline: Duration,
) -> Result<Vec<u8>, NovaError> {
    if body::content_length(req).is_some_and(|n| n > max as u64) {
        return Err(NovaError::too_large());
    }
    body::read(payload, max, deadline).await.map_err(body_error)
}

fn body_error(e: BodyError) -> NovaError {
    match e {
        BodyError::TooLarge => NovaError::too_large(),
        BodyError::TooSlow => {
            tracing::warn!("request body not received in time");
            NovaError::fault(408, "The request body was not received in time.")
        }
        BodyError::Broken => NovaError::fault(400, "The request body could not be read."),
    }
}

/// keystonemiddleware's place in the pipeline: the identity of the token.
pub async fn authenticate(req: &HttpRequest, state: &NovaState, rid: &str) -> Result<RequestContext, NovaError> {
    crate::edge::authenticate(&state.auth, req, rid, crate::edge::Token::AsSent)
        .await
        .map_err(|e| auth_error(e, &state.settings.auth.www_authenticate_uri))
}

fn auth_error(e: auth::AuthError, www_authenticate_uri: &str) -> NovaError {
    match e {
        auth::AuthError::Unauthenticated => NovaError::Unauthenticated {
            www_authenticate_uri: www_authenticate_uri.to_string(),
        },
        // The token could not be checked: an outage, not a refusal.
        auth::AuthError::Unavailable(_) => NovaError::fault(503, crate::edge::IDENTITY_UNAVAILABLE),
    }
}

/// Nova's router: an endpoint, or its plain 404 page.
pub fn route(method: &Method, rest: &str) -> Result<Route, NovaError> {
    routes::parse(method, rest).ok_or_else(NovaError::not_routed)
}

/// The microversion asked for (legacy `/v2` runs everything at 2.1).
pub fn microversion(req: &HttpRequest, legacy: bool, max: Version) -> Result<Version, NovaError> {
    if legacy {
        return Ok(microversion::MIN);
    }
    negotiate(req, max)
}

/// The version the headers ask for, or Nova's 400 (malformed) / 406 (out of range).
pub fn negotiate(req: &HttpRequest, max: Version) -> Result<Version, NovaError> {
    let headers = req
        .headers()
        .iter()
        .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str(), v)));
    let requested = microversion::requested(headers.collect::<Vec<_>>().into_iter());
    microversion::negotiate(requested.as_deref(), max).map_err(|e| match e {
        microversion::VersionError::InvalidFormat(s) => NovaError::Version {
            fault: Fault::bad_request(format!(
                "API Version String {s} is of invalid format. Must be of format MajorNum.MinorNum."
            )),
            echo: None,
        },
        microversion::VersionError::NotSupported(v) => NovaError::Version {
            fault: Fault::new(
                406,
                format!(
                    "Version {v} is not supported by the API. Minimum is {} and maximum is {max}.",
                    microversion::MIN
                ),
            ),
            echo: Some(v),
        },
    })
}

/// The body's `Content-Type` (absent or `text/plain`: none) must be JSON.
pub fn content_type(req: &HttpRequest) -> Result<(), NovaError> {
    if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
        let mime = ct.to_str().unwrap_or("\u{0}").split(';').next().unwrap_or("").trim();
        if !mime.is_empty() && mime != "text/plain" && !SUPPORTED.contains(&mime) {
            return Err(NovaError::fault(415, "Unsupported Content-Type"));
        }
    }
    Ok(())
}

/// The JSON body of a `POST` or `PUT` that has one.
pub fn json_body(
    method: &Method,
    content_length: Option<u64>,
    raw: &[u8],
) -> Result<Option<serde_json::Value>, NovaError> {
    if !(method == Method::POST || method == Method::PUT) || content_length.unwrap_or(0) == 0 {
        return Ok(None);
    }
    serde_json::from_slice(raw)
        .map(Some)
        .map_err(|_| NovaError::fault(400, "Malformed request body"))
}

/// A project id in the URL must be the token's.
pub fn project_check(route: &Route, ctx: &RequestContext) -> Result<(), NovaError> {
    match &route.project_id {
        Some(p) if *p != ctx.project_id => Err(NovaError::fault(
            400,
            format!(
                "Malformed request URL: URL's project_id '{p}' doesn't match Context's project_id '{}'",
                ctx.project_id
            ),
        )),
        _ => Ok(()),
    }
}

/// The images proxy is gone from 2.36 on (metadata from 2.39): checked before
/// any validation or Glance call.
pub fn version_gate(endpoint: &Endpoint, version: Version) -> Result<(), NovaError> {
    let gone = if endpoint.is_metadata() {
        microversion::IMAGE_METADATA_GONE
    } else {
        microversion::IMAGES_GONE
    };
    if !endpoint.is_version() && version >= gone {
        return Err(NovaError::Fault(Fault::resource_not_found()));
    }
    Ok(())
}

/// Real Nova 34's answer for a removed API (its controllers raise webob's
/// `HTTPGone`; captured in `tests/fixtures/nova-410`): the answer of a
/// deprecated call during a brownout or after retirement.
pub const GONE: &str = "This resource is no longer available. No forwarding address is given.";

/// `[deprecation]`: a brownout or retirement refuses the call here, after
/// everything Nova checks before a handler runs (so a bad request still gets
/// its 400) and before anything is read or written.
pub fn migration_gate(state: &NovaState, ctx: &RequestContext) -> Result<(), NovaError> {
    match state.migration.stage(crate::migration::Surface::Nova, &ctx.project_id) {
        crate::migration::Stage::Served => Ok(()),
        crate::migration::Stage::Brownout | crate::migration::Stage::Retired => Err(NovaError::fault(410, GONE)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn ctx(project: &str) -> RequestContext {
        RequestContext {
            token: "t".into(),
            user_id: "u".into(),
            project_id: project.into(),
            roles: Vec::new(),
            request_id: "req-1".into(),
        }
    }

    #[test]
    fn auth_errors_are_401_or_503() {
        let e = auth_error(auth::AuthError::Unauthenticated, "http://ks");
        assert_eq!(
            e,
            NovaError::Unauthenticated {
                www_authenticate_uri: "http://ks".into()
            }
        );
        let e = auth_error(auth::AuthError::Unavailable("down".into()), "http://ks");
        assert_eq!(e, NovaError::fault(503, crate::edge::IDENTITY_UNAVAILABLE));
    }

    #[test]
    fn unrouted_paths_are_the_routers_404_page() {
        assert_eq!(route(&Method::GET, "/nope"), Err(NovaError::not_routed()));
        assert_eq!(route(&Method::GET, "/images").unwrap().endpoint, Endpoint::ImagesIndex);
    }

    #[test]
    fn microversions_are_negotiated_unless_legacy() {
        let max = Version { major: 2, minor: 38 };
        let req = TestRequest::default()
            .insert_header(("OpenStack-API-Version", "compute 2.99"))
            .to_http_request();
        assert_eq!(microversion(&req, true, max), Ok(microversion::MIN));
        match microversion(&req, false, max) {
            Err(NovaError::Version { fault, echo }) => {
                assert_eq!(fault.code, 406);
                assert_eq!(echo.as_deref(), Some("2.99"));
            }
            other => panic!("{other:?}"),
        }
        let req = TestRequest::default()
            .insert_header(("OpenStack-API-Version", "compute x"))
            .to_http_request();
        assert!(matches!(
            microversion(&req, false, max),
            Err(NovaError::Version { echo: None, .. })
        ));
    }

    #[test]
    fn content_types_other_than_json_are_415() {
        let with = |ct: &str| {
            TestRequest::default()
                .insert_header(("Content-Type", ct))
                .to_http_request()
        };
        assert!(content_type(&TestRequest::default().to_http_request()).is_ok());
        assert!(content_type(&with("text/plain")).is_ok());
        assert!(content_type(&with("application/json; charset=UTF-8")).is_ok());
        assert_eq!(
            content_type(&with("application/xml")),
            Err(NovaError::fault(415, "Unsupported Content-Type"))
        );
    }

    #[test]
    fn bodies_are_parsed_for_post_and_put_only() {
        assert_eq!(json_body(&Method::GET, Some(2), b"{}"), Ok(None));
        assert_eq!(json_body(&Method::PUT, Some(0), b""), Ok(None));
        assert_eq!(
            json_body(&Method::POST, Some(2), b"{}"),
            Ok(Some(serde_json::json!({})))
        );
        assert_eq!(
            json_body(&Method::POST, Some(1), b"{"),
            Err(NovaError::fault(400, "Malformed request body"))
        );
    }

    #[test]
    fn the_url_project_must_be_the_tokens() {
        let r = routes::parse(&Method::GET, "/abc/images").unwrap();
        assert!(project_check(&r, &ctx("abc")).is_ok());
        let e = project_check(&r, &ctx("def")).unwrap_err();
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn the_version_gate_closes_at_2_36_and_2_39() {
        let v = |minor| Version { major: 2, minor };
        assert!(version_gate(&Endpoint::ImagesIndex, v(35)).is_ok());
        assert_eq!(version_gate(&Endpoint::ImagesIndex, v(36)).unwrap_err().status(), 404);
        let meta = Endpoint::MetadataIndex("i".into());
        assert!(version_gate(&meta, v(38)).is_ok());
        assert!(version_gate(&meta, v(39)).is_err());
        assert!(version_gate(&Endpoint::VersionShow(None), v(90)).is_ok());
    }

    #[test]
    fn body_errors_are_413_408_400() {
        assert_eq!(body_error(BodyError::TooLarge).status(), 413);
        assert_eq!(body_error(BodyError::TooSlow).status(), 408);
        assert_eq!(body_error(BodyError::Broken).status(), 400);
    }
}
