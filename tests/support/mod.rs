//! Shared test support: a real Glance (started by `scripts/test`), the service
//! started in-process on a loopback port, and the seed images.
#![allow(dead_code)]

/// Conformance cases: one body each (`async fn name(Backend)` beside a
/// `fn glance() -> Option<String>` in the test file), run on a real Glance
/// (`on_glance::name`) and on the embedded store (`on_embedded_store::name`).
#[allow(unused_macros)]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_glance {
            $(
                #[actix_web::test]
                async fn $name() {
                    if let Some(g) = super::glance() {
                        super::$name(super::Backend::Glance(g)).await;
                    }
                }
            )*
        }
        mod on_embedded_store {
            $(
                #[actix_web::test]
                async fn $name() {
                    super::$name(super::Backend::Embedded).await;
                }
            )*
        }
    };
}

pub mod api;
pub mod capture;
pub mod fault_proxy;
pub mod process;
pub mod raw;
pub mod real;
pub mod seed;
pub mod tls;
pub mod v1;

use nova_images_proxy::config::{Overrides, Settings};
use std::net::TcpListener;
use std::sync::mpsc;

pub const PROJECT: &str = "6f70656e737461636b20342065766572";
pub const TOKEN: &str = "demo:6f70656e737461636b20342065766572";

/// The URL of the real Glance named by `var`. Without it the test fails and
/// says how to get one, unless `NIP_SKIP_GLANCE=1` (then `None`: skip).
pub fn glance_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("NIP_SKIP_GLANCE").as_deref() == Ok("1") => {
            skip(&format!("{var} is not set (a real Glance)"));
            None
        }
        _ => panic!(
            "{var} is not set: this test runs against a real Glance. Run the suite with `scripts/test`, \
             which installs and starts Glance on loopback (or set NIP_SKIP_GLANCE=1 to skip)."
        ),
    }
}

/// Report the running test as skipped, by name, for `why`; under
/// `NIP_REQUIRE_GLANCE=1` (set by `scripts/test`, so in CI) a skip is a failure.
pub fn skip(why: &str) {
    let name = std::thread::current().name().unwrap_or("?").to_string();
    if std::env::var("NIP_REQUIRE_GLANCE").as_deref() == Ok("1") {
        panic!("{name} cannot run: {why} (NIP_REQUIRE_GLANCE=1)");
    }
    eprintln!("SKIPPED {name}: {why}");
}

/// Settings for a test instance: defaults plus `pairs`.
pub fn settings(pairs: &[(&str, &str)]) -> Settings {
    let overrides = Overrides {
        config_file: None,
        pairs: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    };
    Settings::load_with_env(&overrides, false).expect("test settings")
}

/// A running instance of the service on a loopback port.
pub struct Service {
    pub base: String,
    handle: actix_web::dev::ServerHandle,
    /// The data directory of an embedded store started for this instance.
    pub data_dir: Option<tempfile::TempDir>,
}

/// Which backend a conformance test runs on.
#[derive(Clone, Debug)]
pub enum Backend {
    /// A real Glance at this URL.
    Glance(String),
    /// The embedded store in a fresh temporary directory.
    Embedded,
}

/// Start the service on `backend` with `pairs` on top of the defaults.
pub fn start_on(backend: &Backend, pairs: &[(&str, &str)]) -> Service {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir_str = dir.path().to_string_lossy().into_owned();
    let mut all: Vec<(&str, &str)> = match backend {
        Backend::Glance(url) => vec![("glance.url", url.as_str())],
        Backend::Embedded => vec![
            ("embedded.data_dir", dir_str.as_str()),
            ("embedded.demo_images", "false"),
            ("embedded.enabled", "true"),
        ],
    };
    all.extend_from_slice(pairs);
    let mut service = start(settings(&all));
    if let Backend::Embedded = backend {
        service.data_dir = Some(dir);
    }
    service
}

/// Another instance of the service on the same backend as `other` (for the
/// embedded store: the same data directory), with `pairs` on top of the defaults.
pub fn start_beside(other: &Service, backend: &Backend, pairs: &[(&str, &str)]) -> Service {
    match (backend, &other.data_dir) {
        (Backend::Embedded, Some(dir)) => {
            let dir_str = dir.path().to_string_lossy().into_owned();
            let mut all = vec![
                ("embedded.data_dir", dir_str.as_str()),
                ("embedded.demo_images", "false"),
                ("embedded.enabled", "true"),
            ];
            all.extend_from_slice(pairs);
            start(settings(&all))
        }
        _ => start_on(backend, pairs),
    }
}

