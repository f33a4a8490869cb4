//! `auth.strategy = "keystone"` against a real Keystone (started by
//! `scripts/test` with `scripts/keystone.sh`, which names it and its accounts in
//! `NIP_KEYSTONE_*`). Without `NIP_KEYSTONE_URL` these tests skip and say so,
//! unless `NIP_REQUIRE_KEYSTONE=1`.
//!
//! Tokens are real: issued by Keystone with password auth for the `member` user
//! (role `member` on project `demo`) and the `admin` user; revoked with
//! `DELETE /v3/auth/tokens`. The service runs on the embedded store (no Glance
//! needed), except where the token's way to Glance is checked.

mod support;

use nova_images_proxy::backend::embedded::NewImage;
use serde_json::{json, Value};

use std::time::Duration;
use support::fault_proxy::{self, Seen};
use support::Backend;

const UNAUTHORIZED: &str = r#"{"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}"#;

/// The Keystone of the test run and its accounts.
struct Ks {
    url: String,
    domain: String,
    admin_user: String,
    admin_password: String,
    admin_project: String,
    admin_project_id: String,
    admin_user_id: String,
    demo_project: String,
    demo_project_id: String,
    member_user: String,
    member_user_id: String,
    member_password: String,
    service_user: String,
    service_password: String,
    service_project: String,
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set (scripts/keystone.sh start prints it)"))
}

fn keystone() -> Option<Ks> {
    match std::env::var("NIP_KEYSTONE_URL") {
        Ok(url) if !url.is_empty() => Some(Ks {
            url: url.trim_end_matches('/').to_string(),
            domain: std::env::var("NIP_KEYSTONE_DOMAIN").unwrap_or_else(|_| "Default".into()),
            admin_user: var("NIP_KEYSTONE_ADMIN_USER"),
            admin_password: var("NIP_KEYSTONE_ADMIN_PASSWORD"),
            admin_project: var("NIP_KEYSTONE_ADMIN_PROJECT"),
            admin_project_id: var("NIP_KEYSTONE_ADMIN_PROJECT_ID"),
            admin_user_id: var("NIP_KEYSTONE_ADMIN_USER_ID"),
            demo_project: var("NIP_KEYSTONE_DEMO_PROJECT"),
            demo_project_id: var("NIP_KEYSTONE_DEMO_PROJECT_ID"),
            member_user: var("NIP_KEYSTONE_MEMBER_USER"),
            member_user_id: var("NIP_KEYSTONE_MEMBER_USER_ID"),
            member_password: var("NIP_KEYSTONE_MEMBER_PASSWORD"),
            service_user: var("NIP_KEYSTONE_SERVICE_USER"),
            service_password: var("NIP_KEYSTONE_SERVICE_PASSWORD"),
            service_project: var("NIP_KEYSTONE_SERVICE_PROJECT"),
        }),
        _ if std::env::var("NIP_REQUIRE_KEYSTONE").as_deref() == Ok("1") => panic!(
            "NIP_REQUIRE_KEYSTONE=1 but NIP_KEYSTONE_URL is not set: run the suite with `scripts/test`, \
             which installs and starts Keystone on loopback (scripts/keystone.sh)"
        ),
        _ => {
            eprintln!(
                "NIP_KEYSTONE_URL is not set: skipping a test that needs a real Keystone (scripts/test starts one)"
            );
            None
        }
    }
}

/// A token issued by Keystone, with the body it came with.
struct Token {
    id: String,
    body: Value,
}

impl Ks {
    /// Keystone's root (what `WWW-Authenticate` names by default).
    fn root(&self) -> String {
        self.url.strip_suffix("/v3").unwrap_or(&self.url).to_string()
    }

    async fn token(&self, user: &str, password: &str, project: &str) -> Token {
        let (id, body) = support::password_token(&self.url, &self.domain, user, password, project).await;
        Token { id, body }
    }

