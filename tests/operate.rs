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

/// Tokens the log test sends; none may appear in any log line.
const SECRET_TOKENS: [&str; 3] = [
    "leakcheck-user:0123456789abcdef0123456789abcdef",
    "gAAAAABleakcheckFernetLikeToken0123456789abcdefghijklmnopqrstuvwxyz_-ABCDEFGHIJ",
    "query-token-leakcheck-0123456789abcdef0123456789",
];

/// The binary at `trace` (every level) with JSON logs: one object per line,
/// oslo.log's field names, one request line per request saying who called,
/// and not one of the tokens used anywhere in the log.
#[test]
fn json_request_logs_say_who_called_and_never_hold_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").to_string_lossy().into_owned();
    let log = dir.path().join("service.log");
    let mut proc = support::process::spawn(
        &["--data-dir", &data, "--log-level", "trace"],
        &[
            ("NOVA_IMAGES_PROXY__LOG__FORMAT", "json"),
            (
                "NOVA_IMAGES_PROXY__OSLO_MIDDLEWARE__ENABLE_PROXY_HEADERS_PARSING",
                "true",
            ),
        ],
        &log,
    );
    let [user_token, fernet, query_token] = SECRET_TOKENS;
    let global = "req-12345678-1234-1234-1234-123456789012";
    let r = raw::exchange(
        &proc.compute,
        &raw::request(
            "GET",
            format!("/v2.1/images?limit=1&token={query_token}").as_bytes(),
            &[
                ("X-Auth-Token", user_token.as_bytes()),
                ("X-OpenStack-Request-ID", global.as_bytes()),
                ("X-OpenStack-Nova-API-Version", b"2.35"),
                ("User-Agent", b"leakcheck-agent/1.0"),
                ("X-Forwarded-For", b"203.0.113.7"),
            ],
            None,
        ),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let listed = r.body.len();
    // (In noauth2 the token is the identity, so a Keystone-like token goes
    // where it is no identity: a query value, a header of an unauthenticated path.)
    let r = raw::exchange(
        &proc.image,
        &raw::request(
            "GET",
            format!("/v1/images?name={fernet}").as_bytes(),
            &[("X-Auth-Token", user_token.as_bytes())],
            None,
        ),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let r = raw::exchange(
        &proc.image,
        &raw::request("GET", b"/healthcheck", &[("X-Auth-Token", fernet.as_bytes())], None),
    )
    .unwrap();
    assert_eq!(r.status, 200);
    let r = raw::exchange(
        &proc.compute,
        &raw::request(
            "GET",
            b"/v2.1/images/not-there",
            &[("X-Auth-Token", user_token.as_bytes())],
            None,
        ),
    )
    .unwrap();
    assert_eq!(r.status, 404);
    // A request the HTTP layer refuses: a warning, never an error.
    let _ = raw::exchange(
        &proc.compute,
        b"GET /v2.1/images HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    );
    std::thread::sleep(Duration::from_millis(300));
    proc.signal("TERM");
    assert!(proc.wait_exit(Duration::from_secs(30)).is_some());
    let text = proc.log_text();
    for token in SECRET_TOKENS {
        let leak: Vec<&str> = text.lines().filter(|l| l.contains(token)).collect();
        assert!(leak.is_empty(), "a token in the log: {leak:?}");
    }
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for line in &lines {
        for key in [
            "message",
            "asctime",
            "name",
            "levelname",
            "levelno",
            "created",
            "process",
            "context",
            "extra",
        ] {
            assert!(line.get(key).is_some(), "{key} missing: {line}");
        }
        assert_ne!(line["levelname"], "ERROR", "{line}");
    }
    let access: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["name"] == "nova_images_proxy.access")
        .collect();
    let list = access
        .iter()
        .find(|l| {
            l["extra"]["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/v2.1/images?"))
        })
        .expect("the list's request line");
    assert_eq!(list["message"], "GET /v2.1/images?limit=1&token=*** 200");
    assert_eq!(list["levelname"], "INFO");
    let (ctx, extra) = (&list["context"], &list["extra"]);
    assert_eq!(ctx["global_request_id"], global);
    assert!(ctx["request_id"].as_str().unwrap().starts_with("req-"));
    assert_ne!(ctx["request_id"], global);
    assert_eq!(ctx["user"], "leakcheck-user");
    assert_eq!(ctx["project"], "0123456789abcdef0123456789abcdef");
    assert_eq!(extra["listener"], "compute");
    assert_eq!(extra["method"], "GET");
    assert_eq!(extra["status"], 200);
    assert_eq!(extra["bytes"], listed as u64);
    assert_eq!(extra["client"], "203.0.113.7");
    assert_eq!(extra["user_agent"], "leakcheck-agent/1.0");
    assert_eq!(extra["microversion"], "2.35");
    assert!(extra["latency_ms"].as_str().unwrap().parse::<f64>().unwrap() >= 0.0);
    let v1 = access
        .iter()
        .find(|l| l["extra"]["path"] == "/v1/images?name=***")
        .expect("the v1 line");
    assert_eq!(v1["extra"]["listener"], "image");
    assert_eq!(v1["extra"]["microversion"], "-");
    // The refused request: the HTTP layer's line, as a warning.
    assert!(
        lines
            .iter()
            .any(|l| l["name"].as_str().unwrap().starts_with("actix_http") && l["levelname"] == "WARNING"),
        "no warning for the malformed request"
    );
}

/// Text logs: the request line, and the client is the peer unless proxy
/// headers are trusted.
#[test]
fn text_request_logs_ignore_forwarded_for_unless_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").to_string_lossy().into_owned();
    let mut proc = support::process::spawn(
        &["--data-dir", &data, "--log-level", "debug"],
        &[],
        &dir.path().join("service.log"),
    );
    let r = raw::exchange(
        &proc.compute,
        &raw::request(
            "GET",
            b"/v2.1/images",
            &[
                ("X-Auth-Token", SECRET_TOKENS[0].as_bytes()),
                ("X-Forwarded-For", b"198.51.100.9"),
            ],
            None,
        ),
    )
    .unwrap();
    assert_eq!(r.status, 200);
    assert!(proc.wait_for_log("GET /v2.1/images 200", Duration::from_secs(10)));
    proc.signal("TERM");
    assert!(proc.wait_exit(Duration::from_secs(30)).is_some());
    let text = proc.log_text();
    assert!(!text.contains(SECRET_TOKENS[0]), "the token in the log");
    let line = text.lines().find(|l| l.contains("GET /v2.1/images 200")).unwrap();
    assert!(line.contains(" INFO "), "{line}");
    assert!(line.contains("client=127.0.0.1"), "{line}");
    assert!(line.contains("user_id=leakcheck-user"), "{line}");
    assert!(!text.contains("198.51.100.9"), "{text}");
}
