//! The reference image set: 20 images in a real Glance, created exactly as the
//! captured Nova responses in `tests/fixtures/oracle` expect (deterministic
//! uuid5 ids, names, properties, data, statuses, visibility).

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha512};

const NS: &str = "6f70656e-7374-6163-6b20-342065766572";
pub const SERVER_UUIDS: [&str; 2] = [
    "b3f0b7a2-6c0c-4c5e-9a51-3a8f0f4f1a01",
    "b3f0b7a2-6c0c-4c5e-9a51-3a8f0f4f1a02",
];

pub fn image_id(i: usize) -> String {
    let ns = uuid::Uuid::parse_str(NS).expect("namespace");
    uuid::Uuid::new_v5(&ns, format!("harness-image-{i}").as_bytes()).to_string()
}

struct Template {
    name: Option<&'static str>,
    fields: Value,
    props: Value,
    bytes: usize,
    deactivate: bool,
}

fn templates() -> Vec<Template> {
    let bdm = r#"[{"boot_index": 0, "source_type": "volume", "destination_type": "volume", "snapshot_id": "5e3d2c1b-0000-4000-8000-000000000001", "delete_on_termination": false}]"#;
    vec![
        Template {
            name: Some("cirros-0.6.2-x86_64-disk"),
            fields: json!({"disk_format": "qcow2", "container_format": "bare", "visibility": "public", "min_disk": 1, "min_ram": 64}),
            props: json!({"os_distro": "cirros", "hw_disk_bus": "virtio"}),
            bytes: 0,
            deactivate: false,
        },
        Template {
            name: Some("ubuntu-24.04-server"),
            fields: json!({"disk_format": "raw", "container_format": "bare", "visibility": "public", "min_disk": 10, "min_ram": 512}),
            props: json!({"os_distro": "ubuntu", "os_version": "24.04", "auto_disk_config": "True"}),
            bytes: 2048,
            deactivate: false,
        },
        Template {
            name: Some("snapshot-of-vm-1"),
            fields: json!({"disk_format": "raw", "container_format": "bare", "visibility": "private", "min_disk": 1, "min_ram": 128}),
            props: json!({"image_type": "snapshot", "instance_uuid": SERVER_UUIDS[0], "user_id": "demo", "auto_disk_config": "False", "base_image_ref": "", "owner_project_name": "demo"}),
            bytes: 1024,
            deactivate: false,
        },
        Template {
            name: Some("debian-12-genericcloud"),
            fields: json!({"disk_format": "raw", "container_format": "bare", "visibility": "shared", "min_disk": 2, "min_ram": 256}),
            props: json!({"os_distro": "debian", "os_version": "12", "hw_qemu_guest_agent": "yes"}),
            bytes: 4096,
            deactivate: false,
        },
        Template {
            name: Some("protected-base"),
            fields: json!({"disk_format": "raw", "container_format": "bare", "visibility": "public", "protected": true, "min_ram": 512}),
            props: json!({"os_distro": "centos", "description": "cannot be deleted"}),
            bytes: 512,
            deactivate: false,
        },
        Template {
            name: Some("queued-empty"),
            fields: json!({"disk_format": "qcow2", "container_format": "bare", "visibility": "private"}),
            props: json!({}),
            bytes: 0,
            deactivate: false,
        },
        Template {
            name: Some("snapshot-bdm"),
            fields: json!({"disk_format": "raw", "container_format": "bare", "visibility": "private", "min_disk": 20}),
            props: json!({"image_type": "snapshot", "instance_uuid": SERVER_UUIDS[1], "block_device_mapping": bdm, "root_device_name": "/dev/vda", "bdm_v2": "True"}),
            bytes: 0,
            deactivate: false,
        },
        Template {
            name: Some("imagé-ünïcode ☃"),
            fields: json!({"disk_format": "raw", "container_format": "bare", "visibility": "public", "min_ram": 2048, "min_disk": 40}),
            props: json!({"os_distro": "fedora", "hw_rng_model": "virtio", "auto_disk_config": "disabled"}),
            bytes: 300,
            deactivate: false,
        },
        Template {
            name: Some("deactivated-image"),
            fields: json!({"disk_format": "raw", "container_format": "bare", "visibility": "private", "min_ram": 64}),
            props: json!({"os_distro": "cirros"}),
            bytes: 256,
            deactivate: true,
        },
        Template {
            name: None,
            fields: json!({"disk_format": "ami", "container_format": "ami", "visibility": "private"}),
            props: json!({"kernel_id": "00000000-0000-4000-8000-00000000000a", "ramdisk_id": "00000000-0000-4000-8000-00000000000b"}),
            bytes: 0,
            deactivate: false,
        },
    ]
}

/// The data of a seeded image: its id's SHA-512 repeated, cut to `n` bytes.
pub fn image_bytes(id: &str, n: usize) -> Vec<u8> {
    let digest = Sha512::digest(id.as_bytes());
    digest.iter().copied().cycle().take(n).collect()
}

