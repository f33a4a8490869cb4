//! Links behind a TLS-terminating proxy: the requests of
//! `tests/fixtures/proxy-headers/INDEX.tsv` carry `Forwarded`,
//! `X-Forwarded-Proto`/`-Host`/`-Prefix`/`-Ssl` and `Host` in the forms proxies
//! send; `on/` holds real Nova 34's answers with `[oslo_middleware]
//! enable_proxy_headers_parsing = true`, `off/` its answers with the option off
//! (captured with `scripts/nova.sh --proxy-headers` and `scripts/capture-nova`,
//! on a Glance seeded as for `tests/oracle.rs`, `[api] glance_link_prefix =
//! http://127.0.0.1:9292`). The service must answer byte-equal on a real Glance
//! and on the embedded store, with the option on and off.
//!
//! Off, `off/` has no answer for the requests carrying `X-Forwarded-Proto` or
//! `X-Forwarded-Ssl`: Nova's uwsgi takes the scheme from them even then (a
//! listed deviation: the service ignores every proxy header when the option is
//! off). For those, the service's answer must be the one to the same request
//! without its proxy headers.

mod support;

use std::path::{Path, PathBuf};
use support::capture::{parse_capture, parse_curl, send, Answer, Request};

/// Seed images only read here (never changed by `tests/oracle.rs` either).
const FIRST_SEED_IMAGE: usize = 0;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proxy-headers")
}

fn rows(index: &Path) -> Vec<Request> {
    std::fs::read_to_string(index)
        .unwrap_or_else(|e| panic!("{}: {e}", index.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (name, cmd) = l.split_once('\t').expect("INDEX.tsv row");
            parse_curl(name, cmd)
        })
        .collect()
}

fn is_proxy_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name == "forwarded" || name.starts_with("x-forwarded-")
}

/// Replay `requests` against `base`; the differences from `dir/<name>.http`.
async fn compare(base: &str, requests: &[Request], dir: &Path) -> Vec<String> {
    let mut failures = Vec::new();
    for req in requests {
        let expected = parse_capture(&std::fs::read(dir.join(format!("{}.http", req.name))).expect("capture"));
        let got = send(base, req).await;
        if got != expected {
            failures.push(diff(&req.name, &expected, &got));
        }
    }
    failures
}

fn diff(name: &str, expected: &Answer, got: &Answer) -> String {
    format!(
        "--- {name}\nexpected: {} {:?}\n{}\n     got: {} {:?}\n{}",
        expected.status, expected.headers, expected.body, got.status, got.headers, got.body
    )
}

/// The real Glance of the oracle, seeded unless it already is.
async fn seeded_glance() -> Option<String> {
    let glance = support::glance_url("NIP_ORACLE_GLANCE_URL")?;
    let client = support::client();
    let probe = client
        .get(format!(
            "{glance}/v2/images/{}",
            support::seed::image_id(FIRST_SEED_IMAGE)
        ))
        .header("X-Auth-Token", "admin:admin")
        .send()
        .await
        .expect("glance");
    if probe.status().as_u16() == 404 {
        support::seed::seed(&client, &glance, 20).await;
    }
    Some(glance)
}

async fn check(backend: support::Backend) {
    let all = rows(&fixtures().join("INDEX.tsv"));
    let off_rows = rows(&fixtures().join("off/INDEX.tsv"));
    let prefix = ("api.glance_link_prefix", "http://127.0.0.1:9292");
    let mut failures = Vec::new();
    for trusted in ["true", "false"] {
        let service = support::start_on(
            &backend,
            &[prefix, ("oslo_middleware.enable_proxy_headers_parsing", trusted)],
        );
        if matches!(backend, support::Backend::Embedded) {
            support::seed::seed_store(&support::store_of(&service), 20).await;
        }
        if trusted == "true" {
            failures.extend(compare(&service.base, &all, &fixtures().join("on")).await);
            continue;
        }
        failures.extend(compare(&service.base, &off_rows, &fixtures().join("off")).await);
        // The deviation: untrusted, the headers Nova's uwsgi reads anyway count for nothing.
        for req in all.iter().filter(|r| !off_rows.iter().any(|o| o.name == r.name)) {
            let stripped = Request {
                name: req.name.clone(),
                method: req.method.clone(),
                headers: req
                    .headers
                    .iter()
                    .filter(|(k, _)| !is_proxy_header(k))
                    .cloned()
                    .collect(),
                body: req.body.clone(),
                url: req.url.clone(),
            };
            let (got, plain) = (send(&service.base, req).await, send(&service.base, &stripped).await);
            if got != plain {
                failures.push(diff(&format!("{} (off, headers ignored)", req.name), &plain, &got));
            }
        }
    }
    for f in &failures {
        eprintln!("{f}");
    }
    let total = all.len() * 2;
    println!(
        "proxy headers ({backend:?}): {} of {total} answers equal",
        total - failures.len()
    );
    assert!(failures.is_empty(), "{} answers differ", failures.len());
}

#[actix_web::test]
async fn links_behind_a_proxy_are_real_novas_on_glance() {
    let Some(glance) = seeded_glance().await else {
        return;
    };
    check(support::Backend::Glance(glance)).await;
}

#[actix_web::test]
async fn links_behind_a_proxy_are_real_novas_on_the_embedded_store() {
    check(support::Backend::Embedded).await;
}
