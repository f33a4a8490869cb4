//! Hostile and broken input, on a real Glance and on the embedded store:
//! the checked-in corpus (tests/fixtures/hostile/cases.toml) sent raw, and
//! property-based requests (proptest) against every route. Whatever comes in:
//! no 5xx, no panic (the service keeps answering), every error a proper error
//! body, and nothing half-applied — a refused write leaves the image exactly as
//! it was, an accepted one leaves what it said.

mod support;

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use support::raw;
use support::Backend;

/// The service (both listeners) on one backend, and the images the cases use.
struct Target {
    name: &'static str,
    compute: support::Service,
    image: support::Service,
    /// A Glance v2 API of the backend (real Glance, or the embedded store's).
    glance_v2: String,
    /// An active image no case may change.
    guard: String,
    /// An image cases may change.
    scratch: String,
}

fn token() -> &'static str {
    support::TOKEN
}

/// A member of another project (noauth2): on the embedded store, where the
/// service enforces Glance's policy, it may read the test project's community
/// images but change none of them.
const INTRUDER: &str = "intruder:0ther0000000000000000000000000000";

impl Target {
    fn start(backend: Backend) -> Target {
        let pairs = [("server.body_timeout_secs", "1"), ("server.header_timeout_secs", "5")];
        let compute = support::start_on(&backend, &pairs);
        let (image, glance_v2, name) = match &backend {
            Backend::Glance(url) => {
                let mut all = vec![("glance.url", url.as_str())];
                all.extend_from_slice(&pairs);
                (
                    support::start_image_listener(support::settings(&all)),
                    url.clone(),
                    "real Glance",
                )
            }
            Backend::Embedded => {
                let dir = compute.data_dir.as_ref().unwrap().path().to_string_lossy().into_owned();
                let mut all = vec![("embedded.data_dir", dir.as_str()), ("embedded.demo_images", "false")];
                all.extend_from_slice(&pairs);
                let image = support::start_image_listener(support::settings(&all));
                let url = image.base.clone();
                (image, url, "embedded store")
            }
        };
        let mut t = Target {
            name,
            compute,
            image,
            glance_v2,
            guard: String::new(),
            scratch: String::new(),
        };
        t.guard = t.new_image(
            json!({"hostile_guard": "1", "os_distro": "cirros", "hw_disk_bus": "virtio"}),
            true,
        );
        t.scratch = t.new_image(json!({"scratch": "1"}), false);
        t
    }

    /// A new image through the backend's Glance v2 API (with data when `active`).
    fn new_image(&self, props: Value, active: bool) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let mut body =
            json!({"id": id, "name": format!("hostile-{id}"), "disk_format": "raw", "container_format": "bare"});
        for (k, v) in props.as_object().unwrap() {
            body[k] = v.clone();
        }
        let body = body.to_string();
        let r = raw::exchange(
            &self.glance_v2,
            &raw::request(
                "POST",
                b"/v2/images",
                &[
                    ("Content-Type", b"application/json"),
                    ("X-Auth-Token", token().as_bytes()),
                ],
                Some(body.as_bytes()),
            ),
        )
        .expect("create image");
        assert_eq!(r.status, 201, "create image: {}", r.text());
        if active {
            let r = raw::exchange(
                &self.glance_v2,
                &raw::request(
                    "PUT",
                    format!("/v2/images/{id}/file").as_bytes(),
                    &[
                        ("Content-Type", b"application/octet-stream"),
                        ("X-Auth-Token", token().as_bytes()),
                    ],
                    Some(b"hostile-image-data"),
                ),
            )
            .expect("upload");
            assert_eq!(r.status, 204, "upload: {}", r.text());
        }
        id
    }

    /// The image as the backend's Glance v2 API shows it, every attribute.
    fn snapshot(&self, id: &str) -> Value {
        let r = raw::exchange(
            &self.glance_v2,
            &raw::request(
                "GET",
                format!("/v2/images/{id}").as_bytes(),
                &[("X-Auth-Token", token().as_bytes())],
                None,
            ),
        )
        .expect("snapshot");
        assert_eq!(r.status, 200, "snapshot of {id}: {}", r.text());
        r.json().expect("image JSON")
    }

    /// The service still answers a plain read.
    fn assert_alive(&self, after: &str) {
        let r = raw::exchange(
            &self.compute.base,
            &raw::request(
                "GET",
                format!("/v2.1/images/{}", self.guard).as_bytes(),
                &[("X-Auth-Token", token().as_bytes())],
                None,
            ),
        )
        .unwrap_or_else(|e| panic!("{}: the service stopped answering after {after}: {e}", self.name));
        assert_eq!(r.status, 200, "{}: after {after}: {}", self.name, r.text());
    }

    fn base(&self, listener: &str) -> &str {
        match listener {
            "image" => &self.image.base,
            _ => &self.compute.base,
        }
    }
}

