//! The embedded backend: image records in SQLite (WAL), image data as files
//! under a data directory. It behaves like Glance v2 wherever the Nova and
//! Glance v1 surfaces can see it (statuses, visibility, filters, paging,
//! errors), so the same conformance tests pass on it and on a real Glance.
//!
//! Durability: SQLite runs in WAL mode with `synchronous = FULL`; image data is
//! written to a staging file, fsynced, renamed into place and the directory
//! fsynced before the image turns `active`. An upload cut short leaves the
//! image `queued` and no partial file where reads look.

mod backend;
mod catalog;
mod data;
mod db;
pub mod demo;
pub mod filters;
mod members;
pub mod policy;
mod schema;

use super::error::{conflict, forbidden, not_found};
use super::{BackendError, BackendResult, Image, RequestContext};
use catalog::Catalog;
use db::Record;
use policy::Rule;
use rusqlite::Connection;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Fields of a new image (Glance v2 `POST /v2/images`).
#[derive(Clone, Debug, Default)]
pub struct NewImage {
    pub id: Option<String>,
    pub name: Option<String>,
    pub visibility: Option<String>,
    pub protected: bool,
    pub os_hidden: bool,
    pub container_format: Option<String>,
    pub disk_format: Option<String>,
    pub min_ram: i64,
    pub min_disk: i64,
    /// `None`: the requester's project; `Some(None)`: no owner (Glance's
    /// `"owner": null`).
    pub owner: Option<Option<String>>,
    pub tags: Vec<String>,
    pub properties: Map<String, Value>,
}

/// A readable image file.
pub struct ImageFile {
    pub image: Image,
    pub path: PathBuf,
}

struct Inner {
    dir: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    db_path: PathBuf,
    /// The live images, as of SQLite `data_version` (which moves whenever any
    /// connection, in this process or another, commits): reads are answered
    /// from it without a query while nothing changed.
    snapshot: Mutex<(Connection, Option<Arc<Catalog>>)>,
    /// Bytes of response bodies each catalogue may keep (`embedded.response_cache_mib`).
    response_cache_bytes: u64,
}

/// `embedded.response_cache_mib`'s default, in bytes.
pub const DEFAULT_RESPONSE_CACHE_BYTES: u64 = 16 << 20;

#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

impl EmbeddedStore {
    /// Open (or create) the store under `dir`: `dir/images.sqlite`, `dir/images/`,
    /// `dir/staging/`. Uploads a crash interrupted are rolled back to `queued`.
    pub fn open(dir: &Path) -> BackendResult<EmbeddedStore> {
        Self::open_with(dir, DEFAULT_RESPONSE_CACHE_BYTES)
    }

