//! The read path of the Glance client: image lists page by page, one image,
//! its data (ranges passed on), and the image schema's base attributes that
//! tell the domain type's fields from extra properties.

use super::{check_id, error_from_response, GlanceBackend, GLANCE_MAX_PAGE};
use crate::backend::{
    BackendError, BackendResult, ByteRange, ContentRange, Image, ImageData, ListQuery, RequestContext,
    GLANCE_BASE_PROPERTIES,
};
use futures_util::StreamExt;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::time::Instant;

impl GlanceBackend {
    /// Names of the base attributes of Glance's image schema, fetched once.
    pub(super) async fn base_properties(&self, ctx: &RequestContext, deadline: Instant) -> Arc<HashSet<String>> {
        let fetched = self
            .base_properties
            .get_or_try_init(|| async {
                let url = format!("{}/v2/schemas/image", self.base());
                let resp = self
                    .send(deadline, true, || self.request(ctx, reqwest::Method::GET, &url))
                    .await?;
                let schema = self.json_or_error(resp).await?;
                let props = schema
                    .get("properties")
                    .and_then(Value::as_object)
                    .ok_or_else(|| BackendError::BadResponse("image schema has no properties".into()))?;
                let base: HashSet<String> = props
                    .iter()
                    .filter(|(_, def)| def.get("is_base").and_then(Value::as_bool) != Some(false))
                    .map(|(name, _)| name.clone())
                    .collect();
                tracing::info!(count = base.len(), "cached the image schema's base attributes");
                Ok::<_, BackendError>(Arc::new(base))
            })
            .await;
        match fetched {
            Ok(set) => set.clone(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the image schema; using Glance's built-in base attributes");
                Arc::new(GLANCE_BASE_PROPERTIES.iter().map(|s| s.to_string()).collect())
            }
        }
    }

    /// `GET /v2/images/{id}/file`, `range` passed on as a `Range` header.
    pub(super) async fn open_data(
        &self,
        ctx: &RequestContext,
        id: &str,
        range: Option<ByteRange>,
        deadline: Instant,
    ) -> BackendResult<ImageData> {
        check_id(id)?;
        let url = format!("{}/file", self.image_url(id));
        let range_header = range.map(|r| match r {
            ByteRange::From { start, end: Some(end) } => format!("bytes={start}-{end}"),
            ByteRange::From { start, end: None } => format!("bytes={start}-"),
            ByteRange::Last(n) => format!("bytes=-{n}"),
        });
        let resp = self
            .send(deadline, true, || {
                let b = Self::request_on(&self.data_http, ctx, reqwest::Method::GET, &url);
                match &range_header {
                    Some(h) => b.header(reqwest::header::RANGE, h),
                    None => b,
                }
            })
            .await?;
        let range = match resp.status().as_u16() {
            200 => None,
            206 => Some(
                resp.headers()
                    .get(reqwest::header::CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_content_range)
                    .ok_or_else(|| BackendError::BadResponse("206 without a usable Content-Range".into()))?,
            ),
            204 => return Err(BackendError::NoData),
            416 => return Err(BackendError::RangeNotSatisfiable { image: id.to_string() }),
            _ => return Err(error_from_response(resp).await),
        };
        let length = resp.content_length();
        let stream = resp.bytes_stream().map(|chunk| {
            chunk.map_err(|e| {
                if e.is_timeout() {
                    BackendError::Timeout
                } else {
                    BackendError::Unreachable(format!("image data broke off: {e}"))
                }
            })
        });
        Ok(ImageData {
            stream: Box::pin(stream),
            length,
            range,
        })
    }

    pub(super) async fn get_raw(&self, ctx: &RequestContext, id: &str, deadline: Instant) -> BackendResult<Value> {
        check_id(id)?;
        let url = self.image_url(id);
        let resp = self
            .send(deadline, true, || self.request(ctx, reqwest::Method::GET, &url))
            .await?;
        self.json_or_error(resp).await
    }