/// Whether `resp` (to a request made with `method`) is a proper answer: no 5xx,
/// and an error carries an error body of the listener's kind.
fn check_answer(resp: &raw::Response, method: &[u8]) -> Result<(), String> {
    let s = resp.status;
    if s >= 500 {
        return Err(format!("{s}: {}", resp.text()));
    }
    if s < 400 {
        return Ok(());
    }
    if resp.body.is_empty() {
        let closed = resp
            .header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"));
        // The HTTP layer's refusals of what is not an HTTP request it can route.
        if closed && matches!(s, 400 | 408 | 431) {
            return Ok(());
        }
        if method == b"HEAD" {
            return Ok(());
        }
        return Err(format!("{s} without a body"));
    }
    if let Some(v) = resp.json() {
        let obj = v.as_object().ok_or("JSON error body that is not an object")?;
        // webob's JSON page: {"message", "code": "404 Not Found", "title"}
        let line = format!("{s} ");
        if obj
            .get("code")
            .and_then(Value::as_str)
            .is_some_and(|c| c.starts_with(&line))
            && obj.contains_key("title")
        {
            return Ok(());
        }
        if obj.len() == 1 {
            let (name, inner) = obj.iter().next().unwrap();
            let code = inner.get("code").and_then(Value::as_u64);
            let message = inner.get("message").and_then(Value::as_str);
            if code == Some(s as u64) && message.is_some_and(|m| !m.is_empty()) {
                return Ok(());
            }
            return Err(format!(
                "JSON error body {name:?} without a matching code and message: {v}"
            ));
        }
        return Err(format!("JSON error body of an unknown shape: {v}"));
    }
    let text = resp.text();
    let line = format!("{s} ");
    if text.contains(&format!("<title>{line}")) || text.starts_with(&line) {
        return Ok(());
    }
    Err(format!("error body is neither a fault nor a webob page: {text:?}"))
}

// ------------------------------------------------------------------- corpus

#[derive(serde::Deserialize)]
struct Corpus {
    case: Vec<Case>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    request: String,
    body: Option<String>,
    listener: Option<String>,
    expect: Option<Vec<u16>>,
    pause_ms: Option<u64>,
    only: Option<String>,
}

