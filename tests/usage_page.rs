//! The `/usage` HTML page in a real headless browser (Debian's `chromium`,
//! installed by `scripts/debian-tools.sh`): after calls from three clients,
//! the rendered DOM holds one row per caller of `/usage`'s JSON and one bar per
//! (day, client) with its count, a screenshot is taken, and the browser logs
//! no console message (checked to be caught, on a page that throws).

mod support;

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use support::process::{free_port, spawn};

fn chromium() -> Option<String> {
    let found = std::env::var("NIP_CHROMIUM")
        .ok()
        .filter(|p| !p.is_empty())
        .or_else(|| {
            let out = Command::new("sh").args(["-c", "command -v chromium"]).output().ok()?;
            let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
            (!path.is_empty()).then_some(path)
        });
    if found.is_none() {
        if std::env::var("NIP_REQUIRE_CHROMIUM").as_deref() == Ok("1") {
            panic!("no chromium (scripts/debian-tools.sh install installs it; NIP_REQUIRE_CHROMIUM=1)");
        }
        support::skip("no chromium (scripts/debian-tools.sh install installs it)");
    }
    found
}

/// Run headless Chromium on `url` with `args`; (stdout, stderr).
fn headless(chromium: &str, profile: &Path, args: &[&str], url: &str) -> (String, String) {
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--enable-logging=stderr",
            "--v=0",
            &format!("--user-data-dir={}", profile.display()),
        ])
        .args(args)
        .arg(url)
        .env("NO_PROXY", "*")
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The console messages Chromium logged (`…:CONSOLE(n)] "…"`, or `console.*` lines).
fn console_messages(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught") || l.contains("Failed to load resource"))
        .collect()
}

#[actix_web::test]
async fn the_usage_page_renders_rows_and_chart_in_headless_chromium() {
    let Some(chromium) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let metrics = format!("127.0.0.1:{}", free_port());
    let logs = Path::new(env!("CARGO_TARGET_TMPDIR")).join("service-logs");
    std::fs::create_dir_all(&logs).unwrap();
    let mut svc = spawn(
        &["--data-dir", dir.path().join("data").to_str().unwrap()],
        &[("NOVA_IMAGES_PROXY__SERVER__METRICS_BIND", &metrics)],
        &logs.join("usage-page.log"),
    );
    while std::net::TcpStream::connect(&metrics).is_err() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let http = support::client();
    for (ua, token, path, times) in [
        ("python-novaclient", "alice:demo", "/v2.1/images/detail", 3),
        ("openstacksdk/4.22.0 keystoneauth1/5.18.1", "bob:sdk", "/v2.1/images", 2),
        ("curl/8.14.1", "carol:<script>alert(1)</script>", "/v2/images", 1),
    ] {
        for _ in 0..times {
            let r = http
                .get(format!("{}{path}", svc.compute))
                .header("X-Auth-Token", token)
                .header("User-Agent", ua)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    }
    let r = http
        .get(format!("http://{metrics}/usage"))
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    let json: Value = serde_json::from_slice(
        &http
            .get(format!("http://{metrics}/usage"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(json["callers"].as_array().unwrap().len(), 3);

    let url = format!("http://{metrics}/usage");
    let profile = tempfile::tempdir().unwrap();
    let (dom, stderr) = headless(&chromium, profile.path(), &["--dump-dom"], &url);
    // One row per caller, most recently seen first, the project escaped (not run).
    assert_eq!(dom.matches("<tr class=\"caller\">").count(), 3, "{dom}");
    assert!(dom.contains("<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>"), "{dom}");
    assert!(!dom.contains("<script"), "{dom}");
    let first_row = dom.split("<tr class=\"caller\">").nth(1).unwrap();
    assert!(first_row.contains("curl/8.14.1"), "{first_row}");
    // One bar per (day, client) of the JSON, with its count.
    for d in json["daily"].as_array().unwrap() {
        let bar = format!(
            "data-day=\"{}\" data-client=\"{}\" data-count=\"{}\"",
            d["day"].as_str().unwrap(),
            d["client"].as_str().unwrap(),
            d["count"]
        );
        assert!(dom.contains(&bar), "{bar} not in the chart: {dom}");
    }
    assert_eq!(
        dom.matches("class=\"bar\"").count(),
        json["daily"].as_array().unwrap().len()
    );
    assert!(dom.contains("<svg id=\"chart\""));
    assert_eq!(console_messages(&stderr), Vec::<&str>::new(), "{stderr}");

    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("usage-page.png");
    let _ = std::fs::remove_file(&shot);
    let (_, stderr) = headless(
        &chromium,
        profile.path(),
        &[&format!("--screenshot={}", shot.display()), "--window-size=1100,900"],
        &url,
    );
    let png = std::fs::read(&shot).expect("screenshot");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    assert_eq!(console_messages(&stderr), Vec::<&str>::new(), "{stderr}");
    eprintln!("usage page screenshot: {} ({} bytes)", shot.display(), png.len());

    // The console check catches an error when there is one.
    let (_, stderr) = headless(
        &chromium,
        profile.path(),
        &["--dump-dom"],
        "data:text/html,<script>throw new Error('nip-console-check')</script>",
    );
    assert!(
        console_messages(&stderr)
            .iter()
            .any(|l| l.contains("nip-console-check")),
        "a thrown error is not seen: {stderr}"
    );
    let _ = svc.child.kill();
    let _ = svc.child.wait();
}
