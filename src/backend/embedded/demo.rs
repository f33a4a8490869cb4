//! Demo images loaded into a new embedded store, so that a fresh `cargo run`
//! shows something real: a small bootable-looking raw disk (MBR partition
//! table, generated here), a snapshot of it, and an image still waiting for data.

use super::{EmbeddedStore, NewImage};
use crate::backend::{BackendResult, RequestContext};
use serde_json::{json, Value};

/// A 1 MiB raw disk: an MBR with one Linux partition from sector 2048 to the end
/// and the boot signature.
pub fn demo_disk() -> Vec<u8> {
    let mut disk = vec![0u8; 1024 * 1024];
    let entry = 446;
    disk[entry] = 0x80; // bootable
    disk[entry + 4] = 0x83; // Linux
    disk[entry + 8..entry + 12].copy_from_slice(&2048u32.to_le_bytes());
    let sectors = (disk.len() / 512) as u32 - 2048;
    disk[entry + 12..entry + 16].copy_from_slice(&sectors.to_le_bytes());
    disk[510] = 0x55;
    disk[511] = 0xaa;
    disk
}

fn props(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// Create the demo images (ids are fixed, so a second call does nothing new).
pub async fn load(store: &EmbeddedStore) -> BackendResult<usize> {
    let ctx = RequestContext {
        token: String::new(),
        user_id: "demo".into(),
        // Owned by project `demo`: `demo:demo` may change them, other projects
        // see the public ones only.
        project_id: "demo".into(),
        roles: vec!["admin".into()],
        request_id: crate::edge::request_id::mint(),
    };
    let base = NewImage {
        id: Some("a0a0a0a0-0000-4000-8000-000000000001".into()),
        name: Some("demo-raw-disk".into()),
        visibility: Some("public".into()),
        container_format: Some("bare".into()),
        disk_format: Some("raw".into()),
        min_disk: 1,
        min_ram: 64,
        tags: vec!["demo".into()],
        properties: props(json!({"os_distro": "demo", "hw_disk_bus": "virtio", "auto_disk_config": "False"})),
        ..Default::default()
    };
    let snapshot = NewImage {
        id: Some("a0a0a0a0-0000-4000-8000-000000000002".into()),
        name: Some("demo-snapshot".into()),
        visibility: Some("private".into()),
        properties: props(json!({
            "image_type": "snapshot",
            "instance_uuid": "a0a0a0a0-0000-4000-8000-0000000000f1",
            "base_image_ref": "a0a0a0a0-0000-4000-8000-000000000001",
        })),
        ..base.clone()
    };
    let queued = NewImage {
        id: Some("a0a0a0a0-0000-4000-8000-000000000003".into()),
        name: Some("demo-queued".into()),
        properties: props(json!({"description": "created, no data uploaded yet"})),
        ..base.clone()
    };
    let disk = bytes::Bytes::from(demo_disk());
    let mut n = 0;
    for (new, data) in [(base, Some(disk.clone())), (snapshot, Some(disk)), (queued, None)] {
        let id = new.id.clone().unwrap_or_default();
        store.create(&ctx, new).await?;
        if let Some(d) = data {
            let body = futures_util::stream::iter([Ok::<_, std::io::Error>(d)]);
            store.upload(&ctx, &id, body).await?;
        }
        n += 1;
    }
    Ok(n)
}
