//! One call to Keystone, as the validator and the service login make it:
//! retried while no connection can be made, every failure an
//! [`AuthError::Unavailable`] naming Keystone's URL and the cause.

use super::AuthError;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// Attempts per Keystone call when the connection cannot be made
/// (keystonemiddleware's `http_request_max_retries` is 3).
const CONNECT_ATTEMPTS: u32 = 3;

/// What one Keystone call gave.
pub struct Answer {
    pub status: u16,
    pub subject_token: Option<String>,
    pub body: Vec<u8>,
}

/// Send a request (rebuilt per attempt) to the Keystone at `url` (named in
/// errors), retrying when no connection can be made.
pub async fn send(url: &str, build: impl Fn() -> reqwest::RequestBuilder) -> Result<Answer, AuthError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match build().send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                let subject_token = r
                    .headers()
                    .get("x-subject-token")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let body = r
                    .bytes()
                    .await
                    .map_err(|e| AuthError::Unavailable(format!("reading Keystone's answer: {}", reason(&e))))?;
                return Ok(Answer {
                    status,
                    subject_token,
                    body: body.to_vec(),
                });
            }
            Err(e) if crate::tls::failure(&e).is_some() => {
                let reason = crate::tls::failure(&e).unwrap_or_default();
                return Err(AuthError::Unavailable(format!(
                    "TLS with Keystone at {url} failed: {reason}"
                )));
            }
            Err(e) if e.is_connect() && attempt < CONNECT_ATTEMPTS => {
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
            }
            Err(e) if e.is_timeout() => return Err(AuthError::Unavailable("Keystone did not answer in time".into())),
            Err(e) => {
                return Err(AuthError::Unavailable(format!(
                    "cannot reach Keystone at {url}: {}",
                    reason(&e)
                )))
            }
        }
    }
}

/// An error's innermost cause (reqwest's own text names only the URL).
fn reason(e: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(s) = source.source() {
        source = s;
    }
    source.to_string()
}

pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// The HTTP client for Keystone: `auth.cafile`/`certfile`/`keyfile`/`insecure`,
/// each call bounded by `auth.timeout_secs`.
pub fn client(settings: &crate::config::AuthSettings) -> Result<reqwest::Client, String> {
    let timeout = Duration::from_secs_f64(settings.timeout_secs);
    crate::tls::http_client(&settings.tls())?
        .connect_timeout(timeout)
        .timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(30))
        .user_agent(concat!("nova-images-proxy/", env!("CARGO_PKG_VERSION")))
        .no_proxy()
        .build()
        .map_err(|e| format!("cannot build the HTTP client for Keystone: {e}"))
}
