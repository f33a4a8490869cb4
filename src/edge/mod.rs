//! The edge kit the three surfaces (Nova, Glance v1, Glance v2) share, one
//! copy each: WebOb error pages ([`webob`]), body reading with limits
//! ([`body`]), `Accept` matching ([`accept`]), host and link bases ([`links`]),
//! query parameters ([`params`]), `Range` ([`range`]), request ids
//! ([`request_id`]), Python-style JSON ([`pyjson`]), and authentication with
//! keystonemiddleware's refusals. Each surface owns its error type; these are
//! the pieces they are built from.

pub mod accept;
pub mod body;
pub mod forwarded;
pub mod links;
pub mod params;
pub mod path;
pub mod pyjson;
pub mod range;
pub mod request_id;
pub mod webob;

use crate::auth::{AuthError, Authenticator};
use crate::backend::RequestContext;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};

/// How the token arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token {
    /// As sent (Nova's clients).
    AsSent,
    /// Percent-quoted: python-glanceclient sends `urllib.parse.quote(token, safe='=+/')`.
    PercentQuoted,
}

/// Who the request's `X-Auth-Token` stands for (keystonemiddleware's place in
/// the pipeline). The backend is told the global request id: the caller's
/// `X-OpenStack-Request-ID` when well formed, else `rid`. Who it is goes to
/// the request's log line.
pub async fn authenticate(
    auth: &Authenticator,
    req: &HttpRequest,
    rid: &str,
    token: Token,
) -> Result<RequestContext, AuthError> {
    let header = |name: header::HeaderName| req.headers().get(name).and_then(|v| v.to_str().ok());
    let sent = header(header::HeaderName::from_static("x-auth-token"));
    let decoded = match token {
        Token::AsSent => sent.map(std::borrow::Cow::Borrowed),
        Token::PercentQuoted => sent.map(|t| percent_encoding::percent_decode_str(t).decode_utf8_lossy()),
    };
    let global_id = request_id::global_id(header(header::HeaderName::from_static("x-openstack-request-id")), rid);
    let ctx = auth.authenticate(decoded.as_deref(), &global_id).await?;
    if let Some(service) = header(header::HeaderName::from_static("x-service-token")).filter(|t| !t.trim().is_empty()) {
        auth.check_service_token(service).await?;
    }
    Ok(crate::access_log::identified(req, ctx))
}

/// What every surface says when the token cannot be checked (keystonemiddleware
/// cannot reach Keystone): a 503, not a 401.
pub const IDENTITY_UNAVAILABLE: &str = "The identity service is unavailable. Please try again later.";

/// keystonemiddleware's 401 (its JSON body), with `WWW-Authenticate:
/// Keystone uri="…"` when the refusal is the middleware's own.
pub fn unauthorized(www_authenticate_uri: Option<&str>) -> HttpResponse {
    let mut b = HttpResponse::Unauthorized();
    if let Some(uri) = www_authenticate_uri {
        b.insert_header((header::WWW_AUTHENTICATE, format!("Keystone uri=\"{uri}\"")));
    }
    b.insert_header((header::CONTENT_TYPE, "application/json"))
        .body(crate::auth::unauthorized_body())
}

/// The request path, percent-decoded as a WSGI server hands it to the application.
pub fn decoded_path(req: &actix_web::HttpRequest) -> String {
    percent_encoding::percent_decode_str(req.uri().path())
        .decode_utf8_lossy()
        .into_owned()
}

/// Set `x-openstack-request-id` (and any other header) on an answer already built.
pub fn set_header(resp: &mut HttpResponse, name: &'static str, value: &str) {
    if let Ok(v) = header::HeaderValue::from_str(value) {
        resp.headers_mut().insert(header::HeaderName::from_static(name), v);
    }
}
