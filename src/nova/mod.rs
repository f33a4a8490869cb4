//! Nova's images proxy API surface: routing, microversions, faults, headers.
//! One entry point turns every request on the compute listener into Nova's
//! answer; handlers live in `images` and `image_metadata`.

pub mod accept;
pub mod fault;
mod image_metadata;
mod images;
pub mod microversion;
pub mod query;
pub mod routes;
mod validation;
pub mod versions;
pub mod views;
mod writable_keys;

use crate::auth;
use crate::backend::{BackendError, ImageBackend, RequestContext};
use crate::config::Settings;
use crate::request_id;
use actix_web::http::{header, Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use fault::Fault;
use futures_util::StreamExt;
use microversion::Version;
use routes::Endpoint;
use std::sync::Arc;

pub struct NovaState {
    pub settings: Settings,
    pub backend: Arc<dyn ImageBackend>,
    /// Who a token stands for (shared with the image listener).
    pub auth: auth::Authenticator,
    pub max_version: Version,
    /// Base of `alternate` links: the image endpoint with `glance_link_prefix` applied.
    pub glance_link_base: String,
}

impl NovaState {
    pub fn new(settings: Settings, backend: Arc<dyn ImageBackend>, auth: auth::Authenticator) -> Self {
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
        }
    }
}

/// Nova's `_update_link_prefix`: scheme and host from `prefix`, its path prepended.
pub fn update_link_prefix(orig: &str, prefix: &str) -> String {
    if prefix.is_empty() {
        return orig.to_string();
    }
    let (Ok(o), Ok(p)) = (url::Url::parse(orig), url::Url::parse(prefix)) else {
        return orig.to_string();
    };
    let host = match p.port() {
        Some(port) => format!("{}:{}", p.host_str().unwrap_or(""), port),
        None => p.host_str().unwrap_or("").to_string(),
    };
    let ppath = if p.path() == "/" && !prefix.ends_with('/') {
        ""
    } else {
        p.path()
    };
    let opath = if o.path() == "/" && !orig.ends_with('/') {
        ""
    } else {
        o.path()
    };
    let mut out = format!("{}://{}{}{}", p.scheme(), host, ppath, opath);
    if let Some(q) = o.query() {
        out.push('?');
        out.push_str(q);
    }
    out.trim_end_matches('/').to_string()
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

/// What the response carries besides its body.
struct Meta<'a> {
    request_id: Option<&'a str>,
    /// The microversion to echo (`X.Y`), if the request has one.
    version: Option<String>,
}

fn finish(mut builder: actix_web::HttpResponseBuilder, meta: &Meta, content_type: &str, body: Vec<u8>) -> HttpResponse {
    if let Some(v) = &meta.version {
        builder.insert_header((microversion::STANDARD_HEADER, format!("compute {v}")));
        builder.insert_header((microversion::LEGACY_HEADER, v.to_string()));
        builder.append_header((header::VARY, microversion::STANDARD_HEADER));
        builder.append_header((header::VARY, microversion::LEGACY_HEADER));
    }
    if let Some(id) = meta.request_id {
        builder.insert_header(("x-openstack-request-id", id));
        builder.insert_header(("x-compute-request-id", id));
    }
    builder.insert_header((header::CONTENT_TYPE, content_type));
    builder.body(body)
}

fn fault_response(fault: &Fault, meta: &Meta) -> HttpResponse {
    let status = StatusCode::from_u16(fault.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    finish(
        HttpResponse::build(status),
        meta,
        "application/json; charset=UTF-8",
        fault.body(),
    )
}

fn webob_response(req: &HttpRequest, status: StatusCode, title: &str, explanation: &str, meta: &Meta) -> HttpResponse {
    let format = fault::webob_format(header_str(req, header::ACCEPT.as_str()));
    let status_line = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or(title));
    let (ct, body) = fault::webob_page(format, &status_line, title, explanation);
    let body = if req.method() == Method::HEAD { Vec::new() } else { body };
    finish(HttpResponse::build(status), meta, ct, body)
}

fn header_str<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// `scheme://host` of the request as Nova sees it (the `Host` header, no proxy headers).
fn host_url(req: &HttpRequest) -> String {
    let host = header_str(req, header::HOST.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| req.app_config().host().to_string());
    let scheme = if req.app_config().secure() { "https" } else { "http" };
    format!("{scheme}://{host}")
}

/// The request path, percent-decoded as a WSGI server hands it to Nova.
fn decoded_path(req: &HttpRequest) -> String {
    percent_encoding::percent_decode_str(req.uri().path())
        .decode_utf8_lossy()
        .into_owned()
}

