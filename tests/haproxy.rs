//! The shipped HAProxy recipe (`etc/haproxy/nova-images-proxy.cfg`, only its
//! addresses replaced) run by a real HAProxy in front of real Nova 34
//! (`scripts/nova.sh`) and the service, both on the same real Glance. Who
//! answered is told by the service's own request counter: every images path
//! variant must reach the service, everything else Nova (compute frontend);
//! `/v1/…` the service and the rest Glance (image frontend). Then old clients
//! (openstacksdk, python-glanceclient v1 and v2) work through the two endpoints.

mod support;

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::process::free_port;

struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Requests the service answered, the health checks aside.
async fn served(client: &reqwest::Client, metrics: &str) -> u64 {
    let text = support::metrics_text(client, metrics).await;
    text.lines()
        .filter(|l| l.starts_with("nova_images_proxy_requests_total{") && !l.contains("endpoint=\"healthcheck\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// [`served`] once it equals `want` (a request is counted when its response
/// has been sent, a moment after the client has it), or after 300 ms of not.
async fn served_now(client: &reqwest::Client, metrics: &str, want: u64) -> u64 {
    let started = Instant::now();
    loop {
        let n = served(client, metrics).await;
        if n == want || started.elapsed() > Duration::from_millis(300) {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn get(client: &reqwest::Client, url: &str) -> (u16, String) {
    let r = client
        .get(url)
        .header("X-Auth-Token", support::TOKEN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    (r.status().as_u16(), r.text().await.unwrap())
}

#[actix_web::test]
async fn haproxy_sends_every_images_path_to_the_service_and_the_rest_to_nova_and_glance() {
    let Some(glance) = support::glance_url("NIP_TEST_GLANCE_URL") else {
        return;
    };
    let have_haproxy = Command::new("haproxy").arg("-v").output().is_ok();
    if !have_haproxy || !support::real::nova_installed() {
        assert!(
            std::env::var_os("NIP_REQUIRE_HAPROXY").is_none(),
            "haproxy or Nova missing (scripts/debian-tools.sh install, scripts/nova.sh install)"
        );
        eprintln!("haproxy or Nova not installed: skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let client = support::client();

    // One image of our own on the shared Glance.
    let r = client
        .post(format!("{glance}/v2/images"))
        .header("X-Auth-Token", "admin:admin")
        .header("Content-Type", "application/json")
        .body(r#"{"name": "haproxy-recipe", "visibility": "public", "disk_format": "raw", "container_format": "bare"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let image: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    let id = image["id"].as_str().unwrap().to_string();

    // Real Nova on the same Glance.
    let nova_port = free_port();
    let _nova = support::real::nova(nova_port, &dir.path().join("nova"), &glance);

    // The service, metrics on (they tell who answered), behind the proxy.
    let metrics = format!("127.0.0.1:{}", free_port());
    let proc = support::process::spawn(
        &["--glance-url", &glance],
        &[
            ("NOVA_IMAGES_PROXY__SERVER__METRICS_BIND", metrics.as_str()),
            (
                "NOVA_IMAGES_PROXY__OSLO_MIDDLEWARE__ENABLE_PROXY_HEADERS_PARSING",
                "true",
            ),
        ],
        &dir.path().join("service.log"),
    );
    let (compute_port, image_port) = (free_port(), free_port());
    let config = std::fs::read_to_string(root().join("etc/haproxy/nova-images-proxy.cfg"))
        .unwrap()
        .replace("127.0.0.1:8774", &format!("127.0.0.1:{compute_port}"))
        .replace("127.0.0.1:9292", &format!("127.0.0.1:{image_port}"))
        .replace("127.0.0.1:18774", &format!("127.0.0.1:{nova_port}"))
        .replace("127.0.0.1:19292", glance.trim_start_matches("http://"))
        .replace("127.0.0.1:28774", support::raw::addr_of(&proc.compute).as_str())
        .replace("127.0.0.1:29292", support::raw::addr_of(&proc.image).as_str());
    let cfg = dir.path().join("haproxy.cfg");
    std::fs::write(&cfg, config).unwrap();
    let log = std::fs::File::create(dir.path().join("haproxy.log")).unwrap();
    let _haproxy = Guard(
        Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap(),
    );
    let compute = format!("http://127.0.0.1:{compute_port}");
    let image_ep = format!("http://127.0.0.1:{image_port}");
    let started = Instant::now();
    while client.get(format!("{compute}/")).send().await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "haproxy did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let p = support::PROJECT;
    let to_service = [
        "/v2.1/images".to_string(),
        "/v2.1/images/detail".into(),
        "/v2.1/images/detail?limit=1&name=haproxy-recipe".into(),
        "/v2.1/images.json".into(),
        "/v2.1/images/detail.json".into(),
        format!("/v2.1/images/{id}"),
        format!("/v2.1/images/{id}.json?foo=bar"),
        format!("/v2.1/images/{id}/metadata"),
        format!("/v2.1/{p}/images"),
        format!("/v2.1/{p}/images/detail?limit=2"),
        format!("/v2.1/{p}/images/{id}"),
        format!("/v2/{p}/images"),
        format!("/v2/{p}/images/{id}/metadata"),
        format!("/v2.1/%69mages/{id}"),
    ];
    for path in &to_service {
        let before = served(&client, &metrics).await;
        let (status, body) = get(&client, &format!("{compute}{path}")).await;
        assert!(status < 500, "{path}: {status} {body}");
        assert_eq!(
            served_now(&client, &metrics, before + 1).await,
            before + 1,
            "{path} did not reach the service"
        );
    }
    let (_, show) = get(&client, &format!("{compute}/v2.1/images/{id}")).await;
    assert!(show.contains("haproxy-recipe"), "{show}");

    let to_nova = [
        "/".to_string(),
        "/v2.1".into(),
        "/v2.1/".into(),
        "/v2/".into(),
        "/v2.1/flavors".into(),
        "/v2.1/servers".into(),
        format!("/v2.1/{p}/flavors"),
        "/v2.1/imagesfoo".into(),
        "/v2.1/os-keypairs".into(),
    ];
    for path in &to_nova {
        let before = served(&client, &metrics).await;
        let (status, body) = get(&client, &format!("{compute}{path}")).await;
        assert!(status < 500, "{path}: {status} {body}");
        assert_eq!(
            served_now(&client, &metrics, before + 1).await,
            before,
            "{path} reached the service"
        );
    }
    let (_, versions) = get(&client, &format!("{compute}/")).await;
    assert!(versions.contains("\"versions\""), "{versions}");
    let (status, flavors) = get(&client, &format!("{compute}/v2.1/flavors")).await;
    assert_eq!(status, 200, "{flavors}");
    assert!(flavors.contains("\"flavors\""), "{flavors}");

    // The image frontend: v1 to the service, the rest to Glance.
    let before = served(&client, &metrics).await;
    let (status, v1) = get(&client, &format!("{image_ep}/v1/images")).await;
    assert_eq!(status, 200, "{v1}");
    assert_eq!(served_now(&client, &metrics, before + 1).await, before + 1);
    let (status, v2) = get(&client, &format!("{image_ep}/v2/images?limit=1")).await;
    assert_eq!(status, 200, "{v2}");
    assert!(v2.contains("/v2/schemas/images"), "{v2}");
    assert_eq!(
        served_now(&client, &metrics, before + 2).await,
        before + 1,
        "/v2/images reached the service"
    );

    // Old clients through the two endpoints.
    let python = std::env::var("NIP_GLANCE_PYTHON")
        .map_or_else(|_| support::real::home_cache("glance-venv/bin/python"), PathBuf::from);
    let out = Command::new(&python)
        .arg(root().join("tests/clients/through_haproxy.py"))
        .args([&compute, &image_ep, support::TOKEN])
        .env("NO_PROXY", "*")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "clients: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(seen["flavors"].is_array() && seen["servers"].is_array(), "{seen}");
    for key in ["images", "v1_images", "v2_images"] {
        assert!(
            seen[key].as_array().unwrap().iter().any(|i| i == id.as_str()),
            "{key}: {seen}"
        );
    }
    // The service's request lines name the client HAProxy forwarded for.
    assert!(proc.log_text().contains("client=127.0.0.1"), "{}", proc.log_text());
    let _ = client
        .delete(format!("{glance}/v2/images/{id}"))
        .header("X-Auth-Token", "admin:admin")
        .send()
        .await;
}
