//! The live images held in memory in a compact form, so that reads need no
//! query: every text of every image in one string (low-cardinality values —
//! statuses, visibilities, formats, owners, property names, membership
//! statuses — kept once), each image a fixed-size entry of spans into it,
//! and the properties, tags and members of all images in three flat arrays
//! grouped by image. An image costs its text plus about 200 bytes, with no
//! allocation of its own; it becomes an [`Image`] only when a read returns
//! it. The catalogue is immutable: a commit makes the store read a new one.

use super::policy::Seen;
use crate::backend::{Drawing, Image};
pub use rendered::Rendered;
use serde_json::{Map, Value};
use std::hash::BuildHasher;

/// Where a text is in [`Catalog::text`]; `NONE` for a missing (NULL) value.
#[derive(Clone, Copy, Debug)]
struct Span {
    start: u32,
    len: u32,
}

impl Span {
    const NONE: Span = Span {
        start: u32::MAX,
        len: 0,
    };
}

/// The text columns of an image, as indexes into [`Entry::text`].
#[derive(Clone, Copy)]
enum Field {
    Id,
    Name,
    Status,
    Visibility,
    Checksum,
    OsHashAlgo,
    OsHashValue,
    Owner,
    ContainerFormat,
    DiskFormat,
    CreatedAt,
    UpdatedAt,
    CreatedUs,
}

/// The columns read for each [`Field`], in its order, and whether their
/// values repeat enough across images to be kept once.
const TEXT_COLUMNS: [(usize, Field, bool); 13] = [
    (0, Field::Id, false),
    (1, Field::Name, false),
    (2, Field::Status, true),
    (3, Field::Visibility, true),
    (6, Field::Checksum, false),
    (7, Field::OsHashAlgo, true),
    (8, Field::OsHashValue, false),
    (9, Field::Owner, true),
    (12, Field::ContainerFormat, true),
    (13, Field::DiskFormat, true),
    // CreatedAt and UpdatedAt are the display forms of columns 16 and 17.
    (16, Field::CreatedUs, false),
    (16, Field::CreatedAt, false),
    (17, Field::UpdatedAt, false),
];

/// One live image: its texts as spans, its numbers inline.
struct Entry {
    text: [Span; 13],
    size: Option<i64>,
    virtual_size: Option<i64>,
    min_ram: i64,
    min_disk: i64,
    protected: bool,
    os_hidden: bool,
}

/// The live images in Glance's default order (newest first, then id
/// descending), indexed by id, with the `data_version` they were read at.
#[derive(Default)]
pub struct Catalog {
    pub version: i64,
    text: String,
    entries: Vec<Entry>,
    /// Entry `i`'s properties are `properties[property_at[i]..property_at[i + 1]]`
    /// (name, value), in insertion order; likewise tags (by value) and members
    /// (project, status; by project).
    properties: Vec<(Span, Span)>,
    property_at: Vec<u32>,
    tags: Vec<Span>,
    tag_at: Vec<u32>,
    members: Vec<(Span, Span)>,
    member_at: Vec<u32>,
    by_id: hashbrown::HashTable<u32>,
    hasher: hashbrown::DefaultHashBuilder,
    /// Bodies drawn of these images (empty until a read draws one).
    pub(super) rendered: Rendered,
}

/// One image of a catalogue, read in place.
#[derive(Clone, Copy)]
pub struct View<'a> {
    catalog: &'a Catalog,
    index: usize,
}

impl Catalog {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The images in list order.
    pub fn iter(&self) -> impl Iterator<Item = View<'_>> {
        self.from(0)
    }

    /// The images from position `start` on.
    pub fn from(&self, start: usize) -> impl Iterator<Item = View<'_>> {
        (start.min(self.entries.len())..self.entries.len()).map(|index| self.at(index))
    }

    /// Where `id` is in the list order.
    pub fn position(&self, id: &str) -> Option<usize> {
        let hash = self.hasher.hash_one(id);
        self.by_id
            .find(hash, |&i| self.at(i as usize).id() == id)
            .map(|&i| i as usize)
    }

    /// Image `index` as `drawing` renders it: the body kept, else drawn and kept.
    pub fn drawn(&self, index: usize, drawing: &Drawing<'_>) -> bytes::Bytes {
        self.rendered
            .get_or_draw(index, drawing.key, || (drawing.render)(&self.at(index).image()))
    }

    pub fn get(&self, id: &str) -> Option<View<'_>> {
        self.position(id).map(|i| self.at(i))
    }

    /// The image at `index` (a [`Catalog::position`]) of the list order.
    pub fn at(&self, index: usize) -> View<'_> {
        View { catalog: self, index }
    }

    fn str(&self, s: Span) -> Option<&str> {
        (s.start != u32::MAX).then(|| &self.text[s.start as usize..(s.start + s.len) as usize])
    }
}

