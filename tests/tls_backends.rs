//! TLS to Glance and Keystone: a real Glance and a real Keystone (started by
//! `scripts/test`) behind a real TLS terminator (stunnel4, from Debian's
//! packages via `scripts/stunnel.sh`), with a test CA made here.
//!
//! * verified against `cafile`: reads and metadata writes work, Keystone
//!   validates tokens over TLS;
//! * a certificate that does not verify: a 503 fault, and one log line naming
//!   the TLS failure and the URL (the binary's own log);
//! * `insecure = true`: any certificate is accepted;
//! * a terminator that requires a client certificate: works with
//!   `certfile`/`keyfile`, a 503 and the log line without.

mod support;

use serde_json::{json, Value};
use std::path::Path;
use support::tls::{Terminator, TestCa};

/// The real services of the run and the TLS pieces in front of them.
struct World {
    dir: tempfile::TempDir,
    ca: TestCa,
    other_ca: TestCa,
    client_ca: TestCa,
    stunnel: String,
    glance_plain: String,
    glance_port: u16,
    keystone: Option<Keystone>,
}

struct Keystone {
    url: String,
    port: u16,
    domain: String,
    user: String,
    password: String,
    project: String,
}

fn port_of(url: &str) -> u16 {
    url::Url::parse(url).unwrap().port().expect("a port in the URL")
}

fn world() -> Option<World> {
    let glance_plain = support::glance_url("NIP_TEST_GLANCE_URL")?;
    let stunnel = support::tls::stunnel_binary()?;
    let dir = tempfile::tempdir().unwrap();
    let keystone = match std::env::var("NIP_KEYSTONE_URL") {
        Ok(url) if !url.is_empty() => {
            let var = |n: &str| std::env::var(n).unwrap_or_else(|_| panic!("{n} is not set"));
            Some(Keystone {
                port: port_of(&url),
                url,
                domain: std::env::var("NIP_KEYSTONE_DOMAIN").unwrap_or_else(|_| "Default".into()),
                user: var("NIP_KEYSTONE_MEMBER_USER"),
                password: var("NIP_KEYSTONE_MEMBER_PASSWORD"),
                project: var("NIP_KEYSTONE_DEMO_PROJECT"),
            })
        }
        _ if std::env::var("NIP_REQUIRE_KEYSTONE").as_deref() == Ok("1") => {
            panic!("NIP_REQUIRE_KEYSTONE=1 but NIP_KEYSTONE_URL is not set (scripts/test starts Keystone)")
        }
        _ => None,
    };
    Some(World {
        ca: TestCa::new(dir.path(), "service"),
        other_ca: TestCa::new(dir.path(), "other"),
        client_ca: TestCa::new(dir.path(), "clients"),
        glance_port: port_of(&glance_plain),
        glance_plain,
        stunnel,
        keystone,
        dir,
    })
}

impl World {
    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// stunnel with a certificate of the test CA in front of `target`.
    fn terminator(&self, name: &str, target: u16, require_client_cert: bool) -> Terminator {
        let cert = self.ca.issue(&format!("{name}-server"), "127.0.0.1");
        let client_ca = require_client_cert.then_some(self.client_ca.cafile.as_path());
        Terminator::start(&self.stunnel, self.path(), name, &cert, target, client_ca)
    }

    /// An image made in the real Glance (plain HTTP, beside the terminator).
    async fn image(&self) -> String {
        let body =
            json!({"name": "tls test", "disk_format": "raw", "container_format": "bare", "visibility": "public"});
        support::create_image_as(&support::client(), &self.glance_plain, Some(support::TOKEN), &body).await
    }
}

impl Keystone {
    /// A member token, asked of Keystone directly.
    async fn token(&self) -> String {
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": self.user, "domain": {"name": self.domain}, "password": self.password}}},
            "scope": {"project": {"name": self.project, "domain": {"name": self.domain}}}}});
        let r = support::client()
            .post(format!("{}/auth/tokens?nocatalog", self.url.trim_end_matches('/')))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        r.headers()["x-subject-token"].to_str().unwrap().to_string()
    }
}