/// Expand the corpus placeholders of `text` (see the head of cases.toml).
fn expand(text: &str, vars: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = text;
    'outer: while let Some(i) = rest.find('{') {
        out.extend_from_slice(&rest.as_bytes()[..i]);
        let tail = &rest[i..];
        for (name, value) in vars {
            let tag = format!("{{{name}}}");
            if let Some(after) = tail.strip_prefix(tag.as_str()) {
                out.extend_from_slice(value);
                rest = after;
                continue 'outer;
            }
        }
        let arg = |prefix: &str| -> Option<(&str, &str)> {
            let t = tail.strip_prefix(prefix)?;
            let end = t.find('}')?;
            Some((&t[..end], &t[end + 1..]))
        };
        if let Some((hex, after)) = arg("{x:") {
            out.push(u8::from_str_radix(hex, 16).expect("{x:HH}"));
            rest = after;
        } else if let Some((spec, after)) = arg("{repeat:") {
            let (n, what) = spec.split_once(':').expect("{repeat:N:TEXT}");
            out.extend_from_slice(what.repeat(n.parse().unwrap()).as_bytes());
            rest = after;
        } else if let Some((n, after)) = arg("{nest:") {
            let n: usize = n.parse().unwrap();
            out.extend_from_slice("[".repeat(n).as_bytes());
            out.extend_from_slice("]".repeat(n).as_bytes());
            rest = after;
        } else if let Some((n, after)) = arg("{rbrace:") {
            out.extend_from_slice("}".repeat(n.parse().unwrap()).as_bytes());
            rest = after;
        } else if let Some((n, after)) = arg("{keys:") {
            let n: usize = n.parse().unwrap();
            let members: Vec<String> = (0..n).map(|i| format!("\"k{i}\": \"v\"")).collect();
            out.extend_from_slice(members.join(", ").as_bytes());
            rest = after;
        } else if let Some((spec, after)) = arg("{chunks:") {
            let (n, size) = spec.split_once(':').expect("{chunks:N:SIZE}");
            let size: usize = size.parse().unwrap();
            for _ in 0..n.parse::<usize>().unwrap() {
                out.extend_from_slice(format!("{size:x}\r\n").as_bytes());
                out.extend_from_slice(&vec![b'a'; size]);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
            rest = after;
        } else {
            out.push(b'{');
            rest = &tail[1..];
        }
    }
    out.extend_from_slice(rest.as_bytes());
    out
}

fn corpus() -> Vec<Case> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hostile/cases.toml");
    let text = std::fs::read_to_string(&path).expect("cases.toml");
    let corpus: Corpus = toml::from_str(&text).expect("cases.toml parses");
    corpus.case
}

fn run_corpus(t: &Target) {
    let cases = corpus();
    assert!(cases.len() >= 60, "the corpus lost cases: {}", cases.len());
    let before = t.snapshot(&t.guard);
    let mut failures = Vec::new();
    let mut ran = 0;
    for case in &cases {
        match case.only.as_deref() {
            Some("embedded") if t.name != "embedded store" => continue,
            Some("glance") if t.name != "real Glance" => continue,
            _ => ran += 1,
        }
        let base_vars: Vec<(&str, &[u8])> = vec![
            ("id", t.guard.as_bytes()),
            ("scratch", t.scratch.as_bytes()),
            ("token", token().as_bytes()),
            ("project", support::PROJECT.as_bytes()),
        ];
        let body = case.body.as_deref().map(|b| expand(b, &base_vars)).unwrap_or_default();
        let len = body.len().to_string();
        let mut vars = base_vars.clone();
        vars.push(("body", &body));
        vars.push(("len", len.as_bytes()));
        let request = expand(&case.request, &vars);
        let marker = b"{pause}";
        let parts: Vec<&[u8]> = match request.windows(marker.len()).position(|w| w == marker) {
            Some(i) => vec![&request[..i], &request[i + marker.len()..]],
            None => vec![&request[..]],
        };
        let pause = std::time::Duration::from_millis(case.pause_ms.unwrap_or(0));
        let listener = case.listener.as_deref().unwrap_or("compute");
        let method = request.split(|b| *b == b' ').next().unwrap_or(b"").to_vec();
        match raw::exchange_in_parts(t.base(listener), &parts, pause) {
            Err(e) => failures.push(format!("{}: no answer: {e}", case.name)),
            Ok(resp) => {
                if let Err(e) = check_answer(&resp, &method) {
                    failures.push(format!("{}: {e}", case.name));
                }
                if let Some(expect) = &case.expect {
                    if !expect.contains(&resp.status) {
                        failures.push(format!(
                            "{}: status {} (expected one of {expect:?}): {}",
                            case.name,
                            resp.status,
                            resp.text().chars().take(300).collect::<String>()
                        ));
                    }
                }
            }
        }
        t.assert_alive(&case.name);
        let now = t.snapshot(&t.guard);
        if now != before {
            failures.push(format!("{}: the guarded image changed: {before} → {now}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{}: {} of {ran} corpus cases failed:\n{}",
        t.name,
        failures.len(),
        failures.join("\n")
    );
    eprintln!("hostile corpus ({}): {ran} of {ran} cases answered properly", t.name);
}

#[test]
fn corpus_on_the_embedded_store() {
    run_corpus(&Target::start(Backend::Embedded));
}

#[test]
fn corpus_on_real_glance() {
    if let Some(g) = support::glance_url("NIP_TEST_GLANCE_URL") {
        run_corpus(&Target::start(Backend::Glance(g)));
    }
}

// ------------------------------------------------------------------- properties

/// Keys: mostly valid for Nova, some not (characters outside its pattern,
/// control characters, empty, too long).
fn key_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9:._ -]{1,12}",
        1 => "[a-z]{1,4}\n",
        1 => prop::sample::select(nova_images_proxy::backend::GLANCE_BASE_PROPERTIES).prop_map(String::from),
        1 => "[ \t\u{a0}\u{1c}]{0,2}[a-z]{1,3}[ \t\u{a0}\u{1f}]{0,2}",
        1 => "\\PC{0,6}",
        1 => "[\\x00-\\x1f/\\\\\"]{1,3}",
        1 => "[a-z]{250,260}",
    ]
}