/// A second handle on the embedded store of `service` (same directory), for
/// tests to create what a Glance client would create.
pub fn store_of(service: &Service) -> nova_images_proxy::backend::embedded::EmbeddedStore {
    let dir = service.data_dir.as_ref().expect("an embedded service");
    nova_images_proxy::backend::embedded::EmbeddedStore::open(dir.path()).expect("store")
}

/// An admin context for seeding the embedded store: the images it creates are
/// owned by the test project.
pub fn seed_context() -> nova_images_proxy::backend::RequestContext {
    nova_images_proxy::backend::RequestContext {
        token: "admin:admin".into(),
        user_id: "admin".into(),
        // The images it creates belong to the test project, so that `TOKEN`
        // (a member of it) may read and change them as Glance's policy allows.
        project_id: PROJECT.into(),
        roles: vec!["admin".into()],
        request_id: nova_images_proxy::edge::request_id::mint(),
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        std::thread::spawn(move || actix_web::rt::System::new().block_on(handle.stop(false)));
    }
}

/// Start the compute listener with `settings` on 127.0.0.1:<free port>, built
/// as the binary builds it (`nova_images_proxy::server`, with its limits).
pub fn start(settings: Settings) -> Service {
    serve(settings, |settings, backends, listener| {
        let auth = nova_images_proxy::authenticator_with(settings, &backends).expect("authenticator");
        let state = nova_images_proxy::nova_state(settings.clone(), &backends, auth);
        nova_images_proxy::server::compute(settings, state, listener)
    })
}

/// Run the listener `make` builds on a fresh loopback port, in a thread of its own.
fn serve<M>(settings: Settings, make: M) -> Service
where
    M: FnOnce(&Settings, nova_images_proxy::Backends, TcpListener) -> std::io::Result<actix_web::dev::Server>
        + Send
        + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let backends = nova_images_proxy::build_backend(&settings).await.expect("backend");
            let server = make(&settings, backends, listener).expect("listen");
            tx.send(server.handle()).expect("handle");
            server.await.expect("server");
        })
    });
    let handle = rx.recv().expect("server started");
    Service {
        base: format!("http://{addr}"),
        handle,
        data_dir: None,
    }
}

/// The exposition of the metrics listener at `addr` (`host:port`).
/// The JSON `/usage` report of the metrics listener at `addr` (a 200 asserted).
pub async fn usage_report(addr: &str) -> serde_json::Value {
    let r = client().get(format!("http://{addr}/usage")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    serde_json::from_slice(&r.bytes().await.unwrap()).unwrap()
}

pub async fn metrics_text(client: &reqwest::Client, addr: &str) -> String {
    let r = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("GET /metrics");
    r.text().await.expect("metrics text")
}

pub fn client() -> reqwest::Client {
    nova_images_proxy::tls::install_default_provider();
    reqwest::Client::builder().no_proxy().build().expect("client")
}

/// Start the image listener (Glance v1 reads; Glance v2 of an embedded store)
/// with `settings` on 127.0.0.1:<free port>.
pub fn start_image_listener(settings: Settings) -> Service {
    serve(settings, |settings, backends, listener| {
        let auth = nova_images_proxy::authenticator_with(settings, &backends).expect("authenticator");
        let state = nova_images_proxy::image_state(settings, &backends, auth);
        nova_images_proxy::server::image(settings, state, listener)
    })
}

/// `method path` on `base` with the test token (and `body` as JSON): the
/// status and the JSON body (`Null` when it is not JSON).
pub async fn send_json(
    client: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut rb = client
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
            format!("{base}{path}"),
        )
        .header("X-Auth-Token", TOKEN);
    if let Some(b) = body {
        rb = rb.header("Content-Type", "application/json").body(b.to_string());
    }
    let r = rb.send().await.expect("request");
    let s = r.status().as_u16();
    (
        s,
        serde_json::from_slice(&r.bytes().await.expect("body")).unwrap_or(serde_json::Value::Null),
    )
}

/// A new (queued) image made straight in the Glance at `glance`, with the
/// extra properties `props`; its id.
pub async fn glance_image(client: &reqwest::Client, glance: &str, props: &serde_json::Value) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let mut body = serde_json::json!({"id": id, "name": "test", "disk_format": "raw", "container_format": "bare"});
    for (k, v) in props.as_object().expect("props") {
        body[k] = v.clone();
    }
    glance_create(client, glance, &body).await;
    id
}

