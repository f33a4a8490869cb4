//! Usage accounting when the service fronts a real Glance: every replica
//! counts its own calls (no store to share), `/usage` of each names it, and
//! `nova-images-proxy usage --url A --url B` merges the two; each calling
//! client is logged once a day per endpoint at `warn`, naming what it called
//! and its replacement.

mod support;

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::process::{free_port, spawn, Proc};

struct Replica {
    proc: Proc,
    metrics: String,
}

fn replica(glance: &str, name: &str) -> Replica {
    let metrics = format!("127.0.0.1:{}", free_port());
    let logs = Path::new(env!("CARGO_TARGET_TMPDIR")).join("service-logs");
    std::fs::create_dir_all(&logs).unwrap();
    let proc = spawn(
        &["--glance-url", glance],
        &[
            ("NOVA_IMAGES_PROXY__SERVER__METRICS_BIND", metrics.as_str()),
            ("NOVA_IMAGES_PROXY__LOG__FORMAT", "json"),
        ],
        &logs.join(format!("usage-replica-{name}-{}.log", std::process::id())),
    );
    while std::net::TcpStream::connect(&metrics).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    Replica { proc, metrics }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.proc.child.kill();
        let _ = self.proc.child.wait();
    }
}

/// `GET base+path` as `user_agent` with the test token; the status.
async fn call(base: &str, path: &str, user_agent: &str) -> u16 {
    support::client()
        .get(format!("{base}{path}"))
        .header("X-Auth-Token", support::TOKEN)
        .header("User-Agent", user_agent)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// `"surface endpoint client" → count` of a report (project and user are the
/// test token's throughout).
fn rows(report: &Value) -> Vec<(String, u64)> {
    let mut rows: Vec<(String, u64)> = report["callers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["project"], support::PROJECT, "{r}");
            assert_eq!(r["user"], "demo", "{r}");
            let f = |k: &str| r[k].as_str().unwrap().to_string();
            (
                [f("surface"), f("endpoint"), f("client")].join(" "),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect();
    rows.sort();
    rows
}

fn rows_of(list: &[(&str, u64)]) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = list.iter().map(|(k, n)| (k.to_string(), *n)).collect();
    v.sort();
    v
}

/// The `warn` lines of deprecated calls in a replica's JSON log.
fn warnings(proc: &Proc) -> Vec<Value> {
    proc.log_text()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| {
            l["levelname"] == "WARNING"
                && l["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("deprecated API called"))
        })
        .collect()
}

#[actix_web::test]
async fn each_replica_counts_its_own_callers_and_the_cli_merges_them() {
    let Some(glance) = support::glance_url("NIP_TEST_GLANCE_URL") else {
        return;
    };
    let client = support::client();
    let id = support::glance_image(&client, &glance, &serde_json::json!({"visibility": "public"})).await;
    let put = client
        .put(format!("{glance}/v2/images/{id}/file"))
        .header("X-Auth-Token", support::TOKEN)
        .header("Content-Type", "application/octet-stream")
        .body("image bytes")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 204);
    let (a, b) = (replica(&glance, "a"), replica(&glance, "b"));
    let show = format!("/v2.1/images/{id}");
    let meta = format!("/v2.1/{}/images/{id}/metadata", support::PROJECT);
    for _ in 0..3 {
        assert_eq!(call(&a.proc.compute, &show, "curl/8.5.0").await, 200);
    }
    assert_eq!(call(&a.proc.compute, &meta, "curl/8.5.0").await, 200);
    let sdk = "openstacksdk/4.7.1 keystoneauth1/5.11.1 python-requests/2.32.5 CPython/3.11.2";
    for _ in 0..2 {
        assert_eq!(call(&b.proc.compute, &show, sdk).await, 200);
    }
    assert_eq!(
        call(&b.proc.image, &format!("/v1/images/{id}"), "curl/8.5.0").await,
        200
    );
    // Not a deprecated call: never counted.
    assert_eq!(call(&b.proc.compute, "/v2.1", "curl/8.5.0").await, 200);

    let (ra, rb) = (
        support::usage_report(&a.metrics).await,
        support::usage_report(&b.metrics).await,
    );
    assert_eq!(
        rows(&ra),
        rows_of(&[
            ("nova images.show curl/8.5.0", 3),
            ("nova image_metadata.index curl/8.5.0", 1)
        ])
    );
    assert_eq!(
        rows(&rb),
        rows_of(&[
            ("nova images.show openstacksdk/4.7.1", 2),
            ("glance_v1 v1.images.show curl/8.5.0", 1)
        ])
    );
    let bind = |p: &Proc| p.compute.trim_start_matches("http://").to_string();
    assert_eq!(ra["replica"], bind(&a.proc));
    assert_eq!(rb["replica"], bind(&b.proc));

    // The CLI across both: the same caller on two replicas is one row.
    assert_eq!(call(&b.proc.compute, &show, "curl/8.5.0").await, 200);
    let out = Command::new(env!("CARGO_BIN_EXE_nova-images-proxy"))
        .args(["usage", "--json", "--url"])
        .arg(format!("http://{}", a.metrics))
        .arg("--url")
        .arg(format!("http://{}", b.metrics))
        .env("NO_PROXY", "*")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let merged: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        rows(&merged),
        rows_of(&[
            ("nova images.show curl/8.5.0", 4),
            ("nova image_metadata.index curl/8.5.0", 1),
            ("nova images.show openstacksdk/4.7.1", 2),
            ("glance_v1 v1.images.show curl/8.5.0", 1),
        ])
    );

    // Once a day per client and endpoint, at warn: 3 + 1 calls on replica A
    // are two lines, each naming the endpoint, the client and the replacement.
    let wa = warnings(&a.proc);
    assert_eq!(wa.len(), 2, "{wa:?}");
    let show_line = wa
        .iter()
        .find(|l| l["extra"]["endpoint"] == "images.show")
        .expect("the images.show warning");
    assert_eq!(show_line["extra"]["client"], "curl/8.5.0");
    assert_eq!(show_line["extra"]["surface"], "nova");
    assert_eq!(show_line["extra"]["project"], support::PROJECT);
    let replacement = show_line["extra"]["replacement"].as_str().unwrap();
    assert!(replacement.contains("/v2/images/"), "{replacement}");
    assert!(wa.iter().any(|l| l["extra"]["endpoint"] == "image_metadata.index"));
    // Replica B: the SDK on show, curl on v1 and (later) on show: three.
    let wb = warnings(&b.proc);
    let mut seen: Vec<String> = wb
        .iter()
        .map(|l| format!("{} {}", l["extra"]["endpoint"], l["extra"]["client"]).replace('"', ""))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            "images.show curl/8.5.0",
            "images.show openstacksdk/4.7.1",
            "v1.images.show curl/8.5.0"
        ],
        "{wb:?}"
    );
}