fn value_strategy() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => "\\PC{0,20}".prop_map(Value::from),
        1 => "[a-z]{250,260}".prop_map(Value::from),
        1 => "[\\x00-\\x1f]{0,4}".prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::from),
        1 => Just(json!({"nested": "object"})),
        1 => Just(json!(["a", "list"])),
    ]
}

fn metadata_strategy() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec((key_strategy(), value_strategy()), 0..6).prop_map(|v| v.into_iter().collect())
}

#[derive(Debug, Clone)]
enum Write {
    /// `POST /metadata` (merge)
    Merge,
    /// `PUT /metadata` (replace)
    Replace,
    /// `PUT /metadata/{key}`
    One(String),
}

#[derive(Debug, Clone)]
struct WriteCase {
    write: Write,
    body: Vec<u8>,
    /// The metadata the body carries when it is well-formed.
    metadata: Option<Map<String, Value>>,
    content_type: Option<&'static str>,
}

fn write_strategy() -> impl Strategy<Value = WriteCase> {
    let write = prop_oneof![
        Just(Write::Merge),
        Just(Write::Replace),
        key_strategy().prop_map(Write::One),
    ];
    let content_type = prop_oneof![
        6 => Just(Some("application/json")),
        1 => Just(None),
        1 => Just(Some("text/plain")),
        1 => Just(Some("application/xml")),
        1 => Just(Some("application/json; charset=utf-16")),
    ];
    let shape = 0..8u8;
    let garbage = prop::collection::vec(any::<u8>(), 0..64);
    (write, metadata_strategy(), content_type, shape, garbage, key_strategy()).prop_map(
        |(write, metadata, content_type, shape, garbage, other_key)| {
            let (body, well_formed) = match (&write, shape) {
                (_, 0) => (garbage, false),
                (_, 1) => (
                    json!({"metadata": metadata, "extra": 1}).to_string().into_bytes(),
                    false,
                ),
                (_, 2) => (json!({"metadata": "not an object"}).to_string().into_bytes(), false),
                (Write::One(k), 3) => (
                    json!({"meta": {other_key: "v", k.clone(): "v"}})
                        .to_string()
                        .into_bytes(),
                    false,
                ),
                (Write::One(k), _) => {
                    let v = metadata.values().next().cloned().unwrap_or(json!("v"));
                    let one: Map<String, Value> = [(k.clone(), v)].into_iter().collect();
                    let body = json!({"meta": one}).to_string().into_bytes();
                    return WriteCase {
                        write,
                        body,
                        metadata: Some(one),
                        content_type,
                    };
                }
                (_, _) => (json!({"metadata": metadata}).to_string().into_bytes(), true),
            };
            WriteCase {
                write,
                body,
                metadata: well_formed.then_some(metadata),
                content_type,
            }
        },
    )
}

