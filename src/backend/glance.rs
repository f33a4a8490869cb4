//! The Glance v2 backend: a stateless client of a real Glance over one pooled
//! `reqwest::Client` (and a second one for image data, which has no limit on
//! the whole transfer, only between reads). One Glance call per read; at most
//! two per property write (a GET when the change needs the current state, then
//! one JSON-patch PATCH). Image data (`GET /v2/images/{id}/file`, `Range`
//! passed on) is streamed as it arrives, never held.

use super::{BackendError, BackendResult, RequestContext};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;
use tokio::sync::OnceCell;
use tokio::time::Instant;

mod backend;
mod images;
mod members;
mod outcome;
mod reads;
mod refusal;
mod servers;
mod service_token;
pub use service_token::ServiceToken;
mod writes;
pub use reads::image_from_glance;
use refusal::error_from_response;
use writes::PendingWrite;

/// Glance's own cap on `limit` (`api_limit_max`): the largest useful page.
const GLANCE_MAX_PAGE: u64 = 1000;
const JSON_PATCH: &str = "application/openstack-images-v2.1-json-patch";

#[derive(Clone, Debug)]
pub struct GlanceSettings {
    pub url: String,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Extra attempts for idempotent calls on connection errors and 503.
    pub num_retries: u32,
    /// TLS for `https://` URLs (`[glance] cafile, certfile, keyfile, insecure`).
    pub tls: rustls::ClientConfig,
    /// Nova's `[service_user] send_service_user_token`: the service's own
    /// token, sent as `X-Service-Token` beside the user's `X-Auth-Token`.
    pub service_token: Option<Arc<dyn ServiceToken>>,
}

/// A handle on the Glance client (cheap to clone: property writes are
/// carried out by a task of their own, which outlives a client that leaves).
#[derive(Clone)]
pub struct GlanceBackend(Arc<GlanceInner>);

impl std::ops::Deref for GlanceBackend {
    type Target = GlanceInner;
    fn deref(&self) -> &GlanceInner {
        &self.0
    }
}

pub struct GlanceInner {
    /// The API servers (`glance.url`, comma-separated).
    servers: servers::Servers,
    http: reqwest::Client,
    /// For image data: no limit on the whole transfer, `timeout` between reads.
    data_http: reqwest::Client,
    settings: GlanceSettings,
    base_properties: OnceCell<Arc<HashSet<String>>>,
    /// Property writes waiting, per image. Writes to one image are applied by
    /// one writer task at a time (so concurrent merges cannot lose keys); the
    /// writes that queued up meanwhile with the same token go to Glance as one
    /// GET and one PATCH (group commit).
    write_queues: StdMutex<HashMap<String, std::collections::VecDeque<PendingWrite>>>,
    /// One error line for a burst of identical TLS failures (a request's
    /// schema read and image read fail alike).
    tls_log: crate::tls::LogOnce,
}

impl GlanceBackend {
    pub fn new(settings: GlanceSettings) -> Result<Self, BackendError> {
        let client = |timeout: fn(reqwest::ClientBuilder, Duration) -> reqwest::ClientBuilder| {
            let builder = reqwest::Client::builder()
                .tls_backend_preconfigured(settings.tls.clone())
                .connect_timeout(settings.connect_timeout)
                .pool_idle_timeout(Duration::from_secs(30))
                .user_agent(concat!("nova-images-proxy/", env!("CARGO_PKG_VERSION")))
                .no_proxy();
            timeout(builder, settings.timeout)
                .build()
                .map_err(|e| BackendError::Internal(format!("cannot build the HTTP client: {e}")))
        };
        // Calls are bounded as a whole; data streams between reads.
        let http = client(reqwest::ClientBuilder::timeout)?;
        let data_http = client(reqwest::ClientBuilder::read_timeout)?;
        Ok(Self(Arc::new(GlanceInner {
            servers: servers::Servers::new(&settings.url),
            http,
            data_http,
            settings,
            base_properties: OnceCell::new(),
            write_queues: StdMutex::new(HashMap::new()),
            tls_log: crate::tls::LogOnce::default(),
        })))
    }

    /// When the backend part of a request that starts now must be done.
    fn deadline(&self) -> Instant {
        Instant::now() + self.settings.timeout
    }

    /// The server URLs are built on (a call may move them to another).
    fn base(&self) -> &str {
        self.servers.current()
    }

    fn image_url(&self, id: &str) -> String {
        format!(
            "{}/v2/images/{}",
            self.base(),
            percent_encoding::utf8_percent_encode(id, PATH_SEGMENT)
        )
    }

    fn request(&self, ctx: &RequestContext, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        Self::request_on(&self.http, ctx, method, url)
    }

    fn request_on(
        http: &reqwest::Client,
        ctx: &RequestContext,
        method: reqwest::Method,
        url: &str,
    ) -> reqwest::RequestBuilder {
        http.request(method, url)
            .header("X-Auth-Token", &ctx.token)
            .header("X-OpenStack-Request-ID", &ctx.request_id)
            // As python-glanceclient: Glance then words its errors as HTML pages,
            // the form Nova's messages are made from.
            .header("Accept", "*/*")
    }

