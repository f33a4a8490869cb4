//! `/images/{id}/metadata` (`nova/api/openstack/compute/image_metadata.py`), on
//! JSON-patch writes that touch only the keys a request names.

use super::error::{from_backend, Op};
use super::validation::{metadata_body, BodyKind};
use super::{fault::Fault, views, writable_keys, Call, Reply};
use crate::backend::{Drawing, PropertyChange};
use actix_web::http::StatusCode;
use serde_json::{json, Map, Value};

/// The image, or Nova's fault for the backend's error.
async fn image(call: &Call<'_>, id: &str) -> Result<crate::backend::Image, Fault> {
    let got = call.state.backend.get(&call.ctx, id).await;
    got.map_err(|e| from_backend(&e, Op::Show(id)))
}

pub async fn index(call: &Call<'_>, id: &str) -> Result<Reply, Fault> {
    let drawing = Drawing {
        key: "image_metadata.index",
        render: &|image| {
            crate::edge::pyjson::to_vec(&MetadataIndex {
                metadata: views::MetadataView(&image.properties),
            })
        },
    };
    match call.state.backend.get_rendered(&call.ctx, id, &drawing).await {
        Ok(body) => Ok(Reply::Body(StatusCode::OK, body)),
        Err(e) => Err(from_backend(&e, Op::Show(id))),
    }
}

/// `{"metadata": {...}}`, written straight from the image.
#[derive(serde::Serialize)]
struct MetadataIndex<'a> {
    metadata: views::MetadataView<'a>,
}

pub async fn show(call: &Call<'_>, id: &str, key: &str) -> Result<Reply, Fault> {
    let image = image(call, id).await?;
    let meta = views::metadata(&image);
    match meta.get(key) {
        Some(v) => {
            let mut m = Map::new();
            m.insert(key.to_string(), v.clone());
            Ok(Reply::Json(StatusCode::OK, json!({"meta": m})))
        }
        None => Err(Fault::resource_not_found()),
    }
}

/// `_convert_to_v2` (`nova/image/glance.py`): a `kernel_id` or `ramdisk_id`
/// of `""` or `"none"` (any case, white space around) is not sent to Glance,
/// nor removed: the image keeps what it had under that key.
fn unsent(key: &str, value: &Value) -> bool {
    (key == "kernel_id" || key == "ramdisk_id")
        && value.as_str().is_some_and(|v| {
            let v = crate::edge::pyjson::py_strip(v).to_lowercase();
            v.is_empty() || v == "none"
        })
}

/// `POST`: merge; answers the properties as saved.
pub async fn create(call: &Call<'_>, id: &str) -> Result<Reply, Fault> {
    let mut set = metadata_body(call.body.as_ref(), BodyKind::Metadata, call.legacy)?;
    writable_keys::check(None, set.keys())?;
    set.retain(|k, v| !unsent(k, v));
    // Glance's answer to the PATCH (Nova reads the image again, a third
    // call, which can list the keys in another order: README).
    let saved = write(call, id, PropertyChange::Merge(set)).await?;
    Ok(Reply::Json(
        StatusCode::OK,
        json!({"metadata": views::metadata(&saved)}),
    ))
}

/// `PUT` of the collection: replace every extra property; echoes the body.
pub async fn update_all(call: &Call<'_>, id: &str) -> Result<Reply, Fault> {
    let set = metadata_body(call.body.as_ref(), BodyKind::Metadata, call.legacy)?;
    writable_keys::check(None, set.keys())?;
    let (keep, sent): (Map<String, Value>, Map<String, Value>) =
        set.clone().into_iter().partition(|(k, v)| unsent(k, v));
    write(
        call,
        id,
        PropertyChange::ReplaceAll(sent, keep.into_iter().map(|(k, _)| k).collect()),
    )
    .await?;
    Ok(Reply::Json(StatusCode::OK, json!({"metadata": set})))
}

/// `PUT` of one key: create or update it; echoes the body.
pub async fn update(call: &Call<'_>, id: &str, key: &str) -> Result<Reply, Fault> {
    let meta = metadata_body(call.body.as_ref(), BodyKind::Meta, call.legacy)?;
    // Checked before the image is even looked up, as Nova does.
    if !meta.contains_key(key) {
        return Err(Fault::bad_request("Request body and URI mismatch"));
    }
    writable_keys::check(Some(key), [])?;
    if unsent(key, &meta[key]) {
        // Nothing to send; the image must still be there.
        image(call, id).await?;
    } else {
        let mut set = Map::new();
        set.insert(key.to_string(), meta[key].clone());
        write(call, id, PropertyChange::Merge(set)).await?;
    }
    Ok(Reply::Json(StatusCode::OK, json!({"meta": meta})))
}

pub async fn delete(call: &Call<'_>, id: &str, key: &str) -> Result<Reply, Fault> {
    writable_keys::check(Some(key), [])?;
    write(call, id, PropertyChange::Remove(key.to_string())).await?;
    Ok(Reply::NoContent)
}

async fn write(call: &Call<'_>, id: &str, change: PropertyChange) -> Result<crate::backend::Image, Fault> {
    let quota = call.state.settings.api.metadata_items;
    let max = (quota >= 0).then_some(quota as usize);
    call.state
        .backend
        .update_properties(&call.ctx, id, change, max)
        .await
        .map_err(|e| from_backend(&e, Op::Write(id)))
}