fn metadata_of(t: &Target, id: &str) -> Map<String, Value> {
    let r = raw::exchange(
        &t.compute.base,
        &raw::request(
            "GET",
            format!("/v2.1/images/{id}/metadata").as_bytes(),
            &[("X-Auth-Token", token().as_bytes())],
            None,
        ),
    )
    .expect("get metadata");
    assert_eq!(r.status, 200);
    r.json().unwrap()["metadata"].as_object().cloned().unwrap()
}

fn check_write(t: &Target, case: &WriteCase) -> Result<(), TestCaseError> {
    let id = t.new_image(json!({"base_key": "kept", "other": "x"}), false);
    let before = t.snapshot(&id);
    let before_meta = metadata_of(t, &id);
    let path = match &case.write {
        Write::Merge | Write::Replace => format!("/v2.1/images/{id}/metadata"),
        Write::One(k) => format!(
            "/v2.1/images/{id}/metadata/{}",
            percent_encoding::utf8_percent_encode(k, percent_encoding::NON_ALPHANUMERIC)
        ),
    };
    let method = match case.write {
        Write::Merge => "POST",
        _ => "PUT",
    };
    let mut headers: Vec<(&str, &[u8])> = vec![("X-Auth-Token", token().as_bytes())];
    if let Some(ct) = case.content_type {
        headers.push(("Content-Type", ct.as_bytes()));
    }
    let resp = raw::exchange(
        &t.compute.base,
        &raw::request(method, path.as_bytes(), &headers, Some(&case.body)),
    )
    .map_err(|e| TestCaseError::fail(format!("no answer: {e}")))?;
    check_answer(&resp, method.as_bytes()).map_err(TestCaseError::fail)?;
    prop_assert!(
        [200, 400, 403, 404, 413, 415].contains(&resp.status),
        "unexpected status {}: {}",
        resp.status,
        resp.text()
    );
    let after = t.snapshot(&id);
    if resp.status != 200 {
        prop_assert_eq!(&after, &before, "a refused write ({}) changed the image", resp.status);
        return Ok(());
    }
    for attr in nova_images_proxy::backend::GLANCE_BASE_PROPERTIES {
        if *attr != "updated_at" {
            prop_assert_eq!(
                &after[*attr],
                &before[*attr],
                "a metadata write changed base attribute {}",
                attr
            );
        }
    }
    let sent = case
        .metadata
        .clone()
        .ok_or_else(|| TestCaseError::fail(format!("a malformed body was accepted: {}", resp.text())))?;
    let now = metadata_of(t, &id);
    // Exactly what the write says: a key Glance would store under another
    // name (or a base attribute) is refused, never renamed.
    let expected = sent;
    for (k, v) in &expected {
        prop_assert_eq!(now.get(k), Some(v), "key {:?} not saved as sent", k);
    }
    for (k, v) in &now {
        if expected.contains_key(k) {
            continue;
        }
        match case.write {
            // Replace: only what was sent remains.
            Write::Replace => prop_assert!(false, "PUT /metadata kept {:?}", k),
            _ => prop_assert_eq!(
                before_meta.get(k),
                Some(v),
                "a key the write did not name changed: {:?}",
                k
            ),
        }
    }
    Ok(())
}

