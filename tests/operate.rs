//! What an operator relies on: systemd's readiness protocol from the real
//! binary (a datagram socket stands in for systemd's `NOTIFY_SOCKET`), and
//! `/healthcheck` with its disable-by-file drain on both listeners.

mod support;

use std::os::unix::net::UnixDatagram;
use std::time::Duration;
use support::raw;

fn recv(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("a notification within the timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn get(base: &str, path: &str) -> raw::Response {
    raw::exchange(base, &raw::request("GET", path.as_bytes(), &[], None)).expect("an answer")
}

#[test]
fn systemd_hears_ready_after_both_listeners_reloading_around_sighup_and_stopping_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&socket_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let data = dir.path().join("data").to_string_lossy().into_owned();
    let mut proc = support::process::spawn(
        &["--data-dir", &data, "--no-demo-images"],
        &[("NOTIFY_SOCKET", socket_path.to_str().unwrap())],
        &dir.path().join("service.log"),
    );
    let first = recv(&sock);
    assert!(first.lines().any(|l| l == "READY=1"), "first notification: {first:?}");
    // Ready means both listeners serve, right now.
    assert_eq!(get(&proc.compute, "/healthcheck").status, 200);
    assert_eq!(get(&proc.image, "/healthcheck").status, 200);

    proc.signal("HUP");
    let reloading = recv(&sock);
    assert!(reloading.lines().any(|l| l == "RELOADING=1"), "{reloading:?}");
    assert!(
        reloading.lines().any(|l| l.starts_with("MONOTONIC_USEC=")),
        "{reloading:?}"
    );
    let done = recv(&sock);
    assert_eq!(done.trim(), "READY=1");

    proc.signal("TERM");
    let stopping = recv(&sock);
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
    let status = proc.wait_exit(Duration::from_secs(30)).expect("exits after SIGTERM");
    assert!(status.success(), "{status}");
}

#[test]
fn without_notify_socket_nothing_is_sent_and_the_service_runs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").to_string_lossy().into_owned();
    let mut proc = support::process::spawn(
        &["--data-dir", &data, "--no-demo-images"],
        &[("NOTIFY_SOCKET", "")],
        &dir.path().join("service.log"),
    );
    assert_eq!(get(&proc.image, "/healthcheck").status, 200);
    proc.signal("TERM");
    let status = proc.wait_exit(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{status:?}: {}", proc.log_text());
    assert!(!proc.log_text().contains("NOTIFY_SOCKET"), "{}", proc.log_text());
}

#[test]
fn the_disable_file_drains_both_listeners_and_its_removal_restores_them() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("healthcheck_disable");
    let flag_str = flag.to_string_lossy().into_owned();
    let pairs = [("server.healthcheck_disable_by_file_path", flag_str.as_str())];
    let compute = support::start_on(&support::Backend::Embedded, &pairs);
    let store = compute.data_dir.as_ref().unwrap().path().to_string_lossy().into_owned();
    let image = support::start_image_listener(support::settings(&[
        ("embedded.data_dir", store.as_str()),
        ("embedded.demo_images", "false"),
        ("server.healthcheck_disable_by_file_path", flag_str.as_str()),
    ]));
    for base in [&compute.base, &image.base] {
        let r = get(base, "/healthcheck");
        assert_eq!((r.status, r.text()), (200, "OK".to_string()));
    }
    std::fs::write(&flag, b"").unwrap();
    for base in [&compute.base, &image.base] {
        let r = get(base, "/healthcheck");
        assert_eq!((r.status, r.text()), (503, "DISABLED BY FILE".to_string()));
        assert_eq!(r.header("content-type"), Some("text/plain; charset=UTF-8"));
        let head = raw::exchange(base, &raw::request("HEAD", b"/healthcheck", &[], None)).unwrap();
        assert_eq!(head.status, 503);
        let json = raw::exchange(
            base,
            &raw::request("GET", b"/healthcheck", &[("Accept", b"application/json")], None),
        )
        .unwrap();
        assert_eq!(
            json.text(),
            "{\n    \"detailed\": false,\n    \"reasons\": [\n        \"DISABLED BY FILE\"\n    ]\n}"
        );
        // The API itself still answers: draining is the load balancer's business.
        assert_ne!(get(base, "/v1/images").status, 503);
    }
    std::fs::remove_file(&flag).unwrap();
    for base in [&compute.base, &image.base] {
        assert_eq!(get(base, "/healthcheck").status, 200);
        let head = raw::exchange(base, &raw::request("HEAD", b"/healthcheck", &[], None)).unwrap();
        assert_eq!(head.status, 204);
    }
}

/// The shipped unit, with `ExecStart` pointed at the built binary: systemd's
/// own checker has nothing to say about it, and its offline security review
/// rates its exposure at most 2.0 ("OK").
#[test]
fn the_systemd_unit_verifies_and_is_hardened() {
    let analyze = "systemd-analyze";
    if std::process::Command::new(analyze).arg("--version").output().is_err() {
        assert!(
            std::env::var_os("NIP_REQUIRE_SYSTEMD").is_none(),
            "systemd-analyze is missing (scripts/debian-tools.sh install provides it)"
        );
        eprintln!("systemd-analyze not found: skipping the unit check");
        return;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let unit = std::fs::read_to_string(root.join("etc/systemd/nova-images-proxy.service")).unwrap();
    for needle in [
        "Type=notify",
        "DynamicUser=yes",
        "StateDirectory=nova-images-proxy",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(unit.contains(needle), "{needle}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nova-images-proxy.service");
    std::fs::write(
        &path,
        unit.replace(
            "/usr/local/bin/nova-images-proxy",
            env!("CARGO_BIN_EXE_nova-images-proxy"),
        ),
    )
    .unwrap();
    let out = std::process::Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify: {said}"
    );
    let out = std::process::Command::new(analyze)
        .args(["security", "--offline=yes", "--threshold=20", "--no-pager"])
        .arg(&path)
        .output()
        .unwrap();
    let review = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "exposure above 2.0: {review}");
}
