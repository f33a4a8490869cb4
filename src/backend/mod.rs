//! The image backend: one trait, the Glance v2 image entity as its domain type.
//! Surfaces (Nova, Glance v1, Glance v2) call it; implementations talk to a real
//! Glance (`glance`) or to the embedded store.

pub mod embedded;
pub mod error;
pub mod glance;
pub mod list;

pub use error::{BackendError, Refusal};
pub use list::{list_sorted, sort_images, ListOptions, ListQuery, SORT_KEYS};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;
use serde_json::{Map, Value};
use std::pin::Pin;

/// Who is asking: taken from the validated token, never from client headers.
#[derive(Clone, Debug)]
pub struct RequestContext {
    /// The client's token, forwarded to Glance as is. Never logged.
    pub token: String,
    pub user_id: String,
    pub project_id: String,
    pub roles: Vec<String>,
    /// `req-<uuid>` of this request, sent to Glance as `X-OpenStack-Request-ID`.
    pub request_id: String,
}

impl RequestContext {
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == "admin")
    }
}

/// A Glance v2 image. `properties` holds every attribute that is not a base
/// attribute of Glance's image schema, in the order Glance returned them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Image {
    pub id: String,
    pub name: Option<String>,
    pub status: String,
    pub visibility: String,
    pub protected: bool,
    pub os_hidden: bool,
    pub checksum: Option<String>,
    pub os_hash_algo: Option<String>,
    pub os_hash_value: Option<String>,
    pub owner: Option<String>,
    pub size: Option<i64>,
    pub virtual_size: Option<i64>,
    pub container_format: Option<String>,
    pub disk_format: Option<String>,
    pub min_ram: i64,
    pub min_disk: i64,
    /// As Glance formats it: `YYYY-MM-DDTHH:MM:SSZ`.
    pub created_at: String,
    pub updated_at: String,
    pub tags: Vec<String>,
    pub properties: Map<String, Value>,
}

/// Glance's base (core) image attributes: `glance/api/v2/images.py`
/// `get_base_properties`. Everything else is an extra property.
pub const GLANCE_BASE_PROPERTIES: &[&str] = &[
    "id",
    "name",
    "status",
    "visibility",
    "protected",
    "os_hidden",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "owner",
    "size",
    "virtual_size",
    "container_format",
    "disk_format",
    "created_at",
    "updated_at",
    "tags",
    "direct_url",
    "min_ram",
    "min_disk",
    "self",
    "file",
    "stores",
    "schema",
    "locations",
];

/// Part of an image's data: bytes `start..=end` (`end` `None` = to the end),
/// or the last `n` bytes (HTTP `bytes=a-b`, `bytes=a-`, `bytes=-n`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange {
    From { start: u64, end: Option<u64> },
    Last(u64),
}

/// The part of the data a range request got: bytes `start..=end` of `total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentRange {
    pub start: u64,
    pub end: u64,
    pub total: u64,
}

/// Image data as it arrives from the backend. A stream that breaks off yields
/// an error (never a silent end).
pub type DataStream = Pin<Box<dyn Stream<Item = Result<Bytes, BackendError>> + Send>>;

/// Image data on its way to the backend (an upload). An error aborts the
/// upload: the backend then keeps nothing of it and the image stays `queued`.
pub type UploadStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// An opened image download.
pub struct ImageData {
    pub stream: DataStream,
    /// Bytes the stream will yield, when the backend said.
    pub length: Option<u64>,
    /// The part sent when a range was asked for and honoured; `None` = all of it.
    pub range: Option<ContentRange>,
}

/// A change to an image's extra properties. Base attributes are never touched.
#[derive(Clone, Debug)]
pub enum PropertyChange {
    /// Add or replace these keys; keep the others.
    Merge(Map<String, Value>),
    /// Make the extra properties exactly these, except the keys of the list,
    /// which stay as they are (there or not).
    ReplaceAll(Map<String, Value>, Vec<String>),
    /// Remove one key; `KeyNotFound` if it is not there.
    Remove(String),
}

