//! Prometheus metrics, served in the text exposition format on a listener of
//! their own (`server.metrics_bind`; off by default, never on the API ports).
//! Names follow Prometheus' naming practice: `nova_images_proxy_` prefix, base
//! units (`_seconds`, `_bytes`), `_total` counters. Labels are bounded: the
//! listener, the endpoint (the route's name, never the raw path), the method
//! and the status; never a project, user or token.

use actix_web::{web, App, HttpResponse, HttpServer};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::sync::OnceLock;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub listener: &'static str,
    pub endpoint: &'static str,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub listener: &'static str,
    pub endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabels {
    pub listener: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendLabels {
    pub operation: String,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeprecatedLabels {
    pub surface: &'static str,
    pub endpoint: &'static str,
    pub client: String,
}

/// Every metric of the service.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub duration: Family<RouteLabels, Histogram>,
    pub in_flight: Family<ListenerLabels, Gauge>,
    pub response_bytes: Family<RouteLabels, Counter>,
    pub backend_requests: Family<BackendLabels, Counter>,
    pub backend_duration: Family<OperationLabels, Histogram>,
    pub backend_retries: Family<OperationLabels, Counter>,
    pub keystone_validations: Family<ResultLabels, Counter>,
    pub deprecated_calls: Family<DeprecatedLabels, Counter>,
    /// The clients with a `client` label of their own (the first ones seen).
    deprecated_clients: std::sync::Mutex<std::collections::HashSet<String>>,
    pub group_commit_writes: Histogram,
    pub embedded_images: Gauge,
    pub embedded_image_bytes: Gauge,
}

/// Work done before each scrape (e.g. the embedded store counting its images).
type ScrapeHook = Box<dyn Fn() + Send + Sync>;
static SCRAPE_HOOKS: std::sync::Mutex<Vec<ScrapeHook>> = std::sync::Mutex::new(Vec::new());

/// Run `hook` before every scrape of the metrics listener (off the async
/// workers: it may block briefly).
pub fn on_scrape(hook: impl Fn() + Send + Sync + 'static) {
    SCRAPE_HOOKS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Box::new(hook));
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The metrics, once [`enable`] has been called (with `server.metrics_bind`
/// set); `None` otherwise, and then nothing is recorded.
pub fn get() -> Option<&'static Metrics> {
    METRICS.get()
}

/// Start recording.
pub fn enable() -> &'static Metrics {
    METRICS.get_or_init(Metrics::new)
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("nova_images_proxy");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "HTTP requests answered, by listener, endpoint (route name), method and status",
            requests.clone(),
        );
        let duration = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            // 1 ms … ~33 s
            Histogram::new(exponential_buckets(0.001, 2.0, 16))
        });
        registry.register(
            "request_duration_seconds",
            "Time from the request's arrival to its response's last byte, by listener and endpoint",
            duration.clone(),
        );
        let in_flight = Family::<ListenerLabels, Gauge>::default();
        registry.register(
            "requests_in_flight",
            "Requests received and not yet answered in full, by listener",
            in_flight.clone(),
        );
        let response_bytes = Family::<RouteLabels, Counter>::default();
        registry.register(
            "response_body_bytes",
            "Response body bytes sent, by listener and endpoint",
            response_bytes.clone(),
        );
        let backend_requests = Family::<BackendLabels, Counter>::default();
        registry.register(
            "backend_requests",
            "Calls to Glance, by operation (method and path template) and outcome \
             (answered: any HTTP status below 500; error_status: 5xx; timeout; unreachable)",
            backend_requests.clone(),
        );
        let backend_duration = Family::<OperationLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 16))
        });
        registry.register(
            "backend_request_duration_seconds",
            "Time of one call to Glance until its response head, by operation",
            backend_duration.clone(),
        );
        let backend_retries = Family::<OperationLabels, Counter>::default();
        registry.register(
            "backend_retries",
            "Calls to Glance that were retries of a failed one, by operation",
            backend_retries.clone(),
        );
        let keystone_validations = Family::<ResultLabels, Counter>::default();
        registry.register(
            "keystone_validations",
            "Token validations (auth.strategy = keystone), by result: cache_hit, valid, invalid, unavailable",
            keystone_validations.clone(),
        );
        let deprecated_calls = Family::<DeprecatedLabels, Counter>::default();
        registry.register(
            "deprecated_calls",
            "Calls of the deprecated surfaces (surface nova or glance_v1), by endpoint and client \
             (product/version from User-Agent; past usage.metrics_clients distinct clients: other)",
            deprecated_calls.clone(),
        );
        let group_commit_writes = Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0]);
        registry.register(
            "metadata_group_commit_writes",
            "Metadata writes to one image sent to Glance together (one read and one PATCH for all of them)",
            group_commit_writes.clone(),
        );
        let embedded_images = Gauge::default();
        registry.register(
            "embedded_images",
            "Images in the embedded store (not deleted), as of the last scrape",
            embedded_images.clone(),
        );
        let embedded_image_bytes = Gauge::default();
        registry.register_with_unit(
            "embedded_image",
            "Size of the image data the embedded store holds, as of the last scrape",
            prometheus_client::registry::Unit::Bytes,
            embedded_image_bytes.clone(),
        );
        registry.register(
            "build",
            "The running build",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        Metrics {
            registry,
            requests,
            duration,
            in_flight,
            response_bytes,
            backend_requests,
            backend_duration,
            backend_retries,
            keystone_validations,
            deprecated_calls,
            deprecated_clients: Default::default(),
            group_commit_writes,
            embedded_images,
            embedded_image_bytes,
        }
    }

    /// Count a deprecated call; `client` keeps its own label if it is one of
    /// the first `max_clients` seen, else it is counted as `other`.
    pub fn deprecated_call(&self, surface: &'static str, endpoint: &'static str, client: &str, max_clients: usize) {
        let client = {
            let mut seen = self.deprecated_clients.lock().unwrap_or_else(|e| e.into_inner());
            if seen.contains(client) || (seen.len() < max_clients && seen.insert(client.to_string())) {
                client.to_string()
            } else {
                "other".to_string()
            }
        };
        self.deprecated_calls
            .get_or_create(&DeprecatedLabels {
                surface,
                endpoint,
                client,
            })
            .inc();
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// A Keystone validation's result (when metrics are on).
pub fn keystone_validation(result: &'static str) {
    if let Some(m) = get() {
        m.keystone_validations.get_or_create(&ResultLabels { result }).inc();
    }
}

/// The operation label of a Glance call: its method and path with ids
/// replaced by `{id}` (`GET /v2/images/{id}`).
pub fn operation(method: &str, path: &str) -> String {
    let template: Vec<&str> = path
        .split('/')
        .map(|seg| {
            if seg.len() >= 32 && seg.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
                "{id}"
            } else {
                seg
            }
        })
        .collect();
    format!("{method} {}", template.join("/"))
}

