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
//! `Accept`). Not served: import, members, tasks, stores, metadefs, cache.

pub mod error;
mod patch;
mod schema;

use crate::auth;
use crate::backend::embedded::{EmbeddedStore, NewImage};
use crate::backend::error::not_found as store_not_found;
use crate::backend::{BackendError, ByteRange, Image, ImageBackend, ListOptions, ListQuery, RequestContext};
use crate::config::Settings;
use crate::edge::body::{self, BodyError};
use crate::edge::webob::{HttpError, NOT_FOUND_DEFAULT};
use crate::pyjson;
use actix_web::http::{header, Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use error::V2Error;
use futures_util::StreamExt;
use serde_json::{json, Map, Value};
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

fn json_response(status: StatusCode, req: &HttpRequest, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header(("x-openstack-request-id", crate::request_id::of(req)))
        .body(pyjson::to_vec(body))
}

fn no_content(req: &HttpRequest) -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header(("x-openstack-request-id", crate::request_id::of(req)))
        .finish()
}

fn host_url(req: &HttpRequest) -> String {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1:9292");
    format!("http://{host}")
}

async fn entry(req: HttpRequest, payload: web::Payload, state: web::Data<V2State>) -> HttpResponse {
    let path = percent_encoding::percent_decode_str(req.path())
        .decode_utf8_lossy()
        .into_owned();
    if matches!(path.as_str(), "/" | "/versions" | "/v2" | "/v2/") {
        return versions(&req, &path);
    }
    let token = req
        .headers()
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok())
        .map(|t| percent_encoding::percent_decode_str(t).decode_utf8_lossy().into_owned());
    let rid = crate::request_id::of(&req);
    let ctx = match state.auth.authenticate(token.as_deref(), &rid).await {
        Ok(ctx) => crate::access_log::identified(&req, ctx),
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
    let segs: Vec<&str> = path.trim_start_matches("/v2/").split('/').collect();
    let m = req.method().clone();
    let store = &state.store;
    let result = match (segs.as_slice(), m.as_str()) {
        (["images"], "GET") => list(&req, store, &ctx).await,
        (["images"], "POST") => create(&req, payload, store, &ctx, &state.settings).await,
        (["images", id], "GET") => store
            .get(&ctx, id)
            .await
            .map(|i| json_response(StatusCode::OK, &req, &image_json(&i)))
            .map_err(Into::into),
        (["images", id], "DELETE") => store
            .delete(&ctx, id)
            .await
            .map(|()| no_content(&req))
            .map_err(Into::into),
        (["images", id], "PATCH") => update(&req, payload, store, &ctx, id, &state.settings).await,
        (["images", id, "file"], "PUT") => upload(&req, payload, store, &ctx, id, &state.settings).await,
        (["images", id, "file"], "GET") => download(&req, store, &ctx, id).await,
        (["images", id, "actions", action @ ("deactivate" | "reactivate")], "POST") => store
            .set_active(&ctx, id, *action == "reactivate")
            .await
            .map(|_| no_content(&req))
            .map_err(Into::into),
        (["images", id, "tags", tag], "PUT" | "DELETE") => {
            let (tag, add) = (tag.to_string(), m == Method::PUT);
            store
                .modify(&ctx, id, move |img| {
                    if add {
                        if !img.tags.contains(&tag) {
                            img.tags.push(tag);
                            img.tags.sort();
                        }
                        Ok(())
                    } else if let Some(p) = img.tags.iter().position(|t| *t == tag) {
                        img.tags.remove(p);
                        Ok(())
                    } else {
                        Err(store_not_found(&format!("Tag {tag} not found")))
                    }
                })
                .await
                .map(|_| no_content(&req))
                .map_err(Into::into)
        }
        (["schemas", "image"], "GET") => Ok(json_response(StatusCode::OK, &req, &schema::image())),
        (["schemas", "images"], "GET") => Ok(json_response(StatusCode::OK, &req, &schema::images())),
        (["images"] | ["images", _] | ["images", _, "file"] | ["images", _, "actions", _], _) => {
            Err(V2Error::new(405, "The method is not allowed for this resource."))
        }
        _ => Err(V2Error::new(404, NOT_FOUND_DEFAULT)),
    };
    match result {
        Ok(resp) => resp,
        Err(e) => e.into_response(&req),
    }
}

fn versions(req: &HttpRequest, path: &str) -> HttpResponse {
    let base = host_url(req);
    let mut list = Vec::new();
    for (id, status) in [
        ("v2.9", "CURRENT"),
        ("v2.8", "SUPPORTED"),
        ("v2.7", "SUPPORTED"),
        ("v2.6", "SUPPORTED"),
    ] {
        list.push(json!({"id": id, "status": status, "links": [{"rel": "self", "href": format!("{base}/v2/")}]}));
    }
    // Glance answers `/` with 300 and `/versions` with 200.
    let status = if path == "/versions" {
        StatusCode::OK
    } else {
        StatusCode::MULTIPLE_CHOICES
    };
    json_response(status, req, &json!({"versions": list}))
}