    async fn member(&self) -> Token {
        self.token(&self.member_user, &self.member_password, &self.demo_project)
            .await
    }

    async fn admin(&self) -> Token {
        self.token(&self.admin_user, &self.admin_password, &self.admin_project)
            .await
    }

    /// `DELETE /v3/auth/tokens`: Keystone refuses `token` from now on.
    async fn revoke(&self, token: &str) {
        let admin = self.admin().await;
        let r = support::client()
            .delete(format!("{}/auth/tokens", self.url))
            .header("X-Auth-Token", &admin.id)
            .header("X-Subject-Token", token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 204, "revocation");
        let r = support::client()
            .get(format!("{}/auth/tokens", self.url))
            .header("X-Auth-Token", &admin.id)
            .header("X-Subject-Token", token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 404, "Keystone refuses the revoked token");
    }

    /// Settings for the service: keystone strategy against `url`, plus `more`.
    fn pairs(&self, url: &str, more: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v = vec![
            ("auth.strategy".to_string(), "keystone".to_string()),
            ("auth.keystone_url".to_string(), url.to_string()),
        ];
        v.extend(more.iter().map(|(k, val)| (k.to_string(), val.to_string())));
        v
    }

    fn service_pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("auth.service_user", self.service_user.clone()),
            ("auth.service_password", self.service_password.clone()),
            ("auth.service_project", self.service_project.clone()),
            ("auth.service_domain", self.domain.clone()),
        ]
    }
}

fn refs(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// The service on a fresh embedded store with `pairs`.
fn start(pairs: &[(String, String)]) -> support::Service {
    support::start_on(&Backend::Embedded, &refs(pairs))
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The image ids of a Nova list answer.
    fn image_ids(&self) -> Vec<String> {
        self.json()["images"]
            .as_array()
            .unwrap_or_else(|| panic!("a list: {} {}", self.status, self.text))
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    }
}

async fn call(method: &str, url: &str, token: Option<&str>, headers: &[(&str, &str)], body: Option<Value>) -> Answer {
    let mut rb = support::client().request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url);
    if let Some(t) = token {
        rb = rb.header("X-Auth-Token", t);
    }
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    if let Some(b) = body {
        rb = rb.header("Content-Type", "application/json").body(b.to_string());
    }
    let r = rb.send().await.expect("the service answers");
    Answer {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        text: r.text().await.unwrap(),
    }
}

async fn get(base: &str, path: &str, token: Option<&str>) -> Answer {
    call("GET", &format!("{base}{path}"), token, &[], None).await
}

/// A private image owned by `owner` in the service's embedded store.
async fn private_image(service: &support::Service, owner: &str) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let new = NewImage {
        id: Some(id.clone()),
        name: Some(format!("keystone-test-{owner}")),
        visibility: Some("private".into()),
        disk_format: Some("raw".into()),
        container_format: Some("bare".into()),
        owner: Some(Some(owner.to_string())),
        ..Default::default()
    };
    support::store_of(service)
        .create(&support::seed_context(), new)
        .await
        .expect("create");
    id
}

fn assert_401(a: &Answer, www: &str, what: &str) {
    assert_eq!(a.status, 401, "{what}: {}", a.text);
    assert_eq!(
        a.header("www-authenticate"),
        Some(format!("Keystone uri=\"{www}\"").as_str()),
        "{what}"
    );
    assert_eq!(a.text, UNAUTHORIZED, "{what}");
    assert!(a.header("x-openstack-request-id").is_some(), "{what}");
}

fn assert_nova_503(a: &Answer, what: &str) {
    assert_eq!(a.status, 503, "{what}: {}", a.text);
    assert!(
        a.header("content-type").unwrap().starts_with("application/json"),
        "{what}"
    );
    assert_eq!(
        a.json(),
        json!({"serviceUnavailable": {"code": 503, "message": "The identity service is unavailable. Please try again later."}}),
        "{what}"
    );
    assert!(a.header("www-authenticate").is_none(), "{what}");
}

