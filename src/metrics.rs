//! Prometheus metrics, served in the text exposition format on a listener of
//! their own (`server.metrics_bind`; off by default, never on the API ports).
//! Names follow Prometheus' naming practice: `nova_images_proxy_` prefix, base
//! units (`_seconds`, `_bytes`), `_total` counters. Labels are bounded: the
//! listener, the endpoint (the route's name, never the raw path), the method
//! and the status; never a project, user or token.

use actix_web::{web, App, HttpResponse, HttpServer};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::sync::OnceLock;

mod handles;
pub mod labels;

use labels::{
    BackendLabels, DeprecatedLabels, ListenerLabels, OperationLabels, RequestLabels, ResultLabels, RouteLabels,
};

/// Register `metric` as `name` and keep a handle to it.
fn add<M: prometheus_client::registry::Metric + Clone>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    metric: M,
) -> M {
    registry.register(name, help, metric.clone());
    metric
}

/// The buckets of a time: 1 ms … ~33 s.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
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
        let requests = add(
            &mut registry,
            "requests",
            "HTTP requests answered, by listener, endpoint (route name), method and status",
            Family::<RequestLabels, Counter>::default(),
        );
        let duration = add(
            &mut registry,
            "request_duration_seconds",
            "Time from the request's arrival to its response's last byte, by listener and endpoint",
            Family::<RouteLabels, Histogram>::new_with_constructor(latency),
        );
        let in_flight = add(
            &mut registry,
            "requests_in_flight",
            "Requests received and not yet answered in full, by listener",
            Family::<ListenerLabels, Gauge>::default(),
        );
        let response_bytes = add(
            &mut registry,
            "response_body_bytes",
            "Response body bytes sent, by listener and endpoint",
            Family::<RouteLabels, Counter>::default(),
        );
        let backend_requests = add(
            &mut registry,
            "backend_requests",
            "Calls to Glance, by operation (method and path template) and outcome \
             (answered: any HTTP status below 500; error_status: 5xx; timeout; unreachable)",
            Family::<BackendLabels, Counter>::default(),
        );
        let backend_duration = add(
            &mut registry,
            "backend_request_duration_seconds",
            "Time of one call to Glance until its response head, by operation",
            Family::<OperationLabels, Histogram>::new_with_constructor(latency),
        );
        let backend_retries = add(
            &mut registry,
            "backend_retries",
            "Calls to Glance that were retries of a failed one, by operation",
            Family::<OperationLabels, Counter>::default(),
        );
        let keystone_validations = add(
            &mut registry,
            "keystone_validations",
            "Token validations (auth.strategy = keystone), by result: cache_hit, valid, invalid, unavailable",
            Family::<ResultLabels, Counter>::default(),
        );
        let deprecated_calls = add(
            &mut registry,
            "deprecated_calls",
            "Calls of the deprecated surfaces (surface nova or glance_v1), by endpoint and client \
             (product/version from User-Agent; past usage.metrics_clients distinct clients: other)",
            Family::<DeprecatedLabels, Counter>::default(),
        );
        let group_commit_writes = add(
            &mut registry,
            "metadata_group_commit_writes",
            "Metadata writes to one image sent to Glance together (one read and one PATCH for all of them)",
            Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0]),
        );
        let embedded_images = add(
            &mut registry,
            "embedded_images",
            "Images in the embedded store (not deleted), as of the last scrape",
            Gauge::default(),
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
        if handles::deprecated(surface, endpoint, client) {
            return;
        }
        let label = {
            let mut seen = self.deprecated_clients.lock().unwrap_or_else(|e| e.into_inner());
            if seen.contains(client) || (seen.len() < max_clients && seen.insert(client.to_string())) {
                client.to_string()
            } else {
                "other".to_string()
            }
        };
        let counter = self.deprecated_calls.get_or_create_owned(&DeprecatedLabels {
            surface,
            endpoint,
            client: label,
        });
        counter.inc();
        handles::keep_deprecated(surface, endpoint, client, counter);
    }

    /// Count an answered request of `method` (bounded: a standard method's
    /// name, else `other`), its duration and its response body's bytes.
    pub fn request(
        &self,
        listener: &'static str,
        endpoint: &'static str,
        method: &actix_web::http::Method,
        status: u16,
        seconds: f64,
        bytes: u64,
    ) {
        let labels = RequestLabels {
            listener,
            endpoint,
            method: labels::method(method),
            status,
        };
        handles::request(self, labels, seconds, bytes);
    }

    /// A request arrived at `listener` (`+1`) or was answered in full (`-1`).
    pub fn in_flight(&self, listener: &'static str, delta: i64) {
        handles::in_flight(self, listener, delta);
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

/// One call to Glance being timed.
pub struct BackendCall {
    operation: String,
    started: std::time::Instant,
}

impl BackendCall {
    pub fn start(request: &reqwest::Request, retry: bool) -> Option<BackendCall> {
        let m = get()?;
        let operation = labels::operation(request.method().as_str(), request.url().path());
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

    #[test]
    fn clients_past_the_limit_are_counted_as_other_also_from_cached_handles() {
        let m = Metrics::new();
        for client in ["a/1", "b/1", "a/1", "c/1", "c/1", "b/1", "d/2"] {
            m.deprecated_call("nova", "test.limit", client, 2);
        }
        let text = m.render();
        let count = |client: &str| {
            let prefix = format!(
                "nova_images_proxy_deprecated_calls_total{{surface=\"nova\",endpoint=\"test.limit\",client=\"{client}\"}} "
            );
            text.lines()
                .find_map(|l| l.strip_prefix(prefix.as_str()))
                .map(str::to_string)
        };
        assert_eq!(count("a/1").as_deref(), Some("2"), "{text}");
        assert_eq!(count("b/1").as_deref(), Some("2"), "{text}");
        assert_eq!(count("other").as_deref(), Some("3"), "{text}");
        assert_eq!(count("c/1"), None, "{text}");
    }
}
