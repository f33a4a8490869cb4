//! Nova's images proxy API surface: routing, microversions, faults, headers.
//! One entry point turns every request on the compute listener into Nova's
//! answer: the version documents here, calls under `/v2.1` and `/v2` through
//! the stages of [`pipeline`]; handlers live in `images` and `image_metadata`,
//! errors in [`error`].

pub mod error;
pub mod fault;
mod image_metadata;
mod images;
pub mod microversion;
pub mod pipeline;
pub mod query;
pub mod routes;
mod unversioned;
mod validation;
pub mod versions;
pub mod views;
mod writable_keys;

use crate::auth;
use crate::backend::{ImageBackend, RequestContext};
use crate::config::Settings;
use crate::edge::forwarded::Origin;
use crate::edge::links::update_link_prefix;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use microversion::Version;
use std::sync::Arc;

pub struct NovaState {
    pub settings: Settings,
    pub backend: Arc<dyn ImageBackend>,
    /// Who a token stands for (shared with the image listener).
    pub auth: auth::Authenticator,
    pub max_version: Version,
    /// Base of `alternate` links: the image endpoint with `glance_link_prefix` applied.
    pub glance_link_base: String,
    /// Brownouts and retirement of this surface.
    pub migration: crate::migration::Migration,
}

impl NovaState {
    pub fn new(
        settings: Settings,
        backend: Arc<dyn ImageBackend>,
        auth: auth::Authenticator,
        migration: crate::migration::Migration,
    ) -> Self {
        let max_version = settings.max_version();
        // The embedded store's image API is the image listener.
        let image_url = match backend.public_image_url() {
            url if url.is_empty() => settings
                .image_listener()
                .map(|a| format!("http://{a}"))
                .unwrap_or_default(),
            url => url,
        };
        let glance_link_base = update_link_prefix(&image_url, &settings.api.glance_link_prefix)
            .trim_end_matches('/')
            .to_string();
        NovaState {
            settings,
            backend,
            auth,
            max_version,
            glance_link_base,
            migration,
        }
    }
}

/// A successful answer of a handler.
pub enum Reply {
    Json(StatusCode, serde_json::Value),
    /// A body already written as `json.dumps` writes it.
    Body(StatusCode, bytes::Bytes),
    NoContent,
}

/// Everything a handler needs about the request.
pub struct Call<'a> {
    pub state: &'a NovaState,
    pub ctx: RequestContext,
    pub params: Vec<(String, String)>,
    pub body: Option<serde_json::Value>,
    pub legacy: bool,
    pub links: views::Links,
    pub http: &'a HttpRequest,
}

/// The single entry point of the compute listener.
pub async fn entry(req: HttpRequest, payload: web::Payload, state: web::Data<NovaState>) -> HttpResponse {
    // oslo.middleware's CORS filter heads every pipeline. A preflight goes on
    // to the application like any other call (the version documents answer
    // it); anything but a 2xx becomes an empty 200 (no allowed origin is
    // configured, so no CORS headers are added).
    if req.method() == actix_web::http::Method::OPTIONS {
        let resp = answer(req, payload, state.get_ref()).await;
        return if resp.status().is_success() {
            resp
        } else {
            HttpResponse::Ok().finish()
        };
    }
    answer(req, payload, state.get_ref()).await
}

/// What Nova's paste map and its two API pipelines answer.
async fn answer(req: HttpRequest, payload: web::Payload, state: &NovaState) -> HttpResponse {
    // The path as Nova routes it: dot segments resolved, decoded, `//` collapsed.
    let path = crate::edge::path::routed(req.uri().path());
    let origin = Origin::trusted_as_configured(&req);
    let api = if let Some(rest) = path.strip_prefix("/v2.1/") {
        Some((false, "v2.1", rest))
    } else {
        path.strip_prefix("/v2/").map(|rest| (true, "v2", rest))
    };
    let Some((legacy, app, rest)) = api.filter(|(_, _, rest)| !rest.is_empty()) else {
        return unversioned::answer(&req, payload, state, &path, &origin).await;
    };
    let rest = format!("/{rest}");
    let target = pipeline::Target {
        legacy,
        app,
        rest: &rest,
        origin: &origin,
    };
    pipeline::run(&req, payload, state, &target).await
}
