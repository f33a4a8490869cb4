//! Usage accounting of the deprecated surfaces, driven by real clients:
//! python-novaclient 7.1.2 (`scripts/novaclient.sh`), openstacksdk (the Glance
//! venv) and python-glanceclient's v1 code (`scripts/glanceclient-v1.sh`) call
//! the binary (embedded store); `/usage` on the metrics listener, the `usage`
//! command (one and two "replicas") and the Prometheus counter must name the
//! right client, project, user, endpoint and counts; the counts survive a
//! restart; a small `usage.max_entries` evicts the least recently seen and
//! counts the evictions.

mod support;

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use support::process::{free_port, spawn, Proc};

/// The python of `var` (set by `scripts/test`), or a skip.
fn python(var: &str, script: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            support::skip(&format!(
                "{var} is not set ({script} install prints the python to use; scripts/test sets it)"
            ));
            None
        }
    }
}

/// Run `tests/clients/usage_clients.py MODE URL TOKEN IMAGE` with `python`; its line.
fn client(python: &str, mode: &str, url: &str, token: &str, image: &str) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/usage_clients.py");
    let out = Command::new(python)
        .arg(script)
        .args([mode, url, token, image])
        .env("NO_PROXY", "*")
        .output()
        .expect("run the client");
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && line.starts_with("ok "), "{mode}: {line}");
    line
}

struct Running {
    proc: Proc,
    metrics: String,
}

fn start(data: &Path, env: &[(&str, &str)], log: &str) -> Running {
    let port = free_port();
    let metrics = format!("127.0.0.1:{port}");
    let mut all = vec![
        ("NOVA_IMAGES_PROXY__SERVER__METRICS_BIND", metrics.as_str()),
        ("NOVA_IMAGES_PROXY__USAGE__FLUSH_SECS", "0.2"),
    ];
    all.extend_from_slice(env);
    let logs = Path::new(env!("CARGO_TARGET_TMPDIR")).join("service-logs");
    std::fs::create_dir_all(&logs).unwrap();
    let proc = spawn(&["--data-dir", data.to_str().unwrap()], &all, &logs.join(log));
    while std::net::TcpStream::connect(&metrics).is_err() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Running { proc, metrics }
}

fn stop(mut r: Running) {
    r.proc.signal("TERM");
    let status = r.proc.child.wait().unwrap();
    assert!(status.success(), "exit {status}");
}

