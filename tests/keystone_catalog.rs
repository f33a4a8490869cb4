//! Keystone as operators configure it, against the real Keystone of the test
//! run (`scripts/keystone.sh`, `NIP_KEYSTONE_*`) and the real Glance behind it
//! (`NIP_KEYSTONE_GLANCE_URL`, keystonemiddleware in front): Glance found in
//! the Keystone catalog when `glance.url` is empty (`glance.valid_interfaces`,
//! `glance.region_name`), the service's own token sent to Glance as
//! `X-Service-Token` (`auth.send_service_user_token`), a service user and
//! project in different domains (by name and by id), the identity endpoint
//! taken from the catalog (`auth.interface`, `auth.region_name`), and the
//! refusal to start when the catalog has no Glance (service tokens clients
//! send, and renewing the service's own: `tests/service_tokens.rs`).
//!
//! Each test registers what it needs under names and regions of its own
//! (`nip-<uuid>`), and removes it when it ends: the shared Keystone's other
//! tests (which give `glance.url`, and take identity endpoints of the
//! `internal` interface in any region) see nothing of it.

mod support;

use serde_json::{json, Value};
use support::fault_proxy;

/// Keystone's admin API, for what a test registers (and removes again).
struct Admin {
    url: String,
    token: String,
    /// `DELETE` paths, run in reverse order when the test ends.
    undo: std::sync::Mutex<Vec<String>>,
}

