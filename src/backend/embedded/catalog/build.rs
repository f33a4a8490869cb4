//! Reading a [`Catalog`] from the database: the image rows in list order,
//! then their child rows, grouped by image.

use super::super::db::{display_time, internal, COLUMNS};
use super::{Catalog, Entry, Field, Span, TEXT_COLUMNS};
use crate::backend::BackendResult;
use rusqlite::{types::ValueRef, Connection, Row};
use std::collections::HashMap;
use std::hash::BuildHasher;

impl Catalog {
    /// Every live image of the database on `conn`, as of `version`. The child
    /// rows are read in three scans in index order (no join, no sort): a row
    /// of an image that is not live is skipped, and each image's rows keep
    /// their order (properties as inserted, tags and members by value).
    pub fn read(conn: &Connection, version: i64) -> BackendResult<Catalog> {
        let mut c = Partial::default();
        c.catalog.version = version;
        let sql = format!("SELECT {COLUMNS} FROM images WHERE deleted = 0 ORDER BY created_at DESC, id DESC");
        each_row(conn, &sql, |r| c.entry(r))?;
        c.index()?;
        let sql = "SELECT image_id, name, value FROM image_properties ORDER BY position";
        (c.catalog.properties, c.catalog.property_at) = c.children(conn, sql, |c, r| {
            Ok((c.shared(text_at(r, 1)?)?, c.push(text_at(r, 2)?)?))
        })?;
        let sql = "SELECT image_id, value FROM image_tags ORDER BY image_id, value";
        (c.catalog.tags, c.catalog.tag_at) = c.children(conn, sql, |c, r| c.push(text_at(r, 1)?))?;
        let sql = "SELECT image_id, member, status FROM image_members ORDER BY image_id, member";
        (c.catalog.members, c.catalog.member_at) = c.children(conn, sql, |c, r| {
            Ok((c.push(text_at(r, 1)?)?, c.shared(text_at(r, 2)?)?))
        })?;
        c.catalog.text.shrink_to_fit();
        Ok(c.catalog)
    }
}

/// A catalogue under construction: the image rows, then their child rows,
/// with the texts kept once while it is read.
#[derive(Default)]
struct Partial {
    catalog: Catalog,
    shared_texts: HashMap<Box<str>, Span>,
}

fn push_text(text: &mut String, s: &str) -> rusqlite::Result<Span> {
    let too_big = || rusqlite::Error::ToSqlConversionFailure("the catalogue's text exceeds 4 GiB".into());
    let start = u32::try_from(text.len()).map_err(|_| too_big())?;
    let len = u32::try_from(s.len()).map_err(|_| too_big())?;
    // The text never reaches u32::MAX bytes, so no span starts at NONE's.
    start
        .checked_add(len)
        .filter(|&end| end != u32::MAX)
        .ok_or_else(too_big)?;
    text.push_str(s);
    Ok(Span { start, len })
}

impl Partial {
    fn entry(&mut self, r: &Row) -> rusqlite::Result<()> {
        let mut text = [Span::NONE; 13];
        for (col, field, shared) in TEXT_COLUMNS {
            let Some(value) = opt_text_at(r, col)? else { continue };
            text[field as usize] = match field {
                Field::CreatedAt | Field::UpdatedAt => self.push(&display_time(value))?,
                _ if shared => self.shared(value)?,
                _ => self.push(value)?,
            };
        }
        self.catalog.entries.push(Entry {
            text,
            protected: r.get(4)?,
            os_hidden: r.get(5)?,
            size: r.get(10)?,
            virtual_size: r.get(11)?,
            min_ram: r.get(14)?,
            min_disk: r.get(15)?,
        });
        Ok(())
    }

    /// Once every entry is read: the id index.
    fn index(&mut self) -> BackendResult<()> {
        let c = &mut self.catalog;
        c.entries.shrink_to_fit();
        let n = u32::try_from(c.entries.len()).map_err(|_| internal("more than 2^32 images"))?;
        let mut by_id = hashbrown::HashTable::with_capacity(n as usize);
        let id_hash = |i: u32| c.hasher.hash_one(c.at(i as usize).id());
        for i in 0..n {
            by_id.insert_unique(id_hash(i), i, |&j| id_hash(j));
        }
        c.by_id = by_id;
        Ok(())
    }

    /// The rows `sql` selects (image id first), each made by `item`, grouped
    /// by image; the rows of an image that is not live are skipped.
    fn children<T: Copy>(
        &mut self,
        conn: &Connection,
        sql: &str,
        mut item: impl FnMut(&mut Partial, &Row) -> rusqlite::Result<T>,
    ) -> BackendResult<(Vec<T>, Vec<u32>)> {
        let mut rows = Vec::new();
        each_row(conn, sql, |r| {
            if let Some(i) = self.catalog.position(text_at(r, 0)?) {
                let it = item(self, r)?;
                rows.push((i as u32, it));
            }
            Ok(())
        })?;
        Ok(group(self.catalog.entries.len(), rows))
    }

    fn push(&mut self, s: &str) -> rusqlite::Result<Span> {
        push_text(&mut self.catalog.text, s)
    }

    /// `s`, kept once however many images have it.
    fn shared(&mut self, s: &str) -> rusqlite::Result<Span> {
        if let Some(&span) = self.shared_texts.get(s) {
            return Ok(span);
        }
        let span = self.push(s)?;
        self.shared_texts.insert(s.into(), span);
        Ok(span)
    }
}

/// `rows` (entry index, item) in the order read, grouped by entry with that
/// order kept within each (a counting sort): the items, and where each
/// entry's start (`n + 1` offsets).
pub(super) fn group<T: Copy>(n: usize, rows: Vec<(u32, T)>) -> (Vec<T>, Vec<u32>) {
    let mut at = vec![0u32; n + 1];
    for &(i, _) in &rows {
        at[i as usize + 1] += 1;
    }
    for i in 0..n {
        at[i + 1] += at[i];
    }
    let mut next = at.clone();
    let mut out: Vec<Option<T>> = vec![None; rows.len()];
    for (i, item) in rows {
        out[next[i as usize] as usize] = Some(item);
        next[i as usize] += 1;
    }
    (out.into_iter().flatten().collect(), at)
}

fn opt_text_at<'r>(r: &'r Row, col: usize) -> rusqlite::Result<Option<&'r str>> {
    match r.get_ref(col)? {
        ValueRef::Null => Ok(None),
        v => v.as_str().map(Some).map_err(Into::into),
    }
}

fn text_at<'r>(r: &'r Row, col: usize) -> rusqlite::Result<&'r str> {
    Ok(r.get_ref(col)?.as_str()?)
}

/// Call `f` on every row `sql` selects, without collecting them.
fn each_row(conn: &Connection, sql: &str, mut f: impl FnMut(&Row) -> rusqlite::Result<()>) -> BackendResult<()> {
    let mut stmt = conn.prepare_cached(sql).map_err(internal)?;
    let mut rows = stmt.query([]).map_err(internal)?;
    while let Some(row) = rows.next().map_err(internal)? {
        f(row).map_err(internal)?;
    }
    Ok(())
}