/// The single entry point of the compute listener.
pub async fn entry(req: HttpRequest, payload: web::Payload, state: web::Data<NovaState>) -> HttpResponse {
    let path = decoded_path(&req);
    let state = state.get_ref();
    let host = host_url(&req);
    let max = state.max_version;
    let prefix = &state.settings.api.compute_link_prefix;
    match path.as_str() {
        "" | "/" => {
            let body = versions::root(&update_link_prefix(&host, prefix), max);
            let meta = Meta {
                request_id: None,
                version: None,
            };
            return finish(
                HttpResponse::Ok(),
                &meta,
                "application/json",
                crate::pyjson::to_vec(&body),
            );
        }
        "/v2" | "/v2/" | "/v2.1" | "/v2.1/" => {
            let rid = request_id::of(&req);
            let legacy = path.starts_with("/v2/") || path == "/v2";
            let mut meta = Meta {
                request_id: Some(&rid),
                version: None,
            };
            if !legacy {
                match negotiate(&req, max) {
                    Ok(v) => meta.version = Some(v.to_string()),
                    Err(resp) => return resp(&meta),
                }
            }
            let (id, app) = if legacy { ("v2.0", "v2") } else { ("v2.1", "v2.1") };
            let self_url = update_link_prefix(&format!("{host}/{app}"), prefix);
            let body = versions::show(id, &self_url, max);
            return finish(
                HttpResponse::Ok(),
                &meta,
                "application/json",
                crate::pyjson::to_vec(&body),
            );
        }
        _ => {}
    }
    let (legacy, app, rest) = if let Some(rest) = path.strip_prefix("/v2.1/") {
        (false, "v2.1", rest)
    } else if let Some(rest) = path.strip_prefix("/v2/") {
        (true, "v2", rest)
    } else {
        let body = versions::choices(&update_link_prefix(&host, prefix), &path);
        let meta = Meta {
            request_id: None,
            version: None,
        };
        return finish(
            HttpResponse::build(StatusCode::MULTIPLE_CHOICES),
            &meta,
            "application/json",
            crate::pyjson::to_vec(&body),
        );
    };
    let rid = request_id::of(&req);
    let rest = format!("/{rest}");
    api(&req, payload, state, &rid, legacy, app, &rest, &host).await
}

type FaultResp = Box<dyn Fn(&Meta) -> HttpResponse>;

fn negotiate(req: &HttpRequest, max: Version) -> Result<Version, FaultResp> {
    let headers = req
        .headers()
        .iter()
        .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str(), v)));
    let requested = microversion::requested(headers.collect::<Vec<_>>().into_iter());
    match microversion::negotiate(requested.as_deref(), max) {
        Ok(v) => Ok(v),
        Err(microversion::VersionError::InvalidFormat(s)) => Err(Box::new(move |meta: &Meta| {
            let fault = Fault::bad_request(format!(
                "API Version String {s} is of invalid format. Must be of format MajorNum.MinorNum."
            ));
            // No version headers on this one.
            fault_response(
                &fault,
                &Meta {
                    request_id: meta.request_id,
                    version: None,
                },
            )
        })),
        Err(microversion::VersionError::NotSupported(v)) => Err(Box::new(move |meta: &Meta| {
            let fault = Fault::new(
                406,
                format!(
                    "Version {v} is not supported by the API. Minimum is {} and maximum is {max}.",
                    microversion::MIN
                ),
            );
            fault_response(
                &fault,
                &Meta {
                    request_id: meta.request_id,
                    version: Some(v.clone()),
                },
            )
        })),
    }
}

/// Why a request body was not read.
enum BodyError {
    /// More than the limit (oslo.middleware `sizelimit`): 413.
    TooLarge,
    /// Not all there within `server.body_timeout_secs`: 408.
    TooSlow,
    /// The client broke the framing or went away: 400.
    Broken,
}

