//! The Glance v2 backend: a stateless client of a real Glance over one pooled
//! `reqwest::Client` (and a second one for image data, which has no limit on
//! the whole transfer, only between reads). One Glance call per read; at most
//! two per property write (a GET when the change needs the current state, then
//! one JSON-patch PATCH). Image data (`GET /v2/images/{id}/file`, `Range`
//! passed on) is streamed as it arrives, never held.

use super::{
    BackendError, BackendResult, ByteRange, ContentRange, Image, ImageBackend, ImageData, ListOptions, ListQuery,
    PropertyChange, RequestContext, GLANCE_BASE_PROPERTIES,
};
use async_trait::async_trait;
use futures_util::StreamExt;
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;
use tokio::sync::OnceCell;

/// Glance's own cap on `limit` (`api_limit_max`): the largest useful page.
const GLANCE_MAX_PAGE: u64 = 1000;
const JSON_PATCH: &str = "application/openstack-images-v2.1-json-patch";

#[derive(Clone, Debug)]
pub struct GlanceSettings {
    pub url: String,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Extra attempts for idempotent calls on connection errors and 503.
    pub num_retries: u32,
}

/// A handle on the Glance client (cheap to clone: property writes are
/// carried out by a task of their own, which outlives a client that leaves).
#[derive(Clone)]
pub struct GlanceBackend(Arc<GlanceInner>);

impl std::ops::Deref for GlanceBackend {
    type Target = GlanceInner;
    fn deref(&self) -> &GlanceInner {
        &self.0
    }
}

/// One property write waiting for its image's writer.
struct PendingWrite {
    ctx: RequestContext,
    change: PropertyChange,
    max_properties: Option<usize>,
    reply: tokio::sync::oneshot::Sender<BackendResult<Image>>,
}

pub struct GlanceInner {
    base: String,
    http: reqwest::Client,
    /// For image data: no limit on the whole transfer, `timeout` between reads.
    data_http: reqwest::Client,
    settings: GlanceSettings,
    base_properties: OnceCell<Arc<HashSet<String>>>,
    /// Property writes waiting, per image. Writes to one image are applied by
    /// one writer task at a time (so concurrent merges cannot lose keys); the
    /// writes that queued up meanwhile with the same token go to Glance as one
    /// GET and one PATCH (group commit).
    write_queues: StdMutex<HashMap<String, std::collections::VecDeque<PendingWrite>>>,
}

