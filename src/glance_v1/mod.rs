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
//! `GET /v1/images/{id}`: 403 `Image <id> is deactivated`, 404 `Image <id> is
//! not active` for any other status but `active`, 404 `Image with identifier
//! <id> not found`. The body streams from the backend (constant memory);
//! `Content-Length` is the image size; a backend stream that breaks off or
//! ends short aborts the response (the connection is dropped), never a
//! silently short body. Beyond Glance v1 (which ignored `Range`), one
//! `Range: bytes=a-b | a- | -n` is honoured when the backend honours it (206,
//! `Content-Range`); a start past the end is 416; a malformed or multi-range
//! header is ignored (200, all of it).

pub mod error;
pub mod headers;
pub mod list;
pub mod members;
pub mod meta;
mod oslo;
pub mod update;
pub mod write;

use crate::auth;
use crate::backend::{ByteRange, Image, ImageBackend, RequestContext};
use crate::config::Settings;
use crate::edge::request_id;
use crate::edge::webob::{self, HttpError};
use actix_web::http::{header, Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use error::{from_backend, Op, V1Error};
use futures_util::{Stream, StreamExt};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

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
        (Route::Image(id), &Method::HEAD) => meta(backend, &ctx, &id).await,
        (Route::Image(id), &Method::GET) => show(&req, backend, &ctx, &id).await,
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

fn with_meta(mut b: actix_web::HttpResponseBuilder, img: &Image) -> actix_web::HttpResponseBuilder {
    for (name, value) in meta::headers(img) {
        b.insert_header((name, value));
    }
    b
}

/// `HEAD /v1/images/{id}`: the metadata headers, whatever the status.
async fn meta(backend: &dyn ImageBackend, ctx: &RequestContext, id: &str) -> Result<HttpResponse, V1Error> {
    let img = get_image(backend, ctx, id).await?;
    // webob's default type for a response that sets none.
    Ok(with_meta(HttpResponse::Ok(), &img)
        .insert_header((header::CONTENT_TYPE, webob::TEXT_HTML))
        .finish())
}

/// `GET /v1/images/{id}`: the data, with the metadata headers.
async fn show(
    req: &HttpRequest,
    backend: &dyn ImageBackend,
    ctx: &RequestContext,
    id: &str,
) -> Result<HttpResponse, V1Error> {
    let img = get_image(backend, ctx, id).await?;
    match img.status.as_str() {
        "active" => {}
        "deactivated" => return Err(error::deactivated(id).into()),
        _ => return Err(error::not_active(id).into()),
    }
    let size = u64::try_from(img.size.unwrap_or(0)).unwrap_or(0);
    let octets = |b: actix_web::HttpResponseBuilder| {
        let mut b = with_meta(b, &img);
        b.insert_header((header::CONTENT_TYPE, "application/octet-stream"));
        b
    };
    if size == 0 {
        // Glance v1 did not touch the store for an empty image.
        return Ok(octets(HttpResponse::Ok()).body(Vec::new()));
    }
    let range = crate::edge::range::of(req);
    let unsatisfiable = match range {
        Some(ByteRange::From { start, .. }) => start >= size,
        Some(ByteRange::Last(n)) => n == 0,
        None => false,
    };
    if unsatisfiable {
        return Err(error::range_not_satisfiable(
            size,
            format!(
                "Invalid start position in Range header. Start position MUST be in the inclusive range [0, {}].",
                size - 1
            ),
        )
        .into());
    }
    let data = backend
        .data(ctx, id, range)
        .await
        .map_err(|e| from_backend(&e, Op::Data { id, size }))?;
    let (status, expected) = match data.range {
        Some(r) if r.end >= r.start => (StatusCode::PARTIAL_CONTENT, r.end - r.start + 1),
        _ => (StatusCode::OK, size),
    };
    if data.length.is_some_and(|n| n != expected) {
        tracing::error!(image = id, expected, got = ?data.length, "the image service sends a different size");
        return Err(error::unexpected().into());
    }
    let mut b = octets(HttpResponse::build(status));
    if let Some(r) = data.range {
        b.insert_header((
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{}", r.start, r.end, r.total),
        ));
    }
    let body = SizeChecked {
        inner: data.stream,
        remaining: expected,
        image: id.to_string(),
        done: false,
    };
    Ok(b.no_chunking(expected).streaming(body))
}

/// The data stream, checked against the length announced (Glance v1's
/// `size_checked_iter`): a backend error, a short or a long stream becomes an
/// error of the body, and actix drops the connection instead of ending a
/// short response as if it were complete.
struct SizeChecked {
    inner: crate::backend::DataStream,
    remaining: u64,
    image: String,
    done: bool,
}

impl Stream for SizeChecked {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let fail = |this: &mut Self, why: String| {
            this.done = true;
            tracing::error!(image = %this.image, "{why}; aborting the download");
            Poll::Ready(Some(Err(std::io::Error::other(format!(
                "Corrupt image download for image {}",
                this.image
            )))))
        };
        match self.inner.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                let n = chunk.len() as u64;
                if n > self.remaining {
                    return fail(&mut self, "the image service sent more data than the image size".into());
                }
                self.remaining -= n;
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => fail(&mut self, format!("image data stream failed: {e}")),
            Poll::Ready(None) if self.remaining > 0 => {
                let left = self.remaining;
                fail(&mut self, format!("image data ended {left} bytes short"))
            }
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
        }
    }
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
