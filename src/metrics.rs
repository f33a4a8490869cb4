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

/// Every metric of the service.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub duration: Family<RouteLabels, Histogram>,
    pub in_flight: Family<ListenerLabels, Gauge>,
    pub response_bytes: Family<RouteLabels, Counter>,
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
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
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
        ["v2", "images", ..] | ["v2", "schemas", ..] => "v2.images",
        [] | ["versions"] => "versions",
        _ => "other",
    }
}

async fn exposition() -> HttpResponse {
    let body = get().map(Metrics::render).unwrap_or_default();
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(body)
}

/// The metrics listener: `GET /metrics` on `listener`, one worker.
pub fn server(listener: std::net::TcpListener) -> std::io::Result<actix_web::dev::Server> {
    enable();
    Ok(
        HttpServer::new(|| App::new().route("/metrics", web::get().to(exposition)))
            .workers(1)
            .disable_signals()
            .shutdown_timeout(1)
            .listen(listener)?
            .run(),
    )
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
        assert_eq!(endpoint("image", &get, "/healthcheck"), "healthcheck");
        assert_eq!(endpoint("image", &get, "/nothing/here"), "other");
    }
}
