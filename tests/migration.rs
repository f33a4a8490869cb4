//! Migration windows on the real binary (embedded store): the deprecation
//! headers (exact formats; absent by default), brownout windows against the
//! clock the test sets (`deprecation.clock`), their fraction over many calls,
//! exempt and targeted projects, retirement, all switched by SIGHUP without
//! a restart; refused calls answer exactly what real Nova 34 answers for a
//! removed API (`tests/fixtures/nova-410`, captured with `scripts/nova.sh`),
//! Glance v1 a webob 410 page; version documents, `/healthcheck` and Glance v2
//! are never refused; a metadata write refused by a brownout changes nothing.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::process::{spawn, Proc};
use support::raw;

const PROJECT_TOKEN: &str = "alice:demo";

/// A captured answer: status, headers (request ids, `Connection` left out), body.
struct Captured {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

const VOLATILE: &[&str] = &["x-openstack-request-id", "x-compute-request-id", "connection", "date"];

fn comparable(headers: &[(String, String)]) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .filter(|(n, _)| !VOLATILE.contains(&n.as_str()))
        .collect();
    h.sort();
    h
}

fn fixture(name: &str) -> Captured {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/nova-410")
        .join(name);
    let text = std::fs::read(&path).unwrap();
    let split = text.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(text[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(": ").unwrap();
            (n.to_string(), v.to_string())
        })
        .collect::<Vec<_>>();
    Captured {
        status,
        headers: comparable(&headers),
        body: text[split + 4..].to_vec(),
    }
}

