//! The embedded store's SQLite schema: the tables of the first release and
//! the migrations since, applied when a database is opened.

use super::db::internal;
use crate::backend::BackendResult;
use rusqlite::Connection;

/// The tables of the first release.
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,
    name TEXT,
    status TEXT NOT NULL,
    visibility TEXT NOT NULL,
    protected INTEGER NOT NULL DEFAULT 0,
    os_hidden INTEGER NOT NULL DEFAULT 0,
    checksum TEXT,
    os_hash_algo TEXT,
    os_hash_value TEXT,
    owner TEXT,
    size INTEGER,
    virtual_size INTEGER,
    container_format TEXT,
    disk_format TEXT,
    min_ram INTEGER NOT NULL DEFAULT 0,
    min_disk INTEGER NOT NULL DEFAULT 0,
    -- microsecond RFC 3339 (sortable); shown to clients at second precision
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    deleted_at TEXT
);
CREATE INDEX IF NOT EXISTS images_order ON images (deleted, created_at DESC, id DESC);
CREATE TABLE IF NOT EXISTS image_properties (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id TEXT NOT NULL REFERENCES images(id),
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    UNIQUE (image_id, name)
);
CREATE TABLE IF NOT EXISTS image_tags (
    image_id TEXT NOT NULL REFERENCES images(id),
    value TEXT NOT NULL,
    PRIMARY KEY (image_id, value)
);
"#;

/// Schema changes after the first release, in order: the database's
/// `user_version` is how many of them it has. A database made before one
/// gets it when it is opened (one immediate transaction: concurrent openers
/// wait, and the version is checked again inside it).
const MIGRATIONS: &[&str] = &[
    // 1: image members (Glance's `image_members`; removed rows are deleted).
    r#"
CREATE TABLE IF NOT EXISTS image_members (
    image_id TEXT NOT NULL REFERENCES images(id),
    member TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (image_id, member)
);
CREATE INDEX IF NOT EXISTS image_members_member ON image_members (member);
"#,
];

/// Bring the database on `conn` to the current schema: the tables of the
/// first release, then the migrations it does not have yet.
pub fn apply(conn: &Connection) -> BackendResult<()> {
    conn.execute_batch(SCHEMA).map_err(internal)?;
    let version = |c: &Connection| {
        c.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
            .map(|v| usize::try_from(v).unwrap_or(0))
    };
    if version(conn).map_err(internal)? >= MIGRATIONS.len() {
        return Ok(());
    }
    conn.execute_batch("BEGIN IMMEDIATE").map_err(internal)?;
    let applied = (|| {
        let from = version(conn)?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(from) {
            conn.execute_batch(sql)?;
            conn.pragma_update(None, "user_version", i64::try_from(i + 1).unwrap_or(i64::MAX))?;
        }
        Ok::<_, rusqlite::Error>(from)
    })();
    match applied {
        Ok(from) => {
            conn.execute_batch("COMMIT").map_err(internal)?;
            if from < MIGRATIONS.len() {
                tracing::info!(from, to = MIGRATIONS.len(), "image store schema migrated");
            }
            Ok(())
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(internal(e))
        }
    }
}