/// The reference images: (Glance v2 create body, bytes to upload, deactivate).
fn plan(count: usize) -> Vec<(Map<String, Value>, usize, bool)> {
    let templates = templates();
    let mut out = Vec::new();
    for i in 0..count {
        let t = &templates[i % templates.len()];
        let round = i / templates.len();
        let mut body = Map::new();
        body.insert("id".into(), json!(image_id(i)));
        let name = t.name.map(|n| {
            if round > 0 {
                format!("{n}-{round}")
            } else {
                n.to_string()
            }
        });
        body.insert("name".into(), json!(name));
        for source in [&t.fields, &t.props] {
            for (k, v) in source.as_object().expect("object") {
                body.insert(k.clone(), v.clone());
            }
        }
        if i == 17 {
            body.insert("visibility".into(), json!("community"));
        }
        body.insert("tags".into(), json!(["harness", format!("tpl{}", i % templates.len())]));
        out.push((body, t.bytes, t.deactivate));
    }
    out
}

/// Create the `count` reference images in the Glance at `glance` (v2, no auth).
pub async fn seed(client: &reqwest::Client, glance: &str, count: usize) -> Vec<String> {
    let glance = glance.trim_end_matches('/');
    let mut ids = Vec::new();
    for (body, bytes, deactivate) in plan(count) {
        let id = body["id"].as_str().expect("id").to_string();
        let resp = client
            .post(format!("{glance}/v2/images"))
            .header("X-Auth-Token", "admin:admin")
            .header("Content-Type", "application/json")
            .body(serde_json::to_vec(&Value::Object(body)).expect("json"))
            .send()
            .await
            .expect("create image");
        let status = resp.status().as_u16();
        assert_eq!(
            status,
            201,
            "creating seed image {id} failed (the oracle needs a fresh Glance: `scripts/glance.sh start --fresh`): {}",
            resp.text().await.unwrap_or_default()
        );
        if bytes > 0 {
            let resp = client
                .put(format!("{glance}/v2/images/{id}/file"))
                .header("X-Auth-Token", "admin:admin")
                .header("Content-Type", "application/octet-stream")
                .body(image_bytes(&id, bytes))
                .send()
                .await
                .expect("upload");
            assert_eq!(resp.status().as_u16(), 204, "upload {id}");
        }
        if deactivate {
            let resp = client
                .post(format!("{glance}/v2/images/{id}/actions/deactivate"))
                .header("X-Auth-Token", "admin:admin")
                .send()
                .await
                .expect("deactivate");
            assert_eq!(resp.status().as_u16(), 204, "deactivate {id}");
        }
        ids.push(id);
    }
    ids
}

/// A Glance v2 create body as the embedded store's `NewImage`.
pub fn new_image(body: &Map<String, Value>) -> nova_images_proxy::backend::embedded::NewImage {
    use nova_images_proxy::backend::embedded::NewImage;
    let mut new = NewImage::default();
    for (k, v) in body {
        let s = v.as_str().map(str::to_string);
        match k.as_str() {
            "id" => new.id = s,
            "name" => new.name = s,
            "owner" => new.owner = Some(s),
            "visibility" => new.visibility = s,
            "protected" => new.protected = v.as_bool().unwrap_or(false),
            "os_hidden" => new.os_hidden = v.as_bool().unwrap_or(false),
            "container_format" => new.container_format = s,
            "disk_format" => new.disk_format = s,
            "min_ram" => new.min_ram = v.as_i64().unwrap_or(0),
            "min_disk" => new.min_disk = v.as_i64().unwrap_or(0),
            "tags" => {
                new.tags = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect()
            }
            _ => {
                new.properties.insert(k.clone(), v.clone());
            }
        }
    }
    new
}

/// Create the `count` reference images in an embedded store.
pub async fn seed_store(store: &nova_images_proxy::backend::embedded::EmbeddedStore, count: usize) -> Vec<String> {
    let ctx = super::seed_context();
    let mut ids = Vec::new();
    for (body, bytes, deactivate) in plan(count) {
        let id = body["id"].as_str().expect("id").to_string();
        let mut new = new_image(&body);
        if body["visibility"] == "community" {
            // The reference Glance runs without Keystone: every call is an
            // admin of no project, to which a community image is listed only
            // when asked for. Owned by another project here, it is the same to
            // the test project's token (the store enforces Glance's policy).
            new.owner = Some(Some("c0mmun1ty0wner".into()));
        }
        store.create(&ctx, new).await.expect("create");
        if bytes > 0 {
            let data = bytes::Bytes::from(image_bytes(&id, bytes));
            store
                .upload(&ctx, &id, futures_util::stream::iter([Ok::<_, std::io::Error>(data)]))
                .await
                .expect("upload");
        }
        if deactivate {
            store.set_active(&ctx, &id, false).await.expect("deactivate");
        }
        ids.push(id);
    }
    ids
}