/// Token validations and logins among the requests a proxy in front of
/// Keystone passed on.
trait KeystoneCalls {
    /// The recorded `GET …/auth/tokens` (token validations).
    fn validations(&self) -> Vec<Seen>;
    /// The recorded `POST …/auth/tokens` (logins).
    fn logins(&self) -> usize;
}

impl KeystoneCalls for fault_proxy::Proxy {
    fn validations(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.method == "GET" && s.path().ends_with("/auth/tokens"))
            .collect()
    }

    fn logins(&self) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.method == "POST" && s.path().ends_with("/auth/tokens"))
            .count()
    }
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A "Keystone" that answers every request with `status`.
fn failing_keystone(status: u16) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 65536];
            let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = conn.read(&mut buf);
            let body = r#"{"error": {"code": 500, "title": "Internal Server Error", "message": "boom"}}"#;
            let _ = write!(
                conn,
                "HTTP/1.1 {status} Oops\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}/v3")
}

// ---------------------------------------------------------------------------- cases

#[actix_web::test]
async fn a_member_token_works_and_the_url_project_must_match_it() {
    let Some(ks) = keystone() else { return };
    let metrics = nova_images_proxy::metrics::enable();
    let token = ks.member().await;
    assert_eq!(token.body["token"]["project"]["id"], json!(ks.demo_project_id));
    let svc = start(&ks.pairs(&ks.url, &[]));
    let mine = private_image(&svc, &ks.demo_project_id).await;
    let theirs = private_image(&svc, &ks.admin_project_id).await;

    let a = get(&svc.base, "/v2.1/images", Some(&token.id)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let ids = a.image_ids();
    assert!(ids.contains(&mine), "the member sees its project's image");
    assert!(!ids.contains(&theirs), "and not another project's private image");

    let p = &ks.demo_project_id;
    let a = get(&svc.base, &format!("/v2.1/{p}/images/{mine}"), Some(&token.id)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(
        a.json()["image"]["links"][0]["href"].as_str().unwrap().contains(p),
        "links name the project"
    );
    assert_eq!(
        get(&svc.base, &format!("/v2.1/images/{theirs}"), Some(&token.id))
            .await
            .status,
        404
    );

    // The project in the URL must be the token's.
    let other = &ks.admin_project_id;
    let a = get(&svc.base, &format!("/v2.1/{other}/images"), Some(&token.id)).await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert_eq!(
        a.json()["badRequest"]["message"],
        json!(format!(
            "Malformed request URL: URL's project_id '{other}' doesn't match Context's project_id '{p}'"
        ))
    );

    // A metadata write carries the identity to the store.
    let a = call(
        "POST",
        &format!("{}/v2.1/{p}/images/{mine}/metadata", svc.base),
        Some(&token.id),
        &[],
        Some(json!({"metadata": {"keystone": "yes"}})),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json()["metadata"]["keystone"], json!("yes"));
    // Validations are counted by result: the first asked Keystone, the rest hit the cache.
    let text = metrics.render();
    for result in ["valid", "cache_hit"] {
        let line = format!("nova_images_proxy_keystone_validations_total{{result=\"{result}\"}}");
        assert!(text.contains(&line), "{line} not in:\n{text}");
    }
}

#[actix_web::test]
async fn garbage_or_missing_tokens_get_keystonemiddlewares_401() {
    let Some(ks) = keystone() else { return };
    let svc = start(&ks.pairs(&ks.url, &[]));
    let www = ks.root();
    for token in [
        None,
        Some("garbage"),
        Some("demo:6f70656e737461636b20342065766572"),
        Some("gAAAAABnot-a-real-fernet-token"),
    ] {
        let a = get(&svc.base, "/v2.1/images", token).await;
        assert_401(&a, &www, &format!("{token:?}"));
        assert!(a.header("x-compute-request-id").is_some());
    }
    // An explicit www_authenticate_uri wins over the derived one.
    let svc = start(&ks.pairs(
        &ks.url,
        &[("auth.www_authenticate_uri", "https://keystone.example:5000")],
    ));
    let a = get(&svc.base, "/v2.1/images/detail", Some("garbage")).await;
    assert_401(&a, "https://keystone.example:5000", "explicit uri");
}

#[actix_web::test]
async fn a_revoked_token_is_refused_once_its_cache_entry_is_gone() {
    let Some(ks) = keystone() else { return };
    let token = ks.member().await;
    let no_cache = start(&ks.pairs(&ks.url, &[("auth.cache_secs", "0")]));
    let one_sec = start(&ks.pairs(&ks.url, &[("auth.cache_secs", "1")]));
    let long = start(&ks.pairs(&ks.url, &[("auth.cache_secs", "300")]));
    for svc in [&no_cache, &one_sec, &long] {
        assert_eq!(get(&svc.base, "/v2.1/images", Some(&token.id)).await.status, 200);
    }
    ks.revoke(&token.id).await;
    let www = ks.root();
    // No cache: refused at once.
    assert_401(
        &get(&no_cache.base, "/v2.1/images", Some(&token.id)).await,
        &www,
        "cache_secs = 0",
    );
    // A cached validation holds until its entry ends (keystonemiddleware's
    // token_cache_time trade-off)...
    assert_eq!(get(&long.base, "/v2.1/images", Some(&token.id)).await.status, 200);
    // ...and then the revocation shows.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_401(
        &get(&one_sec.base, "/v2.1/images", Some(&token.id)).await,
        &www,
        "cache_secs = 1",
    );
    // A fresh token of the same user is fine.
    let again = ks.member().await;
    assert_eq!(get(&no_cache.base, "/v2.1/images", Some(&again.id)).await.status, 200);
}

#[actix_web::test]
async fn keystone_down_or_failing_is_a_503_not_a_401() {
    let Some(ks) = keystone() else { return };
    let token = ks.member().await;
    let down = format!("http://127.0.0.1:{}/v3", closed_port());
    for (what, url) in [
        ("down", down),
        ("500", failing_keystone(500)),
        ("502", failing_keystone(502)),
    ] {
        let svc = start(&ks.pairs(&url, &[("auth.timeout_secs", "5")]));
        let a = get(&svc.base, "/v2.1/images", Some(&token.id)).await;
        assert_nova_503(&a, what);
        assert!(a.header("x-compute-request-id").is_some());
        // Not cached: still 503, not a stale verdict.
        assert_nova_503(&get(&svc.base, "/v2.1/images/detail", Some("garbage")).await, what);
        // Without a token there is nothing to ask Keystone: 401.
        let www = url.strip_suffix("/v3").unwrap().to_string();
        assert_401(&get(&svc.base, "/v2.1/images", None).await, &www, what);
    }
    // Keystone refusing the service's own credentials is the service's problem: 503.
    let mut pairs = ks.service_pairs();
    pairs[1].1 = "wrong-password".into();
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let svc = start(&ks.pairs(&ks.url, &pairs));
    assert_nova_503(
        &get(&svc.base, "/v2.1/images", Some(&token.id)).await,
        "service password",
    );
}

/// A Keystone that accepts connections and never answers: with service
/// credentials (a login, then the check) and `auth.timeout_secs = 2`, the whole
/// validation is bounded by it — a 503 within 3 s.
#[actix_web::test]
async fn a_hung_keystone_is_a_503_within_auth_timeout_secs() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(30));
                drop(conn);
            });
        }
    });
    let url = format!("http://{addr}/v3");
    let pairs: Vec<(String, String)> = [
        ("auth.strategy", "keystone"),
        ("auth.keystone_url", url.as_str()),
        ("auth.timeout_secs", "2"),
        ("auth.service_user", "nova-images-proxy"),
        ("auth.service_password", "never-checked"),
        ("auth.service_project", "service"),
        ("auth.service_domain", "Default"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let svc = start(&pairs);
    let started = std::time::Instant::now();
    let a = get(&svc.base, "/v2.1/images", Some("a-token-nobody-can-check")).await;
    let took = started.elapsed();
    assert_nova_503(&a, "hung");
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
}

#[actix_web::test]
async fn admin_and_member_tokens_both_work_with_their_own_roles() {
    let Some(ks) = keystone() else { return };
    let (admin, member) = (ks.admin().await, ks.member().await);
    let roles = |t: &Token| -> Vec<String> {
        t.body["token"]["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(roles(&admin).contains(&"admin".to_string()));
    assert!(!roles(&member).contains(&"admin".to_string()));
    assert_eq!(admin.body["token"]["user"]["id"], json!(ks.admin_user_id));
    assert_eq!(member.body["token"]["user"]["id"], json!(ks.member_user_id));

    let svc = start(&ks.pairs(&ks.url, &[]));
    let elsewhere = private_image(&svc, "0123456789abcdef0123456789abcdef").await;
    let demo = private_image(&svc, &ks.demo_project_id).await;
    let a = get(&svc.base, "/v2.1/images", Some(&admin.id)).await;
    assert_eq!(a.status, 200);
    let ids = a.image_ids();
    assert!(
        ids.contains(&elsewhere) && ids.contains(&demo),
        "admin (role from Keystone) sees every image"
    );
    let a = get(
        &svc.base,
        &format!("/v2.1/{}/images", ks.admin_project_id),
        Some(&admin.id),
    )
    .await;
    assert_eq!(a.status, 200);
    let ids = get(&svc.base, "/v2.1/images", Some(&member.id)).await.image_ids();
    assert!(ids.contains(&demo) && !ids.contains(&elsewhere), "member sees its own");
    assert_eq!(
        get(&svc.base, &format!("/v2.1/images/{elsewhere}"), Some(&member.id))
            .await
            .status,
        404
    );
    assert_eq!(
        get(&svc.base, &format!("/v2.1/images/{elsewhere}"), Some(&admin.id))
            .await
            .status,
        200
    );
}

#[actix_web::test]
async fn identity_headers_sent_by_clients_change_nothing() {
    let Some(ks) = keystone() else { return };
    let member = ks.member().await;
    let svc = start(&ks.pairs(&ks.url, &[]));
    let elsewhere = private_image(&svc, "0123456789abcdef0123456789abcdef").await;
    let forged: &[(&str, &str)] = &[
        ("X-Roles", "admin"),
        ("X-Role", "admin"),
        ("X-Service-Roles", "admin,service"),
        ("X-Project-Id", &ks.admin_project_id),
        ("X-Tenant-Id", &ks.admin_project_id),
        ("X-User-Id", &ks.admin_user_id),
        ("X-Identity-Status", "Confirmed"),
        ("X-Is-Admin-Project", "True"),
    ];
    let a = call(
        "GET",
        &format!("{}/v2.1/images", svc.base),
        Some(&member.id),
        forged,
        None,
    )
    .await;
    assert_eq!(a.status, 200);
    assert!(
        !a.image_ids().contains(&elsewhere),
        "X-Roles: admin did not make the member an admin"
    );
    let a = call(
        "GET",
        &format!("{}/v2.1/images/{elsewhere}", svc.base),
        Some(&member.id),
        forged,
        None,
    )
    .await;
    assert_eq!(a.status, 404);
    let a = call(
        "GET",
        &format!("{}/v2.1/{}/images", svc.base, ks.admin_project_id),
        Some(&member.id),
        forged,
        None,
    )
    .await;
    assert_eq!(a.status, 400, "X-Project-Id did not change the project");
    let a = call("GET", &format!("{}/v2.1/images", svc.base), None, forged, None).await;
    assert_401(&a, &ks.root(), "X-Identity-Status: Confirmed without a token");
}

#[actix_web::test]
async fn validations_are_cached_by_token_for_cache_secs() {
    let Some(ks) = keystone() else { return };
    let rec = fault_proxy::start(&ks.root());
    let via = format!("{}/v3", rec.url);
    let member = ks.member().await;
    let cached = start(&ks.pairs(&via, &[]));
    for _ in 0..4 {
        assert_eq!(get(&cached.base, "/v2.1/images", Some(&member.id)).await.status, 200);
    }
    for _ in 0..3 {
        assert_eq!(get(&cached.base, "/v2.1/images", Some("garbage")).await.status, 401);
    }
    let v = rec.validations();
    assert_eq!(v.len(), 2, "one validation per token (invalid ones cached too): {v:?}");
    assert_eq!(rec.logins(), 0, "no service credentials: no login");
    // Without service credentials a token validates itself.
    assert_eq!(v[0].header("x-auth-token"), Some(member.id.as_str()));
    assert_eq!(v[0].header("x-subject-token"), Some(member.id.as_str()));

    rec.clear();
    let uncached = start(&ks.pairs(&via, &[("auth.cache_secs", "0")]));
    for _ in 0..3 {
        assert_eq!(get(&uncached.base, "/v2.1/images", Some(&member.id)).await.status, 200);
    }
    assert_eq!(
        rec.validations().len(),
        3,
        "cache_secs = 0: every request asks Keystone"
    );
}

#[actix_web::test]
async fn with_service_credentials_tokens_are_validated_with_the_service_token() {
    let Some(ks) = keystone() else { return };
    let rec = fault_proxy::start(&ks.root());
    let via = format!("{}/v3", rec.url);
    // Validations go to the identity endpoint of the service's catalog
    // (auth.interface, auth.region_name), else to keystone_url: a region with
    // no identity endpoint keeps them at keystone_url, the recorder.
    let mut pairs = ks.pairs(
        &via,
        &[("auth.cache_secs", "0"), ("auth.region_name", "nip-no-identity-here")],
    );
    pairs.extend(ks.service_pairs().into_iter().map(|(k, v)| (k.to_string(), v)));
    let svc = start(&pairs);
    let (member, admin) = (ks.member().await, ks.admin().await);
    let mine = private_image(&svc, &ks.demo_project_id).await;
    let a = get(
        &svc.base,
        &format!("/v2.1/{}/images/{mine}", ks.demo_project_id),
        Some(&member.id),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(get(&svc.base, "/v2.1/images", Some(&admin.id)).await.status, 200);
    // (`WWW-Authenticate` names keystone_url, here the recorder in front of Keystone)
    assert_401(
        &get(&svc.base, "/v2.1/images", Some("garbage")).await,
        &rec.url,
        "garbage",
    );

    let v = rec.validations();
    assert_eq!(v.len(), 3, "{v:?}");
    assert_eq!(rec.logins(), 1, "one login, its token reused");
    let service_token = v[0].header("x-auth-token").expect("X-Auth-Token").to_string();
    for (seen, subject) in v.iter().zip([&member.id, &admin.id, &"garbage".to_string()]) {
        assert_eq!(
            seen.header("x-auth-token"),
            Some(service_token.as_str()),
            "the service token authenticates"
        );
        assert_eq!(
            seen.header("x-subject-token"),
            Some(subject.as_str()),
            "the user token is the subject"
        );
    }
    assert!(service_token != member.id && service_token != admin.id);

    // The service token really is the service user's.
    let r = support::client()
        .get(format!("{}/auth/tokens?nocatalog", ks.url))
        .header("X-Auth-Token", &service_token)
        .header("X-Subject-Token", &service_token)
        .send()
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(body["token"]["user"]["name"], json!(ks.service_user));
    assert_eq!(body["token"]["project"]["name"], json!(ks.service_project));

    // Revoked: refused through the service token as well.
    ks.revoke(&member.id).await;
    assert_401(
        &get(&svc.base, "/v2.1/images", Some(&member.id)).await,
        &rec.url,
        "revoked",
    );
    // The service token itself revoked: the service logs in again, once.
    ks.revoke(&service_token).await;
    rec.clear();
    assert_eq!(get(&svc.base, "/v2.1/images", Some(&admin.id)).await.status, 200);
    assert_eq!(rec.logins(), 1, "{:?}", rec.seen());
    let v = rec.validations();
    assert_eq!(
        v.len(),
        2,
        "refused with the old service token, then accepted with the new: {v:?}"
    );
    assert_eq!(v[0].header("x-auth-token"), Some(service_token.as_str()));
    assert!(v[1].header("x-auth-token").is_some_and(|t| t != service_token));
}

#[actix_web::test]
async fn glance_v1_reads_authenticate_with_keystone_too() {
    let Some(ks) = keystone() else { return };
    let member = ks.member().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_string_lossy().into_owned();
    let mut pairs = ks.pairs(
        &ks.url,
        &[
            ("embedded.data_dir", &data),
            ("embedded.demo_images", "false"),
            ("embedded.enabled", "true"),
        ],
    );
    let v1 = support::start_image_listener(support::settings(&refs(&pairs)));
    let store = nova_images_proxy::backend::embedded::EmbeddedStore::open(dir.path()).unwrap();
    let id = uuid::Uuid::new_v4().to_string();
    store
        .create(
            &support::seed_context(),
            NewImage {
                id: Some(id.clone()),
                name: Some("v1-keystone".into()),
                visibility: Some("private".into()),
                owner: Some(Some(ks.demo_project_id.clone())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let a = call(
        "HEAD",
        &format!("{}/v1/images/{id}", v1.base),
        Some(&member.id),
        &[],
        None,
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("x-image-meta-owner"), Some(ks.demo_project_id.as_str()));
    let a = get(&v1.base, "/v1/images/detail", Some(&member.id)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json()["images"][0]["id"], json!(id));
    let a = get(&v1.base, "/v1/images", Some("garbage")).await;
    assert_401(&a, &ks.root(), "v1 garbage");
    // The embedded store's Glance v2 API authenticates with Keystone as well:
    // a noauth2-style `admin:x` is just an invalid token there.
    let a = get(&v1.base, &format!("/v2/images/{id}"), Some(&member.id)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let a = get(&v1.base, "/v2/images", Some("admin:admin")).await;
    assert_401(&a, &ks.root(), "v2 noauth2-style token");

    // Keystone down: Glance's 503 page.
    pairs[1].1 = format!("http://127.0.0.1:{}/v3", closed_port());
    let down = support::start_image_listener(support::settings(&refs(&pairs)));
    let a = get(&down.base, "/v1/images", Some(&member.id)).await;
    assert_eq!(a.status, 503, "{}", a.text);
    assert!(a.text.contains("The identity service is unavailable."), "{}", a.text);
    assert!(a.header("www-authenticate").is_none());
}

#[actix_web::test]
async fn the_keystone_token_is_forwarded_to_glance() {
    let Some(ks) = keystone() else { return };
    let Some(glance) = support::glance_url("NIP_TEST_GLANCE_URL") else {
        return;
    };
    let rec = fault_proxy::start(&glance);
    let member = ks.member().await;
    let svc = support::start_on(&Backend::Glance(rec.url.clone()), &refs(&ks.pairs(&ks.url, &[])));
    let a = get(&svc.base, "/v2.1/images?limit=1", Some(&member.id)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let seen = rec.seen();
    assert!(!seen.is_empty());
    for s in &seen {
        assert_eq!(
            s.header("x-auth-token"),
            Some(member.id.as_str()),
            "{} {}",
            s.method,
            s.target
        );
    }
    assert_401(
        &get(&svc.base, "/v2.1/images", Some("garbage")).await,
        &ks.root(),
        "garbage",
    );
    assert_eq!(rec.seen().len(), seen.len(), "a refused token never reaches Glance");
}
