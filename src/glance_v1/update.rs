//! `PUT /v1/images/{id}`: Glance v1's image update (Queens,
//! `glance/api/v1/images.py` `update`) over the [`ImageBackend`]: metadata
//! from `x-image-meta-*` headers, and data into a `queued` image.
//!
//! v1's rules, in its order: `status` and `id` may not change (403 `Forbidden
//! to modify '<key>' of image.`), nor `size` and `checksum` of an `active` or
//! `deactivated` image (403 `Forbidden to modify '<key>' of <status> image.`);
//! data only into a `queued` image (409 `Cannot upload to an unqueued
//! image`). Properties: with `x-glance-registry-purge-props` true (the
//! default) and no data, the image's properties become exactly the ones sent;
//! otherwise the ones sent are added or changed and the others kept. A
//! property sent empty is removed (v1 stored it as none, which it never showed).
//!
//! The whole change is one Glance v2 JSON-patch (`PATCH /v2/images/{id}`,
//! which Glance saves at once, or the embedded store's one transaction): only
//! what differs from the image is sent. With data, the patch goes first (v2
//! wants the formats before the data), then the upload; an upload that fails
//! (cut, stalled, size or checksum mismatch, refused) leaves the image
//! `queued` with no data, and the patch is undone.

use super::error::{from_backend, Op, V1Error};
use super::headers::{self, bool_from_string, V1Meta};
use super::write::{body_stream, check_data, has_body, plain400, refuse_sources, upload_error};
use super::RequestBody;
use super::{get_image, meta as v1meta};
use crate::backend::{Image, ImageBackend, PatchOp, RequestContext};
use crate::edge::webob::HttpError;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Value};

/// The base attributes a v1 update can change, as Glance v2 names them.
const ATTRIBUTES: &[&str] = &[
    "name",
    "disk_format",
    "container_format",
    "min_ram",
    "min_disk",
    "protected",
    "visibility",
    "owner",
];

fn attribute(img: &Image, key: &str) -> Value {
    let s = |v: &Option<String>| v.clone().map_or(Value::Null, Value::String);
    match key {
        "name" => s(&img.name),
        "disk_format" => s(&img.disk_format),
        "container_format" => s(&img.container_format),
        "min_ram" => img.min_ram.into(),
        "min_disk" => img.min_disk.into(),
        "protected" => img.protected.into(),
        "visibility" => img.visibility.clone().into(),
        "owner" => s(&img.owner),
        _ => Value::Null,
    }
}

/// The JSON-patch that makes `from` into `to` (for what a v1 update touches).
/// Glance's reserved `os_glance*` properties are never touched.
pub fn diff(from: &Image, to: &Image) -> Vec<PatchOp> {
    let mut ops = Vec::new();
    for key in ATTRIBUTES {
        let (a, b) = (attribute(from, key), attribute(to, key));
        if a != b {
            ops.push(PatchOp::Replace(key.to_string(), b));
        }
    }
    let reserved = |k: &str| k.starts_with("os_glance");
    for k in from.properties.keys() {
        if !to.properties.contains_key(k) && !reserved(k) {
            ops.push(PatchOp::Remove(k.clone()));
        }
    }
    for (k, v) in &to.properties {
        if from.properties.get(k) != Some(v) && !reserved(k) {
            ops.push(PatchOp::Add(k.clone(), v.clone()));
        }
    }
    ops
}

/// v1's checks of `meta` against the image as it is (see the module doc).
fn check_rules(meta: &V1Meta, img: &Image, data: bool) -> Result<(), HttpError> {
    let forbidden = |msg: String| HttpError::explained(403, msg).plain_typed();
    let current = v1meta::attributes(img);
    let now = |key: &str| current.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone());
    let sent = |key: &str| meta.fields.get(key).cloned();
    for key in ["size", "checksum"] {
        if meta.has(key) && sent(key) != now(key) {
            if matches!(img.status.as_str(), "active" | "deactivated") {
                return Err(forbidden(format!(
                    "Forbidden to modify '{key}' of {} image.",
                    img.status
                )));
            }
            if !data {
                return Err(plain400(format!(
                    "x-image-meta-{key} cannot be set without uploading data: Glance v2 computes it from the data."
                )));
            }
        }
    }
    for key in ["status", "id"] {
        if meta.has(key) && sent(key) != now(key) {
            return Err(forbidden(format!("Forbidden to modify '{key}' of image.")));
        }
    }
    if data && img.status != "queued" {
        return Err(HttpError::positional(409, "Cannot upload to an unqueued image"));
    }
    Ok(())
}

/// The image as `meta` wants it (`purge`: the properties are exactly the
/// ones sent).
fn wanted(meta: &V1Meta, img: &Image, purge: bool) -> Image {
    let mut want = img.clone();
    let text = |key: &str| meta.str(key).map(str::to_string);
    if meta.has("name") {
        want.name = text("name");
    }
    if meta.has("disk_format") {
        want.disk_format = text("disk_format");
    }
    if meta.has("container_format") {
        want.container_format = text("container_format");
    }
    if let Some(n) = meta.int("min_ram") {
        want.min_ram = n;
    }
    if let Some(n) = meta.int("min_disk") {
        want.min_disk = n;
    }
    if let Some(b) = meta.bool("protected") {
        want.protected = b;
    }
    match meta.bool("is_public") {
        Some(true) => want.visibility = "public".into(),
        // v1 knew public and not public; not public is v2's default, `shared`.
        Some(false) if img.visibility == "public" => want.visibility = "shared".into(),
        _ => {}
    }
    if let Some(owner) = meta.str("owner") {
        want.owner = Some(owner.to_string());
    }
    if purge {
        let reserved = |k: &str| k.starts_with("os_glance");
        want.properties.retain(|k, _| reserved(k));
    }
    for (k, v) in &meta.properties {
        match v {
            Value::String(_) => {
                want.properties.insert(k.clone(), v.clone());
            }
            _ => {
                want.properties.shift_remove(k);
            }
        }
    }
    want
}