/// One call to Glance being timed.
pub struct BackendCall {
    operation: String,
    started: std::time::Instant,
}

impl BackendCall {
    pub fn start(request: &reqwest::Request, retry: bool) -> Option<BackendCall> {
        let m = get()?;
        let operation = operation(request.method().as_str(), request.url().path());
        if retry {
            m.backend_retries
                .get_or_create(&OperationLabels {
                    operation: operation.clone(),
                })
                .inc();
        }
        Some(BackendCall {
            operation,
            started: std::time::Instant::now(),
        })
    }

    /// Record how a timed call ended (`call` is `None` when metrics are off);
    /// `sent` is its answer within the deadline, or `Err` past it.
    pub fn finish<E>(call: Option<BackendCall>, sent: &Result<Result<reqwest::Response, reqwest::Error>, E>) {
        let (Some(call), Some(m)) = (call, get()) else {
            return;
        };
        let outcome = match sent {
            Err(_) => "timeout",
            Ok(Ok(r)) if r.status().is_server_error() => "error_status",
            Ok(Ok(_)) => "answered",
            Ok(Err(e)) if e.is_timeout() => "timeout",
            Ok(Err(_)) => "unreachable",
        };
        m.backend_duration
            .get_or_create(&OperationLabels {
                operation: call.operation.clone(),
            })
            .observe(call.started.elapsed().as_secs_f64());
        m.backend_requests
            .get_or_create(&BackendLabels {
                operation: call.operation,
                outcome,
            })
            .inc();
    }
}

