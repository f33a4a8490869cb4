//! Image creation and data upload on a real Glance (what Glance v1's writes
//! become): `POST /v2/images` and `PUT /v2/images/{id}/file`, with the
//! client's token.

use super::{check_id, error_from_response, image_from_glance, within, GlanceBackend};
use crate::backend::embedded::NewImage;
use crate::backend::{BackendError, BackendResult, Image, RequestContext, UploadStream};
use serde_json::{Map, Value};

/// The Glance v2 create body of `new`: only what was given (Glance's
/// defaults for the rest), extra properties as they are.
fn create_body(new: &NewImage) -> Map<String, Value> {
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.into(), v);
    };
    if let Some(id) = &new.id {
        put("id", id.clone().into());
    }
    if let Some(name) = &new.name {
        put("name", name.clone().into());
    }
    if let Some(v) = &new.visibility {
        put("visibility", v.clone().into());
    }
    if new.protected {
        put("protected", true.into());
    }
    if let Some(f) = &new.disk_format {
        put("disk_format", f.clone().into());
    }
    if let Some(f) = &new.container_format {
        put("container_format", f.clone().into());
    }
    if new.min_ram != 0 {
        put("min_ram", new.min_ram.into());
    }
    if new.min_disk != 0 {
        put("min_disk", new.min_disk.into());
    }
    if !new.tags.is_empty() {
        put("tags", new.tags.clone().into());
    }
    for (k, v) in &new.properties {
        m.insert(k.clone(), v.clone());
    }
    m
}

impl GlanceBackend {
    pub(super) async fn create_v2(&self, ctx: &RequestContext, new: NewImage) -> BackendResult<Image> {
        let url = format!("{}/v2/images", self.base());
        let body = Value::Object(create_body(&new)).to_string();
        let deadline = self.deadline();
        within(deadline, async {
            let base = self.base_properties(ctx, deadline).await;
            let resp = self.post_json(ctx, &url, body, deadline).await?;
            if resp.status().as_u16() != 201 {
                return Err(error_from_response(resp).await);
            }
            image_from_glance(self.json_or_error(resp).await?, &base)
        })
        .await
    }

    /// The body goes chunked (never with a length), so Glance only takes the
    /// data as complete when the stream ends: a stream that fails (the client
    /// broke off, a size or checksum check refused it) aborts the request
    /// before its last chunk, and Glance keeps nothing. Bounded between
    /// reads (`glance.timeout_secs`), not as a whole; the image is read back
    /// within the usual deadline.
    pub(super) async fn upload_v2(&self, ctx: &RequestContext, id: &str, body: UploadStream) -> BackendResult<Image> {
        check_id(id)?;
        let url = format!("{}/file", self.image_url(id));
        let failed = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
        let seen = failed.clone();
        let body = futures_util::StreamExt::inspect(body, move |item| {
            if let Err(e) = item {
                *seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
            }
        });
        // The stream cannot be sent twice: a refused service token is only
        // dropped, for the next call.
        let token = self.service_token(self.deadline()).await?;
        let rb = Self::request_on(&self.data_http, ctx, reqwest::Method::PUT, &url)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(reqwest::Body::wrap_stream(body));
        let sent = super::GlanceInner::with_service_token(rb, token.as_deref())
            .send()
            .await;
        if let (Ok(resp), Some(t)) = (&sent, &token) {
            self.refused_service_token(resp, t).await;
        }
        if let Some(why) = failed.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(BackendError::UploadInterrupted(why));
        }
        let resp = sent.map_err(|e| {
            if e.is_timeout() {
                BackendError::Timeout
            } else {
                BackendError::Unreachable(e.to_string())
            }
        })?;
        if resp.status().as_u16() != 204 {
            return Err(error_from_response(resp).await);
        }
        crate::backend::ImageBackend::get(self, ctx, id).await
    }
}