impl<'a> View<'a> {
    fn entry(&self) -> &'a Entry {
        &self.catalog.entries[self.index]
    }

    fn field(&self, f: Field) -> Option<&'a str> {
        self.catalog.str(self.entry().text[f as usize])
    }

    fn required(&self, f: Field) -> &'a str {
        self.field(f).unwrap_or_default()
    }

    /// Its position in the list order.
    pub fn index(&self) -> usize {
        self.index
    }

    pub fn id(&self) -> &'a str {
        self.required(Field::Id)
    }
    pub fn name(&self) -> Option<&'a str> {
        self.field(Field::Name)
    }
    pub fn status(&self) -> &'a str {
        self.required(Field::Status)
    }
    pub fn visibility(&self) -> &'a str {
        self.required(Field::Visibility)
    }
    pub fn owner(&self) -> Option<&'a str> {
        self.field(Field::Owner)
    }
    pub fn checksum(&self) -> Option<&'a str> {
        self.field(Field::Checksum)
    }
    pub fn container_format(&self) -> Option<&'a str> {
        self.field(Field::ContainerFormat)
    }
    pub fn disk_format(&self) -> Option<&'a str> {
        self.field(Field::DiskFormat)
    }
    /// `created_at` at microsecond precision, as stored.
    pub fn created_us(&self) -> &'a str {
        self.required(Field::CreatedUs)
    }
    pub fn updated_at(&self) -> &'a str {
        self.required(Field::UpdatedAt)
    }
    pub fn size(&self) -> Option<i64> {
        self.entry().size
    }
    pub fn virtual_size(&self) -> Option<i64> {
        self.entry().virtual_size
    }
    pub fn min_ram(&self) -> i64 {
        self.entry().min_ram
    }
    pub fn min_disk(&self) -> i64 {
        self.entry().min_disk
    }
    pub fn protected(&self) -> bool {
        self.entry().protected
    }
    pub fn os_hidden(&self) -> bool {
        self.entry().os_hidden
    }

    fn pairs(&self, all: &'a [(Span, Span)], at: &[u32]) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let c = self.catalog;
        all[at[self.index] as usize..at[self.index + 1] as usize]
            .iter()
            .map(move |&(k, v)| (c.str(k).unwrap_or_default(), c.str(v).unwrap_or_default()))
    }

    /// The extra properties (name, value), in insertion order.
    pub fn properties(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.pairs(&self.catalog.properties, &self.catalog.property_at)
    }

    pub fn property(&self, name: &str) -> Option<&'a str> {
        self.properties().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    pub fn tags(&self) -> impl Iterator<Item = &'a str> + 'a {
        let c = self.catalog;
        c.tags[c.tag_at[self.index] as usize..c.tag_at[self.index + 1] as usize]
            .iter()
            .map(move |&t| c.str(t).unwrap_or_default())
    }

    /// The caller's membership status, if its project is a member.
    pub fn membership(&self, project: &str) -> Option<&'a str> {
        if project.is_empty() {
            return None;
        }
        self.pairs(&self.catalog.members, &self.catalog.member_at)
            .find(|(m, _)| *m == project)
            .map(|(_, s)| s)
    }

    /// What the visibility rules read of the image.
    pub fn seen(&self) -> Seen<'a> {
        Seen {
            visibility: self.visibility(),
            owner: self.owner(),
        }
    }

    /// The image as the backend returns it.
    pub fn image(&self) -> Image {
        let own = |f| self.field(f).map(str::to_string);
        let mut properties = Map::new();
        for (k, v) in self.properties() {
            properties.insert(k.to_string(), Value::String(v.to_string()));
        }
        let e = self.entry();
        Image {
            id: self.id().to_string(),
            name: own(Field::Name),
            status: self.status().to_string(),
            visibility: self.visibility().to_string(),
            protected: e.protected,
            os_hidden: e.os_hidden,
            checksum: own(Field::Checksum),
            os_hash_algo: own(Field::OsHashAlgo),
            os_hash_value: own(Field::OsHashValue),
            owner: own(Field::Owner),
            size: e.size,
            virtual_size: e.virtual_size,
            container_format: own(Field::ContainerFormat),
            disk_format: own(Field::DiskFormat),
            min_ram: e.min_ram,
            min_disk: e.min_disk,
            created_at: self.required(Field::CreatedAt).to_string(),
            updated_at: self.updated_at().to_string(),
            tags: self.tags().map(str::to_string).collect(),
            properties,
        }
    }
}

mod build;
mod rendered;
#[cfg(test)]
mod tests;
