//! SQLite persistence of image records: one row per image, its extra
//! properties in insertion order (Glance lists them in row order), its tags.

use crate::backend::{BackendError, BackendResult, Image};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::{Map, Value};
use std::path::Path;

/// A stored image: the domain image plus what only the store sees.
#[derive(Clone, Debug)]
pub struct Record {
    pub image: Image,
    pub deleted: bool,
    /// Its members: (project, status), by project.
    pub members: Vec<(String, String)>,
}

impl Record {
    /// The caller's membership status, if its project is a member.
    pub fn membership(&self, project: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|(m, _)| !project.is_empty() && m == project)
            .map(|(_, s)| s.as_str())
    }
}

pub fn open(path: &Path) -> BackendResult<Connection> {
    let conn = Connection::open(path).map_err(internal)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(internal)?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(internal)?;
    // WAL + synchronous=FULL: a committed transaction survives power loss.
    conn.pragma_update(None, "synchronous", "FULL").map_err(internal)?;
    conn.pragma_update(None, "foreign_keys", "ON").map_err(internal)?;
    super::schema::apply(&conn)?;
    Ok(conn)
}

pub fn internal(e: impl std::fmt::Display) -> BackendError {
    BackendError::Internal(format!("image store: {e}"))
}

pub const COLUMNS: &str = "id, name, status, visibility, protected, os_hidden, checksum, os_hash_algo, os_hash_value, \
     owner, size, virtual_size, container_format, disk_format, min_ram, min_disk, created_at, updated_at, deleted";

fn from_row(row: &Row) -> rusqlite::Result<Record> {
    let created: String = row.get(16)?;
    let updated: String = row.get(17)?;
    Ok(Record {
        image: Image {
            id: row.get(0)?,
            name: row.get(1)?,
            status: row.get(2)?,
            visibility: row.get(3)?,
            protected: row.get(4)?,
            os_hidden: row.get(5)?,
            checksum: row.get(6)?,
            os_hash_algo: row.get(7)?,
            os_hash_value: row.get(8)?,
            owner: row.get(9)?,
            size: row.get(10)?,
            virtual_size: row.get(11)?,
            container_format: row.get(12)?,
            disk_format: row.get(13)?,
            min_ram: row.get(14)?,
            min_disk: row.get(15)?,
            created_at: display_time(&created),
            updated_at: display_time(&updated),
            tags: Vec::new(),
            properties: Map::new(),
        },
        deleted: row.get(18)?,
        members: Vec::new(),
    })
}

/// `2026-01-02T03:04:05.123456Z` → `2026-01-02T03:04:05Z` (Glance's `isotime`).
pub fn display_time(stored: &str) -> String {
    match stored.split_once('.') {
        Some((secs, _)) => {
            let mut shown = String::with_capacity(secs.len() + 1);
            shown.push_str(secs);
            shown.push('Z');
            shown
        }
        None => stored.to_string(),
    }
}

/// Now, at microsecond precision, as stored.
pub fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn load_details(conn: &Connection, rec: &mut Record) -> BackendResult<()> {
    let id = [&rec.image.id];
    let properties: Vec<(String, String)> = rows(
        conn,
        "SELECT name, value FROM image_properties WHERE image_id = ?1 ORDER BY position",
        id,
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    for (k, v) in properties {
        rec.image.properties.insert(k, Value::String(v));
    }
    rec.image.tags = rows(
        conn,
        "SELECT value FROM image_tags WHERE image_id = ?1 ORDER BY value",
        id,
        |r| r.get(0),
    )?;
    rec.members = super::members::of_image(conn, &rec.image.id)?;
    Ok(())
}

/// The record of `id`, deleted or not.
pub fn get(conn: &Connection, id: &str) -> BackendResult<Option<Record>> {
    let mut stmt = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM images WHERE id = ?1"))
        .map_err(internal)?;
    let rec = stmt.query_row([id], from_row).optional().map_err(internal)?;
    match rec {
        Some(mut r) => {
            load_details(conn, &mut r)?;
            Ok(Some(r))
        }
        None => Ok(None),
    }
}

/// Every row `sql` selects with `params`, each made by `row`.
pub fn rows<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    row: impl FnMut(&Row) -> rusqlite::Result<T>,
) -> BackendResult<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(internal)?;
    let rows = stmt.query_map(params, row).map_err(internal)?;
    rows.collect::<Result<_, _>>().map_err(internal)
}

