//! The Nova API of an in-process service on a real Glance or the embedded
//! store, as the conformance tests (`tests/nova_api.rs`, `tests/nova_paths.rs`)
//! call it, with images made in the backend as a Glance client makes them.

use super::Backend;
use serde_json::{json, Value};

/// The service in front of `backend`, and a client.
pub struct Api {
    pub client: reqwest::Client,
    pub base: String,
    pub backend: Backend,
    pub service: super::Service,
}

impl Api {
    pub fn new(backend: &Backend, pairs: &[(&str, &str)]) -> Api {
        let service = super::start_on(backend, pairs);
        Api {
            client: super::client(),
            base: service.base.clone(),
            backend: backend.clone(),
            service,
        }
    }

    pub async fn req(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> (u16, Value) {
        let mut rb = self
            .client
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
                format!("{}{path}", self.base),
            )
            .header("X-Auth-Token", super::TOKEN);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb.header("Content-Type", "application/json").body(b.to_string());
        }
        let r = rb.send().await.expect("request");
        let status = r.status().as_u16();
        let bytes = r.bytes().await.expect("body");
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.req("GET", path, &[], None).await
    }

    /// A new (queued) image in the backend with `props`, as a Glance client makes it.
    pub async fn image(&self, props: Value) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let mut body =
            json!({"id": id, "name": format!("nova-api-test-{id}"), "disk_format": "raw", "container_format": "bare"});
        for (k, v) in props.as_object().expect("props") {
            body[k] = v.clone();
        }
        match &self.backend {
            Backend::Glance(glance) => super::glance_create(&self.client, glance, &body).await,
            Backend::Embedded => {
                let new = super::seed::new_image(body.as_object().expect("body"));
                super::store_of(&self.service)
                    .create(&super::seed_context(), new)
                    .await
                    .expect("create");
            }
        }
        id
    }

    /// The image as the backend's Glance v2 API shows it.
    pub async fn glance_props(&self, id: &str) -> Value {
        match &self.backend {
            Backend::Glance(glance) => {
                let r = self
                    .client
                    .get(format!("{glance}/v2/images/{id}"))
                    .send()
                    .await
                    .expect("glance get");
                serde_json::from_slice(&r.bytes().await.expect("body")).expect("json")
            }
            Backend::Embedded => {
                use nova_images_proxy::backend::ImageBackend;
                let img = super::store_of(&self.service)
                    .get(&super::seed_context(), id)
                    .await
                    .expect("get");
                nova_images_proxy::glance_v2::view::image(&img)
            }
        }
    }
}
