//! The Glance v2 image API served by the embedded store on the image listener.

use crate::backend::embedded::EmbeddedStore;
use crate::config::Settings;
use actix_web::{web, HttpRequest, HttpResponse};
use std::sync::Arc;

/// Register the Glance v2 routes for `store`.
pub fn configure(cfg: &mut web::ServiceConfig, store: EmbeddedStore, settings: Arc<Settings>) {
    cfg.app_data(web::Data::new(store)).app_data(web::Data::from(settings));
}

/// Glance's (webob's) 404 page for a path it does not serve.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    let format = crate::nova::fault::webob_format(req.headers().get("accept").and_then(|v| v.to_str().ok()));
    let (ct, body) = crate::nova::fault::webob_page(
        format,
        "404 Not Found",
        "Not Found",
        crate::nova::fault::NOT_FOUND_DEFAULT,
    );
    let body = if req.method() == actix_web::http::Method::HEAD {
        Vec::new()
    } else {
        body
    };
    HttpResponse::NotFound()
        .insert_header(("content-type", ct))
        .insert_header(("x-openstack-request-id", crate::request_id::of(&req)))
        .body(body)
}
