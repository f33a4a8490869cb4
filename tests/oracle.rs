//! Differential test: replay the captured requests against the service fronting
//! a freshly seeded real Glance, and compare with what real Nova answered
//! (`tests/fixtures/oracle`: raw `curl -i` captures of Nova 34 on Glance 33).
//! Equal means: same status, same headers (names case-insensitive; `Date`,
//! `Connection`, `Server` and request-id values ignored) and byte-equal bodies
//! (timestamps masked).

mod support;

use std::path::Path;
use support::capture::{parse_capture, parse_curl, send};

/// Mutations whose captures are not part of the fixtures, replayed before the
/// named case so that the state matches the one real Nova answered from.
fn setup_steps(case: &str) -> Vec<(&'static str, String, Option<&'static str>, u16)> {
    let debian = "d2661b44-9541-5309-b449-ad880fdbc6a7";
    match case {
        "metadata-post-mv2.38" => vec![(
            "POST",
            format!("/v2.1/images/{debian}/metadata"),
            Some(r#"{"metadata": {"os_version": "12.5", "newkey": "v1"}}"#),
            200,
        )],
        "metadata-key-put-new" => {
            vec![(
                "PUT",
                format!("/v2.1/images/{debian}/metadata/newkey"),
                Some(r#"{"meta": {"newkey": "v2"}}"#),
                200,
            )]
        }
        "image-show-after-delete-404" => {
            vec![(
                "DELETE",
                "/v2.1/images/1c8ac3b0-6fe2-5ebe-8ee5-c4a07e67c854".into(),
                None,
                204,
            )]
        }
        "images-list-after-deletes" => vec![
            (
                "DELETE",
                "/v2.1/images/38954375-374d-5a5f-8c68-83bc90d28fd8".into(),
                None,
                204,
            ),
            (
                "DELETE",
                "/v2.1/images/d6ce41f0-59fe-556b-8def-23428fe1c0c7".into(),
                None,
                403,
            ),
        ],
        _ => vec![],
    }
}

/// Replay every captured case of `tests/fixtures/<set>` against `base`;
/// returns (equal, total).
async fn replay(base: &str, set: &str) -> (usize, usize) {
    let client = support::client();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(set);
    let index = std::fs::read_to_string(dir.join("INDEX.tsv")).expect("INDEX.tsv");
    let mut equal = 0;
    let mut total = 0;
    let mut failures = Vec::new();
    for line in index.lines().filter(|l| !l.trim().is_empty()) {
        let (name, cmd) = line.split_once('\t').expect("INDEX.tsv row");
        for (method, path, body, status) in setup_steps(name) {
            let mut rb = client
                .request(
                    reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
                    format!("{base}{path}"),
                )
                .header("X-Auth-Token", support::TOKEN);
            if let Some(b) = body {
                rb = rb.header("Content-Type", "application/json").body(b);
            }
            let got = rb.send().await.expect("setup step").status().as_u16();
            assert_eq!(got, status, "setup step {method} {path} before {name}");
        }
        let request = parse_curl(name, cmd);
        let expected = parse_capture(&std::fs::read(dir.join(format!("{name}.http"))).expect("capture"));
        let got = send(base, &request).await;
        total += 1;
        if got == expected {
            equal += 1;
        } else {
            failures.push(format!(
                "--- {name}\nexpected: {} {:?}\n{}\n     got: {} {:?}\n{}",
                expected.status, expected.headers, expected.body, got.status, got.headers, got.body
            ));
        }
    }
    for f in &failures {
        eprintln!("{f}");
    }
    (equal, total)
}

#[actix_web::test]
async fn service_on_glance_answers_like_real_nova_for_every_captured_case() {
    let Some(glance) = support::glance_url("NIP_ORACLE_GLANCE_URL") else {
        return;
    };
    support::seed::seed(&support::client(), &glance, 20).await;
    let service = support::start_on(
        &support::Backend::Glance(glance.clone()),
        &[("api.glance_link_prefix", "http://127.0.0.1:9292")],
    );
    let (equal, total) = replay(&service.base, "oracle").await;
    println!("oracle (real Glance): {equal} of {total} cases equal");
    assert_eq!(equal, total, "{} oracle cases differ", total - equal);
    // Real Nova's answers to what the differential fuzzer found (state-independent).
    let (equal, total) = replay(&service.base, "fuzz").await;
    println!("oracle fuzz regressions (real Glance): {equal} of {total} cases equal");
    assert_eq!(equal, total, "{} fuzz regression cases differ", total - equal);
}

#[actix_web::test]
async fn service_on_embedded_store_answers_like_real_nova_for_every_captured_case() {
    let service = support::start_on(
        &support::Backend::Embedded,
        &[("api.glance_link_prefix", "http://127.0.0.1:9292")],
    );
    support::seed::seed_store(&support::store_of(&service), 20).await;
    let (equal, total) = replay(&service.base, "oracle").await;
    println!("oracle (embedded store): {equal} of {total} cases equal");
    assert_eq!(equal, total, "{} oracle cases differ", total - equal);
    // Real Nova's answers to what the differential fuzzer found (state-independent).
    let (equal, total) = replay(&service.base, "fuzz").await;
    println!("oracle fuzz regressions (embedded store): {equal} of {total} cases equal");
    assert_eq!(equal, total, "{} fuzz regression cases differ", total - equal);
}