/// The endpoint label of a request: the route's name on the compute
/// listener (Nova's routing), a fixed name per Glance v1 / v2 call shape on
/// the image listener, `other` for anything unrouted.
pub fn endpoint(listener: &str, method: &actix_web::http::Method, path: &str) -> &'static str {
    if path == crate::health::PATH {
        return "healthcheck";
    }
    if listener == "compute" {
        let rest = match path {
            "" | "/" | "/v2" | "/v2/" | "/v2.1" | "/v2.1/" => return "versions",
            p => p.strip_prefix("/v2.1").or_else(|| p.strip_prefix("/v2")),
        };
        let decoded = rest.map(|r| percent_encoding::percent_decode_str(r).decode_utf8_lossy().into_owned());
        return decoded
            .as_deref()
            .and_then(|r| crate::nova::routes::parse(method, r))
            .map_or("other", |route| route.endpoint.name());
    }
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["v1", "images"] => "v1.images.index",
        ["v1", "images", "detail"] => "v1.images.detail",
        ["v1", "images", _] => "v1.images.show",
        ["v1", "images", _, "members", ..] => "v1.images.members",
        ["v1", "shared-images", _] => "v1.shared_images",
        ["v2", "images", ..] | ["v2", "schemas", ..] => "v2.images",
        [] | ["versions"] => "versions",
        _ => "other",
    }
}

async fn exposition() -> HttpResponse {
    let body = web::block(|| {
        for hook in SCRAPE_HOOKS.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            hook();
        }
        get().map(Metrics::render).unwrap_or_default()
    })
    .await
    .unwrap_or_default();
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(body)
}

/// The metrics listener: `GET /metrics` on `listener`, one worker; with
/// `admin`, also `GET /usage` ([`crate::migration::admin`]).
pub fn server(
    listener: std::net::TcpListener,
    admin: Option<crate::migration::admin::Admin>,
) -> std::io::Result<actix_web::dev::Server> {
    enable();
    Ok(HttpServer::new(move || {
        let app = App::new().route("/metrics", web::get().to(exposition));
        match admin.clone() {
            Some(admin) => app.configure(|cfg| crate::migration::admin::configure(cfg, admin)),
            None => app,
        }
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::Method;

    #[test]
    fn endpoints_are_route_names() {
        let get = Method::GET;
        assert_eq!(endpoint("compute", &get, "/v2.1/images/detail"), "images.detail");
        assert_eq!(
            endpoint("compute", &get, "/v2/6f70656e737461636b20342065766572/images/abc"),
            "images.show"
        );
        assert_eq!(
            endpoint("compute", &get, "/v2.1/images/abc/metadata"),
            "image_metadata.index"
        );
        assert_eq!(endpoint("compute", &get, "/v2.1"), "versions");
        assert_eq!(endpoint("compute", &get, "/v2.1/servers"), "other");
        assert_eq!(endpoint("image", &get, "/v1/images/abc"), "v1.images.show");
        assert_eq!(endpoint("image", &get, "/v1/images/abc/members/p"), "v1.images.members");
        assert_eq!(endpoint("image", &get, "/v1/shared-images/p"), "v1.shared_images");
        assert_eq!(endpoint("image", &get, "/healthcheck"), "healthcheck");
        assert_eq!(endpoint("image", &get, "/nothing/here"), "other");
        assert_eq!(
            operation("PATCH", "/v2/images/8fceaebd-9239-5d3f-8486-ca03631dd433"),
            "PATCH /v2/images/{id}"
        );
        assert_eq!(operation("GET", "/v2/schemas/image"), "GET /v2/schemas/image");
    }
}