/// `POST /v2/images` with `body` to the Glance at `glance`; it must answer 201.
pub async fn glance_create(client: &reqwest::Client, glance: &str, body: &serde_json::Value) {
    create_image_as(client, glance, None, body).await;
}

/// A token issued by the Keystone at `url` (`…/v3`) to `user` for `project`,
/// both in the domain named `domain` (password auth), with the body it came with.
pub async fn password_token(
    url: &str,
    domain: &str,
    user: &str,
    password: &str,
    project: &str,
) -> (String, serde_json::Value) {
    let body = serde_json::json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"name": domain}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"name": domain}}}}});
    let r = client()
        .post(format!("{url}/auth/tokens?nocatalog"))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("Keystone answers");
    assert_eq!(r.status().as_u16(), 201, "password auth of {user}");
    let id = r.headers()["x-subject-token"].to_str().unwrap().to_string();
    (id, serde_json::from_slice(&r.bytes().await.unwrap()).unwrap())
}

/// The service's settings for Keystone at `url` with the test run's service
/// account (`NIP_KEYSTONE_SERVICE_*`, printed by `scripts/keystone.sh start`).
pub fn keystone_pairs(url: &str) -> Vec<(&'static str, String)> {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set (scripts/keystone.sh start prints it)"))
    };
    vec![
        ("auth.strategy", "keystone".into()),
        ("auth.keystone_url", url.into()),
        ("auth.service_user", var("NIP_KEYSTONE_SERVICE_USER")),
        ("auth.service_password", var("NIP_KEYSTONE_SERVICE_PASSWORD")),
        ("auth.service_project", var("NIP_KEYSTONE_SERVICE_PROJECT")),
        ("auth.service_domain", "Default".into()),
    ]
}

/// `POST /v2/images` of `body` to the Glance (v2 API) at `glance`, with
/// `token` if any; it must answer 201. The new image's id.
pub async fn create_image_as(
    client: &reqwest::Client,
    glance: &str,
    token: Option<&str>,
    body: &serde_json::Value,
) -> String {
    let mut rb = client.post(format!("{glance}/v2/images"));
    if let Some(t) = token {
        rb = rb.header("X-Auth-Token", t);
    }
    let r = rb
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("create");
    assert_eq!(r.status().as_u16(), 201);
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.expect("body")).expect("JSON");
    v["id"].as_str().expect("an id").to_string()
}

/// `NIP_KEYSTONE_<name>`, as `scripts/keystone.sh start` prints it.
pub fn keystone_var(name: &str) -> String {
    let name = format!("NIP_KEYSTONE_{name}");
    std::env::var(&name).unwrap_or_else(|_| panic!("{name} is not set (scripts/keystone.sh start prints it)"))
}

/// The Keystone of the test run (`…/v3`), or `None` (skip, said) when there
/// is none and the run does not require one (`NIP_REQUIRE_KEYSTONE=1`).
pub fn keystone_url() -> Option<String> {
    match std::env::var("NIP_KEYSTONE_URL") {
        Ok(url) if !url.is_empty() => Some(url.trim_end_matches('/').to_string()),
        _ if std::env::var("NIP_REQUIRE_KEYSTONE").as_deref() == Ok("1") => {
            panic!("NIP_REQUIRE_KEYSTONE=1 but NIP_KEYSTONE_URL is not set: run the suite with `scripts/test`")
        }
        _ => {
            let name = std::thread::current().name().unwrap_or("?").to_string();
            eprintln!("SKIPPED {name}: NIP_KEYSTONE_URL is not set (scripts/test starts Keystone)");
            None
        }
    }
}

/// A token of the `member` user of the test run's Keystone at `url`, for `demo`.
pub async fn member_token(url: &str) -> String {
    password_token(
        url,
        "Default",
        &keystone_var("MEMBER_USER"),
        &keystone_var("MEMBER_PASSWORD"),
        &keystone_var("DEMO_PROJECT"),
    )
    .await
    .0
}

/// `GET url` with `token`: the status and the JSON body (`Null` when it is not JSON).
pub async fn get_as(url: &str, token: &str) -> (u16, serde_json::Value) {
    let r = client().get(url).header("X-Auth-Token", token).send().await.unwrap();
    let status = r.status().as_u16();
    (
        status,
        serde_json::from_slice(&r.bytes().await.unwrap()).unwrap_or(serde_json::Value::Null),
    )
}
