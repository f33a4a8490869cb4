//! A call under `/v2.1` or `/v2` as Nova's paste pipeline runs it, one named
//! stage per step, each returning `Result<_, NovaError>`: size limit → auth →
//! route → microversion → content type → body → project check → version gate
//! → dispatch → view. The stages that may refuse a call before its handler
//! runs are in [`checks`]; here the pipeline runs them, then dispatches and
//! draws the answer.

pub mod checks;

use super::error::{finish, Meta, NovaError};
use super::fault::Fault;
use super::routes::Endpoint;
use super::{image_metadata, images, query, versions, views, Call, NovaState, Reply};
use crate::backend::RequestContext;
use crate::edge::body;
use crate::edge::forwarded::{quote_path, Origin};
use crate::edge::links::{remove_trailing_version, update_link_prefix};
use crate::edge::request_id;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use checks::{
    authenticate, content_type, json_body, microversion, migration_gate, project_check, route, size_limit, version_gate,
};
use std::time::Duration;

/// Where the call is going: which API prefix, and the path below it.
pub struct Target<'a> {
    /// `/v2` (everything at 2.1, no version headers) rather than `/v2.1`.
    pub legacy: bool,
    /// `v2` or `v2.1`.
    pub app: &'a str,
    /// The path below the prefix, starting with `/`.
    pub rest: &'a str,
    /// Where the client sent the request (scheme, host, proxy prefix).
    pub origin: &'a Origin,
}

/// Run the pipeline; every failure is answered by [`NovaError::into_response`].
pub async fn run(req: &HttpRequest, payload: web::Payload, state: &NovaState, target: &Target<'_>) -> HttpResponse {
    let mut meta = Meta {
        request_id: Some(request_id::of(req)),
        version: None,
    };
    match stages(req, payload, state, target, &mut meta).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(req, &meta),
    }
}

async fn stages(
    req: &HttpRequest,
    payload: web::Payload,
    state: &NovaState,
    target: &Target<'_>,
    meta: &mut Meta,
) -> Result<HttpResponse, NovaError> {
    let server = &state.settings.server;
    let raw_body = size_limit(
        req,
        payload,
        server.max_request_body,
        Duration::from_secs_f64(server.body_timeout_secs),
    )
    .await?;
    let rid = meta.request_id.clone().unwrap_or_default();
    let ctx = authenticate(req, state, &rid).await?;
    let route = route(req.method(), target.rest)?;
    tracing::debug!(endpoint = route.endpoint.name(), "routed");
    let version = microversion(req, target.legacy, state.max_version)?;
    meta.version = (!target.legacy).then(|| version.to_string());
    content_type(req)?;
    let body = json_body(req.method(), body::content_length(req), &raw_body)?;
    project_check(&route, &ctx)?;
    version_gate(&route.endpoint, version)?;
    migration_gate(state, &ctx)?;
    let links = links(req, state, target, &ctx);
    let app_url = links.app_url.clone();
    let call = Call {
        state,
        ctx,
        params: query::parse(req.query_string()),
        body,
        legacy: target.legacy,
        links,
        http: req,
    };
    let reply = dispatch(&route.endpoint, &call, &app_url).await.map_err(|e| {
        if e.code >= 500 {
            tracing::error!(code = e.code, endpoint = route.endpoint.name(), "request failed");
        }
        NovaError::Fault(e)
    })?;
    Ok(view(reply, meta, response_content_type(req, target.rest)))
}

/// The media types Nova answers and takes.
const SUPPORTED: &[&str] = &["application/json", "application/vnd.openstack.compute+json"];

