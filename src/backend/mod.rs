//! The image backend: one trait, the Glance v2 image entity as its domain type.
//! Surfaces (Nova, Glance v1, Glance v2) call it; implementations talk to a real
//! Glance (`glance`) or to the embedded store.

pub mod embedded;
pub mod glance;

use async_trait::async_trait;
use serde_json::{Map, Value};

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

impl Image {
    /// The image as Glance v2 serializes it (`GET /v2/images/{id}`): extra
    /// properties first, then the core attributes, in Glance's key order.
    pub fn to_glance_json(&self) -> Map<String, Value> {
        let mut m = self.properties.clone();
        m.insert("name".into(), opt_str(&self.name));
        m.insert("disk_format".into(), opt_str(&self.disk_format));
        m.insert("container_format".into(), opt_str(&self.container_format));
        m.insert("visibility".into(), Value::String(self.visibility.clone()));
        m.insert("size".into(), self.size.map_or(Value::Null, Value::from));
        m.insert(
            "virtual_size".into(),
            self.virtual_size.map_or(Value::Null, Value::from),
        );
        m.insert("status".into(), Value::String(self.status.clone()));
        m.insert("checksum".into(), opt_str(&self.checksum));
        m.insert("protected".into(), Value::Bool(self.protected));
        m.insert("min_ram".into(), Value::from(self.min_ram));
        m.insert("min_disk".into(), Value::from(self.min_disk));
        m.insert("owner".into(), opt_str(&self.owner));
        m.insert("os_hidden".into(), Value::Bool(self.os_hidden));
        m.insert("os_hash_algo".into(), opt_str(&self.os_hash_algo));
        m.insert("os_hash_value".into(), opt_str(&self.os_hash_value));
        m.insert("id".into(), Value::String(self.id.clone()));
        m.insert("created_at".into(), Value::String(self.created_at.clone()));
        m.insert("updated_at".into(), Value::String(self.updated_at.clone()));
        m.insert("tags".into(), Value::from(self.tags.clone()));
        m.insert("self".into(), Value::String(format!("/v2/images/{}", self.id)));
        m.insert("file".into(), Value::String(format!("/v2/images/{}/file", self.id)));
        m.insert("schema".into(), Value::String("/v2/schemas/image".into()));
        m
    }
}

fn opt_str(v: &Option<String>) -> Value {
    v.as_ref().map_or(Value::Null, |s| Value::String(s.clone()))
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

/// A Glance v2 image list request.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    /// Glance v2 filters, in the order they are sent (`name`, `status`,
    /// `updated_at=gte:…`, `min_ram`, any extra property name, …).
    pub filters: Vec<(String, String)>,
    /// Total number of images wanted (client side); `None` = all of them.
    pub limit: Option<u64>,
    /// Page size asked of Glance per call.
    pub page_size: Option<u64>,
    pub marker: Option<String>,
}

/// A change to an image's extra properties. Base attributes are never touched.
#[derive(Clone, Debug)]
pub enum PropertyChange {
    /// Add or replace these keys; keep the others.
    Merge(Map<String, Value>),
    /// Make the extra properties exactly these.
    ReplaceAll(Map<String, Value>),
    /// Remove one key; `KeyNotFound` if it is not there.
    Remove(String),
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Glance answered with an error status. `details` is the text
    /// python-glanceclient makes of the error body (e.g.
    /// `400 Bad Request: No image found with ID …`).
    #[error("image service answered {status}: {details}")]
    Status { status: u16, details: String },
    /// A property to remove is not on the image.
    #[error("no such property")]
    KeyNotFound,
    /// A write would leave more extra properties than allowed.
    #[error("too many properties")]
    QuotaExceeded,
    #[error("image service unreachable: {0}")]
    Unreachable(String),
    #[error("image service timed out")]
    Timeout,
    #[error("image service answered something unexpected: {0}")]
    BadResponse(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl BackendError {
    pub fn status(&self) -> Option<u16> {
        match self {
            BackendError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

pub type BackendResult<T> = Result<T, BackendError>;

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

    async fn delete(&self, ctx: &RequestContext, id: &str) -> BackendResult<()>;

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
