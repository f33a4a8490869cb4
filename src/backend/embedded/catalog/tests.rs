//! The catalogue against the rows it was read from.

use super::super::db;
use super::build::group;
use super::*;
use rusqlite::params;
use serde_json::{Map, Value};

fn image(i: usize) -> Image {
    let mut properties = Map::new();
    // Inserted out of name order: the catalogue keeps insertion order.
    for k in ["zeta", "alpha", &format!("only_{i}")] {
        properties.insert(k.to_string(), Value::String(format!("{k}-{}", i % 2)));
    }
    Image {
        id: format!("00000000-0000-0000-0000-{i:012}"),
        name: match i % 3 {
            0 => None,
            1 => Some(String::new()),
            _ => Some(format!("image {i}")),
        },
        status: ["active", "queued"][i % 2].into(),
        visibility: ["public", "shared", "private"][i % 3].into(),
        protected: i.is_multiple_of(2),
        os_hidden: i.is_multiple_of(3),
        checksum: (i.is_multiple_of(2)).then(|| format!("{i:032x}")),
        owner: (!i.is_multiple_of(4)).then(|| format!("project-{}", i % 3)),
        size: (i.is_multiple_of(2)).then_some(i as i64 * 1000),
        virtual_size: (i.is_multiple_of(5)).then_some(7),
        container_format: Some("bare".into()),
        disk_format: (i % 2 == 1).then(|| "qcow2".into()),
        min_ram: i as i64,
        min_disk: 3,
        tags: (0..i % 3).map(|t| format!("tag{t}")).collect(),
        properties,
        ..Default::default()
    }
}

#[test]
fn every_live_image_reads_back_as_stored_in_list_order() {
    let dir = tempfile::tempdir().unwrap();
    let conn = db::open(&dir.path().join("images.sqlite")).unwrap();
    for i in 0..40 {
        // Some share a creation time: the id breaks the tie.
        let created = format!("2026-01-01T00:00:{:02}.{:06}Z", i / 2, i % 7);
        db::insert(&conn, &image(i), &created).unwrap();
        for m in (0..i % 4).rev() {
            conn.execute(
                "INSERT INTO image_members (image_id, member, status, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, 'x', 'x')",
                params![image(i).id, format!("member{m}"), ["pending", "accepted"][m % 2]],
            )
            .unwrap();
        }
    }
    for i in [3, 17] {
        db::mark_deleted(&conn, &image(i).id).unwrap();
    }
    let catalog = Catalog::read(&conn, 1).unwrap();
    let want: Vec<String> = db::rows(
        &conn,
        "SELECT id FROM images WHERE deleted = 0 ORDER BY created_at DESC, id DESC",
        [],
        |r| r.get(0),
    )
    .unwrap();
    let got: Vec<&str> = catalog.iter().map(|v| v.id()).collect();
    assert_eq!(got, want);
    assert_eq!(catalog.len(), 38);
    for (pos, view) in catalog.iter().enumerate() {
        let stored = db::get(&conn, view.id()).unwrap().unwrap();
        assert_eq!(view.image(), stored.image);
        assert_eq!(catalog.position(view.id()), Some(pos));
        for m in ["member0", "member1", "member2", "nobody", ""] {
            assert_eq!(view.membership(m), stored.membership(m), "{} {m}", view.id());
        }
        let keys: Vec<&str> = view.properties().map(|(k, _)| k).collect();
        assert_eq!(&keys[..2], ["zeta", "alpha"]);
    }
    for i in [3, 17] {
        assert!(catalog.get(&image(i).id).is_none());
    }
    assert!(catalog.get("no-such-image").is_none());
    let created = catalog.get(&image(5).id).unwrap().created_us();
    assert_eq!(created, "2026-01-01T00:00:02.000005Z");
}

#[test]
fn an_empty_store_has_an_empty_catalogue() {
    let dir = tempfile::tempdir().unwrap();
    let conn = db::open(&dir.path().join("images.sqlite")).unwrap();
    let catalog = Catalog::read(&conn, 0).unwrap();
    assert_eq!(catalog.len(), 0);
    assert!(catalog.get("x").is_none());
}

#[test]
fn grouping_keeps_the_order_read_within_each_entry() {
    let (items, at) = group(3, vec![(2, 'a'), (0, 'b'), (2, 'c'), (0, 'd')]);
    assert_eq!(items, ['b', 'd', 'a', 'c']);
    assert_eq!(at, [0, 2, 2, 4]);
}