/// Any write of a second tenant to the test project's community image (which
/// it can see) is refused, whatever its body, and changes nothing.
fn check_intruder_write(t: &Target, case: &WriteCase) -> Result<(), TestCaseError> {
    let id = t.new_image(json!({"visibility": "community", "base_key": "kept"}), false);
    let before = t.snapshot(&id);
    let (method, path) = match &case.write {
        Write::Merge => ("POST", format!("/v2.1/images/{id}/metadata")),
        Write::Replace => ("PUT", format!("/v2.1/images/{id}/metadata")),
        Write::One(k) => (
            "PUT",
            format!(
                "/v2.1/images/{id}/metadata/{}",
                percent_encoding::utf8_percent_encode(k, percent_encoding::NON_ALPHANUMERIC)
            ),
        ),
    };
    let mut headers: Vec<(&str, &[u8])> = vec![("X-Auth-Token", INTRUDER.as_bytes())];
    if let Some(ct) = case.content_type {
        headers.push(("Content-Type", ct.as_bytes()));
    }
    let attempts = [
        (method, path, Some(case.body.as_slice())),
        ("DELETE", format!("/v2.1/images/{id}/metadata/base_key"), None),
        ("DELETE", format!("/v2.1/images/{id}"), None),
    ];
    for (method, path, body) in attempts {
        let resp = raw::exchange(&t.compute.base, &raw::request(method, path.as_bytes(), &headers, body))
            .map_err(|e| TestCaseError::fail(format!("no answer: {e}")))?;
        check_answer(&resp, method.as_bytes()).map_err(TestCaseError::fail)?;
        prop_assert!(
            [400, 403, 404, 413, 415].contains(&resp.status),
            "a second tenant's {} {} got {}: {}",
            method,
            path,
            resp.status,
            resp.text()
        );
        prop_assert_eq!(
            &t.snapshot(&id),
            &before,
            "a refused write ({}) changed the image",
            resp.status
        );
    }
    Ok(())
}

/// A request target of prefix, segments and query, with hostile bytes.
fn target_strategy(guard: String) -> impl Strategy<Value = (String, Vec<u8>)> {
    let method = prop::sample::select(vec![
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE",
    ]);
    let prefix = prop::sample::select(vec![
        "/v2.1".to_string(),
        format!("/v2.1/{}", support::PROJECT),
        "/v2".to_string(),
        format!("/v2/{}", support::PROJECT),
        String::new(),
        "/v2.1/other-project".to_string(),
    ]);
    let segment = prop_oneof![
        3 => prop::sample::select(vec!["images", "detail", "metadata", "v2.1", "..", ".", "", "%2e%2e", "images.json"]).prop_map(String::from),
        1 => Just("GUARD".to_string()),
        2 => prop::collection::vec(any::<u8>(), 0..8).prop_map(|b| percent_encoding::percent_encode(&b, percent_encoding::NON_ALPHANUMERIC).to_string()),
        1 => "[a-zA-Z0-9._~-]{0,40}",
    ];
    let pair = (
        prop::sample::select(vec![
            "limit",
            "marker",
            "name",
            "status",
            "changes-since",
            "server",
            "type",
            "minRam",
            "minDisk",
            "property-k",
            "sort_key",
            "x",
        ]),
        prop_oneof![
            Just(String::new()),
            "-?[0-9]{1,25}",
            prop::collection::vec(any::<u8>(), 0..12).prop_map(|b| percent_encoding::percent_encode(
                &b,
                percent_encoding::NON_ALPHANUMERIC
            )
            .to_string()),
            Just("GUARD".to_string()),
        ],
    );
    let query = prop::collection::vec(pair, 0..5);
    (method, prefix, prop::collection::vec(segment, 0..5), query).prop_map(move |(m, p, segs, q)| {
        let mut target = p;
        for s in segs {
            target.push('/');
            target.push_str(&s);
        }
        if target.is_empty() {
            target.push('/');
        }
        if !q.is_empty() {
            target.push('?');
            let q: Vec<String> = q.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
            target.push_str(&q.join("&"));
        }
        // Only reads may name the guarded image; a write gets a random id.
        let id = if m == "GET" || m == "HEAD" {
            guard.clone()
        } else {
            uuid::Uuid::new_v4().to_string()
        };
        (m.to_string(), target.replace("GUARD", &id).into_bytes())
    })
}