    /// Send a request built by `build`, retrying idempotent ones on connection
    /// errors and 503 as Nova's Glance client does, each attempt on the next of
    /// the servers; any call whose connection was refused moves on to the next
    /// server while there is one it has not tried (nothing was sent).
    /// Attempts stop at `deadline`: a retry is made only if its pause ends
    /// before it, and an attempt still waiting then is a timeout.
    ///
    /// With `send_service_user_token`, every attempt carries the service's
    /// token as `X-Service-Token`; a 401 then drops that token and the call is
    /// made once more with a new one, as keystoneauth does (a 401 comes from
    /// Glance's auth_token filter: nothing was done).
    async fn send(
        &self,
        deadline: Instant,
        idempotent: bool,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> BackendResult<reqwest::Response> {
        let Some(token) = self.service_token(deadline).await? else {
            return self.attempts(deadline, idempotent, &build, None).await;
        };
        let resp = self.attempts(deadline, idempotent, &build, Some(&token)).await?;
        match self.refused_service_token(&resp, &token).await {
            true => {
                let token = self.service_token(deadline).await?;
                self.attempts(deadline, idempotent, &build, token.as_deref()).await
            }
            false => Ok(resp),
        }
    }

    async fn attempts(
        &self,
        deadline: Instant,
        idempotent: bool,
        build: &impl Fn() -> reqwest::RequestBuilder,
        service_token: Option<&str>,
    ) -> BackendResult<reqwest::Response> {
        let servers = self.servers.len() as u32;
        let attempts = if idempotent {
            1 + self.settings.num_retries
        } else {
            servers
        };
        let start = self.servers.start();
        let mut last = BackendError::Unreachable("no attempt made".into());
        for attempt in 0..attempts {
            if attempt > 0 {
                let pause = Duration::from_millis(100 * u64::from(attempt));
                if Instant::now() + pause >= deadline {
                    tracing::warn!(attempt, "no time left for another attempt");
                    break;
                }
                tokio::time::sleep(pause).await;
            }
            let (client, request) = GlanceInner::with_service_token(build(), service_token).build_split();
            let mut request = request.map_err(|e| BackendError::Unreachable(e.to_string()))?;
            let server = self.servers.of_attempt(start, attempt);
            if let Some(url) = self.servers.rebase(request.url(), server) {
                *request.url_mut() = url;
            }
            let call = crate::metrics::BackendCall::start(&request, attempt > 0);
            let sent = tokio::time::timeout_at(deadline, client.execute(request)).await;
            crate::metrics::BackendCall::finish(call, &sent);
            let Ok(sent) = sent else {
                tracing::warn!(attempt, "image service did not answer in time");
                return Err(BackendError::Timeout);
            };
            if sent.is_ok() {
                self.servers.answered(server);
            }
            match sent {
                Ok(resp) if resp.status().as_u16() == 503 && idempotent && attempt + 1 < attempts => {
                    tracing::warn!(attempt, "image service answered 503, retrying");
                    last = BackendError::Refused(super::Refusal {
                        status: 503,
                        explanation: String::new(),
                        details: "503 Service Unavailable".into(),
                    });
                }
                Ok(resp) => return Ok(resp),
                Err(e) if crate::tls::failure(&e).is_some() => {
                    // A certificate does not change between attempts: no retry.
                    let reason = crate::tls::failure(&e).unwrap_or_default();
                    let url = e
                        .url()
                        .map(|u| format!("{}://{}", u.scheme(), u.authority()))
                        .unwrap_or_default();
                    if self.tls_log.first_in_a_while(&reason) {
                        tracing::error!(url = %url, tls_error = %reason, "TLS with the image service failed");
                    } else {
                        tracing::debug!(url = %url, tls_error = %reason, "TLS with the image service failed again");
                    }
                    return Err(BackendError::Unreachable(format!("TLS with {url} failed: {reason}")));
                }
                Err(e) if e.is_timeout() => {
                    tracing::warn!(attempt, "image service timed out");
                    last = BackendError::Timeout;
                }
                Err(e) => {
                    tracing::warn!(attempt, error = %e, "image service unreachable");
                    last = BackendError::Unreachable(e.to_string());
                    if !e.is_connect() && !idempotent {
                        // The request may have reached Glance: only reads are retried.
                        break;
                    }
                }
            }
        }
        Err(last)
    }

    async fn json_or_error(&self, resp: reqwest::Response) -> BackendResult<Value> {
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(error_from_response(resp).await);
        }
        let body = resp.bytes().await.map_err(|e| {
            if e.is_timeout() {
                BackendError::Timeout
            } else {
                BackendError::Unreachable(e.to_string())
            }
        })?;
        serde_json::from_slice(&body).map_err(|e| BackendError::BadResponse(format!("invalid JSON: {e}")))
    }
}

/// `fut`, or a timeout if it is not done by `deadline`.
async fn within<T>(deadline: Instant, fut: impl std::future::Future<Output = BackendResult<T>>) -> BackendResult<T> {
    tokio::time::timeout_at(deadline, fut)
        .await
        .unwrap_or(Err(BackendError::Timeout))
}

const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Glance's image ids are at most 36 characters (its `images.id` column):
/// a longer one names no image, and is answered as Glance would (404)
/// without a call. Such ids can be longer than Glance's web server takes.
fn check_id(id: &str) -> BackendResult<()> {
    if id.len() <= 36 {
        return Ok(());
    }
    Err(super::error::not_found(&format!("No image found with ID {id}")))
}
