//! Durability of the embedded store: the service binary is killed with
//! SIGKILL while clients write, then restarted on the same data directory.
//! Nothing it acknowledged may be lost, and nothing half-written may show.

mod support;

use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Run the real binary on `dir` (no quota: writers keep writing until the
/// kill) and wait until it answers.
fn spawn(dir: &std::path::Path) -> support::process::Proc {
    let data = dir.to_string_lossy().into_owned();
    support::process::spawn(
        &["--data-dir", &data, "--no-demo-images", "--log-level", "warn"],
        &[("NOVA_IMAGES_PROXY__API__METADATA_ITEMS", "-1")],
        &dir.join("service.log"),
    )
}

async fn metadata(client: &reqwest::Client, base: &str, id: &str) -> serde_json::Map<String, Value> {
    let r = client
        .get(format!("{base}/v2.1/images/{id}/metadata"))
        .header("X-Auth-Token", support::TOKEN)
        .send()
        .await
        .expect("get metadata");
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    v["metadata"].as_object().cloned().unwrap_or_default()
}

#[actix_web::test]
async fn acknowledged_metadata_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let store = nova_images_proxy::backend::embedded::EmbeddedStore::open(dir.path()).unwrap();
        let new = nova_images_proxy::backend::embedded::NewImage {
            name: Some("crash-target".into()),
            visibility: Some("public".into()),
            ..Default::default()
        };
        store.create(&support::seed_context(), new).await.unwrap().id
    };
    let client = support::client();
    for round in 0..3 {
        let mut proc = spawn(dir.path());
        let acked = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for w in 0..8 {
            let (client, base, id, acked) = (client.clone(), proc.compute.clone(), id.clone(), acked.clone());
            tasks.push(actix_web::rt::spawn(async move {
                for n in 0.. {
                    let key = format!("r{round}w{w}n{n}");
                    let value = format!("value-of-{key}");
                    let body = json!({"metadata": {key.clone(): value.clone()}}).to_string();
                    let r = client
                        .post(format!("{base}/v2.1/images/{id}/metadata"))
                        .header("X-Auth-Token", support::TOKEN)
                        .header("Content-Type", "application/json")
                        .body(body)
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status().as_u16() == 200 => acked.lock().unwrap().push((key, value)),
                        _ => break, // killed mid-request: not acknowledged
                    }
                }
            }));
        }
        // Kill once writes are flowing (a few acknowledged), however loaded the machine.
        let flowing = std::time::Instant::now();
        while acked.lock().unwrap().len() < 8 && flowing.elapsed() < Duration::from_secs(20) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        proc.child.kill().expect("SIGKILL");
        proc.child.wait().unwrap();
        for t in tasks {
            let _ = t.await;
        }
        let proc = spawn(dir.path());
        let meta = metadata(&client, &proc.compute, &id).await;
        let acked = acked.lock().unwrap().clone();
        assert!(!acked.is_empty(), "round {round}: some writes were acknowledged");
        for (k, v) in &acked {
            assert_eq!(meta.get(k), Some(&json!(v)), "round {round}: acknowledged {k} survived");
        }
        for (k, v) in &meta {
            assert_eq!(v, &json!(format!("value-of-{k}")), "no half-written value for {k}");
        }
        eprintln!(
            "round {round}: {} writes acknowledged before SIGKILL, {} keys after restart",
            acked.len(),
            meta.len()
        );
        // Start the next round from a clean slate of keys.
        let r = client
            .put(format!("{}/v2.1/images/{id}/metadata", proc.compute))
            .header("X-Auth-Token", support::TOKEN)
            .header("Content-Type", "application/json")
            .body(r#"{"metadata": {}}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let _ = &proc.image;
    }
}

#[actix_web::test]
async fn uploads_cut_by_sigkill_leave_the_image_queued_and_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let client = support::client();
    let mut proc = spawn(dir.path());
    let create = |name: &str| {
        let (client, image) = (client.clone(), proc.image.clone());
        let body = json!({"name": name, "disk_format": "raw", "container_format": "bare"});
        async move { support::create_image_as(&client, &image, Some(support::TOKEN), &body).await }
    };
    // One upload that completes (acknowledged), one cut off mid-way.
    let done = create("done").await;
    let data: Vec<u8> = (0..2_000_000u32).map(|i| (i % 253) as u8).collect();
    let r = client
        .put(format!("{}/v2/images/{done}/file", proc.image))
        .header("X-Auth-Token", support::TOKEN)
        .header("Content-Type", "application/octet-stream")
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let cut = create("cut").await;
    let chunks = futures_util::stream::unfold(0u32, |n| async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Some((
            Ok::<_, std::io::Error>(bytes::Bytes::from(vec![n as u8; 64 * 1024])),
            n + 1,
        ))
    });
    let upload = {
        let (client, url) = (client.clone(), format!("{}/v2/images/{cut}/file", proc.image));
        actix_web::rt::spawn(async move {
            client
                .put(url)
                .header("X-Auth-Token", support::TOKEN)
                .header("Content-Type", "application/octet-stream")
                .body(reqwest::Body::wrap_stream(chunks))
                .send()
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(600)).await;
    let staged = std::fs::read_dir(dir.path().join("staging")).unwrap().count();
    assert_eq!(staged, 1, "the upload is under way in staging");
    proc.child.kill().expect("SIGKILL");
    proc.child.wait().unwrap();
    assert!(upload.await.unwrap().is_err(), "the cut upload was never acknowledged");

    let proc = spawn(dir.path());
    let get = |id: String| {
        let (client, image) = (client.clone(), proc.image.clone());
        async move {
            let r = client
                .get(format!("{image}/v2/images/{id}"))
                .header("X-Auth-Token", support::TOKEN)
                .send()
                .await
                .unwrap();
            serde_json::from_slice::<Value>(&r.bytes().await.unwrap()).unwrap()
        }
    };
    assert_eq!(get(cut.clone()).await["status"], "queued");
    assert_eq!(get(cut.clone()).await["size"], Value::Null);
    assert!(
        !dir.path().join("images").join(&cut).exists(),
        "no partial file where reads look"
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("staging")).unwrap().count(),
        0,
        "staging emptied"
    );
    let v = get(done.clone()).await;
    assert_eq!(
        (v["status"].clone(), v["size"].clone()),
        (json!("active"), json!(data.len()))
    );
    let r = client
        .get(format!("{}/v2/images/{done}/file", proc.image))
        .header("X-Auth-Token", support::TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(&r.bytes().await.unwrap()[..], &data[..], "acknowledged data intact");
    // The queued image takes a new upload.
    let r = client
        .put(format!("{}/v2/images/{cut}/file", proc.image))
        .header("X-Auth-Token", support::TOKEN)
        .header("Content-Type", "application/octet-stream")
        .body(vec![1u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
}
