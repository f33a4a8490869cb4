//! The limits and signals of the real binary: SIGTERM drains in-flight
//! requests, SIGHUP reloads the log level, a thousand slow clients neither
//! exhaust memory nor stop the service answering, `max_connections` holds,
//! stalled bodies and uploads are cut off. Memory is asserted as a bound, not
//! a timing; the pauses only make the clients slow.

mod support;

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::process::{spawn, Proc};
use support::raw;

fn token() -> &'static [u8] {
    support::TOKEN.as_bytes()
}

fn get(base: &str, path: &str) -> raw::Response {
    raw::exchange(
        base,
        &raw::request("GET", path.as_bytes(), &[("X-Auth-Token", token())], None),
    )
    .expect("GET")
}

/// A queued image made through the embedded store's Glance v2 API.
fn new_image(image_base: &str) -> String {
    let body = json!({"name": "limits", "disk_format": "raw", "container_format": "bare"}).to_string();
    let r = raw::exchange(
        image_base,
        &raw::request(
            "POST",
            b"/v2/images",
            &[("X-Auth-Token", token()), ("Content-Type", b"application/json")],
            Some(body.as_bytes()),
        ),
    )
    .expect("create");
    assert_eq!(r.status, 201, "{}", r.text());
    r.json().unwrap()["id"].as_str().unwrap().to_string()
}

/// The image as the embedded store's Glance v2 API shows it.
fn glance_image(image_base: &str, id: &str) -> Value {
    let r = raw::exchange(
        image_base,
        &raw::request(
            "GET",
            format!("/v2/images/{id}").as_bytes(),
            &[("X-Auth-Token", token())],
            None,
        ),
    )
    .expect("GET image");
    assert_eq!(r.status, 200, "{}", r.text());
    r.json().expect("image JSON")
}

fn embedded(dir: &std::path::Path, extra: &[&str], env: &[(&str, &str)]) -> Proc {
    let data = dir.join("data");
    let mut args = vec!["--data-dir", data.to_str().unwrap(), "--no-demo-images"];
    args.extend_from_slice(extra);
    spawn(&args, env, &dir.join("service.log"))
}

#[test]
fn sigterm_drains_in_flight_requests_then_exits() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = embedded(dir.path(), &["--log-level", "info"], &[]);
    let id = new_image(&p.image);
    let size = 3 * 1024 * 1024;
    let part = vec![b'x'; size / 8];

    // An upload that takes a while: 8 parts, 250 ms apart.
    let (sent_first, first) = mpsc::channel();
    let image = p.image.clone();
    let path = format!("/v2/images/{id}/file");
    let uploader = std::thread::spawn(move || {
        let mut s = TcpStream::connect(raw::addr_of(&image)).unwrap();
        let head = format!(
            "PUT {path} HTTP/1.1\r\nHost: h\r\nX-Auth-Token: {}\r\nContent-Type: application/octet-stream\r\nContent-Length: {size}\r\n\r\n",
            support::TOKEN
        );
        s.write_all(head.as_bytes()).unwrap();
        for i in 0..8 {
            s.write_all(&part).unwrap();
            if i == 0 {
                sent_first.send(()).unwrap();
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        raw::read_response(&mut s, false)
    });
    first.recv().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    p.signal("TERM");

    // The listeners close at once…
    let started = Instant::now();
    while TcpStream::connect(raw::addr_of(&p.compute)).is_ok() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still accepting 5 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // …while the upload in flight completes.
    let resp = uploader.join().unwrap().expect("the upload's answer");
    assert_eq!(resp.status, 204, "{}", resp.text());
    let status = p.wait_exit(Duration::from_secs(20)).expect("exited after draining");
    assert!(status.success(), "exit status {status}");
    assert!(p.log_text().contains("draining"), "{}", p.log_text());
    drop(p);

    // What was acknowledged is there after a restart.
    let p = embedded(dir.path(), &[], &[]);
    let img = glance_image(&p.image, &id);
    assert_eq!(
        (img["status"].as_str(), img["size"].as_u64()),
        (Some("active"), Some(size as u64))
    );
}

#[test]
fn sigquit_after_sigterm_stops_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = embedded(
        dir.path(),
        &[],
        &[("NOVA_IMAGES_PROXY__SERVER__SHUTDOWN_TIMEOUT_SECS", "120")],
    );
    let id = new_image(&p.image);
    // An upload that never finishes.
    let mut s = TcpStream::connect(raw::addr_of(&p.image)).unwrap();
    let head = format!(
        "PUT /v2/images/{id}/file HTTP/1.1\r\nHost: h\r\nX-Auth-Token: {}\r\nContent-Length: 1000000\r\n\r\nabc",
        support::TOKEN
    );
    s.write_all(head.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    p.signal("TERM");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        p.child.try_wait().unwrap().is_none(),
        "exited before its in-flight request ended"
    );
    p.signal("QUIT");
    assert!(
        p.wait_exit(Duration::from_secs(10)).is_some(),
        "SIGQUIT did not stop it"
    );
}

