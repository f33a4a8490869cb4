//! The service's image listener for the Glance v1 write tests, on the
//! embedded store and (when `NIP_TEST_GLANCE_URL` names one) a real Glance,
//! with a reader of the images' Glance v2 API.

use super::Backend;
use md5::{Digest, Md5};
use serde_json::Value;

pub fn backends() -> Vec<Backend> {
    let mut out = vec![Backend::Embedded];
    if let Some(url) = super::glance_url("NIP_TEST_GLANCE_URL") {
        out.push(Backend::Glance(url));
    }
    out
}

pub fn md5_hex(data: &[u8]) -> String {
    Md5::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// The service's image listener on `backend`, and how to read Glance v2.
pub struct Svc {
    pub c: reqwest::Client,
    pub base: String,
    /// Where the Glance v2 API of the images is: the real Glance, or the
    /// embedded store's on this listener.
    pub v2: String,
    _svc: super::Service,
}

impl Svc {
    pub fn start(backend: &Backend) -> Svc {
        Self::start_with(backend, &[])
    }

    /// As [`Svc::start`], with further settings (`extra`).
    pub fn start_with(backend: &Backend, extra: &[(&str, &str)]) -> Svc {
        let dir = tempfile::tempdir().expect("tempdir");
        let dir_str = dir.path().to_string_lossy().into_owned();
        let mut pairs: Vec<(&str, &str)> = match backend {
            Backend::Glance(url) => vec![("glance.url", url.as_str())],
            Backend::Embedded => vec![
                ("embedded.data_dir", dir_str.as_str()),
                ("embedded.demo_images", "false"),
                ("embedded.enabled", "true"),
            ],
        };
        pairs.extend_from_slice(extra);
        let mut svc = super::start_image_listener(super::settings(&pairs));
        let v2 = match backend {
            Backend::Glance(url) => url.clone(),
            Backend::Embedded => svc.base.clone(),
        };
        if let Backend::Embedded = backend {
            svc.data_dir = Some(dir);
        }
        Svc {
            c: super::client(),
            base: svc.base.clone(),
            v2,
            _svc: svc,
        }
    }

    pub fn post(&self, headers: &[(&str, &str)]) -> reqwest::RequestBuilder {
        let mut rb = self
            .c
            .post(format!("{}/v1/images", self.base))
            .header("X-Auth-Token", super::TOKEN)
            .header("Accept", "text/plain");
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        rb
    }

    /// `GET /v2/images/{id}`: (status, image).
    pub async fn v2_image(&self, id: &str) -> (u16, Value) {
        self.v2_get(&format!("/v2/images/{id}"), super::TOKEN).await
    }

    pub async fn v1(&self, method: reqwest::Method, id: &str) -> reqwest::Response {
        self.c
            .request(method, format!("{}/v1/images/{id}", self.base))
            .header("X-Auth-Token", super::TOKEN)
            .header("Accept", "text/plain")
            .send()
            .await
            .expect("v1")
    }
}

impl Svc {
    /// `method` on `path` of the image listener with `token` and `headers`.
    pub fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        headers: &[(&str, &str)],
    ) -> reqwest::RequestBuilder {
        let mut rb = self
            .c
            .request(method, format!("{}{path}", self.base))
            .header("X-Auth-Token", token)
            .header("Accept", "text/plain");
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        rb
    }

    /// A Glance v2 GET of `path` (`/v2/…`) with `token`: (status, body).
    pub async fn v2_get(&self, path: &str, token: &str) -> (u16, Value) {
        let r = self
            .c
            .get(format!("{}{path}", self.v2))
            .header("X-Auth-Token", token)
            .send()
            .await
            .expect("v2 get");
        let status = r.status().as_u16();
        (
            status,
            serde_json::from_slice(&r.bytes().await.unwrap()).unwrap_or(Value::Null),
        )
    }
}

impl Svc {
    /// Run `tests/glanceclient_v1/<script>` with `python` against this service
    /// (`--url`, `--v2-url`, `--token` and `extra`): it must pass and print
    /// `<what>: all checks passed`.
    pub fn run_glanceclient(&self, python: &str, script: &str, extra: &[&str], what: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/glanceclient_v1")
            .join(script);
        let out = std::process::Command::new(python)
            .arg(&path)
            .args(["--url", &self.base, "--v2-url", &self.v2, "--token", super::TOKEN])
            .args(extra)
            .env("NO_PROXY", "*")
            .output()
            .expect("run python-glanceclient");
        let stdout = String::from_utf8_lossy(&out.stdout);
        eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{}: {what} failed", self.base);
        assert!(stdout.contains(&format!("{what}: all checks passed")));
    }
}