impl GlanceBackend {
    pub fn new(settings: GlanceSettings) -> Result<Self, BackendError> {
        let http = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("nova-images-proxy/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .build()
            .map_err(|e| BackendError::Internal(format!("cannot build the HTTP client: {e}")))?;
        let data_http = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .read_timeout(settings.timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("nova-images-proxy/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .build()
            .map_err(|e| BackendError::Internal(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self(Arc::new(GlanceInner {
            base: settings.url.trim_end_matches('/').to_string(),
            http,
            data_http,
            settings,
            base_properties: OnceCell::new(),
            write_queues: StdMutex::new(HashMap::new()),
        })))
    }

    fn image_url(&self, id: &str) -> String {
        format!(
            "{}/v2/images/{}",
            self.base,
            percent_encoding::utf8_percent_encode(id, PATH_SEGMENT)
        )
    }

    fn request(&self, ctx: &RequestContext, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        Self::request_on(&self.http, ctx, method, url)
    }

    fn request_on(
        http: &reqwest::Client,
        ctx: &RequestContext,
        method: reqwest::Method,
        url: &str,
    ) -> reqwest::RequestBuilder {
        http.request(method, url)
            .header("X-Auth-Token", &ctx.token)
            .header("X-OpenStack-Request-ID", &ctx.request_id)
            // As python-glanceclient: Glance then words its errors as HTML pages,
            // the form Nova's messages are made from.
            .header("Accept", "*/*")
    }

    /// Send a request built by `build`, retrying idempotent ones on connection
    /// errors and 503 as Nova's Glance client does.
    async fn send(
        &self,
        idempotent: bool,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> BackendResult<reqwest::Response> {
        let attempts = if idempotent { 1 + self.settings.num_retries } else { 1 };
        let mut last = BackendError::Unreachable("no attempt made".into());
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
            }
            match build().send().await {
                Ok(resp) if resp.status().as_u16() == 503 && attempt + 1 < attempts => {
                    tracing::warn!(attempt, "image service answered 503, retrying");
                    last = BackendError::Status {
                        status: 503,
                        details: "503 Service Unavailable".into(),
                    };
                }
                Ok(resp) => return Ok(resp),
                Err(e) if e.is_timeout() => {
                    tracing::warn!(attempt, "image service timed out");
                    last = BackendError::Timeout;
                }
                Err(e) => {
                    tracing::warn!(attempt, error = %e, "image service unreachable");
                    last = BackendError::Unreachable(e.to_string());
                    if !e.is_connect() {
                        // The request may have reached Glance: only reads are retried.
                        if !idempotent {
                            break;
                        }
                    }
                }
            }
        }
        Err(last)
    }

    async fn json_or_error(&self, resp: reqwest::Response) -> BackendResult<Value> {
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(error_from_response(resp).await);
        }
        let body = resp.bytes().await.map_err(|e| {
            if e.is_timeout() {
                BackendError::Timeout
            } else {
                BackendError::Unreachable(e.to_string())
            }
        })?;
        serde_json::from_slice(&body).map_err(|e| BackendError::BadResponse(format!("invalid JSON: {e}")))
    }

    /// Names of the base attributes of Glance's image schema, fetched once.
    async fn base_properties(&self, ctx: &RequestContext) -> Arc<HashSet<String>> {
        let fetched = self
            .base_properties
            .get_or_try_init(|| async {
                let url = format!("{}/v2/schemas/image", self.base);
                let resp = self
                    .send(true, || self.request(ctx, reqwest::Method::GET, &url))
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

    async fn get_raw(&self, ctx: &RequestContext, id: &str) -> BackendResult<Value> {
        check_id(id)?;
        let url = self.image_url(id);
        let resp = self
            .send(true, || self.request(ctx, reqwest::Method::GET, &url))
            .await?;
        self.json_or_error(resp).await
    }

    /// One `GET /v2/images` per page until `query.limit` images (or the end);
    /// `extra` are further list parameters (sorting, member status).
    async fn list_params(
        &self,
        ctx: &RequestContext,
        query: &ListQuery,
        extra: &[(String, String)],
    ) -> BackendResult<Vec<Image>> {
        let base = self.base_properties(ctx).await;
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
                format!("{}/v2/images?{}", self.base, qs.finish())
            };
            let resp = self
                .send(true, || self.request(ctx, reqwest::Method::GET, &url))
                .await?;
            let body = self.json_or_error(resp).await?;
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

    /// Apply the writes queued for `id` until none is left: each round takes
    /// the first waiting write and every other one with the same token.
    async fn drain_writes(self, id: String) {
        loop {
            let batch: Vec<PendingWrite> = {
                let mut queues = self.write_queues.lock().unwrap_or_else(|p| p.into_inner());
                let Some(queue) = queues.get_mut(&id) else { return };
                let Some(token) = queue.front().map(|p| p.ctx.token.clone()) else {
                    queues.remove(&id);
                    return;
                };
                let (same, rest): (std::collections::VecDeque<_>, _) =
                    queue.drain(..).partition(|p| p.ctx.token == token);
                *queue = rest;
                same.into()
            };
            self.apply_batch(&id, batch).await;
        }
    }

    /// One GET, the writes applied in order to what it read (each checked on
    /// its own: a key to remove that is not there, the quota), one PATCH with
    /// the difference. If Glance refuses a combined PATCH, the writes are
    /// made again one by one so that each gets its own answer.
    async fn apply_batch(&self, id: &str, batch: Vec<PendingWrite>) {
        let reply = |p: PendingWrite, r: BackendResult<Image>| {
            let _ = p.reply.send(r);
        };
        if batch.len() == 1 {
            let p = batch.into_iter().next().expect("one write");
            let r = self.write_once(&p.ctx, id, &p.change, p.max_properties).await;
            return reply(p, r);
        }
        let ctx = batch[0].ctx.clone();
        let base = self.base_properties(&ctx).await;
        let current = match self
            .get_raw(&ctx, id)
            .await
            .and_then(|raw| image_from_glance(raw, &base))
        {
            Ok(c) => c,
            Err(e) => {
                for p in batch {
                    reply(p, Err(e.clone()));
                }
                return;
            }
        };
        let mut state = current.properties.clone();
        let mut included = Vec::new();
        for p in batch {
            match patch_for(&state, &p.change) {
                Err(e) => reply(p, Err(e)),
                Ok((_, after)) if p.max_properties.is_some_and(|max| after.len() > max) => {
                    reply(p, Err(BackendError::QuotaExceeded))
                }
                Ok((_, after)) => {
                    state = after;
                    included.push(p);
                }
            }
        }
        let (ops, _) =
            patch_for(&current.properties, &PropertyChange::ReplaceAll(state)).expect("a replacement always applies");
        if ops.is_empty() {
            for p in included {
                reply(p, Ok(current.clone()));
            }
            return;
        }
        tracing::debug!(
            image = id,
            writes = included.len(),
            "property writes combined into one PATCH"
        );
        match self.patch(&ctx, id, &ops, &base).await {
            Ok(saved) => {
                for p in included {
                    warn_if_differs(id, &p.change, &saved);
                    reply(p, Ok(saved.clone()));
                }
            }
            Err(BackendError::Status { .. }) => {
                for p in included {
                    let r = self.write_once(&p.ctx, id, &p.change, p.max_properties).await;
                    reply(p, r);
                }
            }
            Err(e) => {
                for p in included {
                    reply(p, Err(e.clone()));
                }
            }
        }
    }

    /// One write on its own: GET, check, PATCH.
    async fn write_once(
        &self,
        ctx: &RequestContext,
        id: &str,
        change: &PropertyChange,
        max_properties: Option<usize>,
    ) -> BackendResult<Image> {
        let base = self.base_properties(ctx).await;
        let current = image_from_glance(self.get_raw(ctx, id).await?, &base)?;
        let (ops, expected) = patch_for(&current.properties, change)?;
        if max_properties.is_some_and(|max| expected.len() > max) {
            return Err(BackendError::QuotaExceeded);
        }
        if ops.is_empty() {
            return Ok(current);
        }
        let saved = self.patch(ctx, id, &ops, &base).await?;
        warn_if_differs(id, change, &saved);
        Ok(saved)
    }

    /// `PATCH /v2/images/{id}` with JSON-patch `ops`; the image Glance saved.
    async fn patch(
        &self,
        ctx: &RequestContext,
        id: &str,
        ops: &[Value],
        base: &HashSet<String>,
    ) -> BackendResult<Image> {
        let url = self.image_url(id);
        let body = serde_json::to_vec(ops).map_err(|e| BackendError::Internal(e.to_string()))?;
        let resp = self
            .send(false, || {
                self.request(ctx, reqwest::Method::PATCH, &url)
                    .header("Content-Type", JSON_PATCH)
                    .body(body.clone())
            })
            .await?;
        image_from_glance(self.json_or_error(resp).await?, base)
    }
}

/// Check what Glance saved against what was written. Glance normalises some
/// keys (e.g. a trailing newline, which Nova's key pattern lets through); the
/// write did happen, so it is reported, not turned into an error.
fn warn_if_differs(id: &str, change: &PropertyChange, saved: &Image) {
    let differing = match change {
        PropertyChange::Merge(set) | PropertyChange::ReplaceAll(set) => {
            set.iter().filter(|(k, v)| saved.properties.get(*k) != Some(v)).count()
        }
        PropertyChange::Remove(k) => usize::from(saved.properties.contains_key(k)),
    };
    if differing > 0 {
        tracing::warn!(
            image = id,
            differing,
            "the image service saved properties other than those written"
        );
    }
}

const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

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

/// JSON-pointer escaping of a property name (`~` → `~0`, `/` → `~1`).
fn json_pointer(key: &str) -> String {
    format!("/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// The text python-glanceclient makes of an error body (`glanceclient.exc.from_response`):
/// JSON → the `message`s; HTML → tags stripped per line, empty and repeated lines
/// dropped, joined with `": "`; other text → the body with blank lines collapsed.
pub fn glanceclient_details(content_type: &str, body: &str) -> String {
    if body.is_empty() {
        return String::new();
    }
    if content_type.contains("json") {
        if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(body) {
            let msgs: Vec<String> = m
                .values()
                .filter_map(|o| o.get("message"))
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect();
            return msgs.join("\n");
        }
    }
    if content_type.contains("html") {
        let mut seen = HashSet::new();
        let mut parts = Vec::new();
        for line in body.lines() {
            let text = strip_tags(line.trim());
            if !text.is_empty() && seen.insert(text.clone()) {
                parts.push(text);
            }
        }
        return parts.join(": ");
    }
    body.replace("\n\n", "\n")
}

/// Python's `re.sub(r'<.+?>', '', line)`.
fn strip_tags(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find('<') {
        // `.+?` needs at least one character between the brackets.
        let after = &rest[start + 1..];
        let mut chars = after.char_indices();
        let close = match chars.next() {
            Some((_, c)) if c != '\n' => after[c.len_utf8()..].find('>').map(|p| p + c.len_utf8()),
            _ => None,
        };
        match close {
            Some(end) => {
                out.push_str(&rest[..start]);
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[..start + 1]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Glance's image ids are at most 36 characters (its `images.id` column):
/// a longer one names no image, and is answered as Glance would (404)
/// without a call. Such ids can be longer than Glance's web server takes.
fn check_id(id: &str) -> BackendResult<()> {
    if id.len() <= 36 {
        return Ok(());
    }
    Err(BackendError::Status {
        status: 404,
        details: glanceclient_details(
            "text/html; charset=UTF-8",
            &format!(
                "<html>\n <head>\n  <title>404 Not Found</title>\n </head>\n <body>\n  <h1>404 Not Found</h1>\n  \
                 No image found with ID {}<br /><br />\n\n\n\n </body>\n</html>",
                html_escape(id)
            ),
        ),
    })
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn error_from_response(resp: reqwest::Response) -> BackendError {
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = resp.text().await.unwrap_or_default();
    BackendError::Status {
        status,
        details: glanceclient_details(&content_type, &body),
    }
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

/// The JSON-patch operations that apply `change` to `current` (an image's
/// extra properties), and the properties expected afterwards.
pub fn patch_for(
    current: &Map<String, Value>,
    change: &PropertyChange,
) -> BackendResult<(Vec<Value>, Map<String, Value>)> {
    let mut ops = Vec::new();
    let mut after = current.clone();
    match change {
        PropertyChange::Merge(set) => {
            for (k, v) in set {
                if current.get(k) != Some(v) {
                    // With the v2.1 JSON-patch media type Glance's `add` replaces
                    // an existing property, so a merge needs no read of the image.
                    ops.push(json!({"op": "add", "path": json_pointer(k), "value": v}));
                }
                after.insert(k.clone(), v.clone());
            }
        }
        PropertyChange::ReplaceAll(set) => {
            for k in current.keys() {
                if !set.contains_key(k) {
                    ops.push(json!({"op": "remove", "path": json_pointer(k)}));
                }
            }
            for (k, v) in set {
                if current.get(k) != Some(v) {
                    ops.push(json!({"op": "add", "path": json_pointer(k), "value": v}));
                }
            }
            after = set.clone();
        }
        PropertyChange::Remove(k) => {
            if !current.contains_key(k) {
                return Err(BackendError::KeyNotFound);
            }
            ops.push(json!({"op": "remove", "path": json_pointer(k)}));
            after.shift_remove(k);
        }
    }
    Ok((ops, after))
}

#[async_trait]
impl ImageBackend for GlanceBackend {
    fn describe(&self) -> String {
        format!("glance {}", self.base)
    }

    fn public_image_url(&self) -> String {
        self.settings.url.clone()
    }

    async fn ping(&self) -> BackendResult<()> {
        // Any HTTP answer means Glance is there; its version document needs no token.
        let url = format!("{}/versions", self.base);
        self.http.get(&url).send().await.map(|_| ()).map_err(|e| {
            if e.is_timeout() {
                BackendError::Timeout
            } else {
                BackendError::Unreachable(e.to_string())
            }
        })
    }

    async fn list(&self, ctx: &RequestContext, query: &ListQuery) -> BackendResult<Vec<Image>> {
        self.list_params(ctx, query, &[]).await
    }

    async fn list_with(
        &self,
        ctx: &RequestContext,
        query: &ListQuery,
        options: &ListOptions,
    ) -> BackendResult<Vec<Image>> {
        let mut extra = Vec::new();
        for (name, value) in [
            ("sort_key", &options.sort_key),
            ("sort_dir", &options.sort_dir),
            ("member_status", &options.member_status),
        ] {
            if let Some(v) = value {
                extra.push((name.to_string(), v.clone()));
            }
        }
        self.list_params(ctx, query, &extra).await
    }

    async fn data(&self, ctx: &RequestContext, id: &str, range: Option<ByteRange>) -> BackendResult<ImageData> {
        check_id(id)?;
        let url = format!("{}/file", self.image_url(id));
        let range_header = range.map(|r| match r {
            ByteRange::From { start, end: Some(end) } => format!("bytes={start}-{end}"),
            ByteRange::From { start, end: None } => format!("bytes={start}-"),
            ByteRange::Last(n) => format!("bytes=-{n}"),
        });
        let resp = self
            .send(true, || {
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
            204 => {
                return Err(BackendError::Status {
                    status: 204,
                    details: format!("The image {id} has no data."),
                })
            }
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

    async fn get(&self, ctx: &RequestContext, id: &str) -> BackendResult<Image> {
        let base = self.base_properties(ctx).await;
        let raw = self.get_raw(ctx, id).await?;
        image_from_glance(raw, &base)
    }

    async fn delete(&self, ctx: &RequestContext, id: &str) -> BackendResult<()> {
        check_id(id)?;
        let url = self.image_url(id);
        let resp = self
            .send(false, || self.request(ctx, reqwest::Method::DELETE, &url))
            .await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(error_from_response(resp).await)
        }
    }

    async fn update_properties(
        &self,
        ctx: &RequestContext,
        id: &str,
        change: PropertyChange,
        max_properties: Option<usize>,
    ) -> BackendResult<Image> {
        check_id(id)?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        let pending = PendingWrite {
            ctx: ctx.clone(),
            change,
            max_properties,
            reply,
        };
        // An image has a queue exactly while its writer runs (the writer
        // removes it, under this lock, when it finds it empty); the first
        // write to an idle image starts the writer.
        let lead = {
            let mut queues = self.write_queues.lock().unwrap_or_else(|p| p.into_inner());
            match queues.entry(id.to_string()) {
                std::collections::hash_map::Entry::Occupied(mut q) => {
                    q.get_mut().push_back(pending);
                    false
                }
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert([pending].into());
                    true
                }
            }
        };
        if lead {
            tokio::spawn(self.clone().drain_writes(id.to_string()));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(BackendError::Internal("the property writer stopped".into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_error_bodies_become_glanceclient_details() {
        let html = "<html>\n <head>\n  <title>400 Bad Request</title>\n </head>\n <body>\n  <h1>400 Bad Request</h1>\n  No image found with ID x<br /><br />\n\n\n\n </body>\n</html>";
        assert_eq!(
            glanceclient_details("text/html; charset=UTF-8", html),
            "400 Bad Request: No image found with ID x"
        );
        assert_eq!(
            glanceclient_details("text/plain", "403 Forbidden\n\nYou are not authorized\n"),
            "403 Forbidden\nYou are not authorized\n"
        );
        assert_eq!(
            glanceclient_details("application/json", r#"{"error": {"message": "boom"}}"#),
            "boom"
        );
        assert_eq!(strip_tags("a<>b<c>d"), "ad");
    }

    #[test]
    fn merge_patch_adds_only_changed_keys() {
        let mut current = Map::new();
        current.insert("a".into(), json!("1"));
        current.insert("b/c".into(), json!("2"));
        let mut set = Map::new();
        set.insert("a".into(), json!("1"));
        set.insert("n".into(), json!("x"));
        let (ops, after) = patch_for(&current, &PropertyChange::Merge(set.clone())).unwrap();
        assert_eq!(ops, vec![json!({"op": "add", "path": "/n", "value": "x"})]);
        assert_eq!(after.len(), 3);
        let (ops, after) = patch_for(&current, &PropertyChange::ReplaceAll(set)).unwrap();
        assert_eq!(
            ops,
            vec![
                json!({"op": "remove", "path": "/b~1c"}),
                json!({"op": "add", "path": "/n", "value": "x"})
            ]
        );
        assert_eq!(after.len(), 2);
        assert!(matches!(
            patch_for(&current, &PropertyChange::Remove("zz".into())),
            Err(BackendError::KeyNotFound)
        ));
    }
}