#[test]
fn sighup_reloads_the_log_level() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("service.toml");
    std::fs::write(&conf, "[log]\nlevel = \"warn\"\n").unwrap();
    let p = embedded(dir.path(), &["--config", conf.to_str().unwrap()], &[]);
    assert_eq!(get(&p.compute, "/v2.1/images").status, 200);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !p.log_text().contains("GET /v2.1/images 200"),
        "info lines at warn: {}",
        p.log_text()
    );

    // A filter that does not parse is refused; the service goes on.
    std::fs::write(&conf, "[log]\nlevel = \"nova_images_proxy=[\"\n").unwrap();
    p.signal("HUP");
    assert!(
        p.wait_for_log("not a log filter", Duration::from_secs(10)),
        "{}",
        p.log_text()
    );
    assert_eq!(get(&p.compute, "/v2.1/images").status, 200);

    std::fs::write(&conf, "[log]\nlevel = \"info\"\n[api]\nmax_limit = 5\n").unwrap();
    p.signal("HUP");
    assert!(
        p.wait_for_log("log.level applied", Duration::from_secs(10)),
        "{}",
        p.log_text()
    );
    // What needs a restart is named, and not applied.
    assert!(p.log_text().contains("sections=api"), "{}", p.log_text());
    assert_eq!(get(&p.compute, "/v2.1/images").status, 200);
    assert!(
        p.wait_for_log("GET /v2.1/images 200", Duration::from_secs(10)),
        "no info line after the reload: {}",
        p.log_text()
    );
}

/// One slow client: a request head that never ends.
fn slow_client(base: &str) -> TcpStream {
    let mut s = TcpStream::connect(raw::addr_of(base)).expect("connect");
    s.write_all(b"GET /v2.1/images HTTP/1.1\r\nHost: h\r\nX-Auth-Token: demo:x\r\nX-Slow: ")
        .expect("write");
    s.set_nonblocking(true).unwrap();
    s
}