fn call(base: &str, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> raw::Response {
    let mut all: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
    if body.is_some() {
        all.push(("Content-Type", b"application/json"));
    }
    let req = raw::request(method, path.as_bytes(), &all, body.map(str::as_bytes));
    raw::exchange(base, &req).unwrap()
}

fn get(base: &str, path: &str, token: &str) -> raw::Response {
    call(base, "GET", path, &[("X-Auth-Token", token)], None)
}

/// The answer equals the captured one of real Nova (volatile headers aside).
fn assert_like_nova(r: &raw::Response, fixture_name: &str) {
    let want = fixture(fixture_name);
    assert_eq!(r.status, want.status, "{}", r.text());
    assert_eq!(comparable(&r.headers), want.headers, "{fixture_name}");
    assert_eq!(r.body, want.body, "{fixture_name}: {}", r.text());
}

struct Service {
    proc: Proc,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

impl Service {
    fn start(toml: &str) -> Service {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("nip.toml");
        std::fs::write(&config, toml).unwrap();
        let data = dir.path().join("data");
        let logs = Path::new(env!("CARGO_TARGET_TMPDIR")).join("service-logs");
        std::fs::create_dir_all(&logs).unwrap();
        let proc = spawn(
            &[
                "--config",
                config.to_str().unwrap(),
                "--data-dir",
                data.to_str().unwrap(),
            ],
            &[],
            &logs.join(format!(
                "migration-{}-{}.log",
                std::process::id(),
                // one log per test: the tests of this file run at once
                std::thread::current().name().unwrap_or("main").replace("::", "-")
            )),
        );
        Service {
            proc,
            config,
            _dir: dir,
        }
    }

    /// Rewrite the configuration, SIGHUP, and wait until `probe` holds.
    fn reload(&self, toml: &str, probe: impl Fn() -> bool) {
        std::fs::write(&self.config, toml).unwrap();
        let pid = self.proc.pid();
        self.proc.signal("HUP");
        let started = Instant::now();
        while !probe() {
            assert!(started.elapsed() < Duration::from_secs(10), "SIGHUP not applied");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(self.proc.pid(), pid);
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.proc.child.kill();
        let _ = self.proc.child.wait();
    }
}

fn deprecation(body: &str) -> String {
    format!("[embedded]\ndemo_images = true\n\n[deprecation]\n{body}\n")
}

const WINDOW: &str = "[[deprecation.brownout]]\nstart = \"2027-01-12T10:00:00Z\"\nend = \"2027-01-12T11:00:00Z\"\n";

/// The public demo image of the embedded store (owned by project demo).
fn demo_image(base: &str) -> String {
    let r = get(base, "/v2.1/images", PROJECT_TOKEN);
    let list = r.json().unwrap();
    list["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "demo-raw-disk")
        .map(|i| i["id"].as_str().unwrap().to_string())
        .unwrap()
}

#[test]
fn headers_are_absent_by_default_and_exact_when_configured() {
    let plain = Service::start(&deprecation(""));
    let base = &plain.proc.compute;
    for r in [
        get(base, "/v2.1/images", PROJECT_TOKEN),
        get(&plain.proc.image, "/v1/images", PROJECT_TOKEN),
    ] {
        assert_eq!(r.status, 200);
        for name in ["deprecation", "sunset", "link"] {
            assert_eq!(r.header(name), None, "{name}");
        }
    }
    let told = Service::start(&deprecation(
        "since = \"2026-11-01T00:00:00Z\"\nsunset = \"2027-06-30T12:00:00+02:00\"\n\
         link = \"https://docs.example.org/images-migration\"\nsunset_link = \"https://docs.example.org/sunset\"",
    ));
    let (compute, image) = (&told.proc.compute, &told.proc.image);
    let id = demo_image(compute);
    let deprecated = [
        get(compute, "/v2.1/images/detail", PROJECT_TOKEN),
        get(compute, &format!("/v2/images/{id}/metadata"), PROJECT_TOKEN),
        get(
            compute,
            "/v2.1/images/00000000-0000-0000-0000-000000000000",
            PROJECT_TOKEN,
        ),
        call(
            image,
            "HEAD",
            &format!("/v1/images/{id}"),
            &[("X-Auth-Token", PROJECT_TOKEN)],
            None,
        ),
    ];
    for r in &deprecated {
        assert_eq!(r.header("deprecation"), Some("@1793491200"));
        assert_eq!(r.header("sunset"), Some("Wed, 30 Jun 2027 10:00:00 GMT"));
        let links: Vec<&str> = r
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("link"))
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(
            links,
            [
                "<https://docs.example.org/images-migration>; rel=\"deprecation\"",
                "<https://docs.example.org/sunset>; rel=\"sunset\""
            ]
        );
    }
    assert_eq!(deprecated[2].status, 404);
    for r in [
        get(compute, "/v2.1", PROJECT_TOKEN),
        get(compute, "/healthcheck", PROJECT_TOKEN),
        get(image, "/v2/images", PROJECT_TOKEN),
    ] {
        assert_eq!(r.status, 200);
        assert_eq!(r.header("deprecation"), None);
    }
}

#[test]
fn brownouts_and_retirement_follow_the_clock_and_sighup() {
    let before = deprecation(&format!(
        "clock = \"2027-01-12T09:59:59Z\"\n{WINDOW}exempt_projects = [\"ops\"]\n"
    ));
    let svc = Service::start(&before);
    let (base, image) = (svc.proc.compute.clone(), svc.proc.image.clone());
    let id = demo_image(&base);
    let meta = format!("/v2.1/images/{id}/metadata");
    let write = r#"{"metadata": {"brownout": "must not land"}}"#;
    let metadata = || get(&base, &meta, PROJECT_TOKEN).json().unwrap();
    let original = metadata();
    assert_eq!(get(&base, &meta, PROJECT_TOKEN).status, 200);

    // Inside the window: every deprecated call is Nova's 410 for a removed API.
    let inside = before.replace("09:59:59Z", "10:30:00Z");
    svc.reload(&inside, || get(&base, &meta, PROJECT_TOKEN).status == 410);
    assert_like_nova(&get(&base, "/v2.1/images", PROJECT_TOKEN), "os-cells-get.http");
    assert_like_nova(
        &call(
            &base,
            "GET",
            "/v2.1/images/detail",
            &[
                ("X-Auth-Token", PROJECT_TOKEN),
                ("OpenStack-API-Version", "compute 2.30"),
            ],
            None,
        ),
        "os-cells-get-mv2.30.http",
    );
    assert_like_nova(
        &get(&base, &format!("/v2/images/{id}"), PROJECT_TOKEN),
        "os-cells-get-legacy-v2.http",
    );
    assert_like_nova(
        &call(&base, "POST", &meta, &[("X-Auth-Token", PROJECT_TOKEN)], Some(write)),
        "os-cells-post.http",
    );
    assert_like_nova(
        &call(
            &base,
            "DELETE",
            &format!("{meta}/os_distro"),
            &[("X-Auth-Token", PROJECT_TOKEN)],
            None,
        ),
        "os-cells-delete.http",
    );
    // What Nova checks before a handler still comes first.
    assert_eq!(get(&base, "/v2.1/images", "").status, 401);
    // Glance v1: a webob 410 page.
    let v1 = get(&image, &format!("/v1/images/{id}"), PROJECT_TOKEN);
    assert_eq!(v1.status, 410);
    assert!(
        v1.text().contains("410 Gone") && v1.text().contains("Glance v2"),
        "{}",
        v1.text()
    );
    // Never refused: exempt projects, version documents, /healthcheck, Glance v2.
    assert_eq!(get(&base, &meta, "bob:ops").status, 200);
    assert_eq!(get(&base, "/v2.1", PROJECT_TOKEN).status, 200);
    assert_eq!(get(&base, "/healthcheck", "").status, 200);
    assert_eq!(get(&image, &format!("/v2/images/{id}"), PROJECT_TOKEN).status, 200);

    // A window for other projects only leaves this one alone.
    let targeted = inside.replace(WINDOW, &format!("{WINDOW}projects = [\"target\"]\n"));
    svc.reload(&targeted, || get(&base, &meta, PROJECT_TOKEN).status == 200);
    assert_eq!(get(&base, &meta, "carol:target").status, 410);

    // A fraction of the calls: 400 calls at 0.3 must refuse 0.3 ± 0.08 of them.
    let fraction = inside.replace(WINDOW, &format!("{WINDOW}fraction = 0.3\n"));
    svc.reload(&fraction, || {
        (0..40).any(|_| get(&base, &meta, PROJECT_TOKEN).status == 200)
    });
    let refused = (0..400)
        .filter(|_| get(&base, &meta, PROJECT_TOKEN).status == 410)
        .count();
    let share = refused as f64 / 400.0;
    eprintln!("brownout at fraction 0.3: {refused} of 400 calls refused");
    assert!((0.22..=0.38).contains(&share), "{refused} of 400 refused");

    // Retired: always 410, whatever the clock, except the exempt projects.
    let retired = deprecation("retired = true\nexempt_projects = [\"ops\"]\n");
    // Twenty refusals in a row: the brownout before refuses three calls in ten.
    svc.reload(&retired, || {
        (0..20).all(|_| get(&base, &meta, PROJECT_TOKEN).status == 410)
    });
    assert_like_nova(&get(&base, "/v2.1/images", PROJECT_TOKEN), "os-cells-get.http");
    assert_eq!(get(&base, &meta, "bob:ops").status, 200);
    assert_eq!(get(&image, "/v1/images", PROJECT_TOKEN).status, 410);

    // Back to serving: none of the refused writes landed.
    svc.reload(&before, || get(&base, &meta, PROJECT_TOKEN).status == 200);
    assert_eq!(metadata(), original);
}

/// A SIGHUP whose `[deprecation]` section is refused (sunset before
/// deprecation, or a window that does not parse) keeps the running policy,
/// says why in one error line naming the option, and the next good one applies.
#[test]
fn a_refused_deprecation_section_on_sighup_keeps_the_running_policy() {
    let serving = deprecation("since = \"2026-11-01T00:00:00Z\"\n");
    let svc = Service::start(&serving);
    let base = svc.proc.compute.clone();
    let told = || get(&base, "/v2.1/images", PROJECT_TOKEN);
    assert_eq!(told().status, 200);
    assert_eq!(told().header("deprecation"), Some("@1793491200"));

    for (bad, option) in [
        (
            "retired = true\nsince = \"2027-01-01T00:00:00Z\"\nsunset = \"2026-12-01T00:00:00Z\"\n",
            "deprecation.sunset",
        ),
        ("retired = true\nclock = \"yesterday\"\n", "deprecation.clock"),
    ] {
        let before = svc.proc.log_text().lines().count();
        std::fs::write(&svc.config, deprecation(bad)).unwrap();
        svc.proc.signal("HUP");
        let started = Instant::now();
        let refusal = loop {
            let text = svc.proc.log_text();
            let line = text
                .lines()
                .skip(before)
                .find(|l| l.contains("SIGHUP: configuration not reloaded"))
                .map(str::to_string);
            if let Some(line) = line {
                break line;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no refusal logged for {option}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(refusal.contains("ERROR") && refusal.contains(option), "{refusal}");
        // Still the running policy: served, with the old header, not retired.
        let r = told();
        assert_eq!(r.status, 200, "{option}: {}", r.text());
        assert_eq!(r.header("deprecation"), Some("@1793491200"));
    }
    svc.reload(&deprecation("retired = true\n"), || told().status == 410);
    assert_eq!(told().header("deprecation"), None);
}
