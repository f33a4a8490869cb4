//! The Glance v2 image API of the embedded store, on the image listener: what
//! python-glanceclient and openstacksdk need to load and manage images.
//!
//! | call | answer |
//! |---|---|
//! | `POST /v2/images` | 201, the image (`queued`); read-only attribute 403, reserved 403, bad value 400, id taken 409 |
//! | `GET /v2/images` | `{"images", "first", "schema"[, "next"]}`; filters as the store knows them; `limit` 25 (≤ 1000), `marker`, `sort_key`, `sort_dir` |
//! | `GET`/`DELETE /v2/images/{id}` | the image / 204; protected 403; unknown 404 |
//! | `PATCH /v2/images/{id}` | `application/openstack-images-v2.1-json-patch` (or 2.0): `add`/`replace`/`remove` on writable attributes, `/tags` and extra properties |
//! | `PUT /v2/images/{id}/file` | 204; the body streams to disk (constant memory); not `queued` 409 |
//! | `GET /v2/images/{id}/file` | 200 streamed, `Content-MD5`, one `Range` (206); no data 204; deactivated 403 |
//! | `POST /v2/images/{id}/actions/{deactivate,reactivate}` | 204 |
//! | `PUT`/`DELETE /v2/images/{id}/tags/{tag}` | 204 |
//! | `GET /v2/schemas/image`, `/v2/schemas/images` | Glance's schemas (base attributes, `additionalProperties` strings) |
//! | `GET /versions`, `/`, `/v2` | version documents |
//!
//! Errors are webob pages as Glance answers them (HTML, JSON or text by
//! `Accept`): [`error`]. Not served: import, members, tasks, stores, metadefs,
//! cache. Routes: [`routes`]; handlers: `images`, `data`; views: [`view`].

mod data;
pub mod error;
mod images;
pub(crate) mod patch;
pub mod routes;
mod schema;
pub mod view;

use crate::auth;
use crate::backend::embedded::EmbeddedStore;
use crate::backend::{ImageBackend, RequestContext};
use crate::config::Settings;
use crate::edge::pyjson;
use crate::edge::webob::{HttpError, NOT_FOUND_DEFAULT};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use error::V2Error;
use routes::Endpoint;
use serde_json::Value;
use std::sync::Arc;

struct V2State {
    store: EmbeddedStore,
    settings: Arc<Settings>,
    auth: auth::Authenticator,
}

/// Register the Glance v2 routes for `store`.
pub fn configure(
    cfg: &mut web::ServiceConfig,
    store: EmbeddedStore,
    settings: Arc<Settings>,
    auth: auth::Authenticator,
) {
    cfg.app_data(web::Data::new(V2State { store, settings, auth }))
        .service(web::resource(["/", "/versions", "/v2", "/v2/", "/v2/{tail:.*}"]).to(entry));
}

/// Glance's (webob's) 404 page for a path it does not serve.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    V2Error::new(404, NOT_FOUND_DEFAULT).into_response(&req)
}

type Answer = Result<HttpResponse, V2Error>;

/// What a Glance v2 handler needs about the request.
#[derive(Clone, Copy)]
struct Call<'a> {
    req: &'a HttpRequest,
    store: &'a EmbeddedStore,
    ctx: &'a RequestContext,
    settings: &'a Settings,
}

/// The request's `Content-Type` as sent (`""` when none).
fn content_type(req: &HttpRequest) -> &str {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn json_response(status: StatusCode, req: &HttpRequest, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header(("x-openstack-request-id", crate::edge::request_id::of(req)))
        .body(pyjson::to_vec(body))
}

fn no_content(req: &HttpRequest) -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header(("x-openstack-request-id", crate::edge::request_id::of(req)))
        .finish()
}

/// `scheme://host` of the image listener as the request names it.
/// A request without `Host` gets the configured listener address.
fn host_url(req: &HttpRequest, settings: &Settings) -> String {
    crate::edge::links::host_url(req, &settings.image_listener().unwrap_or_default())
}