#[test]
fn a_thousand_slow_clients_keep_memory_bounded_and_the_service_answering() {
    // A thousand, where the open-files limit allows (it is raised to the hard limit).
    let nofile = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let n = 1000.min(nofile.saturating_sub(100) as usize);
    if n < 1000 {
        eprintln!("open-files limit {nofile}: {n} slow clients instead of 1000");
    }
    let dir = tempfile::tempdir().unwrap();
    let p = embedded(
        dir.path(),
        &["--log-level", "warn"],
        &[("NOVA_IMAGES_PROXY__SERVER__HEADER_TIMEOUT_SECS", "4")],
    );
    for _ in 0..20 {
        assert_eq!(get(&p.compute, "/v2.1/images/detail").status, 200);
    }
    let idle = p.rss_kib();

    let started = Instant::now();
    let mut clients: Vec<TcpStream> = (0..n).map(|_| slow_client(&p.compute)).collect();
    let mut peak = p.rss_kib();
    // Trickle a byte to every client every 200 ms; meanwhile others are served.
    for round in 0..10 {
        for c in clients.iter_mut() {
            let _ = c.write(b"a");
        }
        let r = get(&p.compute, "/v2.1/images/detail");
        assert_eq!(r.status, 200, "round {round}: {}", r.text());
        peak = peak.max(p.rss_kib());
        std::thread::sleep(Duration::from_millis(200));
    }
    let grown_mib = (peak.saturating_sub(idle)) as f64 / 1024.0;
    eprintln!(
        "{n} slow clients: RSS {:.1} MiB idle, {:.1} MiB peak (+{grown_mib:.1} MiB)",
        idle as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    assert!(grown_mib < 48.0, "{n} slow clients grew RSS by {grown_mib:.1} MiB");

    // header_timeout_secs after they connected, each gets a 408 and is closed.
    let deadline = started + Duration::from_secs(4);
    std::thread::sleep(deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(2));
    let mut timed_out = 0;
    for c in clients.iter_mut() {
        c.set_nonblocking(false).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = Vec::new();
        let _ = c.read_to_end(&mut buf);
        if buf.starts_with(b"HTTP/1.1 408") {
            timed_out += 1;
        }
    }
    assert_eq!(timed_out, n, "slow clients answered 408 and closed");
    assert_eq!(get(&p.compute, "/v2.1/images").status, 200);
}

#[test]
fn max_connections_holds_the_rest_in_the_backlog() {
    let dir = tempfile::tempdir().unwrap();
    let p = embedded(
        dir.path(),
        &["--workers", "1"],
        &[("NOVA_IMAGES_PROXY__SERVER__MAX_CONNECTIONS", "8")],
    );
    let keep_alive = format!(
        "GET /v2.1/images HTTP/1.1\r\nHost: h\r\nX-Auth-Token: {}\r\n\r\n",
        support::TOKEN
    );
    let mut open: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut s = TcpStream::connect(raw::addr_of(&p.compute)).unwrap();
            s.write_all(keep_alive.as_bytes()).unwrap();
            assert_eq!(raw::read_response(&mut s, false).unwrap().status, 200);
            s
        })
        .collect();
    // The ninth is queued: connected by the kernel, not served.
    let mut ninth = TcpStream::connect(raw::addr_of(&p.compute)).unwrap();
    ninth.write_all(keep_alive.as_bytes()).unwrap();
    ninth.set_read_timeout(Some(Duration::from_millis(1500))).unwrap();
    let mut byte = [0u8; 1];
    let early = ninth.read(&mut byte);
    assert!(early.is_err(), "a ninth connection was served past max_connections = 8");
    // One closes: the ninth is served.
    drop(open.pop());
    ninth.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let resp = raw::read_response(&mut ninth, false).expect("served once a slot is free");
    assert_eq!(resp.status, 200);
}

#[test]
fn a_stalled_upload_is_abandoned_and_the_image_stays_queued() {
    let dir = tempfile::tempdir().unwrap();
    let p = embedded(
        dir.path(),
        &[],
        &[("NOVA_IMAGES_PROXY__SERVER__BODY_TIMEOUT_SECS", "1")],
    );
    let id = new_image(&p.image);
    let head = format!(
        "PUT /v2/images/{id}/file HTTP/1.1\r\nHost: h\r\nX-Auth-Token: {}\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n",
        support::TOKEN
    );
    let resp = raw::exchange_in_parts(
        &p.image,
        &[head.as_bytes(), &[b'x'; 5000], &[b'y'; 5000]],
        Duration::from_millis(2500),
    )
    .expect("an answer");
    assert_eq!(resp.status, 408, "{}", resp.text());
    let img = glance_image(&p.image, &id);
    assert_eq!(img["status"], "queued");
    assert_eq!(img["size"], Value::Null);
    // Nothing left behind in the staging area.
    let staging = dir.path().join("data/staging");
    let left: Vec<_> = std::fs::read_dir(&staging)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "staging files left: {left:?}");
}