    /// [`open`](Self::open), keeping up to `response_cache_bytes` of drawn
    /// response bodies per catalogue (0: none).
    pub fn open_with(dir: &Path, response_cache_bytes: u64) -> BackendResult<EmbeddedStore> {
        for sub in ["images", "staging"] {
            std::fs::create_dir_all(dir.join(sub))
                .map_err(|e| BackendError::Internal(format!("cannot create {}: {e}", dir.join(sub).display())))?;
        }
        // Partial uploads never become visible: whatever is left in staging goes.
        if let Ok(entries) = std::fs::read_dir(dir.join("staging")) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let db_path = dir.join("images.sqlite");
        let writer = db::open(&db_path)?;
        let reset = db::reset_interrupted_uploads(&writer)?;
        if reset > 0 {
            tracing::warn!(
                images = reset,
                "uploads interrupted by a stop were rolled back to queued"
            );
        }
        Ok(EmbeddedStore {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
                snapshot: Mutex::new((db::open(&db_path)?, None)),
                db_path,
                response_cache_bytes,
            }),
        })
    }

    /// The live images as they are now. While nothing was committed since the
    /// last read this costs one `PRAGMA data_version` (no I/O: WAL index in
    /// shared memory) on the caller's thread; otherwise the catalogue is read
    /// again, off the async workers.
    async fn catalog(&self) -> BackendResult<Arc<Catalog>> {
        if let Some(fresh) = Self::fresh_catalog(&self.inner, false)? {
            return Ok(fresh);
        }
        self.blocking(|inner| Self::fresh_catalog(inner, true).map(|c| c.expect("reloaded")))
            .await
    }

    /// The cached catalogue if it is current; else, when `reload`, read it again.
    fn fresh_catalog(inner: &Inner, reload: bool) -> BackendResult<Option<Arc<Catalog>>> {
        let mut guard = inner.snapshot.lock().unwrap_or_else(|p| p.into_inner());
        let (conn, cached) = &mut *guard;
        let version: i64 = conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut st| st.query_row([], |r| r.get(0)))
            .map_err(db::internal)?;
        match cached {
            Some(c) if c.version == version => Ok(Some(c.clone())),
            _ if !reload => Ok(None),
            _ => {
                let mut catalog = Catalog::read(conn, version)?;
                catalog.rendered = catalog::Rendered::new(inner.response_cache_bytes);
                let catalog = Arc::new(catalog);
                *cached = Some(catalog.clone());
                Ok(Some(catalog))
            }
        }
    }

    /// Run `f` with the store's state on a blocking thread, off the async workers.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> BackendResult<T> + Send + 'static,
    ) -> BackendResult<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| BackendError::Internal(format!("store task: {e}")))?
    }

    /// Run `f` on a read connection, off the async workers.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> BackendResult<T> + Send + 'static,
    ) -> BackendResult<T> {
        self.blocking(move |inner| {
            let conn = inner.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let conn = match conn {
                Some(c) => c,
                None => db::open(&inner.db_path)?,
            };
            let out = f(&conn);
            inner.readers.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
            out
        })
        .await
    }

    /// Run `f` in one write transaction (writes are serialized).
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> BackendResult<T> + Send + 'static,
    ) -> BackendResult<T> {
        self.blocking(move |inner| {
            let mut conn = inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            let tx = conn.transaction().map_err(db::internal)?;
            let out = f(&tx)?;
            tx.commit().map_err(db::internal)?;
            Ok(out)
        })
        .await
    }

    fn file_path(&self, id: &str) -> PathBuf {
        self.inner.dir.join("images").join(id)
    }

    /// Create an image (`queued`, no data). 409 if the id was ever used;
    /// Glance's `add_image` and visibility rules first.
    pub async fn create(&self, ctx: &RequestContext, new: NewImage) -> BackendResult<Image> {
        let owner = new
            .owner
            .clone()
            .unwrap_or_else(|| (!ctx.project_id.is_empty()).then(|| ctx.project_id.clone()));
        let proposed = Image {
            owner: owner.clone(),
            visibility: new.visibility.clone().unwrap_or_else(|| "shared".into()),
            ..Default::default()
        };
        policy::enforce_create(&proposed, ctx)?;
        self.write(move |conn| {
            let id = new.id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            if db::get(conn, &id)?.is_some() {
                return Err(conflict(&format!("Image with identifier {id} already exists!")));
            }
            let now = db::now();
            let mut tags = new.tags.clone();
            tags.sort();
            tags.dedup();
            let image = Image {
                id: id.clone(),
                name: new.name,
                status: "queued".into(),
                visibility: new.visibility.unwrap_or_else(|| "shared".into()),
                protected: new.protected,
                os_hidden: new.os_hidden,
                owner,
                container_format: new.container_format,
                disk_format: new.disk_format,
                min_ram: new.min_ram,
                min_disk: new.min_disk,
                created_at: db::display_time(&now),
                updated_at: db::display_time(&now),
                tags,
                properties: new.properties,
                ..Default::default()
            };
            db::insert(conn, &image, &now)?;
            Ok(image)
        })
        .await
    }

    /// The live record of `id` as Glance's image repository finds it (the
    /// database's visibility), or Glance's 404.
    fn live(conn: &Connection, ctx: &RequestContext, id: &str) -> BackendResult<Record> {
        match db::get(conn, id)? {
            Some(r) if !r.deleted && policy::db_visible(&r.image, ctx, r.membership(&ctx.project_id)) => Ok(r),
            _ => Err(not_found(&format!("No image found with ID {id}"))),
        }
    }

    /// Read-modify-write of one image in one transaction, as Glance's policy
    /// allows it: `rules` are enforced on the image first (what the call asks
    /// to do), then `f` changes the image (or refuses with an error), then the
    /// change itself is checked ([`policy::enforce_change`]); any refusal
    /// writes nothing.
    pub async fn modify(
        &self,
        ctx: &RequestContext,
        id: &str,
        rules: &[Rule],
        f: impl FnOnce(&mut Image) -> BackendResult<()> + Send + 'static,
    ) -> BackendResult<Image> {
        let (ctx, id, rules) = (ctx.clone(), id.to_string(), rules.to_vec());
        self.write(move |conn| {
            let before = Self::live(conn, &ctx, &id)?.image;
            for rule in rules {
                policy::enforce(rule, &before, &ctx)?;
            }
            let mut after = before.clone();
            f(&mut after)?;
            after.id = before.id.clone();
            policy::enforce_change(&before, &after, &ctx)?;
            if after != before {
                db::update(conn, &before, &after)?;
            }
            Ok(db::get(conn, &id)?.map(|r| r.image).unwrap_or(after))
        })
        .await
    }

    /// Glance v2 `PATCH /v2/images/{id}`: Glance's path checks, the policy
    /// rules the operations need, then the operations with Glance's attribute
    /// rules, in one transaction (a refusal writes nothing).
    pub async fn patch(&self, ctx: &RequestContext, id: &str, ops: Vec<super::PatchOp>) -> BackendResult<Image> {
        use crate::glance_v2::{error::V2Error, patch};
        patch::check_paths(&ops).map_err(V2Error::into_backend)?;
        let rules = patch::rules(&ops);
        self.modify(ctx, id, &rules, move |img| {
            patch::apply(img, &ops).map_err(V2Error::into_backend)
        })
        .await
    }

    /// `deactivate` (active → deactivated) or `reactivate` (deactivated → active).
    pub async fn set_active(&self, ctx: &RequestContext, id: &str, active: bool) -> BackendResult<Image> {
        let rule = if active { Rule::Reactivate } else { Rule::Deactivate };
        self.modify(ctx, id, &[rule], move |img| {
            match (img.status.as_str(), active) {
                ("active", false) => img.status = "deactivated".into(),
                ("deactivated", true) => img.status = "active".into(),
                ("active", true) | ("deactivated", false) => {}
                (status, _) => {
                    let verb = if active { "reactivate" } else { "deactivate" };
                    return Err(forbidden(&format!("Not allowed to {verb} image in status '{status}'")));
                }
            }
            Ok(())
        })
        .await
    }

    /// What sets the store's gauges (images, bytes) from the current
    /// catalogue at a scrape. It holds the store weakly: once the store is
    /// dropped it does nothing (and keeps no database open).
    pub fn metrics_hook(&self) -> impl Fn() + Send + Sync + 'static {
        let inner = Arc::downgrade(&self.inner);
        move || {
            if let Some(inner) = inner.upgrade() {
                EmbeddedStore { inner }.publish_metrics();
            }
        }
    }

    /// Set the store's gauges (images, bytes) from the current catalogue.
    pub fn publish_metrics(&self) {
        let Some(m) = crate::metrics::get() else { return };
        if let Ok(Some(catalog)) = Self::fresh_catalog(&self.inner, true) {
            m.embedded_images.set(catalog.len() as i64);
            m.embedded_image_bytes
                .set(catalog.iter().map(|r| r.size().unwrap_or(0)).sum());
        }
    }

    /// Number of image records ever created (deleted ones included).
    pub async fn record_count(&self) -> BackendResult<i64> {
        self.read(db::count).await
    }
}