/// The image as Glance v2 shows it.
pub fn image_json(image: &Image) -> Value {
    Value::Object(image.to_glance_json())
}

async fn read_json(payload: web::Payload, max: usize, settings: &Settings) -> Result<Value, V2Error> {
    let deadline = std::time::Duration::from_secs_f64(settings.server.body_timeout_secs);
    let body = body::read(payload, max, deadline).await.map_err(|e| match e {
        BodyError::TooLarge => V2Error::new(413, "Request is too large."),
        BodyError::TooSlow => V2Error::new(408, "The request body was not received in time."),
        BodyError::Broken => V2Error::new(400, "Error reading the request body."),
    })?;
    serde_json::from_slice(&body).map_err(|_| V2Error::new(400, "Malformed JSON in request body."))
}

async fn list(req: &HttpRequest, store: &EmbeddedStore, ctx: &RequestContext) -> Answer {
    let params: Vec<(String, String)> = form_urlencoded::parse(req.query_string().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut query = ListQuery::default();
    let mut options = ListOptions::default();
    let mut limit: u64 = 25;
    for (k, v) in &params {
        match k.as_str() {
            "limit" => {
                limit = v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                    V2Error::new(
                        400,
                        if v.parse::<i64>().is_ok() {
                            "limit param must be positive"
                        } else {
                            "limit param must be an integer"
                        },
                    )
                })? as u64;
                limit = limit.min(1000);
            }
            "marker" => query.marker = Some(v.clone()),
            "sort_key" => {
                if !crate::backend::SORT_KEYS.contains(&v.as_str()) {
                    return Err(V2Error::new(
                        400,
                        format!(
                            "Invalid sort key: {v}. It must be one of the following: {}.",
                            crate::backend::SORT_KEYS.join(", ")
                        ),
                    ));
                }
                options.sort_key = Some(v.clone());
            }
            "sort_dir" => {
                if v != "asc" && v != "desc" {
                    return Err(V2Error::new(400, format!("Invalid sort direction: {v}")));
                }
                options.sort_dir = Some(v.clone());
            }
            "member_status" | "sort" => {}
            _ => query.filters.push((k.clone(), v.clone())),
        }
    }
    query.limit = Some(limit);
    let images = store.list_with(ctx, &query, &options).await?;
    let mut body = Map::new();
    body.insert("images".into(), Value::Array(images.iter().map(image_json).collect()));
    let first = if req.query_string().is_empty() {
        "/v2/images".to_string()
    } else {
        format!("/v2/images?{}", req.query_string())
    };
    body.insert("first".into(), json!(first));
    body.insert("schema".into(), json!("/v2/schemas/images"));
    if let (Some(last), true) = (images.last(), limit > 0 && images.len() as u64 == limit) {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in params.iter().filter(|(k, _)| k != "marker") {
            s.append_pair(k, v);
        }
        s.append_pair("marker", &last.id);
        body.insert("next".into(), json!(format!("/v2/images?{}", s.finish())));
    }
    Ok(json_response(StatusCode::OK, req, &Value::Object(body)))
}

