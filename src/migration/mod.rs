//! Migration windows: who still calls the deprecated surfaces (Nova's images
//! API and Glance v1), telling them in headers, and switching the surfaces off
//! in stages (brownout windows, then retirement).
//!
//! * [`track`] (a middleware on both API listeners) counts each deprecated
//!   call in [`usage`] once its answer is known (who: the authenticated
//!   project and user; which client: [`client`]), adds the `[deprecation]`
//!   headers, and logs each client's call of an endpoint once a day at `warn`
//!   with its replacement.
//! * The surfaces ask [`Migration::stage`] after authentication, so that a
//!   brownout or retirement answers `410` before anything is read or written.
//! * [`admin`] serves `/usage` (JSON or an HTML page, [`page`]) on the metrics
//!   listener; [`cli`] is `nova-images-proxy usage`.

pub mod admin;
pub mod cli;
pub mod client;
pub mod page;
pub mod policy;
pub mod store;
pub mod usage;

use crate::access_log::Listener;
use crate::config::deprecation::DeprecationSettings;
use crate::config::Settings;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::Error;
pub use policy::Stage;
use std::sync::{Arc, RwLock};

/// Nova's images API (`nova`) or Glance v1 (`glance_v1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    Nova,
    GlanceV1,
}

impl Surface {
    pub fn as_str(self) -> &'static str {
        match self {
            Surface::Nova => "nova",
            Surface::GlanceV1 => "glance_v1",
        }
    }
}

/// A call of a deprecated surface: which one, and the endpoint's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deprecated {
    pub surface: Surface,
    pub endpoint: &'static str,
}

/// The deprecated Nova call of a compute `endpoint` label, if it is one.
fn nova_call(endpoint: &'static str) -> Option<Deprecated> {
    (endpoint.starts_with("images.") || endpoint.starts_with("image_metadata.")).then_some(Deprecated {
        surface: Surface::Nova,
        endpoint,
    })
}

/// The deprecated call `method path` on `listener` is, if it is one (version
/// documents and `/healthcheck` are not; neither is Glance v2).
pub fn classify(listener: Listener, method: &Method, path: &str) -> Option<Deprecated> {
    match listener {
        Listener::Compute => nova_call(crate::metrics::labels::endpoint("compute", method, path)),
        Listener::Image => {
            let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
            let endpoint = match (segs.as_slice(), method.as_str()) {
                (["v1"] | ["v1", "images"], "GET" | "HEAD") => "v1.images.index",
                (["v1", "images"], "POST") => "v1.images.create",
                (["v1", "images", "detail"], _) => "v1.images.detail",
                (["v1", "images", _], "GET") => "v1.images.show",
                (["v1", "images", _], "HEAD") => "v1.images.meta",
                (["v1", "images", _], "DELETE") => "v1.images.delete",
                (["v1", "images", _], "PUT") => "v1.images.update",
                (["v1", "images", _, "members", ..], _) => "v1.images.members",
                (["v1", "shared-images", _], _) => "v1.shared_images",
                (["v1", ..], _) => "v1.other",
                _ => return None,
            };
            Some(Deprecated {
                surface: Surface::GlanceV1,
                endpoint,
            })
        }
    }
}

/// What a client of `endpoint` should call instead (Glance v2).
pub fn replacement(endpoint: &str) -> &'static str {
    match endpoint {
        "images.index" | "images.detail" | "v1.images.index" | "v1.images.detail" => "GET /v2/images",
        "images.show" | "image_metadata.index" | "image_metadata.show" | "v1.images.meta" => "GET /v2/images/{id}",
        "v1.images.show" => "GET /v2/images/{id} and GET /v2/images/{id}/file",
        "images.delete" | "v1.images.delete" => "DELETE /v2/images/{id}",
        "image_metadata.create" | "image_metadata.update_all" | "image_metadata.update" | "image_metadata.delete" => {
            "PATCH /v2/images/{id}"
        }
        "v1.images.create" => "POST /v2/images and PUT /v2/images/{id}/file",
        "v1.images.update" => "PATCH /v2/images/{id} and PUT /v2/images/{id}/file",
        "v1.images.members" => "GET/POST /v2/images/{id}/members and DELETE /v2/images/{id}/members/{member}",
        "v1.shared_images" => "GET /v2/images?visibility=shared&member_status=all",
        _ => "the Glance v2 API",
    }
}

struct Inner {
    policy: RwLock<Arc<policy::Policy>>,
    usage: Option<usage::Usage>,
    store: Option<store::Store>,
    /// One flush at a time: the last one at a stop waits for a periodic one
    /// under way, so that nothing it took is lost.
    flushing: tokio::sync::Mutex<()>,
    metrics_clients: usize,
    /// Which replica this is (its compute listener), for `/usage`.
    replica: String,
}

/// The migration state of the process, shared by the listeners (app data).
#[derive(Clone)]
pub struct Migration {
    inner: Arc<Inner>,
}

