//! Glance v1's image read calls, served on the image listener over the same
//! [`ImageBackend`] as the Nova surface (as Glance up to Queens answered them):
//!
//! | path | GET | HEAD | POST | DELETE | other methods |
//! |---|---|---|---|---|---|
//! | `/v1/images/{id}` | data + metadata headers | metadata headers | 405 | delete ([`write`]) | `PUT`: update ([`update`]); else 405, `Allow: GET, HEAD, PUT, DELETE` |
//! | `/v1/images/detail` | detailed list | 405 (Glance's own message), `Allow: GET` | 405 | 405 | 405, `Allow: GET, HEAD` |
//! | `/v1/images` | list | 405, `Allow: GET, POST` | create ([`write`]) | 405 | 405, `Allow: GET, POST` |
//! | `/v1/`, `/v1` | list | list | 405 | 405 | 405, `Allow: GET, HEAD` |
//!
//! Members (`/v1/images/{id}/members[/{member}]`, `/v1/shared-images/{member}`):
//! [`members`].
//!
//! Authentication as on the compute listener (the shared [`auth::Authenticator`]:
//! no or an invalid token → 401 with keystonemiddleware's body, Keystone
//! unavailable → 503 page). python-glanceclient percent-quotes the token
//! (`urllib.parse.quote(token, safe='=+/')`, so `demo:p1` arrives as
//! `demo%3Ap1`): the token is percent-decoded before use. It also sends
//! `Content-Type: application/octet-stream` on GET and HEAD, which is ignored.
//! Every answer carries `x-openstack-request-id`.
//!
//! Metadata headers and list items: [`meta`]. List parameters and their
//! translation to Glance v2: [`list`]. Errors: [`error`] (pages drawn by
//! [`crate::edge::webob`]).
//!
//! `HEAD` and `GET /v1/images/{id}`: [`show`].

pub mod error;
pub mod headers;
pub mod list;
pub mod members;
pub mod meta;
mod oslo;
mod show;
pub mod update;
pub mod write;

use crate::auth;
use crate::backend::{Image, ImageBackend, RequestContext};
use crate::config::Settings;
use crate::edge::request_id;
use crate::edge::webob::{self, HttpError};
use actix_web::http::{header, Method};
use actix_web::{web, HttpRequest, HttpResponse};
use error::{from_backend, Op, V1Error};
use std::sync::Arc;

/// The detail of the 410 page a Glance v1 call gets during a brownout or
/// after retirement (`deprecation` settings), after webob's explanation.
pub const GONE_V1: &str = "The Glance v1 API is being retired: use the Glance v2 API.";

/// What the v1 handlers need.
pub struct V1State {
    pub backend: Arc<dyn ImageBackend>,
    pub settings: Arc<Settings>,
    pub auth: auth::Authenticator,
    pub migration: crate::migration::Migration,
}

/// Register the Glance v1 routes (everything under `/v1`).
pub fn configure(
    cfg: &mut web::ServiceConfig,
    backend: Arc<dyn ImageBackend>,
    settings: Arc<Settings>,
    auth: auth::Authenticator,
    migration: crate::migration::Migration,
) {
    cfg.app_data(web::Data::new(V1State {
        backend,
        settings,
        auth,
        migration,
    }))
    .service(web::resource(["/v1", "/v1/{tail:.*}"]).to(entry));
}

enum Route {
    /// `/v1/`: Glance v1 routed `/` to its index without a method condition.
    Root,
    Index,
    Detail,
    Image(String),
    /// `/v1/images/{id}/members`.
    Members(String),
    /// `/v1/images/{id}/members/{member}`.
    Member(String, String),
    /// `/v1/shared-images/{member}`.
    SharedImages(String),
    Unknown,
}

fn route(path: &str) -> Route {
    match path {
        "/v1" | "/v1/" => Route::Root,
        "/v1/images" => Route::Index,
        "/v1/images/detail" => Route::Detail,
        p => {
            if let Some(member) = p.strip_prefix("/v1/shared-images/") {
                return match member {
                    m if !m.is_empty() && !m.contains('/') => Route::SharedImages(m.to_string()),
                    _ => Route::Unknown,
                };
            }
            let Some(rest) = p.strip_prefix("/v1/images/") else {
                return Route::Unknown;
            };
            let parts: Vec<&str> = rest.split('/').collect();
            match parts.as_slice() {
                [id] if !id.is_empty() => Route::Image(id.to_string()),
                [id, "members"] if !id.is_empty() => Route::Members(id.to_string()),
                [id, "members", m] if !id.is_empty() && !m.is_empty() => Route::Member(id.to_string(), m.to_string()),
                _ => Route::Unknown,
            }
        }
    }
}

