//! `GET /images`, `GET /images/detail`, `GET /images/{id}`, `DELETE /images/{id}`
//! (`nova/api/openstack/compute/images.py`).

use super::{fault::Fault, query, unavailable, unexpected_glance, views, Call, Reply};
use crate::backend::BackendError;
use actix_web::http::StatusCode;
use serde_json::{json, Map, Value};

pub async fn index(call: &Call<'_>, detail: bool) -> Result<Reply, Fault> {
    let params = query::validate(call.params.clone())?;
    let list_query = query::list_query(&params);
    let images = match call.state.backend.list(&call.ctx, &list_query).await {
        Ok(images) => images,
        Err(e) => return Err(list_error(&e)),
    };
    let items: Vec<Value> = images
        .iter()
        .map(|img| {
            if detail {
                views::detail(img, &call.links)
            } else {
                views::basic(img, &call.links)
            }
        })
        .collect();
    let mut out = Map::new();
    out.insert("images".into(), Value::Array(items));
    if let Some(last) = images.last() {
        if query::wants_next_link(&params, images.len(), call.state.settings.api.max_limit) {
            let collection = if detail { "images/detail" } else { "images" };
            let href = format!(
                "{}?{}",
                views::url_join(&[&call.links.app_url, &call.links.project_id, collection]),
                query::next_query(&params, &last.id)
            );
            out.insert("images_links".into(), json!([{"rel": "next", "href": href}]));
        }
    }
    Ok(Reply::Json(StatusCode::OK, Value::Object(out)))
}

/// Glance errors on a list, as `_translate_plain_exception` and the controller map them.
fn list_error(e: &BackendError) -> Fault {
    if let Some(f) = unavailable(e) {
        return f;
    }
    match e {
        BackendError::Status { status: 400, details } => Fault::bad_request(format!("HTTP {details}")),
        BackendError::Status {
            status: 401 | 403,
            details,
        } => Fault::forbidden(format!("HTTP {details}")),
        BackendError::Status { status: 404, .. } => Fault::unexpected("nova.exception.NotFound"),
        BackendError::Status { status, .. } => unexpected_glance(*status),
        _ => Fault::unexpected("nova.exception.NovaException"),
    }
}

pub async fn show(call: &Call<'_>, id: &str) -> Result<Reply, Fault> {
    match call.state.backend.get(&call.ctx, id).await {
        Ok(image) => Ok(Reply::Json(
            StatusCode::OK,
            json!({"image": views::detail(&image, &call.links)}),
        )),
        Err(e) => Err(image_error(&e, id)),
    }
}

/// Glance errors on one image (`_translate_image_exception`), as `show` and the
/// metadata calls answer them.
pub fn image_error(e: &BackendError, id: &str) -> Fault {
    if let Some(f) = unavailable(e) {
        return f;
    }
    match e {
        BackendError::Status { status: 404, .. } => Fault::image_not_found(),
        // Nova lets ImageNotAuthorized escape `show` as a 500; we answer the 403
        // its metadata calls use for the same case.
        BackendError::Status { status: 401 | 403, .. } => Fault::forbidden(format!("Not authorized for image {id}.")),
        BackendError::Status { status, .. } => unexpected_glance(*status),
        _ => Fault::unexpected("nova.exception.NovaException"),
    }
}

pub async fn delete(call: &Call<'_>, id: &str) -> Result<Reply, Fault> {
    match call.state.backend.delete(&call.ctx, id).await {
        Ok(()) => Ok(Reply::NoContent),
        Err(e) => Err(match &e {
            BackendError::Status { status: 404, .. } => Fault::image_not_found(),
            BackendError::Status { status: 401 | 403, .. } => {
                Fault::forbidden("You are not allowed to delete the image.")
            }
            // Nova answers 500 (ImageDeleteConflict is not expected); a conflict is a 409.
            BackendError::Status { status: 409, details } => {
                Fault::new(409, format!("Conflict deleting image. Reason: HTTP {details}."))
            }
            other => image_error(other, id),
        }),
    }
}
