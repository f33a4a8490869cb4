//! The image calls of Glance v2: list, create, patch, tags.

use super::error::V2Error;
use super::{content_type, host_url, json_response, no_content, patch, schema, view, Answer, Call};
use crate::backend::embedded::policy::Rule;
use crate::backend::embedded::NewImage;
use crate::backend::error::not_found;
use crate::backend::{BackendError, Image, ImageBackend, ListOptions, ListQuery};
use crate::config::Settings;
use crate::edge::body::{self, BodyError};
use actix_web::http::{header, StatusCode};
use actix_web::web;
use serde_json::{json, Map, Value};

async fn read_json(payload: web::Payload, max: usize, settings: &Settings) -> Result<Value, V2Error> {
    let deadline = std::time::Duration::from_secs_f64(settings.server.body_timeout_secs);
    let body = body::read(payload, max, deadline).await.map_err(|e| match e {
        BodyError::TooLarge => V2Error::new(413, "Request is too large."),
        BodyError::TooSlow => V2Error::new(408, "The request body was not received in time."),
        BodyError::Broken => V2Error::new(400, "Error reading the request body."),
    })?;
    serde_json::from_slice(&body).map_err(|_| V2Error::new(400, "Malformed JSON in request body."))
}

/// `GET /v2/images`.
pub async fn list(call: Call<'_>) -> Answer {
    let Call { req, store, ctx, .. } = call;
    let params = crate::edge::params::parse(req.query_string());
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
    body.insert("images".into(), Value::Array(images.iter().map(view::image).collect()));
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

/// `POST /v2/images`.
pub async fn create(call: Call<'_>, payload: web::Payload) -> Answer {
    let (req, store, ctx, settings) = (call.req, call.store, call.ctx, call.settings);
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
            "owner" => new.owner = Some(patch::opt_string(&k, &v)?),
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
    let location = format!("{}/v2/images/{}", host_url(req, settings), image.id);
    let mut resp = json_response(StatusCode::CREATED, req, &view::image(&image));
    if let Ok(v) = header::HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// `PATCH /v2/images/{id}`: Glance's JSON patch, validated inside the store's
/// transaction (nothing is written when a check fails).
pub async fn update(call: Call<'_>, payload: web::Payload, id: &str) -> Answer {
    let (req, store, ctx, settings) = (call.req, call.store, call.ctx, call.settings);
    let ct = content_type(req);
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
    let result: Result<Image, BackendError> = store.patch(ctx, id, ops).await;
    Ok(json_response(StatusCode::OK, req, &view::image(&result?)))
}

/// `PUT` (`add`) or `DELETE /v2/images/{id}/tags/{tag}`.
pub async fn tag(call: Call<'_>, id: &str, tag: &str, add: bool) -> Answer {
    let tag = tag.to_string();
    call.store
        .modify(call.ctx, id, &[Rule::ModifyImage], move |img| {
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
                Err(not_found(&format!("Tag {tag} not found")))
            }
        })
        .await?;
    Ok(no_content(call.req))
}