    /// One `GET /v2/images` per page until `query.limit` images (or the end);
    /// `extra` are further list parameters (sorting, member status).
    pub(super) async fn list_params(
        &self,
        ctx: &RequestContext,
        query: &ListQuery,
        extra: &[(String, String)],
        deadline: Instant,
    ) -> BackendResult<Vec<Image>> {
        let base = self.base_properties(ctx, deadline).await;
        let mut out = Vec::new();
        let mut marker = query.marker.clone();
        loop {
            let remaining = query.limit.map(|l| l.saturating_sub(out.len() as u64));
            let page = remaining.unwrap_or(GLANCE_MAX_PAGE).min(GLANCE_MAX_PAGE);
            let url = {
                let mut qs = form_urlencoded::Serializer::new(String::new());
                for (k, v) in query.filters.iter().chain(extra) {
                    qs.append_pair(k, v);
                }
                qs.append_pair("limit", &page.to_string());
                if let Some(m) = &marker {
                    qs.append_pair("marker", m);
                }
                format!("{}/v2/images?{}", self.base(), qs.finish())
            };
            let resp = self
                .send(deadline, true, || self.request(ctx, reqwest::Method::GET, &url))
                .await?;
            let body = match self.json_or_error(resp).await {
                // Glance's 400 for a marker it cannot find (`image_get_all`'s NotFound).
                Err(BackendError::Refused(r))
                    if r.status == 400
                        && marker
                            .as_ref()
                            .is_some_and(|m| r.explanation == format!("No image found with ID {m}")) =>
                {
                    return Err(BackendError::BadMarker(r))
                }
                other => other?,
            };
            let images = body
                .get("images")
                .and_then(Value::as_array)
                .ok_or_else(|| BackendError::BadResponse("image list without images".into()))?;
            let got = images.len();
            for raw in images {
                out.push(image_from_glance(raw.clone(), &base)?);
            }
            let done = query.limit.is_some_and(|l| out.len() as u64 >= l);
            if done || got == 0 || body.get("next").is_none() {
                break;
            }
            marker = out.last().map(|i| i.id.clone());
        }
        Ok(out)
    }
}

/// `bytes <start>-<end>/<total>` (a `Content-Range` response header).
fn parse_content_range(v: &str) -> Option<ContentRange> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (span, total) = rest.split_once('/')?;
    let (start, end) = span.split_once('-')?;
    Some(ContentRange {
        start: start.trim().parse().ok()?,
        end: end.trim().parse().ok()?,
        total: total.trim().parse().ok()?,
    })
}

/// Split a Glance image body into the domain type: base attributes by name,
/// everything that is not a base attribute into `properties` (in Glance's order).
pub fn image_from_glance(value: Value, base: &HashSet<String>) -> BackendResult<Image> {
    let Value::Object(map) = value else {
        return Err(BackendError::BadResponse("image is not a JSON object".into()));
    };
    let mut img = Image::default();
    let s = |v: &Value| v.as_str().map(str::to_string);
    for (key, value) in map {
        if !base.contains(&key) {
            img.properties.insert(key, value);
            continue;
        }
        match key.as_str() {
            "id" => img.id = s(&value).unwrap_or_default(),
            "name" => img.name = s(&value),
            "status" => img.status = s(&value).unwrap_or_default(),
            "visibility" => img.visibility = s(&value).unwrap_or_default(),
            "protected" => img.protected = value.as_bool().unwrap_or(false),
            "os_hidden" => img.os_hidden = value.as_bool().unwrap_or(false),
            "checksum" => img.checksum = s(&value),
            "os_hash_algo" => img.os_hash_algo = s(&value),
            "os_hash_value" => img.os_hash_value = s(&value),
            "owner" => img.owner = s(&value),
            "size" => img.size = value.as_i64(),
            "virtual_size" => img.virtual_size = value.as_i64(),
            "container_format" => img.container_format = s(&value),
            "disk_format" => img.disk_format = s(&value),
            "min_ram" => img.min_ram = value.as_i64().unwrap_or(0),
            "min_disk" => img.min_disk = value.as_i64().unwrap_or(0),
            "created_at" => img.created_at = s(&value).unwrap_or_default(),
            "updated_at" => img.updated_at = s(&value).unwrap_or_default(),
            "tags" => {
                img.tags = value
                    .as_array()
                    .map(|a| a.iter().filter_map(|t| t.as_str().map(str::to_string)).collect())
                    .unwrap_or_default()
            }
            // self, file, schema, direct_url, locations, stores: links, not data.
            _ => {}
        }
    }
    if img.id.is_empty() {
        return Err(BackendError::BadResponse("image without an id".into()));
    }
    Ok(img)
}
