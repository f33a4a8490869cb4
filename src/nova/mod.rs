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
mod validation;
pub mod versions;
pub mod views;
mod writable_keys;

use crate::auth;
use crate::backend::{ImageBackend, RequestContext};
use crate::config::Settings;
use crate::edge::forwarded::{quote_path, Origin};
use crate::edge::links::update_link_prefix;
use crate::edge::request_id;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use error::{finish, Meta};
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

fn json(status: StatusCode, meta: &Meta, body: &serde_json::Value) -> HttpResponse {
    finish(status, meta, "application/json", crate::edge::pyjson::to_vec(body))
}

/// The single entry point of the compute listener.
pub async fn entry(req: HttpRequest, payload: web::Payload, state: web::Data<NovaState>) -> HttpResponse {
    let path = crate::edge::decoded_path(&req);
    let state = state.get_ref();
    let origin = Origin::trusted_as_configured(&req);
    let default_host = req.app_config().host();
    let max = state.max_version;
    let prefix = &state.settings.api.compute_link_prefix;
    // webob's `application_url` of the versions application (mounted at `/`).
    let root_url = update_link_prefix(&origin.application_url(default_host, ""), prefix);
    match path.as_str() {
        "" | "/" => {
            let body = versions::root(&root_url, max);
            return json(StatusCode::OK, &Meta::default(), &body);
        }
        "/v2" | "/v2/" | "/v2.1" | "/v2.1/" => {
            let legacy = path.starts_with("/v2/") || path == "/v2";
            let mut meta = Meta {
                request_id: Some(request_id::of(&req)),
                version: None,
            };
            if !legacy {
                match pipeline::negotiate(&req, max) {
                    Ok(v) => meta.version = Some(v.to_string()),
                    Err(e) => return e.into_response(&req, &meta),
                }
            }
            let (id, app) = if legacy { ("v2.0", "v2") } else { ("v2.1", "v2.1") };
            let self_url = update_link_prefix(&origin.application_url(default_host, &format!("/{app}")), prefix);
            return json(StatusCode::OK, &meta, &versions::show(id, &self_url, max));
        }
        _ => {}
    }
    let (legacy, app, rest) = if let Some(rest) = path.strip_prefix("/v2.1/") {
        (false, "v2.1", rest)
    } else if let Some(rest) = path.strip_prefix("/v2/") {
        (true, "v2", rest)
    } else {
        // webob's `req.path`: the script name (the proxy's prefix) and the path, quoted.
        let req_path = quote_path(&format!("{}{path}", origin.prefix));
        let body = versions::choices(&root_url, &req_path);
        return json(StatusCode::MULTIPLE_CHOICES, &Meta::default(), &body);
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
