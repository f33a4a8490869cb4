//! The edge kit the three surfaces (Nova, Glance v1, Glance v2) share: WebOb
//! error pages, `Accept` matching, keystonemiddleware's refusals. Each
//! surface owns its error type; these are the pieces they are built from.

pub mod accept;
pub mod body;
pub mod webob;

use actix_web::http::header;
use actix_web::HttpResponse;

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

/// Set `x-openstack-request-id` (and any other header) on an answer already built.
pub fn set_header(resp: &mut HttpResponse, name: &'static str, value: &str) {
    if let Ok(v) = header::HeaderValue::from_str(value) {
        resp.headers_mut().insert(header::HeaderName::from_static(name), v);
    }
}