/// One operation of a Glance v2 JSON-patch on one top-level attribute or
/// extra property (`add` sets, `replace` needs the key to exist, `remove`).
#[derive(Clone, Debug, PartialEq)]
pub enum PatchOp {
    Add(String, Value),
    Replace(String, Value),
    Remove(String),
}

/// A member of a shared image (Glance v2's image member).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Member {
    pub image_id: String,
    pub member_id: String,
    /// `pending`, `accepted` or `rejected`.
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
}

pub type BackendResult<T> = Result<T, BackendError>;

/// A list of images as a [`Drawing`] rendered each.
pub struct RenderedList {
    pub bodies: Vec<Bytes>,
    pub last_id: Option<String>,
}

/// What a surface draws from one image (a response body).
pub struct Drawing<'a> {
    /// Names the drawing and everything besides the image it reads (the view,
    /// its link bases): two drawings with the same key render an image alike.
    pub key: &'a str,
    pub render: &'a Render<'a>,
}

/// How a [`Drawing`] renders an image.
pub type Render<'a> = dyn Fn(&Image) -> Vec<u8> + Send + Sync + 'a;

#[async_trait]
pub trait ImageBackend: Send + Sync + 'static {
    /// A name for logs (`glance http://…`, `embedded ./data`).
    fn describe(&self) -> String;

    /// Whether the backend answers at all (for the health check).
    async fn ping(&self) -> BackendResult<()>;

    /// The URL Nova's `alternate` links point at by default.
    fn public_image_url(&self) -> String;

    async fn list(&self, ctx: &RequestContext, query: &ListQuery) -> BackendResult<Vec<Image>>;

    async fn get(&self, ctx: &RequestContext, id: &str) -> BackendResult<Image>;

    /// Image `id` as `drawing` renders it, seen by `ctx` as [`get`](Self::get)
    /// sees it. A backend that knows when an image changes may answer a
    /// rendering it made before of the same image, unchanged since, for the
    /// same [`Drawing::key`] (the embedded store does); the default renders
    /// each time.
    async fn get_rendered(&self, ctx: &RequestContext, id: &str, drawing: &Drawing<'_>) -> BackendResult<Bytes> {
        let image = self.get(ctx, id).await?;
        Ok(Bytes::from((drawing.render)(&image)))
    }

    /// [`list`](Self::list), each image as `drawing` renders it (a rendering
    /// kept as [`get_rendered`](Self::get_rendered)'s may be), and the last one's id.
    async fn list_rendered(
        &self,
        ctx: &RequestContext,
        query: &ListQuery,
        drawing: &Drawing<'_>,
    ) -> BackendResult<RenderedList> {
        let images = self.list(ctx, query).await?;
        Ok(RenderedList {
            last_id: images.last().map(|i| i.id.clone()),
            bodies: images.iter().map(|i| Bytes::from((drawing.render)(i))).collect(),
        })
    }

    /// `list` with a sort order and member status. The default sorts here
    /// (fetching every match, [`list_sorted`]): backends that can sort should
    /// override it.
    async fn list_with(
        &self,
        ctx: &RequestContext,
        query: &ListQuery,
        options: &ListOptions,
    ) -> BackendResult<Vec<Image>> {
        list_sorted(self, ctx, query, options).await
    }

    /// Open the data of image `id` (Glance v2 `GET /v2/images/{id}/file`),
    /// only `range` of it if given and the backend can. Errors as Glance's:
    /// 403 deactivated, 404 unknown, [`BackendError::NoData`] no data.
    async fn data(&self, ctx: &RequestContext, id: &str, range: Option<ByteRange>) -> BackendResult<ImageData> {
        let _ = (ctx, id, range);
        Err(BackendError::Internal(format!(
            "{} cannot serve image data",
            self.describe()
        )))
    }

    async fn delete(&self, ctx: &RequestContext, id: &str) -> BackendResult<()>;

    /// Create an image (Glance v2 `POST /v2/images`): `queued`, no data.
    async fn create_image(&self, ctx: &RequestContext, new: embedded::NewImage) -> BackendResult<Image> {
        let _ = (ctx, new);
        Err(BackendError::Internal(format!(
            "{} cannot create images",
            self.describe()
        )))
    }

    /// Store the data of the `queued` image `id` (Glance v2 `PUT
    /// /v2/images/{id}/file`) and return the image as it is then (`active`).
    /// A `body` that fails aborts the upload, nothing of it kept.
    async fn upload(&self, ctx: &RequestContext, id: &str, body: UploadStream) -> BackendResult<Image> {
        let _ = (ctx, id, body);
        Err(BackendError::Internal(format!(
            "{} cannot store image data",
            self.describe()
        )))
    }

    /// Apply the JSON-patch `ops` to image `id` as one change (Glance v2
    /// `PATCH /v2/images/{id}`, Glance's attribute rules and policy): all of
    /// it or, on any refusal, nothing. Returns the image as saved.
    async fn patch_image(&self, ctx: &RequestContext, id: &str, ops: Vec<PatchOp>) -> BackendResult<Image> {
        let _ = (ctx, id, ops);
        Err(BackendError::Internal(format!(
            "{} cannot update images",
            self.describe()
        )))
    }

    /// The members of image `id` (Glance v2 `GET /v2/images/{id}/members`).
    async fn members(&self, ctx: &RequestContext, id: &str) -> BackendResult<Vec<Member>> {
        let _ = (ctx, id);
        Err(BackendError::Internal(format!(
            "{} has no image members",
            self.describe()
        )))
    }

    /// Share image `id` with project `member` (Glance v2 `POST
    /// /v2/images/{id}/members`: `pending`; 409 if it is a member already).
    async fn add_member(&self, ctx: &RequestContext, id: &str, member: &str) -> BackendResult<Member> {
        let _ = (ctx, id, member);
        Err(BackendError::Internal(format!(
            "{} has no image members",
            self.describe()
        )))
    }

    /// Stop sharing image `id` with `member` (Glance v2 `DELETE
    /// /v2/images/{id}/members/{member}`).
    async fn remove_member(&self, ctx: &RequestContext, id: &str, member: &str) -> BackendResult<()> {
        let _ = (ctx, id, member);
        Err(BackendError::Internal(format!(
            "{} has no image members",
            self.describe()
        )))
    }

    /// Make the members of image `id` exactly `members` (kept ones keep their
    /// status). The default adds the new ones, then removes the old ones;
    /// should a call fail, what was done is undone (best effort) and the
    /// failure returned. Backends that can do it at once should override it.
    async fn replace_members(&self, ctx: &RequestContext, id: &str, members: Vec<String>) -> BackendResult<()> {
        let current: Vec<String> = self.members(ctx, id).await?.into_iter().map(|m| m.member_id).collect();
        let mut added = Vec::new();
        let mut removed = Vec::new();
        let mut outcome = Ok(());
        for m in members.iter().filter(|m| !current.contains(m)) {
            match self.add_member(ctx, id, m).await {
                Ok(_) => added.push(m.clone()),
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        if outcome.is_ok() {
            for m in current.iter().filter(|m| !members.contains(m)) {
                match self.remove_member(ctx, id, m).await {
                    Ok(()) => removed.push(m.clone()),
                    Err(e) => {
                        outcome = Err(e);
                        break;
                    }
                }
            }
        }
        if outcome.is_err() {
            for m in &added {
                if let Err(e) = self.remove_member(ctx, id, m).await {
                    tracing::error!(image = id, member = %m, error = %e, "could not undo an added member");
                }
            }
            for m in &removed {
                if let Err(e) = self.add_member(ctx, id, m).await {
                    tracing::error!(image = id, member = %m, error = %e, "could not undo a removed member");
                }
            }
        }
        outcome
    }

    /// Apply `change` to the extra properties of image `id` and return the
    /// image as saved. `max_properties` (if any) bounds the extra properties
    /// after the change (`QuotaExceeded` otherwise, nothing written).
    async fn update_properties(
        &self,
        ctx: &RequestContext,
        id: &str,
        change: PropertyChange,
        max_properties: Option<usize>,
    ) -> BackendResult<Image>;
}
