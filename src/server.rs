//! The two HTTP listeners, built with the limits of `[server]`: connection
//! count, head and body deadlines, keep-alive, head size, graceful shutdown.
//! `main` and the tests start the service through here, so the tests exercise
//! the limits a deployment gets.

use crate::access_log::{Listener, TrustProxyHeaders};
use crate::config::{ServerSettings, Settings};
use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, Error, HttpRequest, HttpResponse, HttpServer};
use std::net::TcpListener;
use std::time::Duration;
use tracing_actix_web::TracingLogger;

/// The HTTP layer's own ceiling on a request head (actix-http answers 431 past it).
pub const HEAD_CEILING: usize = 131_072;

/// Worker threads for `settings` (0 = one per core).
pub fn workers(settings: &Settings) -> usize {
    match settings.server.workers {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    }
}

/// How a listener words a refusal made before routing (head too large).
#[derive(Clone, Copy)]
pub enum Surface {
    /// The compute listener: Nova's JSON fault.
    Compute,
    /// The image listener: a webob page, as Glance's.
    Image,
}

#[derive(Clone, Copy)]
struct HeadLimit {
    max: usize,
    surface: Surface,
}

/// Bytes of the request head as the client sent it: request line, header lines.
pub fn head_size(req: &HttpRequest) -> usize {
    let line = req.method().as_str().len() + 1 + req.uri().to_string().len() + " HTTP/1.1\r\n".len();
    let headers: usize = req
        .headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + 2 + v.as_bytes().len() + 2)
        .sum();
    line + headers + 2
}

/// The response to a request the listener refuses before routing it.
pub fn refusal(req: &HttpRequest, surface: Surface, status: StatusCode, message: &str) -> HttpResponse {
    match surface {
        Surface::Compute => {
            let meta = crate::nova::error::Meta {
                request_id: Some(crate::edge::request_id::of(req)),
                version: None,
            };
            crate::nova::error::NovaError::fault(status.as_u16(), message).into_response(req, &meta)
        }
        Surface::Image => crate::glance_v2::error::V2Error::new(status.as_u16(), message).into_response(req),
    }
}

async fn limit_head(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let limit = req.app_data::<HeadLimit>().copied();
    if let Some(limit) = limit {
        let size = head_size(req.request());
        if size > limit.max {
            tracing::warn!(size, max = limit.max, "request head too large");
            let resp = refusal(
                req.request(),
                limit.surface,
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                &format!(
                    "Request header fields too large: {size} bytes, at most {} allowed.",
                    limit.max
                ),
            );
            return Ok(req.into_response(resp).map_into_right_body());
        }
    }
    next.call(req).await.map(ServiceResponse::map_into_left_body)
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

/// Apply `[server]`'s limits to an `HttpServer`. Signals are left to the
/// caller (`main` drains both listeners together on SIGTERM).
macro_rules! tuned {
    ($server:expr, $s:expr, $workers:expr) => {{
        let s: &ServerSettings = $s;
        let workers: usize = $workers;
        let keep_alive = if s.keep_alive_secs == 0.0 {
            actix_web::http::KeepAlive::Disabled
        } else {
            actix_web::http::KeepAlive::Timeout(secs(s.keep_alive_secs))
        };
        $server
            .workers(workers)
            // max_connections counts per worker thread
            .max_connections(s.max_connections.div_ceil(workers).max(1))
            .backlog(1024)
            // blocking work (file I/O, SQLite writes) per worker thread
            .worker_max_blocking_threads(16)
            .client_request_timeout(secs(s.header_timeout_secs))
            .client_disconnect_timeout(Duration::from_secs(1))
            .keep_alive(keep_alive)
            .shutdown_timeout(s.shutdown_timeout_secs)
            .disable_signals()
    }};
}

/// The compute listener (Nova's images API) on `listener`, plain HTTP.
pub fn compute(
    settings: &Settings,
    state: web::Data<crate::nova::NovaState>,
    listener: TcpListener,
) -> std::io::Result<Server> {
    compute_on(settings, state, listener, None)
}

/// Listen on `listener`, with TLS when `tls` is given.
macro_rules! listen {
    ($server:expr, $listener:expr, $tls:expr) => {{
        let tls: Option<rustls::ServerConfig> = $tls;
        match tls {
            Some(config) => $server.listen_rustls_0_23($listener, config),
            None => $server.listen($listener),
        }
    }};
}

/// The compute listener on `listener`, with TLS when `tls` is given.
pub fn compute_on(
    settings: &Settings,
    state: web::Data<crate::nova::NovaState>,
    listener: TcpListener,
    tls: Option<rustls::ServerConfig>,
) -> std::io::Result<Server> {
    let app = move || crate::configure_compute(state.clone());
    serve(settings, Listener::Compute, app, listener, tls)
}

/// The image listener (Glance v1 reads; Glance v2 of the embedded store) on `listener`.
pub fn image(settings: &Settings, state: crate::ImageState, listener: TcpListener) -> std::io::Result<Server> {
    image_on(settings, state, listener, None)
}

/// The image listener on `listener`, with TLS when `tls` is given.
pub fn image_on(
    settings: &Settings,
    state: crate::ImageState,
    listener: TcpListener,
    tls: Option<rustls::ServerConfig>,
) -> std::io::Result<Server> {
    let app = move || crate::configure_image(state.clone());
    serve(settings, Listener::Image, app, listener, tls)
}

/// A listener of either kind: each worker's app gets the head limit, the
/// middleware (limits, migration tracking, request lines, the request's
/// span) and the routes `app` configures.
fn serve<F, C>(
    settings: &Settings,
    which: Listener,
    app: F,
    listener: TcpListener,
    tls: Option<rustls::ServerConfig>,
) -> std::io::Result<Server>
where
    F: Fn() -> C + Send + Clone + 'static,
    C: FnOnce(&mut web::ServiceConfig),
{
    let limit = HeadLimit {
        max: settings.server.max_header_bytes,
        surface: match which {
            Listener::Compute => Surface::Compute,
            Listener::Image => Surface::Image,
        },
    };
    let trust = TrustProxyHeaders(settings.oslo_middleware.enable_proxy_headers_parsing);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(limit)
            .app_data(trust)
            .app_data(which)
            .wrap(from_fn(limit_head))
            .wrap(from_fn(crate::migration::track))
            .wrap(from_fn(crate::access_log::log_requests))
            .wrap(TracingLogger::<crate::edge::request_id::RootSpan>::new())
            .configure(app())
    });
    let n = workers(settings);
    Ok(listen!(tuned!(server, &settings.server, n), listener, tls)?.run())
}
