//! The service in front of a misbehaving Glance: a small fault-injecting proxy
//! (`support::fault_proxy`) sits between the service and the real Glance.
//! Reads are retried on 503 and broken connections; writes are never retried,
//! and a write whose answer is lost is resolved by reading the image back; the
//! service recovers as soon as Glance does.

mod support;

use serde_json::{json, Value};
use support::fault_proxy::{self, Fault, Lost};

async fn get(client: &reqwest::Client, base: &str, path: &str) -> (u16, Value) {
    let r = client
        .get(format!("{base}{path}"))
        .header("X-Auth-Token", support::TOKEN)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (
        s,
        serde_json::from_slice(&r.bytes().await.unwrap()).unwrap_or(Value::Null),
    )
}

#[actix_web::test]
async fn reads_retry_writes_do_not_and_the_service_recovers() {
    let Some(glance) = support::glance_url("NIP_TEST_GLANCE_URL") else {
        return;
    };
    let client = support::client();
    let id = support::glance_image(&client, &glance, &json!({"k": "v"})).await;

    let proxy = fault_proxy::start(&glance);
    let service = support::start(support::settings(&[
        ("glance.url", proxy.url.as_str()),
        ("glance.num_retries", "3"),
    ]));
    let base = service.base.clone();
    let show = format!("/v2.1/images/{id}");
    // Warm-up (the image schema is read once).
    assert_eq!(get(&client, &base, &show).await.0, 200);

    // Two 503s, then Glance answers: the read succeeds after retries.
    proxy.set(Fault::Unavailable, 2);
    assert_eq!(get(&client, &base, &show).await.0, 200);
    assert_eq!(proxy.calls().len(), 3, "{:?}", proxy.calls());

    // Connections cut without an answer: retried too.
    proxy.set(Fault::Reset, 2);
    assert_eq!(get(&client, &base, &show).await.0, 200);
    assert_eq!(proxy.calls().len(), 3, "{:?}", proxy.calls());

    // Glance unavailable longer than the retries: a JSON 503, 1 + 3 attempts.
    proxy.set(Fault::Unavailable, 100);
    let (s, v) = get(&client, &base, &show).await;
    assert_eq!((s, v["serviceUnavailable"]["code"].clone()), (503, json!(503)));
    assert_eq!(proxy.calls().len(), 4);

    // A write is never retried, not even on 503: exactly one PATCH goes out.
    proxy.set(
        Fault::Patch {
            applied: false,
            answer: Lost::Status(503),
            then_gone: false,
        },
        0,
    );
    let r = client
        .post(format!("{base}/v2.1/images/{id}/metadata"))
        .header("X-Auth-Token", support::TOKEN)
        .header("Content-Type", "application/json")
        .body(r#"{"metadata": {"n": "1"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    let calls = proxy.calls();
    assert_eq!(calls.iter().filter(|c| c.starts_with("PATCH")).count(), 1, "{calls:?}");

    // Glance failing with 500: Nova's fault, promptly.
    proxy.set(Fault::ServerError, 0);
    let (s, v) = get(&client, &base, &show).await;
    assert_eq!(s, 500);
    assert!(v["computeFault"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Unexpected API Error."));

    // Glance is back: the service answers without a restart.
    proxy.set(Fault::None, 0);
    let (s, v) = get(&client, &base, &format!("/v2.1/images/{id}/metadata")).await;
    assert_eq!(s, 200);
    assert_eq!(v["metadata"]["k"], "v");
}

/// The image as Glance itself shows it (not through the proxy).
async fn in_glance(client: &reqwest::Client, glance: &str, id: &str) -> Value {
    let r = client.get(format!("{glance}/v2/images/{id}")).send().await.unwrap();
    serde_json::from_slice(&r.bytes().await.unwrap()).unwrap()
}

/// A PATCH whose answer is lost (cut mid-body, or replaced by a 503 or 500 from
/// a proxy) is resolved by reading the image back: applied → the 200 the write
/// would have had; not applied → the fault, nothing changed; Glance gone after
/// the PATCH → 503 "outcome unknown". Each write sends exactly one PATCH.
#[actix_web::test]
async fn writes_whose_answer_is_lost_are_resolved_by_reading_the_image_back() {
    let Some(glance) = support::glance_url("NIP_TEST_GLANCE_URL") else {
        return;
    };
    let client = support::client();
    let proxy = fault_proxy::start(&glance);
    let service = support::start(support::settings(&[
        ("glance.url", proxy.url.as_str()),
        ("glance.num_retries", "3"),
    ]));
    let base = service.base.clone();
    for answer in [Lost::Cut, Lost::Status(503), Lost::Status(500)] {
        let id = support::glance_image(&client, &glance, &json!({"k": "v", "gone": "x"})).await;
        let md = format!("/v2.1/images/{id}/metadata");
        assert_eq!(support::send_json(&client, &base, "GET", &md, None).await.0, 200);
        // Applied, answer lost: each kind of write gets its normal answer.
        let writes: [(&str, String, Option<Value>, u16, Value); 4] = [
            (
                "POST",
                md.clone(),
                Some(json!({"metadata": {"a": "1"}})),
                200,
                json!({"metadata": {"k": "v", "gone": "x", "a": "1"}}),
            ),
            (
                "PUT",
                format!("{md}/b"),
                Some(json!({"meta": {"b": "2"}})),
                200,
                json!({"meta": {"b": "2"}}),
            ),
            ("DELETE", format!("{md}/gone"), None, 204, Value::Null),
            (
                "PUT",
                md.clone(),
                Some(json!({"metadata": {"k": "w", "c": "3"}})),
                200,
                json!({"metadata": {"k": "w", "c": "3"}}),
            ),
        ];
        for (method, path, body, status, expected) in writes {
            proxy.set(
                Fault::Patch {
                    applied: true,
                    answer,
                    then_gone: false,
                },
                0,
            );
            let (s, v) = support::send_json(&client, &base, method, &path, body).await;
            assert_eq!((s, &v), (status, &expected), "{answer:?} applied: {method} {path}");
            let patches = proxy.calls().iter().filter(|c| c.starts_with("PATCH")).count();
            assert_eq!(patches, 1, "{:?}", proxy.calls());
        }
        proxy.set(Fault::None, 0);
        let now = in_glance(&client, &glance, &id).await;
        assert_eq!(
            (&now["k"], &now["c"], now.get("a"), now.get("gone")),
            (&json!("w"), &json!("3"), None, None)
        );

        // Not applied, the same faults: the fault, and the image unchanged.
        let before = in_glance(&client, &glance, &id).await;
        proxy.set(
            Fault::Patch {
                applied: false,
                answer,
                then_gone: false,
            },
            0,
        );
        let (s, v) = support::send_json(&client, &base, "POST", &md, Some(json!({"metadata": {"n": "1"}}))).await;
        match answer {
            Lost::Status(500) => assert_eq!((s, v["computeFault"]["code"].clone()), (500, json!(500)), "{v}"),
            _ => assert_eq!((s, v["serviceUnavailable"]["code"].clone()), (503, json!(503)), "{v}"),
        }
        let (s, _) = support::send_json(&client, &base, "DELETE", &format!("{md}/k"), None).await;
        assert!(s >= 500, "{answer:?} not applied: DELETE answered {s}");
        proxy.set(Fault::None, 0);
        assert_eq!(
            in_glance(&client, &glance, &id).await,
            before,
            "{answer:?}: a write not applied changed the image"
        );
    }

    // Glance gone once the PATCH is applied: nobody can tell the client.
    let id = support::glance_image(&client, &glance, &json!({"k": "v"})).await;
    let md = format!("/v2.1/images/{id}/metadata");
    assert_eq!(support::send_json(&client, &base, "GET", &md, None).await.0, 200);
    proxy.set(
        Fault::Patch {
            applied: true,
            answer: Lost::Cut,
            then_gone: true,
        },
        0,
    );
    let (s, v) = support::send_json(&client, &base, "POST", &md, Some(json!({"metadata": {"z": "9"}}))).await;
    assert_eq!(s, 503, "{v}");
    let msg = v["serviceUnavailable"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("outcome is unknown"), "{msg}");
    proxy.set(Fault::None, 0);
    assert_eq!(
        in_glance(&client, &glance, &id).await["z"],
        "9",
        "the PATCH was applied"
    );
    assert_eq!(
        support::send_json(&client, &base, "GET", &md, None).await,
        (200, json!({"metadata": {"k": "v", "z": "9"}}))
    );
}

/// A Glance that accepts connections and never answers: with
/// `glance.timeout_secs = 3` (and retries configured) every call gets a JSON
/// 504 within 4 s — show, detail, metadata list and a metadata write — and the
/// service answers normally as soon as Glance does again.
#[actix_web::test]
async fn a_hung_glance_is_a_504_within_the_timeout_and_then_recovers() {
    let Some(glance) = support::glance_url("NIP_TEST_GLANCE_URL") else {
        return;
    };
    let client = support::client();
    let id = support::glance_image(&client, &glance, &json!({"k": "v"})).await;
    let proxy = fault_proxy::start(&glance);
    let service = support::start(support::settings(&[
        ("glance.url", proxy.url.as_str()),
        ("glance.timeout_secs", "3"),
        ("glance.num_retries", "3"),
    ]));
    let base = service.base.clone();
    let md = format!("/v2.1/images/{id}/metadata");
    let calls: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", format!("/v2.1/images/{id}"), None),
        ("GET", "/v2.1/images/detail?limit=1".to_string(), None),
        ("GET", md.clone(), None),
        ("POST", md.clone(), Some(json!({"metadata": {"w": "1"}}))),
    ];
    proxy.set(Fault::Hang, 0);
    let tasks: Vec<_> = calls
        .iter()
        .cloned()
        .map(|(method, path, body)| {
            let (client, base) = (client.clone(), base.clone());
            actix_web::rt::spawn(async move {
                let started = std::time::Instant::now();
                let (s, v) = support::send_json(&client, &base, method, &path, body).await;
                (method, path, s, v, started.elapsed())
            })
        })
        .collect();
    for task in tasks {
        let (method, path, s, v, took) = task.await.unwrap();
        eprintln!("hung Glance: {method} {path}: {s} after {took:?}");
        assert_eq!(
            (s, v["computeFault"]["code"].clone()),
            (504, json!(504)),
            "{method} {path}: {v}"
        );
        assert!(
            took < std::time::Duration::from_secs(4),
            "{method} {path} answered after {took:?}"
        );
    }
    proxy.set(Fault::None, 0);
    for (method, path, body) in calls {
        let (s, v) = support::send_json(&client, &base, method, &path, body).await;
        assert_eq!(s, 200, "{method} {path} after Glance is back: {v}");
    }
    assert_eq!(in_glance(&client, &glance, &id).await["w"], "1");
}
