//! The metrics listener scraped by a real Prometheus (Debian's `prometheus`,
//! installed by `scripts/debian-tools.sh`): Prometheus sees the target up and
//! counts the requests this test sends.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::process::free_port;

struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Prometheus scraping `target` every second, its API on the returned URL.
fn prometheus(dir: &std::path::Path, target: &str) -> Option<(Prometheus, String)> {
    if Command::new("prometheus").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("NIP_REQUIRE_PROMETHEUS").is_none(),
            "prometheus is missing (scripts/debian-tools.sh install provides it)"
        );
        eprintln!("prometheus not found: skipping the scrape test");
        return None;
    }
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: nova-images-proxy\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start prometheus");
    Some((Prometheus(child), format!("http://127.0.0.1:{port}")))
}

/// The value of the single sample `query` gives, once Prometheus has one.
async fn query(client: &reqwest::Client, api: &str, q: &str) -> Option<f64> {
    let q: String = form_urlencoded::byte_serialize(q.as_bytes()).collect();
    let r = client.get(format!("{api}/api/v1/query?query={q}")).send().await.ok()?;
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.ok()?).ok()?;
    let sample = v["data"]["result"].as_array()?.first()?.clone();
    sample["value"][1].as_str()?.parse().ok()
}

async fn wait_for(client: &reqwest::Client, api: &str, q: &str, want: f64) -> Option<f64> {
    let started = Instant::now();
    let mut last = None;
    while started.elapsed() < Duration::from_secs(60) {
        last = query(client, api, q).await;
        if last == Some(want) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    last
}

#[actix_web::test]
async fn a_real_prometheus_scrapes_the_metrics_listener_and_counts_requests() {
    let dir = tempfile::tempdir().unwrap();
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let data = dir.path().join("data").to_string_lossy().into_owned();
    let proc = support::process::spawn(
        &["--data-dir", &data],
        &[("NOVA_IMAGES_PROXY__SERVER__METRICS_BIND", metrics_addr.as_str())],
        &dir.path().join("service.log"),
    );
    let Some((_prometheus, api)) = prometheus(dir.path(), &metrics_addr) else {
        return;
    };
    let client = support::client();
    let sent = 7;
    for _ in 0..sent {
        let r = client
            .get(format!("{}/v2.1/images/detail", proc.compute))
            .header("X-Auth-Token", support::TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    // The exposition itself: names, types, build info; no identity labels.
    let text = support::metrics_text(&client, &metrics_addr).await;
    for needle in [
        "# TYPE nova_images_proxy_requests counter",
        "nova_images_proxy_requests_total{listener=\"compute\",endpoint=\"images.detail\",method=\"GET\",status=\"200\"} 7",
        "# TYPE nova_images_proxy_request_duration_seconds histogram",
        "nova_images_proxy_requests_in_flight{listener=\"compute\"} 0",
        "nova_images_proxy_build_info{version=\"",
    ] {
        assert!(text.contains(needle), "{needle} not in:\n{text}");
    }
    assert!(!text.contains("6f70656e737461636b20342065766572") && !text.contains("demo"));
    // The embedded store's gauges, counted at the scrape: its three demo
    // images and their data (the 1 MiB disk and its snapshot).
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
            .and_then(|v| v.trim().parse::<i64>().ok())
    };
    assert_eq!(value("nova_images_proxy_embedded_images"), Some(3), "{text}");
    assert_eq!(
        value("nova_images_proxy_embedded_image_bytes"),
        Some(2 * 1024 * 1024),
        "{text}"
    );
    // The API listeners do not serve it.
    let r = client.get(format!("{}/metrics", proc.compute)).send().await.unwrap();
    assert!(!r.text().await.unwrap().contains("nova_images_proxy_"));

    let up = wait_for(&client, &api, "up{job=\"nova-images-proxy\"}", 1.0).await;
    assert_eq!(
        up,
        Some(1.0),
        "target not up: {}",
        std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default()
    );
    let counted = wait_for(
        &client,
        &api,
        "sum(nova_images_proxy_requests_total{endpoint=\"images.detail\",status=\"200\"})",
        sent as f64,
    )
    .await;
    assert_eq!(counted, Some(sent as f64));
    let observed = wait_for(
        &client,
        &api,
        "sum(nova_images_proxy_request_duration_seconds_count{endpoint=\"images.detail\"})",
        sent as f64,
    )
    .await;
    assert_eq!(observed, Some(sent as f64));
}

/// Calls to the real Glance are counted by operation and outcome, and timed.
#[actix_web::test]
async fn glance_calls_are_counted_by_operation_and_outcome() {
    let Some(glance) = support::glance_url("NIP_TEST_GLANCE_URL") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let proc = support::process::spawn(
        &["--glance-url", &glance],
        &[("NOVA_IMAGES_PROXY__SERVER__METRICS_BIND", metrics_addr.as_str())],
        &dir.path().join("service.log"),
    );
    let client = support::client();
    for path in [
        "/v2.1/images/detail?limit=1",
        "/v2.1/images/00000000-0000-4000-8000-000000000000",
    ] {
        let r = client
            .get(format!("{}{path}", proc.compute))
            .header("X-Auth-Token", support::TOKEN)
            .send()
            .await
            .unwrap();
        assert!(r.status().as_u16() < 500, "{path}: {}", r.status());
    }
    let text = support::metrics_text(&client, &metrics_addr).await;
    for needle in [
        "nova_images_proxy_backend_requests_total{operation=\"GET /v2/images\",outcome=\"answered\"}",
        "nova_images_proxy_backend_requests_total{operation=\"GET /v2/images/{id}\",outcome=\"answered\"} 1",
        "nova_images_proxy_backend_request_duration_seconds_count{operation=\"GET /v2/images/{id}\"} 1",
    ] {
        assert!(text.contains(needle), "{needle} not in:\n{text}");
    }
    // Glance answered at once: no retry (a family shows once it has a sample).
    assert!(!text.contains("nova_images_proxy_backend_retries_total{"), "{text}");
    // Eight metadata writes to one image at once: every write is in one
    // group commit (a batch of one or more), so the histogram's sum is 8.
    let id = support::glance_image(&client, &glance, &serde_json::json!({})).await;
    let writes = (0..8).map(|i| {
        let (client, url) = (client.clone(), format!("{}/v2.1/images/{id}/metadata", proc.compute));
        async move {
            let body = serde_json::json!({"metadata": {format!("k{i}"): "v"}}).to_string();
            let r = client
                .post(url)
                .header("X-Auth-Token", support::TOKEN)
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
        }
    });
    futures_util::future::join_all(writes).await;
    let text = support::metrics_text(&client, &metrics_addr).await;
    assert!(
        text.contains("nova_images_proxy_metadata_group_commit_writes_sum 8.0"),
        "group commits of the 8 writes not in:\n{text}"
    );
}
