//! The Nova images API through the service, beyond the captured cases:
//! metadata writes, quota and microversion boundaries, legacy prefix,
//! concurrency, auth. Each of these conformance cases has one body and runs on
//! a real Glance (`on_glance::…`) and on the embedded store
//! (`on_embedded_store::…`). Glance failures and Glance call counts are about
//! the Glance backend only. Each test creates its own images; the Glance is shared.

#[macro_use]
mod support;

use serde_json::{json, Value};
use std::sync::Arc;
use support::{api::Api, fault_proxy, Backend};

fn glance() -> Option<String> {
    support::glance_url("NIP_TEST_GLANCE_URL")
}

fn many(prefix: &str, n: usize) -> Value {
    let m: serde_json::Map<String, Value> = (0..n).map(|i| (format!("{prefix}{i:03}"), json!("v"))).collect();
    Value::Object(m)
}

async fn metadata_crud_round_trip_keeps_base_attributes(b: Backend) {
    let api = Api::new(&b, &[]);
    let id = api.image(json!({"os_distro": "debian", "hw_disk_bus": "virtio"})).await;
    let p = format!("/v2.1/images/{id}/metadata");
    assert_eq!(
        api.get(&p).await,
        (
            200,
            json!({"metadata": {"os_distro": "debian", "hw_disk_bus": "virtio"}})
        )
    );
    let (s, v) = api
        .req(
            "POST",
            &p,
            &[],
            Some(r#"{"metadata": {"os_distro": "ubuntu", "Label": "x y:z.-_"}}"#),
        )
        .await;
    assert_eq!(
        (s, v),
        (
            200,
            json!({"metadata": {"os_distro": "ubuntu", "hw_disk_bus": "virtio", "Label": "x y:z.-_"}})
        )
    );
    let (s, v) = api
        .req("PUT", &format!("{p}/k1"), &[], Some(r#"{"meta": {"k1": "v1"}}"#))
        .await;
    assert_eq!((s, v), (200, json!({"meta": {"k1": "v1"}})));
    assert_eq!(api.get(&format!("{p}/k1")).await, (200, json!({"meta": {"k1": "v1"}})));
    assert_eq!(api.req("DELETE", &format!("{p}/k1"), &[], None).await.0, 204);
    assert_eq!(
        api.req("DELETE", &format!("{p}/k1"), &[], None).await,
        (
            404,
            json!({"itemNotFound": {"code": 404, "message": "Invalid metadata key"}})
        )
    );
    assert_eq!(
        api.get(&format!("{p}/k1")).await,
        (
            404,
            json!({"itemNotFound": {"code": 404, "message": "The resource could not be found."}})
        )
    );
    let (s, v) = api.req("PUT", &p, &[], Some(r#"{"metadata": {"only": "this"}}"#)).await;
    assert_eq!((s, v), (200, json!({"metadata": {"only": "this"}})));
    assert_eq!(api.get(&p).await, (200, json!({"metadata": {"only": "this"}})));
    let raw = api.glance_props(&id).await;
    assert_eq!(raw["disk_format"], "raw", "base attributes are untouched");
    assert_eq!(raw["name"], format!("nova-api-test-{id}"));
    // An empty PUT removes every extra property (openstacksdk's delete_image_metadata()).
    assert_eq!(
        api.req("PUT", &p, &[], Some(r#"{"metadata": {}}"#)).await,
        (200, json!({"metadata": {}}))
    );
    assert_eq!(api.get(&p).await, (200, json!({"metadata": {}})));
}

async fn metadata_quota_allows_128_and_refuses_129(b: Backend) {
    let api = Api::new(&b, &[]);
    let id = api.image(json!({"one": "1"})).await;
    let p = format!("/v2.1/images/{id}/metadata");
    // POST counts the merged result: 1 existing + 128 new = 129.
    let body = json!({"metadata": many("q", 128)}).to_string();
    assert_eq!(
        api.req("POST", &p, &[], Some(&body)).await,
        (
            403,
            json!({"forbidden": {"code": 403, "message": "Image metadata limit exceeded"}})
        )
    );
    assert_eq!(
        api.get(&p).await.1,
        json!({"metadata": {"one": "1"}}),
        "nothing was written"
    );
    // PUT counts the body only: 128 is fine, 129 is not.
    assert_eq!(
        api.req("PUT", &p, &[], Some(&json!({"metadata": many("q", 128)}).to_string()))
            .await
            .0,
        200
    );
    assert_eq!(api.get(&p).await.1["metadata"].as_object().unwrap().len(), 128);
    assert_eq!(
        api.req("PUT", &p, &[], Some(&json!({"metadata": many("r", 129)}).to_string()))
            .await
            .0,
        403
    );
    assert_eq!(
        api.req("PUT", &format!("{p}/extra"), &[], Some(r#"{"meta": {"extra": "x"}}"#))
            .await
            .0,
        403
    );
    assert_eq!(api.get(&p).await.1["metadata"].as_object().unwrap().len(), 128);
    // The quota is configurable.
    let small = Api::new(&b, &[("api.metadata_items", "2")]);
    let id = small.image(json!({})).await;
    let p = format!("/v2.1/images/{id}/metadata");
    assert_eq!(
        small
            .req("POST", &p, &[], Some(r#"{"metadata": {"a": "1", "b": "2"}}"#))
            .await
            .0,
        200
    );
    assert_eq!(
        small.req("POST", &p, &[], Some(r#"{"metadata": {"c": "3"}}"#)).await.0,
        403
    );
}

async fn microversion_gates_images_at_2_36_and_metadata_at_2_39(b: Backend) {
    let api = Api::new(&b, &[]);
    let id = api.image(json!({"k": "v"})).await;
    let gone = json!({"itemNotFound": {"code": 404, "message": "The resource could not be found."}});
    for (header, value) in [
        ("X-OpenStack-Nova-API-Version", "2.35"),
        ("OpenStack-API-Version", "compute 2.35"),
    ] {
        assert_eq!(
            api.req("GET", &format!("/v2.1/images/{id}"), &[(header, value)], None)
                .await
                .0,
            200
        );
    }
    for v in ["2.36", "2.38", "latest"] {
        let (s, body) = api
            .req(
                "GET",
                &format!("/v2.1/images/{id}"),
                &[("X-OpenStack-Nova-API-Version", v)],
                None,
            )
            .await;
        assert_eq!((s, body), (404, gone.clone()), "{v}");
    }
    let p = format!("/v2.1/images/{id}/metadata");
    assert_eq!(
        api.req("GET", &p, &[("X-OpenStack-Nova-API-Version", "2.38")], None)
            .await
            .0,
        200
    );
    assert_eq!(
        api.req(
            "POST",
            &p,
            &[("X-OpenStack-Nova-API-Version", "2.38")],
            Some(r#"{"metadata": {"a": "b"}}"#)
        )
        .await
        .0,
        200
    );
    // From 2.39 the gate answers before the body is even validated.
    assert_eq!(
        api.req(
            "POST",
            &p,
            &[("X-OpenStack-Nova-API-Version", "2.39")],
            Some(r#"{"bad": 1}"#)
        )
        .await,
        (404, gone.clone())
    );
    assert_eq!(
        api.req(
            "DELETE",
            &format!("{p}/a"),
            &[("X-OpenStack-Nova-API-Version", "2.39")],
            None
        )
        .await
        .0,
        404
    );
    assert_eq!(api.get(&p).await.1, json!({"metadata": {"k": "v", "a": "b"}}));
    // A deployment mimicking an older Nova: 2.39 is out of range (406).
    let old_service = support::start_beside(&api.service, &b, &[("api.max_microversion", "2.38")]);
    let old = Api {
        client: support::client(),
        base: old_service.base.clone(),
        backend: b.clone(),
        service: old_service,
    };
    let (s, body) = old
        .req("GET", &p, &[("X-OpenStack-Nova-API-Version", "2.39")], None)
        .await;
    assert_eq!(s, 406);
    assert_eq!(
        body["computeFault"]["message"],
        "Version 2.39 is not supported by the API. Minimum is 2.1 and maximum is 2.38."
    );
    assert_eq!(
        old.req("GET", &p, &[("X-OpenStack-Nova-API-Version", "latest")], None)
            .await
            .0,
        200
    );
}

async fn legacy_v2_ignores_microversions_and_validates_softly(b: Backend) {
    let api = Api::new(&b, &[]);
    let id = api.image(json!({})).await;
    let p = format!("/v2/{}/images/{id}/metadata", support::PROJECT);
    let (s, v) = api
        .req(
            "POST",
            &p,
            &[("X-OpenStack-Nova-API-Version", "2.39")],
            Some(r#"{"metadata": {"k": "v"}, "extra": 1}"#),
        )
        .await;
    assert_eq!((s, v), (200, json!({"metadata": {"k": "v"}})));
    let (s, v) = api
        .req("POST", &p, &[], Some(r#"{"metadata": {"bad/key": "v", "ok": "v"}}"#))
        .await;
    assert_eq!(s, 400);
    assert_eq!(v["badRequest"]["message"], "Invalid input for field/attribute metadata. Value: {'bad/key': 'v', 'ok': 'v'}. Additional properties are not allowed ('bad/key' was unexpected)");
    let r = api
        .client
        .get(format!("{}/v2/{}/images/{id}", api.base, support::PROJECT))
        .header("X-Auth-Token", support::TOKEN)
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("openstack-api-version").is_none());
    assert!(r.headers().get("vary").is_none());
    let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(
        body["image"]["links"][0]["href"],
        format!("{}/v2/{}/images/{id}", api.base, support::PROJECT)
    );
}

async fn bad_metadata_bodies_get_nova_faults_and_write_nothing(b: Backend) {
    let api = Api::new(&b, &[]);
    let id = api.image(json!({"keep": "me"})).await;
    let p = format!("/v2.1/images/{id}/metadata");
    let long = "x".repeat(256);
    let long_body = json!({"metadata": {"k": long}}).to_string();
    let cases: Vec<(&str, String, &str, u16)> = vec![
        ("POST", p.clone(), r#"{"metadata": "#, 400),
        ("POST", p.clone(), r#"{"metadata": {"k": 1}}"#, 400),
        ("POST", p.clone(), r#"{"metadata": {"k": null}}"#, 400),
        ("POST", p.clone(), r#"{"metadata": {"": "v"}}"#, 400),
        ("POST", p.clone(), &long_body, 400),
        ("PUT", p.clone(), r#"{"metadata": [1]}"#, 400),
        ("PUT", p.clone(), r#"[]"#, 400),
        ("PUT", format!("{p}/a"), r#"{"meta": {"b": "v"}}"#, 400),
        ("PUT", format!("{p}/a"), r#"{"meta": {"a": "v", "b": "v"}}"#, 400),
        ("PUT", format!("{p}/a"), r#"{"meta": {}}"#, 400),
    ];
    for (method, path, body, status) in &cases {
        let (s, v) = api.req(method, path, &[], Some(body)).await;
        assert_eq!(s, *status, "{method} {path} {body}: {v}");
        assert!(v.get("badRequest").is_some(), "{v}");
    }
    let (s, v) = api
        .req("POST", &p, &[("Content-Type", "application/xml")], Some("{}"))
        .await;
    assert_eq!(s, 415, "{v}");
    // Over the body size limit: 413 before anything is read into a write.
    let huge = json!({"metadata": {"k": "v".repeat(200_000)}}).to_string();
    assert_eq!(api.req("POST", &p, &[], Some(&huge)).await.0, 413);
    assert_eq!(api.get(&p).await.1, json!({"metadata": {"keep": "me"}}));
}

async fn concurrent_writers_lose_no_keys(b: Backend) {
    let api = Arc::new(Api::new(&b, &[]));
    let id = api.image(json!({})).await;
    let mut tasks = Vec::new();
    for t in 0..16 {
        let api = api.clone();
        let id = id.clone();
        tasks.push(actix_web::rt::spawn(async move {
            for k in 0..8 {
                let body = json!({"metadata": {format!("t{t:02}k{k}"): format!("{t}-{k}")}}).to_string();
                let (s, v) = api
                    .req("POST", &format!("/v2.1/images/{id}/metadata"), &[], Some(&body))
                    .await;
                assert_eq!(s, 200, "{v}");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let (_, v) = api.get(&format!("/v2.1/images/{id}/metadata")).await;
    let meta = v["metadata"].as_object().expect("metadata");
    assert_eq!(meta.len(), 128, "every key of every writer is there");
    for t in 0..16 {
        for k in 0..8 {
            assert_eq!(meta[&format!("t{t:02}k{k}")], format!("{t}-{k}"));
        }
    }
}

async fn auth_uses_the_token_only(b: Backend) {
    let api = Api::new(&b, &[]);
    let r = api
        .client
        .get(format!("{}/v2.1/images", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Keystone uri=\"http://127.0.0.1:5000\""
    );
    // Identity headers sent by the client change nothing: the project comes from the token.
    let (s, v) = api
        .req(
            "GET",
            "/v2.1/deadbeef/images",
            &[("X-Project-Id", "deadbeef"), ("X-Roles", "admin")],
            None,
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(
        v["badRequest"]["message"],
        format!(
            "Malformed request URL: URL's project_id 'deadbeef' doesn't match Context's project_id '{}'",
            support::PROJECT
        )
    );
}

#[actix_web::test]
async fn glance_unreachable_is_a_json_503_not_a_hang() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let api = Api::new(
        &Backend::Glance(format!("http://127.0.0.1:{port}")),
        &[("glance.num_retries", "1")],
    );
    for path in [
        "/v2.1/images",
        "/v2.1/images/detail",
        "/v2.1/images/x",
        "/v2.1/images/x/metadata",
    ] {
        let (s, v) = api.get(path).await;
        assert_eq!(s, 503, "{path}");
        assert_eq!(v["serviceUnavailable"]["code"], 503);
    }
}

#[actix_web::test]
async fn one_glance_call_per_read_and_at_most_two_per_metadata_write() {
    let Some(g) = glance() else { return };
    let proxy = fault_proxy::start(&g);
    let api = Api::new(&Backend::Glance(proxy.url.clone()), &[]);
    let id = api.image(json!({"a": "1"})).await;
    // Warm-up: the image schema is fetched once per process.
    api.get(&format!("/v2.1/images/{id}")).await;
    let mut calls = Vec::new();
    let ops: Vec<(&str, String, Option<&str>)> = vec![
        ("GET", format!("/v2.1/images/{id}"), None),
        ("GET", "/v2.1/images/detail?limit=5".to_string(), None),
        ("GET", "/v2.1/images?limit=5".to_string(), None),
        ("GET", format!("/v2.1/images/{id}/metadata"), None),
        ("GET", format!("/v2.1/images/{id}/metadata/a"), None),
        (
            "POST",
            format!("/v2.1/images/{id}/metadata"),
            Some(r#"{"metadata": {"b": "2"}}"#),
        ),
        (
            "PUT",
            format!("/v2.1/images/{id}/metadata/c"),
            Some(r#"{"meta": {"c": "3"}}"#),
        ),
        (
            "PUT",
            format!("/v2.1/images/{id}/metadata"),
            Some(r#"{"metadata": {"a": "1", "d": "4"}}"#),
        ),
        ("DELETE", format!("/v2.1/images/{id}/metadata/d"), None),
    ];
    for (method, path, body) in &ops {
        let before = proxy.count();
        let (s, _) = api.req(method, path, &[], *body).await;
        assert!(s < 300, "{method} {path}: {s}");
        calls.push((format!("{method} {path}"), proxy.count() - before));
    }
    eprintln!("glance calls per request: {calls:?}\n{:?}", proxy.calls());
    for (op, n) in &calls {
        let limit = if op.starts_with("GET") { 1 } else { 2 };
        assert!(*n <= limit, "{op} made {n} Glance calls");
    }
}

/// Concurrent writes to one image with one token share Glance calls (one GET
/// and one PATCH for all that queued up), none is lost, and one that Glance
/// refuses fails on its own with the answer it gets when sent alone.
#[actix_web::test]
async fn concurrent_writes_share_glance_calls_and_a_refused_one_fails_alone() {
    let Some(g) = glance() else { return };
    let proxy = fault_proxy::start(&g);
    let api = Arc::new(Api::new(&Backend::Glance(proxy.url.clone()), &[]));
    let id = api.image(json!({})).await;
    let path = format!("/v2.1/images/{id}/metadata");
    // Alone: Glance refuses a reserved name.
    let reserved = r#"{"metadata": {"os_glance_reserved": "x"}}"#;
    let alone = api.req("POST", &path, &[], Some(reserved)).await;
    assert!(alone.0 >= 400 && alone.0 < 500, "{alone:?}");

    // 32 valid writes at once: fewer calls than one GET and one PATCH each.
    let before = proxy.count();
    let mut tasks = Vec::new();
    for t in 0..32 {
        let (api, path) = (api.clone(), path.clone());
        tasks.push(actix_web::rt::spawn(async move {
            let body = json!({"metadata": {format!("v{t:02}"): format!("{t}")}}).to_string();
            api.req("POST", &path, &[], Some(&body)).await
        }));
    }
    for task in tasks {
        let (s, v) = task.await.expect("task");
        assert_eq!(s, 200, "{v}");
    }
    let shared = proxy.count() - before;
    eprintln!("32 concurrent writes: {shared} Glance calls");
    assert!(
        shared < 64,
        "{shared} Glance calls for 32 concurrent writes: none shared"
    );

    // The same with one write Glance refuses among them.
    let before = proxy.count();
    let mut tasks = Vec::new();
    for t in 0..32 {
        let (api, path) = (api.clone(), path.clone());
        tasks.push(actix_web::rt::spawn(async move {
            let body = if t == 7 {
                reserved.to_string()
            } else {
                json!({"metadata": {format!("w{t:02}"): format!("{t}")}}).to_string()
            };
            (t, api.req("POST", &path, &[], Some(&body)).await)
        }));
    }
    for task in tasks {
        let (t, (s, v)) = task.await.expect("task");
        if t == 7 {
            assert_eq!((s, &v), (alone.0, &alone.1), "the refused write answers as when alone");
        } else {
            assert_eq!(s, 200, "{v}");
            assert_eq!(
                v["metadata"][format!("w{t:02}")],
                format!("{t}"),
                "its key in its answer"
            );
        }
    }
    let calls = proxy.count() - before;
    let (_, v) = api.get(&path).await;
    let meta = v["metadata"].as_object().expect("metadata");
    assert_eq!(meta.len(), 63, "{v}");
    assert!(!meta.contains_key("os_glance_reserved"));
    // A refused combined PATCH is redone write by write: at most one GET
    // and one PATCH more than the writes alone would take.
    eprintln!("32 concurrent writes, one refused: {calls} Glance calls");
    assert!(calls <= 2 * 32 + 2, "{calls} Glance calls for 32 writes");
}

#[actix_web::test]
async fn slow_glance_is_a_json_504_within_the_timeout() {
    // A local server that accepts and then answers nothing for 30 s.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_secs(30));
                drop(stream);
            });
        }
    });
    let api = Api::new(
        &Backend::Glance(format!("http://{addr}")),
        &[("glance.timeout_secs", "0.5"), ("glance.num_retries", "0")],
    );
    let started = std::time::Instant::now();
    let (s, v) = api.get("/v2.1/images/some-id").await;
    assert_eq!(s, 504);
    assert_eq!(v["computeFault"]["code"], 504);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "answered within the configured timeout"
    );
}

async fn writes_nova_fumbles_succeed(b: Backend) {
    let api = Api::new(&b, &[]);
    // Nova's Glance client turns "same value under a new key" into a JSON-patch
    // `move`, which Glance refuses: Nova answers 500. Here it is an add and a remove.
    let id = api.image(json!({"zz": "1"})).await;
    let p = format!("/v2.1/images/{id}/metadata");
    assert_eq!(
        api.req("PUT", &p, &[], Some(r#"{"metadata": {"x": "1"}}"#)).await,
        (200, json!({"metadata": {"x": "1"}}))
    );
    assert_eq!(api.get(&p).await.1, json!({"metadata": {"x": "1"}}));
}

/// Nova bugs not copied (README's compatibility notes): a query parameter on a
/// metadata read is Nova's 500 `KeyError`; here the answer is the one without
/// it. A metadata write on a `shared` or `community` image turns it `private`
/// in Nova (its `is_public` round trip); here the visibility stays.
async fn nova_bugs_on_metadata_calls_are_not_copied(b: Backend) {
    let api = Api::new(&b, &[]);
    let id = api.image(json!({"os_distro": "debian", "visibility": "shared"})).await;
    let p = format!("/v2.1/images/{id}/metadata");
    let all = (200, json!({"metadata": {"os_distro": "debian"}}));
    assert_eq!(api.get(&p).await, all);
    assert_eq!(api.get(&format!("{p}?limit=1&x=y")).await, all);
    let key = (200, json!({"meta": {"os_distro": "debian"}}));
    assert_eq!(api.get(&format!("{p}/os_distro?sort_key=name")).await, key);
    let community = api.image(json!({"visibility": "community"})).await;
    for (image, visibility) in [(&id, "shared"), (&community, "community")] {
        let p = format!("/v2.1/images/{image}/metadata");
        let writes: [(&str, String, &str); 4] = [
            ("POST", p.clone(), r#"{"metadata": {"k1": "v1"}}"#),
            ("PUT", format!("{p}/k2"), r#"{"meta": {"k2": "v2"}}"#),
            ("PUT", p.clone(), r#"{"metadata": {"k3": "v3"}}"#),
            ("DELETE", format!("{p}/k3"), ""),
        ];
        for (method, path, body) in writes {
            let sent = (!body.is_empty()).then_some(body);
            let status = api.req(method, &path, &[], sent).await.0;
            assert!(status == 200 || status == 204, "{method} {path}: {status}");
            assert_eq!(
                api.glance_props(image).await["visibility"],
                visibility,
                "after {method} {path}"
            );
        }
    }
}

/// A metadata write naming a base attribute of the image, or a key Glance
/// would store under another name (`str.strip()`), is a 400 naming the key on
/// every call and prefix, before any backend call: nothing is written.
async fn base_attributes_and_keys_glance_would_rename_are_refused(b: Backend) {
    use nova_images_proxy::backend::GLANCE_BASE_PROPERTIES;
    // On Glance, through a counting proxy: no call may reach it.
    let (api, proxy) = match &b {
        Backend::Glance(g) => {
            let proxy = fault_proxy::start(g);
            (Api::new(&Backend::Glance(proxy.url.clone()), &[]), Some(proxy))
        }
        Backend::Embedded => (Api::new(&b, &[]), None),
    };
    let id = api
        .image(json!({"hostile_seed_a": "kept", "os_distro": "debian"}))
        .await;
    // Warm up (the Glance backend reads the image schema once).
    assert_eq!(api.get(&format!("/v2.1/images/{id}/metadata")).await.0, 200);
    let before = api.glance_props(&id).await;
    let calls_before = proxy.as_ref().map(|p| p.count());
    let mut keys: Vec<String> = GLANCE_BASE_PROPERTIES.iter().map(|k| k.to_string()).collect();
    for k in [
        "hostile_seed_a ",
        " hostile_seed_a",
        "hostile_seed_a\n",
        "hostile_seed_a\t",
        "\u{a0}hostile_seed_a",
        "hostile_seed_a\u{1c}",
        "hostile_seed_a\u{3000}",
        " ",
        "\n",
    ] {
        keys.push(k.to_string());
    }
    let project = support::PROJECT;
    let prefixes = [
        "/v2.1".to_string(),
        format!("/v2.1/{project}"),
        "/v2".to_string(),
        format!("/v2/{project}"),
    ];
    let mut refused = 0;
    for prefix in &prefixes {
        let legacy = !prefix.starts_with("/v2.1");
        for key in &keys {
            // Nova reads a path as Latin-1: a URL can name a key only in
            // those bytes (`\u{a0}` is `%A0`), and none past U+00FF.
            let latin1: Option<Vec<u8>> = key.chars().map(|c| u8::try_from(c).ok()).collect();
            let enc =
                latin1.map(|b| percent_encoding::percent_encode(&b, percent_encoding::NON_ALPHANUMERIC).to_string());
            let one = json!({key.as_str(): "v"});
            let mut two = json!({"fine": "v"});
            two[key.as_str()] = json!("v");
            let mut calls = vec![
                (
                    "POST",
                    format!("{prefix}/images/{id}/metadata"),
                    Some(json!({"metadata": one.clone()})),
                ),
                (
                    "PUT",
                    format!("{prefix}/images/{id}/metadata"),
                    Some(json!({"metadata": two})),
                ),
            ];
            if let Some(enc) = enc {
                calls.push((
                    "PUT",
                    format!("{prefix}/images/{id}/metadata/{enc}"),
                    Some(json!({"meta": one})),
                ));
                calls.push(("DELETE", format!("{prefix}/images/{id}/metadata/{enc}"), None));
            }
            for (method, path, body) in calls {
                let body = body.map(|b| b.to_string());
                let (s, v) = api.req(method, &path, &[], body.as_deref()).await;
                let msg = v["badRequest"]["message"].as_str().unwrap_or_default().to_string();
                assert_eq!(
                    (s, v["badRequest"]["code"].clone()),
                    (400, json!(400)),
                    "{method} {path}: {v}"
                );
                // Keys outside Nova's pattern get Nova's own refusal (on legacy
                // `/v2` when mixed with valid keys); every other refusal names the key.
                let nova_pattern = method != "DELETE"
                    && (msg.contains("does not match any of the regexes")
                        || (legacy && msg.contains("Additional properties are not allowed")));
                let named = msg.starts_with(&format!("Invalid metadata key {}", py_repr(key)));
                assert!(nova_pattern || named, "{method} {path}: {msg}");
                if ["name", "owner", "status", "hostile_seed_a ", "hostile_seed_a\n"].contains(&key.as_str()) {
                    assert!(named, "{method} {path}: {msg}");
                }
                refused += 1;
            }
        }
    }
    if let (Some(p), Some(n)) = (&proxy, calls_before) {
        assert_eq!(p.count(), n, "a refused write reached Glance");
    }
    assert_eq!(api.glance_props(&id).await, before, "a refused write changed the image");
    eprintln!("{refused} refused writes, image unchanged");
}

/// Python's `repr()` of a str, as the service's messages quote keys.
fn py_repr(s: &str) -> String {
    nova_images_proxy::edge::pyjson::py_repr_str(s)
}

/// The embedded store keeps the bodies it drew (`embedded.response_cache_mib`):
/// each answer is still the image as it is now, with the links of its own
/// request, and only for a caller who may see it.
#[actix_web::test]
async fn embedded_bodies_kept_follow_writes_links_and_visibility() {
    let api = Api::new(&Backend::Embedded, &[]);
    let id = api.image(json!({"a": "1"})).await;
    let show = |path: String, headers: Vec<(&'static str, &'static str)>| {
        let api = &api;
        async move { api.req("GET", &path, &headers, None).await }
    };
    let plain = format!("/v2.1/images/{id}");
    let (s, first) = show(plain.clone(), vec![]).await;
    assert_eq!((s, &first["image"]["metadata"]), (200, &json!({"a": "1"})));
    assert_eq!(show(plain.clone(), vec![]).await, (200, first.clone()), "read again");
    let self_href = |v: &Value| v["image"]["links"][0]["href"].as_str().unwrap_or_default().to_string();
    assert_eq!(self_href(&first), format!("{}/v2.1/images/{id}", api.base));
    let (_, other_host) = show(plain.clone(), vec![("Host", "compute.example:8774")]).await;
    assert_eq!(
        self_href(&other_host),
        format!("http://compute.example:8774/v2.1/images/{id}")
    );
    let (_, with_project) = show(format!("/v2.1/{}/images/{id}", support::PROJECT), vec![]).await;
    assert_eq!(
        self_href(&with_project),
        format!("{}/v2.1/{}/images/{id}", api.base, support::PROJECT)
    );
    let (_, legacy) = show(format!("/v2/images/{id}"), vec![]).await;
    assert_eq!(self_href(&legacy), format!("{}/v2/images/{id}", api.base));
    let meta = format!("/v2.1/images/{id}/metadata");
    assert_eq!(api.get(&meta).await, (200, json!({"metadata": {"a": "1"}})));

    let (s, _) = api.req("POST", &meta, &[], Some(r#"{"metadata": {"b": "2"}}"#)).await;
    assert_eq!(s, 200);
    let (_, after) = show(plain.clone(), vec![]).await;
    assert_eq!(
        after["image"]["metadata"],
        json!({"a": "1", "b": "2"}),
        "the write shows"
    );
    assert_ne!(after["image"]["updated"], Value::Null);
    assert_eq!(api.get(&meta).await, (200, json!({"metadata": {"a": "1", "b": "2"}})));

    // Another project does not see the (private) image it was drawn for.
    let stranger = "stranger:0123456789abcdef0123456789abcdef";
    let (s, v) = support::get_as(&format!("{}{plain}", api.base), stranger).await;
    assert_eq!(s, 404, "{v}");
    let (s, _) = support::get_as(&format!("{}{meta}", api.base), stranger).await;
    assert_eq!(s, 404);
}

on_both_backends!(
    metadata_crud_round_trip_keeps_base_attributes,
    metadata_quota_allows_128_and_refuses_129,
    microversion_gates_images_at_2_36_and_metadata_at_2_39,
    legacy_v2_ignores_microversions_and_validates_softly,
    bad_metadata_bodies_get_nova_faults_and_write_nothing,
    concurrent_writers_lose_no_keys,
    auth_uses_the_token_only,
    writes_nova_fumbles_succeed,
    base_attributes_and_keys_glance_would_rename_are_refused,
    nova_bugs_on_metadata_calls_are_not_copied
);

#[actix_web::test]
async fn healthcheck_needs_no_token_and_can_check_the_backend() {
    let api = Api::new(&Backend::Embedded, &[("server.healthcheck_backend", "true")]);
    let r = api
        .client
        .get(format!("{}/healthcheck", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // One reason per check (oslo.middleware's plain-text rendering): the
    // disable-by-file check, then the backend.
    assert_eq!(r.text().await.unwrap(), "OK\nOK");
    let r = api
        .client
        .head(format!("{}/healthcheck", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let r = api
        .client
        .get(format!("{}/healthcheck", api.base))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.text().await.unwrap(),
        "{\n    \"detailed\": false,\n    \"reasons\": [\n        \"OK\",\n        \"OK\"\n    ]\n}"
    );
    // A Glance nobody listens for: 503 only when told to check it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = Backend::Glance(format!("http://127.0.0.1:{port}"));
    let checked = Api::new(&down, &[("server.healthcheck_backend", "true")]);
    let r = checked
        .client
        .get(format!("{}/healthcheck", checked.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(r.text().await.unwrap(), "OK\nImage backend unreachable");
    let unchecked = Api::new(&down, &[]);
    let r = unchecked
        .client
        .get(format!("{}/healthcheck", unchecked.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}