async fn get(base: &str, path: &str, token: &str) -> (u16, String) {
    let r = support::client()
        .get(format!("{base}{path}"))
        .header("X-Auth-Token", token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

const UNAVAILABLE: &str =
    r#"{"serviceUnavailable": {"code": 503, "message": "The image service is unavailable. Please try again later."}}"#;

#[actix_web::test]
async fn reads_and_metadata_writes_over_tls_to_glance_and_keystone() {
    let Some(w) = world() else { return };
    let Some(ks) = &w.keystone else { return };
    let glance = w.terminator("glance", w.glance_port, false);
    let keystone = w.terminator("keystone", ks.port, false);
    let id = w.image().await;
    let ca = w.ca.cafile();
    let svc = support::start(support::settings(&[
        ("glance.url", &glance.url()),
        ("glance.cafile", &ca),
        ("auth.strategy", "keystone"),
        ("auth.keystone_url", &format!("{}/v3", keystone.url())),
        ("auth.cafile", &ca),
    ]));
    let token = ks.token().await;
    let (status, body) = get(&svc.base, &format!("/v2.1/images/{id}"), &token).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["image"]["id"], json!(id));
    assert_eq!(
        v["image"]["links"][2]["href"],
        json!(format!("{}/images/{id}", glance.url())),
        "alternate link on the https Glance"
    );
    let r = support::client()
        .post(format!("{}/v2.1/images/{id}/metadata", svc.base))
        .header("X-Auth-Token", &token)
        .header("Content-Type", "application/json")
        .body(r#"{"metadata": {"over_tls": "yes"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (_, body) = get(&w.glance_plain, &format!("/v2/images/{id}"), support::TOKEN).await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["over_tls"], json!("yes"), "the write reached Glance");
    let (status, _) = get(&svc.base, "/v2.1/images", "not-a-token").await;
    assert_eq!(status, 401, "Keystone over TLS refuses a bad token");
}

/// The binary with `env` (noauth2 unless `env` says otherwise) on the plain
/// Glance unless `env` names another; its log.
fn binary(w: &World, name: &str, env: &[(&str, &str)]) -> support::process::Proc {
    let mut all: Vec<(&str, &str)> = vec![("NOVA_IMAGES_PROXY__GLANCE__URL", &w.glance_plain)];
    all.extend_from_slice(env);
    support::process::spawn(&[], &all, &w.path().join(format!("{name}.log")))
}

/// The log lines of `p` that contain every one of `needles`.
fn lines_with(p: &support::process::Proc, needles: &[&str]) -> Vec<String> {
    p.log_text()
        .lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .map(str::to_string)
        .collect()
}

#[actix_web::test]
async fn a_certificate_that_does_not_verify_is_a_503_and_one_log_line() {
    let Some(w) = world() else { return };
    let glance = w.terminator("glance-wrong-ca", w.glance_port, false);
    let id = w.image().await;
    let other = w.other_ca.cafile();
    let url = glance.url();
    let p = binary(
        &w,
        "wrong-ca",
        &[
            ("NOVA_IMAGES_PROXY__GLANCE__URL", &url),
            ("NOVA_IMAGES_PROXY__GLANCE__CAFILE", &other),
        ],
    );
    let (status, body) = get(&p.compute, &format!("/v2.1/images/{id}"), support::TOKEN).await;
    assert_eq!((status, body.as_str()), (503, UNAVAILABLE));
    let lines = lines_with(&p, &["TLS with the image service failed", &url, "UnknownIssuer"]);
    assert_eq!(lines.len(), 1, "one log line: {}", p.log_text());
    assert!(lines[0].contains("ERROR"), "{}", lines[0]);

    // Keystone behind the terminator, verified against the wrong CA.
    let Some(ks) = &w.keystone else { return };
    let keystone = w.terminator("keystone-wrong-ca", ks.port, false);
    let ks_url = format!("{}/v3", keystone.url());
    let p = binary(
        &w,
        "keystone-wrong-ca",
        &[
            ("NOVA_IMAGES_PROXY__AUTH__STRATEGY", "keystone"),
            ("NOVA_IMAGES_PROXY__AUTH__KEYSTONE_URL", &ks_url),
            ("NOVA_IMAGES_PROXY__AUTH__CAFILE", &other),
        ],
    );
    let token = ks.token().await;
    let (status, _) = get(&p.compute, &format!("/v2.1/images/{id}"), &token).await;
    assert_eq!(status, 503);
    let lines = lines_with(&p, &["TLS with Keystone at", &ks_url, "UnknownIssuer"]);
    assert_eq!(lines.len(), 1, "one log line: {}", p.log_text());
}

#[actix_web::test]
async fn insecure_accepts_a_certificate_that_does_not_verify() {
    let Some(w) = world() else { return };
    let glance = w.terminator("glance-insecure", w.glance_port, false);
    let id = w.image().await;
    let mut pairs = vec![("glance.url", glance.url()), ("glance.insecure", "true".to_string())];
    let keystone;
    let token = match &w.keystone {
        Some(ks) => {
            keystone = w.terminator("keystone-insecure", ks.port, false);
            pairs.push(("auth.strategy", "keystone".into()));
            pairs.push(("auth.keystone_url", format!("{}/v3", keystone.url())));
            pairs.push(("auth.insecure", "true".into()));
            ks.token().await
        }
        None => support::TOKEN.to_string(),
    };
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let svc = support::start(support::settings(&pairs));
    let (status, body) = get(&svc.base, &format!("/v2.1/images/{id}"), &token).await;
    assert_eq!(status, 200, "{body}");
}

#[actix_web::test]
async fn a_terminator_that_requires_a_client_certificate() {
    let Some(w) = world() else { return };
    let glance = w.terminator("glance-mtls", w.glance_port, true);
    let id = w.image().await;
    let client = w.client_ca.issue("nova-images-proxy-client", "nova-images-proxy");
    let (url, ca) = (glance.url(), w.ca.cafile());
    let svc = support::start(support::settings(&[
        ("glance.url", &url),
        ("glance.cafile", &ca),
        ("glance.certfile", &client.cert()),
        ("glance.keyfile", &client.key()),
    ]));
    let (status, body) = get(&svc.base, &format!("/v2.1/images/{id}"), support::TOKEN).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = get(&svc.base, &format!("/v2.1/images/{id}/metadata"), support::TOKEN).await;
    assert_eq!(status, 200);

    // Without the client certificate: refused by the terminator, said so.
    let p = binary(
        &w,
        "no-client-cert",
        &[
            ("NOVA_IMAGES_PROXY__GLANCE__URL", &url),
            ("NOVA_IMAGES_PROXY__GLANCE__CAFILE", &ca),
        ],
    );
    let (status, body) = get(&p.compute, &format!("/v2.1/images/{id}"), support::TOKEN).await;
    assert_eq!((status, body.as_str()), (503, UNAVAILABLE));
    let lines = lines_with(&p, &["TLS with the image service failed", &url]);
    assert_eq!(lines.len(), 1, "one log line: {}", p.log_text());
}