async fn create(
    req: &HttpRequest,
    payload: web::Payload,
    store: &EmbeddedStore,
    ctx: &RequestContext,
    settings: &Settings,
) -> Answer {
    let body = read_json(payload, settings.server.max_request_body.max(65536), settings).await?;
    let Value::Object(fields) = body else {
        return Err(V2Error::new(400, "Body expected in request."));
    };
    let mut new = NewImage::default();
    for (k, v) in fields {
        patch::check_writable(&k, true)?;
        match k.as_str() {
            "id" => {
                let id = v.as_str().filter(|s| uuid::Uuid::parse_str(s).is_ok() && s.len() == 36);
                new.id = Some(
                    id.ok_or_else(|| schema::invalid(&v, "does not match the uuid pattern"))?
                        .to_string(),
                );
            }
            "tags" => new.tags = patch::tags(&v)?,
            "owner" => new.owner = patch::opt_string(&k, &v)?,
            _ => {
                let mut img = Image::default();
                patch::set_attribute(&mut img, &k, v.clone())?;
                match k.as_str() {
                    "name" => new.name = img.name,
                    "visibility" => new.visibility = Some(img.visibility),
                    "protected" => new.protected = img.protected,
                    "os_hidden" => new.os_hidden = img.os_hidden,
                    "container_format" => new.container_format = img.container_format,
                    "disk_format" => new.disk_format = img.disk_format,
                    "min_ram" => new.min_ram = img.min_ram,
                    "min_disk" => new.min_disk = img.min_disk,
                    _ => {
                        new.properties.insert(k, v);
                    }
                }
            }
        }
    }
    let image = store.create(ctx, new).await?;
    let location = format!("{}/v2/images/{}", host_url(req), image.id);
    let mut resp = json_response(StatusCode::CREATED, req, &image_json(&image));
    if let Ok(v) = header::HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

async fn update(
    req: &HttpRequest,
    payload: web::Payload,
    store: &EmbeddedStore,
    ctx: &RequestContext,
    id: &str,
    settings: &Settings,
) -> Answer {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if !matches!(
        mime,
        "application/openstack-images-v2.1-json-patch" | "application/openstack-images-v2.0-json-patch"
    ) {
        return Err(V2Error::new(415, format!("Unsupported Content-Type {ct}")));
    }
    let body = read_json(payload, settings.server.max_request_body.max(65536), settings).await?;
    let ops = patch::parse(&body)?;
    // Validation errors surface from inside the transaction; nothing is written then.
    let result: Result<Image, BackendError> = store
        .modify(ctx, id, move |img| {
            patch::apply(img, &ops).map_err(V2Error::into_backend)
        })
        .await;
    Ok(json_response(StatusCode::OK, req, &image_json(&result?)))
}

async fn upload(
    req: &HttpRequest,
    payload: web::Payload,
    store: &EmbeddedStore,
    ctx: &RequestContext,
    id: &str,
    settings: &Settings,
) -> Answer {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.is_empty() && !ct.starts_with("application/octet-stream") {
        return Err(V2Error::new(415, format!("Content type {ct} not supported.")));
    }
    // A client that stops sending for `body_timeout_secs` loses the upload
    // (the image goes back to `queued`, as when it disconnects).
    let idle = std::time::Duration::from_secs_f64(settings.server.body_timeout_secs);
    let stalled = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stalled.clone();
    let body = futures_util::stream::unfold(Some(payload), move |payload| {
        let flag = flag.clone();
        async move {
            let mut payload = payload?;
            match tokio::time::timeout(idle, payload.next()).await {
                Ok(Some(item)) => Some((item.map_err(|e| e.to_string()), Some(payload))),
                Ok(None) => None,
                Err(_) => {
                    flag.store(true, std::sync::atomic::Ordering::SeqCst);
                    Some((Err(format!("no data for {} s", idle.as_secs_f64())), None))
                }
            }
        }
    });
    match store.upload(ctx, id, Box::pin(body)).await {
        Ok(_) => Ok(no_content(req)),
        Err(_) if stalled.load(std::sync::atomic::Ordering::SeqCst) => {
            tracing::warn!(image = id, "upload abandoned: the client stopped sending");
            Err(V2Error::new(408, "The image data was not received in time."))
        }
        Err(e) => Err(e.into()),
    }
}

/// One `Range: bytes=…` header, if it is a single well-formed range.
fn parse_range(req: &HttpRequest) -> Option<ByteRange> {
    let v = req
        .headers()
        .get(header::RANGE)?
        .to_str()
        .ok()?
        .trim()
        .strip_prefix("bytes=")?;
    if v.contains(',') {
        return None;
    }
    let (a, b) = v.split_once('-')?;
    match (a.trim(), b.trim()) {
        ("", n) => n.parse().ok().map(ByteRange::Last),
        (s, "") => s.parse().ok().map(|start| ByteRange::From { start, end: None }),
        (s, e) => {
            let (start, end): (u64, u64) = (s.parse().ok()?, e.parse().ok()?);
            (start <= end).then_some(ByteRange::From { start, end: Some(end) })
        }
    }
}

async fn download(req: &HttpRequest, store: &EmbeddedStore, ctx: &RequestContext, id: &str) -> Answer {
    let image = store.get(ctx, id).await?;
    let range = parse_range(req);
    let data = match store.data(ctx, id, range).await {
        Ok(d) => d,
        Err(e) => return Err(e.into()),
    };
    let mut b = HttpResponse::build(if data.range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    });
    b.insert_header((header::CONTENT_TYPE, "application/octet-stream"))
        .insert_header(("x-openstack-request-id", crate::request_id::of(req)));
    // Glance sends the hex checksum here (not RFC 1864's base64).
    if let Some(checksum) = image.checksum.as_deref() {
        b.insert_header(("Content-MD5", checksum.to_string()));
    }
    if let Some(r) = data.range {
        b.insert_header((
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{}", r.start, r.end, r.total),
        ));
    }
    let length = data.length.unwrap_or(0);
    let stream = data
        .stream
        .map(|chunk| chunk.map_err(|e| actix_web::error::ErrorInternalServerError(e.to_string())));
    Ok(b.body(actix_web::body::SizedStream::new(length, stream)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let req = |h: &str| {
            actix_web::test::TestRequest::default()
                .insert_header(("Range", h))
                .to_http_request()
        };
        assert_eq!(
            parse_range(&req("bytes=1-2")),
            Some(ByteRange::From { start: 1, end: Some(2) })
        );
        assert_eq!(
            parse_range(&req("bytes=5-")),
            Some(ByteRange::From { start: 5, end: None })
        );
        assert_eq!(parse_range(&req("bytes=-3")), Some(ByteRange::Last(3)));
        assert_eq!(parse_range(&req("bytes=3-1")), None);
        assert_eq!(parse_range(&req("bytes=1-2,4-5")), None);
    }
}