/// `(surface, endpoint, project, user, client, microversion) → count` of a report.
fn rows(report: &Value) -> Vec<(String, u64)> {
    let mut rows: Vec<(String, u64)> = report["callers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let f = |k: &str| r[k].as_str().unwrap().to_string();
            (
                [
                    f("surface"),
                    f("endpoint"),
                    f("project"),
                    f("user"),
                    f("client"),
                    f("microversion"),
                ]
                .join(" "),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect();
    rows.sort();
    rows
}

fn cli(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_nova-images-proxy"))
        .arg("usage")
        .args(args)
        .env("NO_PROXY", "*")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The version of openstacksdk installed beside `python`.
fn sdk_version(python: &str) -> String {
    let out = Command::new(python)
        .args(["-c", "import importlib.metadata as m; print(m.version('openstacksdk'))"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[actix_web::test]
async fn real_clients_appear_in_usage_the_cli_and_metrics_and_survive_a_restart() {
    let (Some(nova), Some(v1)) = (
        python("NIP_NOVACLIENT", "scripts/novaclient.sh"),
        python("NIP_GLANCECLIENT_V1", "scripts/glanceclient-v1.sh"),
    ) else {
        return;
    };
    let sdk = std::env::var("NIP_GLANCE_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/.cache/nova-images-proxy/glance-venv/bin/python",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    if !Path::new(&sdk).exists() {
        support::skip(&format!(
            "no python with openstacksdk at {sdk} (scripts/glance.sh install makes it)"
        ));
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let svc = start(data.path(), &[], "usage-clients.log");
    let (compute, image) = (format!("{}/v2.1", svc.proc.compute), svc.proc.image.clone());
    // The demo images: `demo-raw-disk` is public and owned by project demo.
    let listed = support::client()
        .get(format!("{compute}/images"))
        .header("X-Auth-Token", "demo:demo")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let listed: Value = serde_json::from_slice(&listed).unwrap();
    let id = listed["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "demo-raw-disk")
        .map(|i| i["id"].as_str().unwrap().to_string())
        .expect("demo-raw-disk");
    for _ in 0..2 {
        client(&nova, "novaclient", &compute, "alice:demo", &id);
    }
    client(&sdk, "openstacksdk", &compute, "bob:sdkproject", &id);
    client(&v1, "glanceclient-v1", &image, "carol:v1project", &id);
    let sdk_client = format!("openstacksdk/{}", sdk_version(&sdk));
    let expected: Vec<(String, u64)> = {
        let mut e = vec![
            ("nova images.detail demo alice python-novaclient 2.1".to_string(), 2),
            ("nova images.show demo alice python-novaclient 2.1".to_string(), 2),
            (
                "nova image_metadata.create demo alice python-novaclient 2.1".to_string(),
                2,
            ),
            (format!("nova images.detail sdkproject bob {sdk_client} 2.1"), 1),
            (format!("nova images.show sdkproject bob {sdk_client} 2.1"), 1),
            (
                "glance_v1 v1.images.meta v1project carol python-glanceclient -".to_string(),
                1,
            ),
            (
                "glance_v1 v1.images.detail v1project carol python-glanceclient -".to_string(),
                1,
            ),
            // the test's own listing above (reqwest sends no User-Agent)
            ("nova images.index demo demo other 2.1".to_string(), 1),
        ];
        e.sort();
        e
    };
    let report = support::usage_report(&svc.metrics).await;
    assert_eq!(rows(&report), expected);
    assert_eq!(report["evictions"], 0);
    let first = &report["callers"][0];
    assert_eq!(first["project"], "v1project", "most recently seen first");
    assert!(report["daily"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["client"] == "python-novaclient" && d["count"] == 6));

    // The CLI: one replica as a table and as JSON; the same replica named
    // twice merges to twice the counts.
    let url = format!("http://{}", svc.metrics);
    let table = cli(&["--url", &url, "--sort", "count"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("LAST SEEN") && lines[0].contains("CLIENT"),
        "{table}"
    );
    assert!(
        lines[1].contains("python-novaclient") && lines[1].split_whitespace().nth(1) == Some("2"),
        "{table}"
    );
    assert!(table.contains(&sdk_client), "{table}");
    let last = lines.last().unwrap();
    assert!(
        last.starts_with("8 caller(s) on 127.0.0.1:") && last.ends_with("; 0 evicted"),
        "{table}"
    );
    let merged: Value =
        serde_json::from_str(&cli(&["--url", &url, "--url", &format!("{url}/usage"), "--json"])).unwrap();
    let doubled: Vec<(String, u64)> = expected.iter().map(|(k, n)| (k.clone(), n * 2)).collect();
    assert_eq!(rows(&merged), doubled);

    // Prometheus: by surface, endpoint and client; never a project or user.
    let text = support::metrics_text(&support::client(), &svc.metrics).await;
    let line = "nova_images_proxy_deprecated_calls_total{surface=\"nova\",endpoint=\"images.show\",client=\"python-novaclient\"} 2";
    assert!(text.lines().any(|l| l == line), "{text}");
    let sdk_line = format!(
        "nova_images_proxy_deprecated_calls_total{{surface=\"nova\",endpoint=\"images.detail\",client=\"{sdk_client}\"}} 1"
    );
    assert!(text.lines().any(|l| l == sdk_line), "{text}");
    assert!(!text.contains("sdkproject") && !text.contains("alice"), "{text}");

    // A graceful restart keeps the counts (embedded store), and counting goes on.
    stop(svc);
    let svc = start(data.path(), &[], "usage-clients-restarted.log");
    assert_eq!(rows(&support::usage_report(&svc.metrics).await), expected);
    client(&v1, "glanceclient-v1", &svc.proc.image, "carol:v1project", &id);
    let again = rows(&support::usage_report(&svc.metrics).await);
    assert!(again.contains(&(
        "glance_v1 v1.images.meta v1project carol python-glanceclient -".to_string(),
        2
    )));
    stop(svc);
}

#[actix_web::test]
async fn the_cap_evicts_the_least_recently_seen_and_counts_evictions() {
    let data = tempfile::tempdir().unwrap();
    let svc = start(
        data.path(),
        &[("NOVA_IMAGES_PROXY__USAGE__MAX_ENTRIES", "3")],
        "usage-cap.log",
    );
    let http = support::client();
    let call = |project: &str| {
        http.get(format!("{}/v2.1/images", svc.proc.compute))
            .header("X-Auth-Token", format!("u:{project}"))
            .header("User-Agent", "curl/8.14.1")
            .send()
    };
    for p in ["p1", "p2", "p3", "p1", "p4", "p5"] {
        assert_eq!(call(p).await.unwrap().status(), 200);
    }
    let report = support::usage_report(&svc.metrics).await;
    let projects: Vec<&str> = report["callers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["project"].as_str().unwrap())
        .collect();
    // p2 and p3 were the least recently seen when p4 and p5 came.
    assert_eq!(projects, ["p5", "p4", "p1"]);
    assert_eq!(report["evictions"], 2);
    assert_eq!(report["entries"], 3);
    assert_eq!(report["callers"][2]["count"], 2);
    stop(svc);
    let svc = start(
        data.path(),
        &[("NOVA_IMAGES_PROXY__USAGE__MAX_ENTRIES", "3")],
        "usage-cap-restarted.log",
    );
    let report = support::usage_report(&svc.metrics).await;
    assert_eq!(report["evictions"], 2);
    assert_eq!(report["entries"], 3);
    stop(svc);
}

#[actix_web::test]
async fn usage_behind_keystone_needs_the_admin_role() {
    let url = match std::env::var("NIP_KEYSTONE_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => {
            assert_ne!(
                std::env::var("NIP_REQUIRE_KEYSTONE").as_deref(),
                Ok("1"),
                "NIP_REQUIRE_KEYSTONE=1 but NIP_KEYSTONE_URL is not set"
            );
            support::skip("NIP_KEYSTONE_URL is not set (scripts/test starts a real Keystone)");
            return;
        }
    };
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"));
    let domain = std::env::var("NIP_KEYSTONE_DOMAIN").unwrap_or_else(|_| "Default".into());
    let (admin, _) = support::password_token(
        &url,
        &domain,
        &var("NIP_KEYSTONE_ADMIN_USER"),
        &var("NIP_KEYSTONE_ADMIN_PASSWORD"),
        &var("NIP_KEYSTONE_ADMIN_PROJECT"),
    )
    .await;
    let (member, _) = support::password_token(
        &url,
        &domain,
        &var("NIP_KEYSTONE_MEMBER_USER"),
        &var("NIP_KEYSTONE_MEMBER_PASSWORD"),
        &var("NIP_KEYSTONE_DEMO_PROJECT"),
    )
    .await;
    let data = tempfile::tempdir().unwrap();
    let svc = start(
        data.path(),
        &[
            ("NOVA_IMAGES_PROXY__AUTH__STRATEGY", "keystone"),
            ("NOVA_IMAGES_PROXY__AUTH__KEYSTONE_URL", &url),
            ("NOVA_IMAGES_PROXY__EMBEDDED__ENABLED", "true"),
        ],
        "usage-keystone.log",
    );
    let http = support::client();
    let r = http
        .get(format!("{}/v2.1/images", svc.proc.compute))
        .header("X-Auth-Token", &member)
        .header("User-Agent", "curl/8.14.1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let status = |token: Option<&str>| {
        let mut rb = http.get(format!("http://{}/usage", svc.metrics));
        if let Some(t) = token {
            rb = rb.header("X-Auth-Token", t);
        }
        rb.send()
    };
    assert_eq!(status(None).await.unwrap().status(), 401);
    assert_eq!(status(Some("garbage")).await.unwrap().status(), 401);
    assert_eq!(status(Some(&member)).await.unwrap().status(), 403);
    let r = status(Some(&admin)).await.unwrap();
    assert_eq!(r.status(), 200);
    let report: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    let caller = &report["callers"][0];
    assert_eq!(caller["project"], var("NIP_KEYSTONE_DEMO_PROJECT_ID").as_str());
    assert_eq!(caller["user"], var("NIP_KEYSTONE_MEMBER_USER_ID").as_str());
    assert_eq!(caller["client"], "curl/8.14.1");
    // The CLI with the admin's token.
    let out = cli(&["--url", &format!("http://{}", svc.metrics), "--token", &admin]);
    assert!(out.contains(&var("NIP_KEYSTONE_MEMBER_USER_ID")), "{out}");
    stop(svc);
}