/// `PUT /v1/images/{id}`: 200, `{"image": …}`, `ETag` when there is a checksum.
pub async fn update(
    req: &HttpRequest,
    upload: RequestBody,
    backend: &dyn ImageBackend,
    ctx: &RequestContext,
    id: &str,
) -> Result<HttpResponse, V1Error> {
    let meta = headers::parse(req.headers())?;
    refuse_sources(&meta, req, "Updating")?;
    let before = get_image(backend, ctx, id).await?;
    let data = has_body(req);
    check_rules(&meta, &before, data)?;
    let purge = req
        .headers()
        .get("x-glance-registry-purge-props")
        .and_then(|v| v.to_str().ok())
        .is_none_or(bool_from_string)
        && !data;
    let want = wanted(&meta, &before, purge);
    if data {
        check_data(req, want.disk_format.as_deref(), want.container_format.as_deref())?;
    }
    let ops = diff(&before, &want);
    let patched = if ops.is_empty() {
        before.clone()
    } else {
        backend
            .patch_image(ctx, id, ops)
            .await
            .map_err(|e| from_backend(&e, Op::Update(id)))?
    };
    let image = if data {
        let (stream, verdict) = body_stream(upload, &meta, "The image is left queued, without data.");
        match backend.upload(ctx, id, stream).await {
            Ok(img) => img,
            Err(e) => {
                let failure = verdict.lock().unwrap_or_else(|p| p.into_inner()).clone();
                tracing::warn!(image = id, error = %e, ?failure, "Glance v1 upload failed; undoing the update");
                let undo = diff(&patched, &before);
                if !undo.is_empty() {
                    if let Err(u) = backend.patch_image(ctx, id, undo).await {
                        tracing::error!(image = id, error = %u, "could not undo the metadata of a failed upload");
                    }
                }
                return Err(upload_error(&e, failure));
            }
        }
    } else {
        patched
    };
    let mut b = HttpResponse::Ok();
    b.insert_header((header::CONTENT_TYPE, "application/json"));
    if let Some(sum) = &image.checksum {
        b.insert_header((header::ETAG, sum.as_str()));
    }
    Ok(b.body(crate::edge::pyjson::to_vec(
        &json!({ "image": v1meta::detail_item(&image) }),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};

    fn image() -> Image {
        let mut img = Image {
            id: "i".into(),
            name: Some("old".into()),
            status: "active".into(),
            visibility: "public".into(),
            size: Some(5),
            checksum: Some("c".into()),
            disk_format: Some("raw".into()),
            container_format: Some("bare".into()),
            ..Default::default()
        };
        img.properties.insert("keep".into(), json!("k"));
        img.properties.insert("os_glance_x".into(), json!("r"));
        img
    }

    fn meta(pairs: &[(&str, &str)]) -> V1Meta {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        headers::parse(&h).unwrap()
    }

    #[test]
    fn patches_touch_only_what_changes() {
        let img = image();
        let m = meta(&[
            ("x-image-meta-name", "new"),
            ("x-image-meta-disk_format", "raw"),
            ("x-image-meta-is_public", "False"),
            ("x-image-meta-property-a", "1"),
        ]);
        let merged = diff(&img, &wanted(&m, &img, false));
        assert_eq!(
            merged,
            vec![
                PatchOp::Replace("name".into(), json!("new")),
                PatchOp::Replace("visibility".into(), json!("shared")),
                PatchOp::Add("a".into(), json!("1")),
            ]
        );
        let purged = diff(&img, &wanted(&m, &img, true));
        assert!(purged.contains(&PatchOp::Remove("keep".into())));
        assert!(!purged
            .iter()
            .any(|op| matches!(op, PatchOp::Remove(k) if k == "os_glance_x")));
        // An empty property removes it; undoing a diff is the diff back.
        let removed = wanted(&meta(&[("x-image-meta-property-keep", "")]), &img, false);
        assert_eq!(diff(&img, &removed), vec![PatchOp::Remove("keep".into())]);
        assert_eq!(diff(&removed, &img), vec![PatchOp::Add("keep".into(), json!("k"))]);
        assert!(diff(&img, &wanted(&meta(&[("x-image-meta-is_public", "True")]), &img, false)).is_empty());
    }

    #[test]
    fn v1_rules() {
        let img = image();
        let status = |pairs: &[(&str, &str)], img: &Image, data: bool| {
            check_rules(&meta(pairs), img, data)
                .err()
                .map(|e| (e.status, e.explanation))
        };
        assert_eq!(
            status(&[("x-image-meta-size", "6")], &img, false),
            Some((403, "Forbidden to modify 'size' of active image.".into()))
        );
        assert_eq!(status(&[("x-image-meta-size", "5")], &img, false), None);
        assert_eq!(
            status(&[("x-image-meta-status", "queued")], &img, false),
            Some((403, "Forbidden to modify 'status' of image.".into()))
        );
        assert_eq!(status(&[("x-image-meta-id", "i")], &img, false), None);
        assert_eq!(status(&[], &img, true).map(|s| s.0), Some(409));
        let queued = Image {
            status: "queued".into(),
            size: None,
            checksum: None,
            ..image()
        };
        assert_eq!(status(&[("x-image-meta-size", "6")], &queued, true), None);
        assert_eq!(
            status(&[("x-image-meta-size", "6")], &queued, false).map(|s| s.0),
            Some(400)
        );
    }
}