impl Admin {
    async fn new(url: &str) -> Admin {
        let (token, _) = support::password_token(
            url,
            "Default",
            &support::keystone_var("ADMIN_USER"),
            &support::keystone_var("ADMIN_PASSWORD"),
            &support::keystone_var("ADMIN_PROJECT"),
        )
        .await;
        Admin {
            url: url.to_string(),
            token,
            undo: Default::default(),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut rb = support::client()
            .request(method.clone(), format!("{}{path}", self.url))
            .header("X-Auth-Token", &self.token);
        if let Some(b) = &body {
            rb = rb.header("Content-Type", "application/json").body(b.to_string());
        }
        let r = rb.send().await.expect("Keystone answers");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert!((200..300).contains(&status), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// `POST /v3/{kind}s` of `body`; its id. Removed again at the end when `undo`.
    async fn create(&self, kind: &str, body: Value, undo: bool) -> String {
        let made = self
            .call(reqwest::Method::POST, &format!("/{kind}s"), Some(json!({ kind: body })))
            .await;
        let id = made[kind]["id"].as_str().expect("an id").to_string();
        if undo {
            self.undo.lock().unwrap().push(format!("/{kind}s/{id}"));
        }
        id
    }

    async fn endpoint(&self, service: &str, region: &str, interface: &str, url: &str) {
        let body = json!({"service_id": service, "region_id": region, "interface": interface, "url": url});
        self.create("endpoint", body, true).await;
    }

    /// Remove what was registered, last first (a domain is disabled first).
    async fn clean_up(&self) {
        let undo: Vec<String> = std::mem::take(&mut *self.undo.lock().unwrap());
        for path in undo.iter().rev() {
            if path.starts_with("/domains/") {
                let off = json!({"domain": {"enabled": false}});
                self.call(reqwest::Method::PATCH, path, Some(off)).await;
            }
            self.call(reqwest::Method::DELETE, path, None).await;
        }
    }
}

fn unique() -> String {
    format!("nip-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// A service user `nip-…-svc` in a domain of its own, with the `service`
/// role on the test run's `service` project (in the `Default` domain):
/// (user name, password, domain name, domain id).
async fn service_user_in_own_domain(admin: &Admin, name: &str) -> (String, String, String, String) {
    let domain_name = format!("{name}-domain");
    let domain = admin.create("domain", json!({"name": domain_name}), true).await;
    let (user, password) = (format!("{name}-svc"), uuid::Uuid::new_v4().simple().to_string());
    let uid = admin
        .create(
            "user",
            json!({"name": user, "domain_id": domain, "password": password}),
            true,
        )
        .await;
    let roles = admin.call(reqwest::Method::GET, "/roles?name=service", None).await;
    let role = roles["roles"][0]["id"].as_str().expect("the service role").to_string();
    let project = support::keystone_var("SERVICE_PROJECT_ID");
    admin
        .call(
            reqwest::Method::PUT,
            &format!("/projects/{project}/users/{uid}/roles/{role}"),
            None,
        )
        .await;
    (user, password, domain_name, domain)
}

#[actix_web::test]
async fn glance_is_found_in_the_catalog_and_gets_the_service_token() {
    let Some(ks) = support::keystone_url() else { return };
    let Some(glance) = support::glance_url("NIP_KEYSTONE_GLANCE_URL") else {
        return;
    };
    let admin = Admin::new(&ks).await;
    let name = unique();
    // Forwarding proxies in front of the real Glance (and Keystone), one per
    // endpoint: their counts tell which endpoint was taken.
    let (internal, public, other_region) = (
        fault_proxy::start(&glance),
        fault_proxy::start(&glance),
        fault_proxy::start(&glance),
    );
    let identity = fault_proxy::start(ks.strip_suffix("/v3").unwrap());
    let (region, second) = (format!("{name}-region"), format!("{name}-second"));
    for r in [&second, &region] {
        admin.create("region", json!({ "id": r }), true).await;
    }
    let image = admin
        .create("service", json!({"type": "image", "name": name}), true)
        .await;
    // The other region first in the catalog, and with an internal endpoint.
    admin.endpoint(&image, &second, "internal", &other_region.url).await;
    admin.endpoint(&image, &region, "public", &public.url).await;
    // Listed with its version, as catalogs often list Glance: Nova drops it.
    admin
        .endpoint(&image, &region, "internal", &format!("{}/v2/", internal.url))
        .await;
    let id_service = admin
        .create("service", json!({"type": "identity", "name": name}), true)
        .await;
    admin
        .endpoint(&id_service, &region, "admin", &format!("{}/v3", identity.url))
        .await;
    let (user, password, domain_name, domain_id) = service_user_in_own_domain(&admin, &name).await;

    let member = support::member_token(&ks).await;
    let body = json!({"name": name, "disk_format": "raw", "container_format": "bare"});
    let id = support::create_image_as(&support::client(), &glance, Some(&member), &body).await;

    // The binary: no glance.url; user domain by name, project domain by id.
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("NOVA_IMAGES_PROXY__AUTH__STRATEGY", "keystone"),
        ("NOVA_IMAGES_PROXY__AUTH__KEYSTONE_URL", ks.as_str()),
        ("NOVA_IMAGES_PROXY__AUTH__SERVICE_USER", user.as_str()),
        ("NOVA_IMAGES_PROXY__AUTH__SERVICE_PASSWORD", password.as_str()),
        ("NOVA_IMAGES_PROXY__AUTH__SERVICE_PROJECT", "service"),
        ("NOVA_IMAGES_PROXY__AUTH__USER_DOMAIN_NAME", domain_name.as_str()),
        ("NOVA_IMAGES_PROXY__AUTH__PROJECT_DOMAIN_ID", "default"),
        ("NOVA_IMAGES_PROXY__AUTH__INTERFACE", "admin"),
        ("NOVA_IMAGES_PROXY__AUTH__REGION_NAME", region.as_str()),
        ("NOVA_IMAGES_PROXY__AUTH__SEND_SERVICE_USER_TOKEN", "true"),
        ("NOVA_IMAGES_PROXY__GLANCE__REGION_NAME", region.as_str()),
    ];
    let proc = support::process::spawn(&[], &env, &dir.path().join("service.log"));
    let (status, body) = support::get_as(&format!("{}/v2.1/images/{id}", proc.compute), &member).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["image"]["name"], json!(name));
    let (status, body) = support::get_as(&format!("{}/v2.1/images/detail", proc.compute), &member).await;
    assert_eq!(status, 200, "{body}");
    let log = proc.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("image service found in the Keystone catalog")
                && l.contains(&format!("url={}", internal.url))
                && l.contains("interface=internal")
                && l.contains(&region)),
        "the chosen endpoint is logged: {log}"
    );
    // Internal before public; the other region never.
    let seen = internal.seen();
    assert!(seen.len() >= 2, "{:?}", internal.calls());
    assert_eq!((public.count(), other_region.count()), (0, 0));
    // Every call carries the user's token, and the service's beside it.
    let service_token = seen[0].header("x-service-token").expect("X-Service-Token").to_string();
    for s in &seen {
        assert_eq!(
            s.header("x-auth-token"),
            Some(member.as_str()),
            "{} {}",
            s.method,
            s.target
        );
        assert_eq!(
            s.header("x-service-token"),
            Some(service_token.as_str()),
            "{} {}",
            s.method,
            s.target
        );
    }
    assert_ne!(service_token, member);
    // It is the token of the service user of the other domain.
    let r = support::client()
        .get(format!("{ks}/auth/tokens?nocatalog"))
        .header("X-Auth-Token", &admin.token)
        .header("X-Subject-Token", &service_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let t: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(t["token"]["user"]["name"], json!(user));
    assert_eq!(t["token"]["user"]["domain"]["id"], json!(domain_id));
    assert_eq!(t["token"]["project"]["domain"]["id"], json!("default"));
    // Validations went to the identity endpoint of auth.interface and
    // auth.region_name, with the service token.
    let validations: Vec<_> = identity
        .seen()
        .into_iter()
        .filter(|s| s.path() == "/v3/auth/tokens")
        .collect();
    assert!(!validations.is_empty(), "{:?}", identity.calls());
    assert!(validations
        .iter()
        .all(|v| v.header("x-auth-token") == Some(service_token.as_str())
            && v.header("x-subject-token") == Some(member.as_str())));
    assert!(
        !log.contains(&service_token) && !log.contains(&member),
        "no token in the log"
    );
    drop(proc);

    // In process, the other forms: user domain by id, project domain by
    // name, only the public interface, no service token.
    let svc = support::start(support::settings(&[
        ("auth.strategy", "keystone"),
        ("auth.keystone_url", &ks),
        ("auth.service_user", &user),
        ("auth.service_password", &password),
        ("auth.service_project", "service"),
        ("auth.user_domain_id", &domain_id),
        ("auth.project_domain_name", "Default"),
        ("glance.region_name", &region),
        ("glance.valid_interfaces", "public"),
    ]));
    internal.clear();
    let (status, body) = support::get_as(&format!("{}/v2.1/images/{id}", svc.base), &member).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(internal.count(), 0);
    let seen = public.seen();
    assert!(!seen.is_empty());
    assert!(seen
        .iter()
        .all(|s| s.header("x-service-token").is_none() && s.header("x-auth-token") == Some(member.as_str())));
    assert_eq!(other_region.count(), 0);
    admin.clean_up().await;
}

#[test]
fn no_glance_in_the_catalog_refuses_to_start() {
    let Some(ks) = support::keystone_url() else { return };
    let region = format!("{}-nowhere", unique());
    let closed = format!("http://127.0.0.1:{}/v3", support::process::free_port());
    let (user, password, project) = (
        support::keystone_var("SERVICE_USER"),
        support::keystone_var("SERVICE_PASSWORD"),
        support::keystone_var("SERVICE_PROJECT"),
    );
    for (keystone_url, code, needles) in [
        (
            ks.as_str(),
            2,
            vec![
                "glance.url = \"\"".to_string(),
                "glance.valid_interfaces = \"internal,public\"".to_string(),
                format!("glance.region_name = {region:?}"),
            ],
        ),
        (
            closed.as_str(),
            1,
            vec!["glance.url is empty".to_string(), closed.clone()],
        ),
    ] {
        let env = [
            ("NOVA_IMAGES_PROXY__AUTH__STRATEGY", "keystone"),
            ("NOVA_IMAGES_PROXY__AUTH__KEYSTONE_URL", keystone_url),
            ("NOVA_IMAGES_PROXY__AUTH__SERVICE_USER", user.as_str()),
            ("NOVA_IMAGES_PROXY__AUTH__SERVICE_PASSWORD", password.as_str()),
            ("NOVA_IMAGES_PROXY__AUTH__SERVICE_PROJECT", project.as_str()),
            ("NOVA_IMAGES_PROXY__AUTH__TIMEOUT_SECS", "5"),
            ("NOVA_IMAGES_PROXY__GLANCE__REGION_NAME", region.as_str()),
        ];
        let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
        support::process::assert_refused(&support::process::refused(&[], &env, None), code, &needles);
    }
}