/// Read the body, refusing more than `max` bytes or taking longer than `deadline`.
async fn read_body(mut payload: web::Payload, max: usize, deadline: std::time::Duration) -> Result<Vec<u8>, BodyError> {
    let read = async {
        let mut body = Vec::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| match e {
                actix_web::error::PayloadError::Overflow => BodyError::TooLarge,
                _ => BodyError::Broken,
            })?;
            if body.len() + chunk.len() > max {
                return Err(BodyError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    tokio::time::timeout(deadline, read)
        .await
        .unwrap_or(Err(BodyError::TooSlow))
}

#[allow(clippy::too_many_arguments)]
async fn api(
    req: &HttpRequest,
    payload: web::Payload,
    state: &NovaState,
    rid: &str,
    legacy: bool,
    app: &str,
    rest: &str,
    host: &str,
) -> HttpResponse {
    let plain = Meta {
        request_id: Some(rid),
        version: None,
    };
    let too_large = |meta: &Meta| {
        webob_response(
            req,
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request Entity Too Large",
            "Request is too large. Larger than max_request_body_size (%s).",
            meta,
        )
    };
    let max_body = state.settings.server.max_request_body;
    let content_length = header_str(req, header::CONTENT_LENGTH.as_str()).and_then(|v| v.trim().parse::<u64>().ok());
    if content_length.is_some_and(|n| n > max_body as u64) {
        return too_large(&plain);
    }
    let deadline = std::time::Duration::from_secs_f64(state.settings.server.body_timeout_secs);
    let raw_body = match read_body(payload, max_body, deadline).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => return too_large(&plain),
        Err(BodyError::TooSlow) => {
            tracing::warn!("request body not received in time");
            let fault = Fault::new(408, "The request body was not received in time.");
            return fault_response(&fault, &plain);
        }
        Err(BodyError::Broken) => {
            return fault_response(&Fault::bad_request("The request body could not be read."), &plain);
        }
    };

    // Authentication (keystonemiddleware's place in Nova's pipeline).
    let token = header_str(req, "x-auth-token");
    let global_id = request_id::global_id(header_str(req, "x-openstack-request-id"), rid);
    let ctx = match state.auth.authenticate(token, &global_id).await {
        Ok(ctx) => ctx,
        Err(auth::AuthError::Unauthenticated) => {
            let mut b = HttpResponse::Unauthorized();
            b.insert_header((
                header::WWW_AUTHENTICATE,
                format!("Keystone uri=\"{}\"", state.settings.auth.www_authenticate_uri),
            ));
            return finish(b, &plain, "application/json", auth::unauthorized_body().to_vec());
        }
        // The token could not be checked: an outage, not a refusal.
        Err(auth::AuthError::Unavailable(_)) => {
            let fault = Fault::new(503, "The identity service is unavailable. Please try again later.");
            return fault_response(&fault, &plain);
        }
    };

    let Some(route) = routes::parse(req.method(), rest) else {
        return webob_response(
            req,
            StatusCode::NOT_FOUND,
            "Not Found",
            fault::NOT_FOUND_DEFAULT,
            &plain,
        );
    };
    tracing::debug!(endpoint = route.endpoint.name(), "routed");

    // Legacy /v2 runs everything at 2.1 and answers without version headers.
    let version = if legacy {
        microversion::MIN
    } else {
        match negotiate(req, state.max_version) {
            Ok(v) => v,
            Err(resp) => return resp(&plain),
        }
    };
    let meta = Meta {
        request_id: Some(rid),
        version: (!legacy).then(|| version.to_string()),
    };

    // Content-Type of the body (absent or text/plain: none).
    if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
        let mime = ct.to_str().unwrap_or("\u{0}").split(';').next().unwrap_or("").trim();
        if !mime.is_empty() && mime != "text/plain" && !SUPPORTED.contains(&mime) {
            return fault_response(&Fault::new(415, "Unsupported Content-Type"), &meta);
        }
    }
    let content_type = response_content_type(req, rest);

    let body = if req.method() == Method::POST || req.method() == Method::PUT {
        if content_length.unwrap_or(0) == 0 {
            None
        } else {
            match serde_json::from_slice::<serde_json::Value>(&raw_body) {
                Ok(v) => Some(v),
                Err(_) => return fault_response(&Fault::bad_request("Malformed request body"), &meta),
            }
        }
    } else {
        None
    };

    if let Some(p) = &route.project_id {
        if *p != ctx.project_id {
            let fault = Fault::bad_request(format!(
                "Malformed request URL: URL's project_id '{p}' doesn't match Context's project_id '{}'",
                ctx.project_id
            ));
            return fault_response(&fault, &meta);
        }
    }

    // The version gate comes before any validation or Glance call.
    let gone = if route.endpoint.is_metadata() {
        microversion::IMAGE_METADATA_GONE
    } else {
        microversion::IMAGES_GONE
    };
    if !route.endpoint.is_version() && version >= gone {
        return fault_response(&Fault::resource_not_found(), &meta);
    }

    let full_url = format!("{host}{}", req.uri());
    let app_url = update_link_prefix(&format!("{host}/{app}"), &state.settings.api.compute_link_prefix);
    let bookmark_url = update_link_prefix(host, &state.settings.api.compute_link_prefix);
    let project_in_url = !ctx.project_id.is_empty() && full_url.contains(&ctx.project_id);
    let links = views::Links {
        app_url: app_url.clone(),
        bookmark_url,
        project_id: if project_in_url {
            ctx.project_id.clone()
        } else {
            String::new()
        },
        glance_url: state.glance_link_base.clone(),
    };
    let call = Call {
        state,
        ctx,
        params: query::parse(req.query_string()),
        body,
        legacy,
        links,
        http: req,
    };
    let result = match &route.endpoint {
        Endpoint::VersionShow(id) => {
            let id = id.as_deref().unwrap_or("v2.1");
            if versions::known(id) {
                Ok(Reply::Json(
                    StatusCode::OK,
                    versions::show(id, &app_url, state.max_version),
                ))
            } else {
                Err(Fault::resource_not_found())
            }
        }
        Endpoint::ImagesIndex => images::index(&call, false).await,
        Endpoint::ImagesDetail => images::index(&call, true).await,
        Endpoint::ImageShow(id) => images::show(&call, id).await,
        Endpoint::ImageDelete(id) => images::delete(&call, id).await,
        Endpoint::MetadataIndex(id) => image_metadata::index(&call, id).await,
        Endpoint::MetadataShow(id, key) => image_metadata::show(&call, id, key).await,
        Endpoint::MetadataCreate(id) => image_metadata::create(&call, id).await,
        Endpoint::MetadataUpdateAll(id) => image_metadata::update_all(&call, id).await,
        Endpoint::MetadataUpdate(id, key) => image_metadata::update(&call, id, key).await,
        Endpoint::MetadataDelete(id, key) => image_metadata::delete(&call, id, key).await,
    };
    match result {
        Ok(Reply::Json(status, value)) => finish(
            HttpResponse::build(status),
            &meta,
            content_type,
            crate::pyjson::to_vec(&value),
        ),
        Ok(Reply::NoContent) => finish(HttpResponse::NoContent(), &meta, content_type, Vec::new()),
        Err(fault) => {
            if fault.code >= 500 {
                tracing::error!(code = fault.code, endpoint = route.endpoint.name(), "request failed");
            }
            fault_response(&fault, &meta)
        }
    }
}

