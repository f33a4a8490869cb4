//! The usage counts in SQLite (`usage.sqlite` in the embedded store's data
//! directory: a database of its own, so that these writes never contend with
//! the store's write transactions), so that they survive restarts: read at
//! start, written every `usage.flush_secs` and at a graceful stop, one
//! transaction per write (a crash loses at most the last interval).

use super::usage::{Changes, Key, Stat, Usage};
use rusqlite::{params, params_from_iter, Connection, ToSql};
use std::path::Path;
use std::sync::Mutex;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS deprecated_usage (
    surface TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    project TEXT NOT NULL,
    user TEXT NOT NULL,
    client TEXT NOT NULL,
    microversion TEXT NOT NULL,
    count INTEGER NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    PRIMARY KEY (surface, endpoint, project, user, client, microversion)
);
CREATE TABLE IF NOT EXISTS deprecated_usage_daily (
    day INTEGER NOT NULL,
    client TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (day, client)
);
CREATE TABLE IF NOT EXISTS deprecated_usage_meta (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"#;

/// The key columns of a row, in the tables' order.
fn key_params(k: &Key) -> [&dyn ToSql; 6] {
    [&k.surface, &k.endpoint, &k.project, &k.user, &k.client, &k.microversion]
}

pub struct Store {
    conn: Mutex<Connection>,
}

fn text(e: rusqlite::Error) -> String {
    format!("usage database: {e}")
}

impl Store {
    /// Open the database at `path` (the embedded store's) and read its counts into `usage`.
    pub fn open(path: &Path, usage: &Usage, now: i64) -> Result<Store, String> {
        let conn = Connection::open(path).map_err(text)?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(text)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(text)?;
        conn.execute_batch(SCHEMA).map_err(text)?;
        let rows = {
            let mut stmt = conn
                .prepare(
                    "SELECT surface, endpoint, project, user, client, microversion, count, first_seen, last_seen \
                     FROM deprecated_usage ORDER BY last_seen, rowid",
                )
                .map_err(text)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        Key {
                            surface: r.get(0)?,
                            endpoint: r.get(1)?,
                            project: r.get(2)?,
                            user: r.get(3)?,
                            client: r.get(4)?,
                            microversion: r.get(5)?,
                        },
                        Stat {
                            count: r.get::<_, i64>(6)?.max(0) as u64,
                            first_seen: r.get(7)?,
                            last_seen: r.get(8)?,
                        },
                    ))
                })
                .map_err(text)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(text)?
        };
        let first_day = super::usage::day_of(now) - super::usage::DAYS + 1;
        let daily = {
            let mut stmt = conn
                .prepare("SELECT day, client, count FROM deprecated_usage_daily WHERE day >= ?1")
                .map_err(text)?;
            let rows = stmt
                .query_map([first_day], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)?.max(0) as u64))
                })
                .map_err(text)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(text)?
        };
        let evictions: i64 = conn
            .query_row(
                "SELECT COALESCE((SELECT value FROM deprecated_usage_meta WHERE name = 'evictions'), 0)",
                [],
                |r| r.get(0),
            )
            .map_err(text)?;
        // Rows past a smaller max_entries are evicted, and deleted at the first write.
        usage.restore(rows, daily, evictions.max(0) as u64);
        Ok(Store { conn: Mutex::new(conn) })
    }

    /// Write `changes` in one transaction.
    pub fn write(&self, changes: &Changes) -> Result<(), String> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn.transaction().map_err(text)?;
        {
            let mut upsert = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO deprecated_usage \
                     (surface, endpoint, project, user, client, microversion, count, first_seen, last_seen) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .map_err(text)?;
            for (k, s) in &changes.upserts {
                let count = s.count as i64;
                let mut values = key_params(k).to_vec();
                values.extend([&count as &dyn ToSql, &s.first_seen, &s.last_seen]);
                upsert.execute(params_from_iter(values)).map_err(text)?;
            }
            let mut remove = tx
                .prepare_cached(
                    "DELETE FROM deprecated_usage WHERE surface = ?1 AND endpoint = ?2 AND project = ?3 \
                     AND user = ?4 AND client = ?5 AND microversion = ?6",
                )
                .map_err(text)?;
            for k in &changes.removed {
                remove.execute(params_from_iter(key_params(k))).map_err(text)?;
            }
            let mut daily = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO deprecated_usage_daily (day, client, count) VALUES (?1, ?2, ?3)",
                )
                .map_err(text)?;
            for (d, c, n) in &changes.daily {
                daily.execute(params![d, c, *n as i64]).map_err(text)?;
            }
        }
        tx.execute("DELETE FROM deprecated_usage_daily WHERE day < ?1", [changes.first_day])
            .map_err(text)?;
        tx.execute(
            "INSERT OR REPLACE INTO deprecated_usage_meta (name, value) VALUES ('evictions', ?1)",
            [changes.evictions as i64],
        )
        .map_err(text)?;
        tx.commit().map_err(text)
    }
}