pub fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Migration {
    /// From the settings; `database`: the embedded store's SQLite file, where
    /// the counts are kept across restarts (none when fronting Glance).
    pub fn new(settings: &Settings, database: Option<&std::path::Path>) -> Result<Migration, String> {
        let usage = settings
            .usage
            .enabled
            .then(|| usage::Usage::new(settings.usage.max_entries));
        let store = match (&usage, database) {
            (Some(u), Some(path)) => Some(store::Store::open(path, u, now_secs())?),
            _ => None,
        };
        Ok(Migration {
            inner: Arc::new(Inner {
                policy: RwLock::new(Arc::new(policy::Policy::new(&settings.deprecation))),
                usage,
                store,
                flushing: tokio::sync::Mutex::new(()),
                metrics_clients: settings.usage.metrics_clients,
                replica: settings.server.bind.clone(),
            }),
        })
    }

    pub fn policy(&self) -> Arc<policy::Policy> {
        self.inner.policy.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// SIGHUP: the new `[deprecation]` section (already validated).
    pub fn reload(&self, settings: &DeprecationSettings) {
        let new = Arc::new(policy::Policy::new(settings));
        *self.inner.policy.write().unwrap_or_else(|e| e.into_inner()) = new;
    }

    pub fn usage(&self) -> Option<&usage::Usage> {
        self.inner.usage.as_ref()
    }

    pub fn report(&self) -> Option<usage::Report> {
        self.usage().map(|u| u.report(&self.inner.replica))
    }

    /// Whether a deprecated call of `project` is served now, or refused (410).
    pub fn stage(&self, surface: Surface, project: &str) -> Stage {
        let stage = self.policy().stage(project, fastrand::f64);
        if stage != Stage::Served {
            tracing::debug!(
                surface = surface.as_str(),
                project,
                stage = stage.as_str(),
                "deprecated call refused"
            );
        }
        stage
    }

    /// Write the counts to the database (embedded store), if anything changed.
    pub async fn flush(&self) {
        let (Some(usage), Some(_)) = (self.usage(), &self.inner.store) else {
            return;
        };
        let _one = self.inner.flushing.lock().await;
        let changes = usage.take_changes(now_secs());
        if changes.upserts.is_empty() && changes.removed.is_empty() && changes.daily.is_empty() {
            return;
        }
        let this = self.clone();
        let written = tokio::task::spawn_blocking(move || {
            let result = match &this.inner.store {
                Some(store) => store.write(&changes),
                None => Ok(()),
            };
            (result, changes)
        })
        .await;
        match written {
            Ok((Ok(()), _)) => {}
            Ok((Err(e), changes)) => {
                tracing::warn!(error = %e, "usage counts not written; retried at the next flush");
                usage.requeue(changes);
            }
            Err(e) => tracing::warn!(error = %e, "usage counts not written"),
        }
    }

    /// Flush every `every` until the process ends (embedded store only).
    pub fn spawn_flusher(&self, every: std::time::Duration) {
        if self.inner.store.is_none() {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                this.flush().await;
            }
        });
    }

    fn count(&self, call: Deprecated, caller: (String, String), client: String, microversion: String) {
        let Some(usage) = self.usage() else {
            return;
        };
        let (user, project) = caller;
        let key = usage::Key {
            surface: call.surface.as_str().to_string(),
            endpoint: call.endpoint.to_string(),
            project,
            user,
            client,
            microversion,
        };
        if let Some(m) = crate::metrics::get() {
            m.deprecated_call(
                call.surface.as_str(),
                call.endpoint,
                &key.client,
                self.inner.metrics_clients,
            );
        }
        if usage.record(&key, call.endpoint, now_secs()).first_today {
            tracing::warn!(
                surface = call.surface.as_str(),
                endpoint = call.endpoint,
                client = %key.client,
                project = %key.project,
                replacement = replacement(call.endpoint),
                "deprecated API called (logged once a day per client and endpoint)"
            );
        }
    }
}

/// Middleware of both API listeners: count a deprecated call once answered,
/// and add the configured deprecation headers to its answer.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let (Some(migration), Some(listener)) = (
        req.app_data::<Migration>().cloned(),
        req.app_data::<Listener>().copied(),
    ) else {
        return next.call(req).await;
    };
    let call = match listener {
        // The label the request's log line worked out.
        Listener::Compute => nova_call(crate::metrics::labels::endpoint_of(req.request(), "compute")),
        Listener::Image => classify(listener, req.method(), req.path()),
    };
    let Some(call) = call else {
        return next.call(req).await;
    };
    let user_agent = req
        .headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let client = client::parse(user_agent);
    let mut res = next.call(req).await?;
    if let Some(caller) = crate::access_log::caller(res.request()) {
        let microversion = match call.surface {
            Surface::Nova => res
                .headers()
                .get("openstack-api-version")
                .and_then(|v| v.to_str().ok())
                .map_or("2.1 (/v2)", |v| v.trim_start_matches("compute "))
                .to_string(),
            Surface::GlanceV1 => "-".to_string(),
        };
        migration.count(call, caller, client, microversion);
    }
    let policy = migration.policy();
    for (name, value) in policy.headers() {
        res.headers_mut().append(name.clone(), value.clone());
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deprecated_calls_are_named() {
        let get = Method::GET;
        let c = |l, m: &Method, p| classify(l, m, p).map(|d| (d.surface, d.endpoint));
        assert_eq!(
            c(Listener::Compute, &get, "/v2.1/images/abc/metadata"),
            Some((Surface::Nova, "image_metadata.index"))
        );
        assert_eq!(
            c(
                Listener::Compute,
                &get,
                "/v2/6f70656e737461636b20342065766572/images/detail"
            ),
            Some((Surface::Nova, "images.detail"))
        );
        assert_eq!(c(Listener::Compute, &get, "/v2.1"), None);
        assert_eq!(c(Listener::Compute, &get, "/healthcheck"), None);
        assert_eq!(c(Listener::Compute, &get, "/v2.1/servers"), None);
        assert_eq!(
            c(Listener::Image, &Method::HEAD, "/v1/images/x"),
            Some((Surface::GlanceV1, "v1.images.meta"))
        );
        assert_eq!(
            c(Listener::Image, &Method::POST, "/v1/images"),
            Some((Surface::GlanceV1, "v1.images.create"))
        );
        assert_eq!(c(Listener::Image, &get, "/v2/images"), None);
        assert_eq!(c(Listener::Image, &get, "/healthcheck"), None);
        assert_eq!(replacement("images.show"), "GET /v2/images/{id}");
    }
}