const SUPPORTED: &[&str] = &["application/json", "application/vnd.openstack.compute+json"];

/// `best_match_content_type`: a `.json` path suffix, else `Accept`, else JSON.
fn response_content_type(req: &HttpRequest, path: &str) -> &'static str {
    if let Some((_, ext)) = path.rsplit_once('.') {
        if let Some(t) = SUPPORTED.iter().find(|t| t.strip_prefix("application/") == Some(ext)) {
            return t;
        }
    }
    match header_str(req, header::ACCEPT.as_str()).and_then(|a| accept::best_offer(a, SUPPORTED)) {
        Some(i) => SUPPORTED[i],
        None => SUPPORTED[0],
    }
}

/// Faults for backend failures Nova has no answer for: Glance unreachable → 503,
/// timed out → 504 (Nova would answer 500 after its retries).
pub fn unavailable(err: &BackendError) -> Option<Fault> {
    match err {
        // Glance still answering 503 after the retries counts as unreachable.
        BackendError::Unreachable(_) | BackendError::Status { status: 503, .. } => Some(Fault::new(
            503,
            "The image service is unavailable. Please try again later.",
        )),
        BackendError::Timeout => Some(Fault::new(504, "The image service did not answer in time.")),
        BackendError::OutcomeUnknown { timed_out } => Some(Fault::new(
            if *timed_out { 504 } else { 503 },
            "The image service did not confirm the write and cannot be read: its outcome is unknown. \
             Read the image before trying again.",
        )),
        BackendError::BadResponse(_) | BackendError::Internal(_) => {
            Some(Fault::new(502, "The image service answered something unexpected."))
        }
        _ => None,
    }
}

/// Nova's 500 for a Glance error it does not expect, naming the glanceclient class.
pub fn unexpected_glance(status: u16) -> Fault {
    let class = match status {
        400 => "HTTPBadRequest",
        401 => "HTTPUnauthorized",
        403 => "HTTPForbidden",
        404 => "HTTPNotFound",
        405 => "HTTPMethodNotAllowed",
        409 => "HTTPConflict",
        413 => "HTTPOverLimit",
        415 => "HTTPUnsupported",
        501 => "HTTPNotImplemented",
        502 => "HTTPBadGateway",
        503 => "HTTPServiceUnavailable",
        _ => "HTTPInternalServerError",
    };
    Fault::unexpected(&format!("glanceclient.exc.{class}"))
}