fn header_strategy() -> impl Strategy<Value = Vec<(&'static str, Vec<u8>)>> {
    let name = prop::sample::select(vec![
        "Accept",
        "OpenStack-API-Version",
        "X-OpenStack-Nova-API-Version",
        "Content-Type",
        "X-Auth-Token",
        "X-Openstack-Request-Id",
        "Range",
        "X-Roles",
    ]);
    let value = prop_oneof![
        prop::sample::select(vec![
            "compute 2.1",
            "compute 2.35",
            "compute latest",
            "2.38",
            "application/json",
            "text/html",
            "*/*;q=0",
            "bytes=0-1"
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        "[ -~]{0,40}".prop_map(String::into_bytes),
        prop::collection::vec(0x20u8..=0xff, 0..20),
    ];
    prop::collection::vec((name, value), 0..4)
}

fn check_request(
    t: &Target,
    method: &str,
    target: &[u8],
    headers: &[(&str, Vec<u8>)],
    image_listener: bool,
) -> Result<(), TestCaseError> {
    let mut all: Vec<(&str, &[u8])> = vec![];
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("X-Auth-Token")) {
        all.push(("X-Auth-Token", token().as_bytes()));
    }
    for (n, v) in headers {
        all.push((n, v));
    }
    let body: Option<&[u8]> = matches!(method, "POST" | "PUT" | "PATCH").then_some(b"{\"metadata\": {\"k\": \"v\"}}");
    let base = if image_listener { &t.image.base } else { &t.compute.base };
    let resp = raw::exchange(base, &raw::request(method, target, &all, body))
        .map_err(|e| TestCaseError::fail(format!("no answer: {e}")))?;
    check_answer(&resp, method.as_bytes())
        .map_err(|e| TestCaseError::fail(format!("{} {}: {e}", method, String::from_utf8_lossy(target))))?;
    Ok(())
}

fn run_properties(t: &Target) {
    let cases = |n: u32| ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(n),
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let before = t.snapshot(&t.guard);
    let mut runner = proptest::test_runner::TestRunner::new(cases(48));
    runner
        .run(&write_strategy(), |case| check_write(t, &case))
        .unwrap_or_else(|e| panic!("{}: metadata writes: {e}", t.name));
    // A Glance without Keystone (as the suite's) makes every caller an admin:
    // a second tenant means something on the embedded store only.
    if t.name == "embedded store" {
        let mut runner = proptest::test_runner::TestRunner::new(cases(24));
        runner
            .run(&write_strategy(), |case| check_intruder_write(t, &case))
            .unwrap_or_else(|e| panic!("{}: a second tenant's writes: {e}", t.name));
    }

    let mut runner = proptest::test_runner::TestRunner::new(cases(160));
    let requests = (target_strategy(t.guard.clone()), header_strategy(), any::<bool>());
    runner
        .run(&requests, |((method, target), headers, image_listener)| {
            let target = if image_listener {
                // The same shapes under the image listener's prefixes.
                String::from_utf8_lossy(&target)
                    .replacen("/v2.1", "/v1", 1)
                    .into_bytes()
            } else {
                target
            };
            check_request(t, &method, &target, &headers, image_listener)
        })
        .unwrap_or_else(|e| panic!("{}: arbitrary requests: {e}", t.name));
    t.assert_alive("the property runs");
    assert_eq!(t.snapshot(&t.guard), before, "{}: the guarded image changed", t.name);
}

#[test]
fn properties_on_the_embedded_store() {
    run_properties(&Target::start(Backend::Embedded));
}

#[test]
fn properties_on_real_glance() {
    if let Some(g) = support::glance_url("NIP_TEST_GLANCE_URL") {
        run_properties(&Target::start(Backend::Glance(g)));
    }
}