async fn entry(req: HttpRequest, payload: web::Payload, state: web::Data<V2State>) -> HttpResponse {
    let endpoint = routes::parse(req.method(), &crate::edge::decoded_path(&req));
    if let Endpoint::Versions { listed } = endpoint {
        // Glance answers `/` with 300 and `/versions` with 200.
        let status = if listed {
            StatusCode::OK
        } else {
            StatusCode::MULTIPLE_CHOICES
        };
        // Glance's `req.application_url`: with trusted proxy headers, their scheme, host and prefix.
        let default_host = state.settings.image_listener().unwrap_or_default();
        let base = crate::edge::forwarded::Origin::trusted_as_configured(&req).application_url(&default_host, "");
        return json_response(status, &req, &view::versions(&base));
    }
    let rid = crate::edge::request_id::of(&req);
    let ctx = match crate::edge::authenticate(&state.auth, &req, &rid, crate::edge::Token::PercentQuoted).await {
        Ok(ctx) => ctx,
        Err(auth::AuthError::Unauthenticated) => {
            let uri = state.settings.auth.www_authenticate_uri.clone();
            return V2Error::Unauthenticated {
                www_authenticate_uri: uri,
            }
            .into_response(&req);
        }
        Err(auth::AuthError::Unavailable(e)) => {
            tracing::warn!(error = %e, "cannot check the token");
            return V2Error::Page(HttpError::positional(503, crate::edge::IDENTITY_UNAVAILABLE)).into_response(&req);
        }
    };
    let (store, settings) = (&state.store, state.settings.as_ref());
    let call = Call {
        req: &req,
        store,
        ctx: &ctx,
        settings,
    };
    let result = match endpoint {
        Endpoint::Versions { .. } => unreachable!("answered above"),
        Endpoint::ImagesList => images::list(call).await,
        Endpoint::ImageCreate => images::create(call, payload).await,
        Endpoint::ImageShow(id) => match store.get(&ctx, &id).await {
            Ok(image) => Ok(json_response(StatusCode::OK, &req, &view::image(&image))),
            Err(e) => Err(e.into()),
        },
        Endpoint::ImageDelete(id) => match store.delete(&ctx, &id).await {
            Ok(()) => Ok(no_content(&req)),
            Err(e) => Err(e.into()),
        },
        Endpoint::ImageUpdate(id) => images::update(call, payload, &id).await,
        Endpoint::Upload(id) => data::upload(call, payload, &id).await,
        Endpoint::Download(id) => data::download(call, &id).await,
        Endpoint::SetActive(id, active) => match store.set_active(&ctx, &id, active).await {
            Ok(_) => Ok(no_content(&req)),
            Err(e) => Err(e.into()),
        },
        Endpoint::Tag { id, tag, add } => images::tag(call, &id, &tag, add).await,
        Endpoint::Members(id) => match crate::backend::ImageBackend::members(store, &ctx, &id).await {
            Ok(members) => Ok(json_response(StatusCode::OK, &req, &view::members(&members))),
            Err(e) => Err(e.into()),
        },
        Endpoint::SchemaImage => Ok(json_response(StatusCode::OK, &req, &schema::image())),
        Endpoint::SchemaImages => Ok(json_response(StatusCode::OK, &req, &schema::images())),
        Endpoint::MethodNotAllowed => Err(V2Error::new(405, "The method is not allowed for this resource.")),
        Endpoint::NotFound => Err(V2Error::new(404, NOT_FOUND_DEFAULT)),
    };
    match result {
        Ok(resp) => resp,
        Err(e) => e.into_response(&req),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_without_a_host_header_name_the_image_listener() {
        let mut settings = Settings::defaults();
        settings.server.image_bind = "127.0.0.1:9999".into();
        let req = actix_web::test::TestRequest::default().to_http_request();
        assert_eq!(host_url(&req, &settings), "http://127.0.0.1:9999");
        let req = actix_web::test::TestRequest::default()
            .insert_header(("Host", "h:1"))
            .to_http_request();
        assert_eq!(host_url(&req, &settings), "http://h:1");
    }
}