/// The bases of the links in the answer.
fn links(req: &HttpRequest, state: &NovaState, target: &Target<'_>, ctx: &RequestContext) -> views::Links {
    let prefix = &state.settings.api.compute_link_prefix;
    let default_host = req.app_config().host();
    let host_url = target.origin.host_url(default_host);
    let script_name = if target.legacy { "/v2" } else { "/v2.1" };
    debug_assert_eq!(&script_name[1..], target.app);
    let application_url = target.origin.application_url_at(&host_url, script_name);
    // Nova looks for the project id in webob's `request.url`.
    let project_in_url = !ctx.project_id.is_empty() && {
        let full_url = format!("{host_url}{}{}", quote_path(&target.origin.prefix), req.uri());
        full_url.contains(&ctx.project_id)
    };
    views::Links {
        bookmark_url: update_link_prefix(&remove_trailing_version(&application_url), prefix),
        app_url: update_link_prefix(&application_url, prefix),
        project_id: if project_in_url {
            ctx.project_id.clone()
        } else {
            String::new()
        },
        glance_url: state.glance_link_base.clone(),
    }
}

/// The handler of `endpoint`.
async fn dispatch(endpoint: &Endpoint, call: &Call<'_>, app_url: &str) -> Result<Reply, Fault> {
    match endpoint {
        Endpoint::VersionShow(id) => {
            // `VersionsController.show`: legacy `/v2` is always v2.0.
            let id = if call.legacy {
                "v2.0"
            } else {
                id.as_deref().unwrap_or("v2.1")
            };
            if versions::known(id) {
                Ok(Reply::Json(
                    StatusCode::OK,
                    versions::show(id, app_url, call.state.max_version),
                ))
            } else {
                Err(Fault::resource_not_found())
            }
        }
        Endpoint::ImagesIndex => images::index(call, false).await,
        Endpoint::ImagesDetail => images::index(call, true).await,
        Endpoint::ImageShow(id) => images::show(call, id).await,
        Endpoint::ImageDelete(id) => images::delete(call, id).await,
        Endpoint::MetadataIndex(id) => image_metadata::index(call, id).await,
        Endpoint::MetadataShow(id, key) => image_metadata::show(call, id, key).await,
        Endpoint::MetadataCreate(id) => image_metadata::create(call, id).await,
        Endpoint::MetadataUpdateAll(id) => image_metadata::update_all(call, id).await,
        Endpoint::MetadataUpdate(id, key) => image_metadata::update(call, id, key).await,
        Endpoint::MetadataDelete(id, key) => image_metadata::delete(call, id, key).await,
    }
}

/// The handler's reply as Python's `json.dumps` writes it.
fn view(reply: Reply, meta: &Meta, content_type: &str) -> HttpResponse {
    match reply {
        Reply::Json(status, value) => finish(status, meta, content_type, crate::edge::pyjson::to_vec(&value)),
        Reply::Body(status, bytes) => finish(status, meta, content_type, bytes),
        Reply::NoContent => finish(StatusCode::NO_CONTENT, meta, content_type, bytes::Bytes::new()),
    }
}

/// `best_match_content_type`: a `.json` path suffix, else `Accept`, else JSON.
fn response_content_type(req: &HttpRequest, path: &str) -> &'static str {
    if let Some((_, ext)) = path.rsplit_once('.') {
        if let Some(t) = SUPPORTED.iter().find(|t| t.strip_prefix("application/") == Some(ext)) {
            return t;
        }
    }
    let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok());
    match accept.and_then(|a| crate::edge::accept::best_offer(a, SUPPORTED)) {
        Some(i) => SUPPORTED[i],
        None => SUPPORTED[0],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn response_type_from_suffix_then_accept() {
        let req = TestRequest::default()
            .insert_header(("Accept", "application/vnd.openstack.compute+json"))
            .to_http_request();
        assert_eq!(response_content_type(&req, "/images"), SUPPORTED[1]);
        assert_eq!(response_content_type(&req, "/images.json"), SUPPORTED[0]);
        let plain = TestRequest::default().to_http_request();
        assert_eq!(response_content_type(&plain, "/images"), SUPPORTED[0]);
    }
}
