//! Per-thread handles to the metrics a request moves. A family lookup takes
//! the family's lock (an atomic read-modify-write on a line every worker
//! shares) and hashes the label set; a request moves five to six metrics. Each
//! worker thread resolves a label set once and afterwards touches only the
//! metric itself. The handles belong to the process's one [`Metrics`]
//! ([`super::enable`]); a second instance (a unit test's) must use label sets
//! of its own.

use super::labels::{ListenerLabels, RequestLabels, RouteLabels};
use super::Metrics;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use std::cell::RefCell;
use std::collections::HashMap;

/// The metrics of one (listener, endpoint, method, status).
struct RequestHandles {
    requests: Counter,
    duration: Histogram,
    bytes: Counter,
}

/// A deprecated surface's endpoint: its counters by client.
type ClientCounters = HashMap<String, Counter>;

/// How many clients one thread keeps a handle for per endpoint; calls of
/// further clients take the family lookup (they are counted all the same).
const CLIENTS_PER_THREAD: usize = 256;

thread_local! {
    static REQUESTS: RefCell<HashMap<RequestLabels, RequestHandles>> = RefCell::new(HashMap::new());
    static IN_FLIGHT: RefCell<HashMap<&'static str, Gauge>> = RefCell::new(HashMap::new());
    static DEPRECATED: RefCell<HashMap<(&'static str, &'static str), ClientCounters>> =
        RefCell::new(HashMap::new());
}

/// Count an answered request, its duration and its body bytes.
pub fn request(m: &Metrics, labels: RequestLabels, seconds: f64, bytes: u64) {
    REQUESTS.with_borrow_mut(|cache| {
        let h = cache.entry(labels).or_insert_with(|| {
            let route = RouteLabels {
                listener: labels.listener,
                endpoint: labels.endpoint,
            };
            RequestHandles {
                requests: m.requests.get_or_create_owned(&labels),
                duration: m.duration.get_or_create_owned(&route),
                bytes: m.response_bytes.get_or_create_owned(&route),
            }
        });
        h.requests.inc();
        h.duration.observe(seconds);
        h.bytes.inc_by(bytes);
    });
}

/// Move the listener's in-flight gauge by `delta` (+1 on arrival, -1 once answered).
pub fn in_flight(m: &Metrics, listener: &'static str, delta: i64) {
    IN_FLIGHT.with_borrow_mut(|cache| {
        cache
            .entry(listener)
            .or_insert_with(|| m.in_flight.get_or_create_owned(&ListenerLabels { listener }))
            .inc_by(delta);
    });
}

/// Count a deprecated call of `client` if this thread has a handle for it
/// (`false`: none yet, see [`keep_deprecated`]).
pub fn deprecated(surface: &'static str, endpoint: &'static str, client: &str) -> bool {
    DEPRECATED.with_borrow(|cache| {
        cache
            .get(&(surface, endpoint))
            .and_then(|clients| clients.get(client))
            .map(Counter::inc)
            .is_some()
    })
}

/// Keep `counter` (the one of the label `client` was given: itself, or
/// `other`; a client's label never changes) as this thread's handle for
/// `client`'s calls of the endpoint.
pub fn keep_deprecated(surface: &'static str, endpoint: &'static str, client: &str, counter: Counter) {
    DEPRECATED.with_borrow_mut(|cache| {
        let clients = cache.entry((surface, endpoint)).or_default();
        if clients.len() < CLIENTS_PER_THREAD {
            clients.insert(client.to_string(), counter);
        }
    });
}
