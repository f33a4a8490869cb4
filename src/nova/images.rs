//! `GET /images`, `GET /images/detail`, `GET /images/{id}`, `DELETE /images/{id}`
//! (`nova/api/openstack/compute/images.py`).

use super::error::{from_backend, Op};
use super::{fault::Fault, query, views, Call, Reply};
use actix_web::http::StatusCode;
use serde_json::{json, Map, Value};

pub async fn index(call: &Call<'_>, detail: bool) -> Result<Reply, Fault> {
    let params = query::validate(call.params.clone())?;
    let list_query = query::list_query(&params);
    let images = match call.state.backend.list(&call.ctx, &list_query).await {
        Ok(images) => images,
        Err(e) => return Err(from_backend(&e, Op::List)),
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

pub async fn show(call: &Call<'_>, id: &str) -> Result<Reply, Fault> {
    match call.state.backend.get(&call.ctx, id).await {
        Ok(image) => Ok(Reply::Json(
            StatusCode::OK,
            json!({"image": views::detail(&image, &call.links)}),
        )),
        Err(e) => Err(from_backend(&e, Op::Show(id))),
    }
}

pub async fn delete(call: &Call<'_>, id: &str) -> Result<Reply, Fault> {
    match call.state.backend.delete(&call.ctx, id).await {
        Ok(()) => Ok(Reply::NoContent),
        Err(e) => Err(from_backend(&e, Op::Delete(id))),
    }
}