/// The single entry point of `/v1`.
pub async fn entry(req: HttpRequest, payload: web::Payload, state: web::Data<V1State>) -> HttpResponse {
    let rid = request_id::of(&req);
    let ctx = match crate::edge::authenticate(&state.auth, &req, &rid, crate::edge::Token::PercentQuoted).await {
        Ok(ctx) => ctx,
        Err(auth::AuthError::Unauthenticated) => {
            let uri = state.settings.auth.www_authenticate_uri.clone();
            return V1Error::Unauthenticated {
                www_authenticate_uri: Some(uri),
            }
            .into_response(&req, &rid);
        }
        // keystonemiddleware's answer when it cannot reach Keystone: webob's 503 page.
        Err(auth::AuthError::Unavailable(_)) => {
            return V1Error::Page(HttpError::positional(503, crate::edge::IDENTITY_UNAVAILABLE))
                .into_response(&req, &rid);
        }
    };
    let path = crate::edge::decoded_path(&req);
    if !matches!(route(&path), Route::Unknown)
        && state
            .migration
            .stage(crate::migration::Surface::GlanceV1, &ctx.project_id)
            != crate::migration::Stage::Served
    {
        return V1Error::Page(HttpError::positional(410, GONE_V1)).into_response(&req, &rid);
    }
    let method = req.method().clone();
    let backend = state.backend.as_ref();
    let body = RequestBody {
        payload,
        idle: std::time::Duration::from_secs_f64(state.settings.server.body_timeout_secs),
    };
    let result = match (route(&path), &method) {
        (Route::Root, &Method::GET | &Method::HEAD) => list_images(&req, backend, &ctx, false).await,
        (Route::Root, _) => Err(HttpError::method_not_allowed("GET, HEAD").into()),
        // Routes matched methods literally: HEAD was not GET.
        (Route::Index, &Method::GET) => list_images(&req, backend, &ctx, false).await,
        (Route::Index, &Method::POST) => write::create(&req, body, backend, &ctx).await,
        (Route::Index, _) => Err(HttpError::method_not_allowed("GET, POST").into()),
        (Route::Detail, &Method::GET) => list_images(&req, backend, &ctx, true).await,
        (Route::Detail, &Method::HEAD) => Err(HttpError {
            template: webob::Template::ExplanationOnly,
            headers: vec![("allow", "GET".into())],
            ..HttpError::explained(
                405,
                "This operation is currently not permitted on Glance images details.",
            )
        }
        .into()),
        (Route::Detail, _) => Err(HttpError::method_not_allowed("GET, HEAD").into()),
        (Route::Image(id), &Method::HEAD) => show::meta(backend, &ctx, &id).await,
        (Route::Image(id), &Method::GET) => show::show(&req, backend, &ctx, &id).await,
        (Route::Image(id), &Method::DELETE) => write::delete(backend, &ctx, &id).await,
        (Route::Image(id), &Method::PUT) => update::update(&req, body, backend, &ctx, &id).await,
        (Route::Image(_), _) => Err(HttpError::method_not_allowed("GET, HEAD, PUT, DELETE").into()),
        (Route::Members(id), &Method::GET) => members::index(backend, &ctx, &id).await,
        (Route::Members(id), &Method::PUT) => members::replace(body, backend, &ctx, &id).await,
        (Route::Members(_), _) => Err(HttpError::method_not_allowed("GET, PUT").into()),
        (Route::Member(id, m), &Method::PUT) => members::add(body, backend, &ctx, &id, &m).await,
        (Route::Member(id, m), &Method::DELETE) => members::remove(backend, &ctx, &id, &m).await,
        // v1 routed GET to a `show` its controller did not have: `default`'s bare 405.
        (Route::Member(..), &Method::GET) => Err(HttpError {
            headers: Vec::new(),
            ..HttpError::method_not_allowed("")
        }
        .into()),
        (Route::Member(..), _) => Err(HttpError::method_not_allowed("GET, PUT, DELETE").into()),
        // Routed without a method condition.
        (Route::SharedImages(m), _) => members::shared_images(backend, &ctx, &m).await,
        (Route::Unknown, _) => Err(HttpError::explained(404, webob::NOT_FOUND_DEFAULT).into()),
    };
    match result {
        Ok(mut resp) => {
            crate::edge::set_header(&mut resp, "x-openstack-request-id", &rid);
            resp
        }
        Err(e) => e.into_response(&req, &rid),
    }
}

/// A request body not read yet, and how long it may pause between chunks
/// (`server.body_timeout_secs`).
pub struct RequestBody {
    pub payload: web::Payload,
    pub idle: std::time::Duration,
}

/// The image, or Glance v1's 404 for an id it does not know (or may not see).
async fn get_image(backend: &dyn ImageBackend, ctx: &RequestContext, id: &str) -> Result<Image, V1Error> {
    backend.get(ctx, id).await.map_err(|e| from_backend(&e, Op::Get(id)))
}

/// `GET /v1/images` (`detail` false) and `GET /v1/images/detail`.
async fn list_images(
    req: &HttpRequest,
    backend: &dyn ImageBackend,
    ctx: &RequestContext,
    detail: bool,
) -> Result<HttpResponse, V1Error> {
    let params = crate::edge::params::parse(req.query_string());
    let q = list::parse(&params, ctx)?;
    let images = list::fetch(backend, ctx, &q).await.map_err(|e| {
        from_backend(
            &e,
            Op::List {
                marker: q.marker.is_some(),
            },
        )
    })?;
    let items: Vec<serde_json::Value> = images
        .iter()
        .map(|i| {
            if detail {
                meta::detail_item(i)
            } else {
                meta::index_item(i)
            }
        })
        .collect();
    let mut body = serde_json::Map::new();
    body.insert("images".into(), serde_json::Value::Array(items));
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .body(crate::edge::pyjson::to_vec(&body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert!(matches!(route("/v1/images"), Route::Index));
        assert!(matches!(route("/v1/"), Route::Root));
        assert!(matches!(route("/v1/images/detail"), Route::Detail));
        assert!(matches!(route("/v1/images/abc"), Route::Image(ref id) if id == "abc"));
        assert!(matches!(route("/v1/images/abc/members"), Route::Members(ref id) if id == "abc"));
        assert!(matches!(route("/v1/images/abc/members/p"), Route::Member(ref id, ref m) if id == "abc" && m == "p"));
        assert!(matches!(route("/v1/shared-images/p"), Route::SharedImages(ref m) if m == "p"));
        assert!(matches!(route("/v1/shared-images/"), Route::Unknown));
        assert!(matches!(route("/v1/images/abc/members/p/x"), Route::Unknown));
        assert!(matches!(route("/v1/images/"), Route::Unknown));
        assert!(matches!(route("/v1x"), Route::Unknown));
    }
}