pub fn insert(conn: &Connection, image: &Image, created_us: &str) -> BackendResult<()> {
    conn.execute(
        &format!("INSERT INTO images ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, 0)"),
        params![
            image.id, image.name, image.status, image.visibility, image.protected, image.os_hidden, image.checksum,
            image.os_hash_algo, image.os_hash_value, image.owner, image.size, image.virtual_size,
            image.container_format, image.disk_format, image.min_ram, image.min_disk, created_us, created_us
        ],
    )
    .map_err(internal)?;
    save_details(conn, &image.id, &Map::new(), &image.properties, &[], &image.tags)
}

/// Write `after` over the stored `before` (same id): columns, then the
/// property rows that changed (kept in place), new ones appended, removed ones deleted.
pub fn update(conn: &Connection, before: &Image, after: &Image) -> BackendResult<()> {
    let now = now();
    conn.execute(
        "UPDATE images SET name = ?2, status = ?3, visibility = ?4, protected = ?5, os_hidden = ?6, checksum = ?7, \
         os_hash_algo = ?8, os_hash_value = ?9, owner = ?10, size = ?11, virtual_size = ?12, container_format = ?13, \
         disk_format = ?14, min_ram = ?15, min_disk = ?16, updated_at = ?17 WHERE id = ?1",
        params![
            after.id,
            after.name,
            after.status,
            after.visibility,
            after.protected,
            after.os_hidden,
            after.checksum,
            after.os_hash_algo,
            after.os_hash_value,
            after.owner,
            after.size,
            after.virtual_size,
            after.container_format,
            after.disk_format,
            after.min_ram,
            after.min_disk,
            now
        ],
    )
    .map_err(internal)?;
    save_details(
        conn,
        &after.id,
        &before.properties,
        &after.properties,
        &before.tags,
        &after.tags,
    )
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn save_details(
    conn: &Connection,
    id: &str,
    before: &Map<String, Value>,
    after: &Map<String, Value>,
    tags_before: &[String],
    tags_after: &[String],
) -> BackendResult<()> {
    for k in before.keys().filter(|k| !after.contains_key(*k)) {
        conn.execute(
            "DELETE FROM image_properties WHERE image_id = ?1 AND name = ?2",
            params![id, k],
        )
        .map_err(internal)?;
    }
    for (k, v) in after {
        match before.get(k) {
            Some(old) if old == v => {}
            Some(_) => {
                conn.execute(
                    "UPDATE image_properties SET value = ?3 WHERE image_id = ?1 AND name = ?2",
                    params![id, k, text(v)],
                )
                .map_err(internal)?;
            }
            None => {
                conn.execute(
                    "INSERT INTO image_properties (image_id, name, value) VALUES (?1, ?2, ?3)",
                    params![id, k, text(v)],
                )
                .map_err(internal)?;
            }
        }
    }
    if tags_before != tags_after {
        conn.execute("DELETE FROM image_tags WHERE image_id = ?1", [id])
            .map_err(internal)?;
        for t in tags_after {
            conn.execute(
                "INSERT OR IGNORE INTO image_tags (image_id, value) VALUES (?1, ?2)",
                params![id, t],
            )
            .map_err(internal)?;
        }
    }
    Ok(())
}

pub fn mark_deleted(conn: &Connection, id: &str) -> BackendResult<()> {
    let now = now();
    conn.execute(
        "UPDATE images SET deleted = 1, status = 'deleted', deleted_at = ?2, updated_at = ?2 WHERE id = ?1",
        params![id, now],
    )
    .map_err(internal)?;
    Ok(())
}

/// After a crash: uploads that were under way go back to `queued`.
pub fn reset_interrupted_uploads(conn: &Connection) -> BackendResult<usize> {
    conn.execute(
        "UPDATE images SET status = 'queued' WHERE status = 'saving' AND deleted = 0",
        [],
    )
    .map_err(internal)
}

pub fn count(conn: &Connection) -> BackendResult<i64> {
    conn.query_row("SELECT COUNT(*) FROM images", [], |r| r.get(0))
        .map_err(internal)
}
