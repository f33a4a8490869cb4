//! Keystone token validation, as keystonemiddleware's `auth_token` does it.
//!
//! A user token is validated with `GET /v3/auth/tokens?nocatalog`
//! (`X-Subject-Token: <user token>`). With service credentials configured the
//! request is made with the service's own token (password auth, project-scoped,
//! fetched once and reused until shortly before it expires); without them the
//! user token validates itself (`X-Auth-Token` = `X-Subject-Token`), which
//! Keystone's default policy allows (`rule:token_subject`).
//!
//! Keystone's answer decides: 200 → the token's user, project, roles and expiry;
//! 404 (and, for a self-validation, 401) → the token is not valid (expired,
//! revoked, garbage). Anything else — no connection, a timeout, a 5xx, an
//! answer that cannot be read, the service credentials refused (401) or not
//! allowed to validate tokens (403) — means the service cannot tell, and the
//! request gets a 503, never a 401.
//!
//! Verdicts (valid and invalid) are cached, keyed by the SHA-256 of the token,
//! for at most `auth.cache_secs` and never beyond the token's `expires_at`, in
//! a cache of at most `auth.cache_entries` entries. A revoked token is thus
//! refused once its cache entry is gone, as with keystonemiddleware. Tokens are
//! never logged; log lines name a token by the first 16 hex digits of its hash.

pub use super::token::{token_key, token_tag, Identity, TokenCache, TokenKey, Verdict};
use super::AuthError;
use crate::config::AuthSettings;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longer tokens are refused without asking Keystone (its fernet tokens are
/// at most 255 characters; JWS tokens are longer, but far below this).
pub const MAX_TOKEN_LEN: usize = 8192;

/// A service token is renewed this long before it expires (keystoneauth's margin).
const SERVICE_TOKEN_MARGIN: Duration = Duration::from_secs(120);

/// Attempts per Keystone call when the connection cannot be made
/// (keystonemiddleware's `http_request_max_retries` is 3).
const CONNECT_ATTEMPTS: u32 = 3;

/// The service's own credentials and its current token.
struct Service {
    user: String,
    password: String,
    project: String,
    domain: String,
    token: tokio::sync::Mutex<Option<ServiceToken>>,
}

#[derive(Clone)]
struct ServiceToken {
    token: String,
    renew_at: Instant,
}

/// Token validation against one Keystone.
pub struct Keystone {
    /// The identity v3 endpoint, without a trailing `/`.
    url: String,
    http: reqwest::Client,
    cache: TokenCache,
    service: Option<Service>,
    /// `auth.timeout_secs`: the whole validation of one token (service login,
    /// retries and all) takes at most this.
    timeout: Duration,
}

/// What one Keystone call gave.
struct Answer {
    status: u16,
    subject_token: Option<String>,
    body: Vec<u8>,
}

impl Keystone {
    pub fn new(settings: &AuthSettings) -> Result<Keystone, String> {
        let timeout = Duration::from_secs_f64(settings.timeout_secs);
        let http = crate::tls::http_client(&settings.tls())?
            .connect_timeout(timeout)
            .timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("nova-images-proxy/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .build()
            .map_err(|e| format!("cannot build the HTTP client for Keystone: {e}"))?;
        let service = settings.has_service_credentials().then(|| Service {
            user: settings.service_user.clone(),
            password: settings.service_password.expose().to_string(),
            project: settings.service_project.clone(),
            domain: settings.service_domain.clone(),
            token: tokio::sync::Mutex::new(None),
        });
        Ok(Keystone {
            url: settings.keystone_v3_url(),
            http,
            cache: TokenCache::new(Duration::from_secs(settings.cache_secs), settings.cache_entries),
            service,
            timeout,
        })
    }

    /// For the start-up log.
    pub fn describe(&self) -> String {
        let by = match &self.service {
            Some(s) => format!("service user {} (project {})", s.user, s.project),
            None => "each token validating itself".to_string(),
        };
        format!("keystone at {}, {by}, cache {} s", self.url, self.cache.ttl().as_secs())
    }

    pub fn cache(&self) -> &TokenCache {
        &self.cache
    }

    /// The identity `token` stands for; `Unauthenticated` if Keystone says it is
    /// not valid, `Unavailable` if Keystone cannot be asked.
    pub async fn identify(&self, token: &str) -> Result<Arc<Identity>, AuthError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::Unauthenticated);
        }
        let key = token_key(token);
        let tag = token_tag(&key);
        let verdict = match self.cache.get(&key, Instant::now(), Utc::now()) {
            Some(v) => {
                tracing::debug!(token = %tag, "token verdict from the cache");
                crate::metrics::keystone_validation("cache_hit");
                v
            }
            None => {
                let v = tokio::time::timeout(self.timeout, self.validate(token))
                    .await
                    .unwrap_or_else(|_| Err(AuthError::Unavailable("Keystone did not answer in time".into())))
                    .inspect_err(|e| {
                        crate::metrics::keystone_validation("unavailable");
                        tracing::warn!(token = %tag, error = %e, "cannot validate a token with Keystone");
                    })?;
                crate::metrics::keystone_validation(match &v {
                    Verdict::Valid(_) => "valid",
                    Verdict::Invalid => "invalid",
                });
                match &v {
                    Verdict::Valid(id) => tracing::debug!(
                        token = %tag, user = %id.user_id, project = %id.project_id, expires_at = %id.expires_at,
                        "token validated by Keystone"
                    ),
                    Verdict::Invalid => tracing::info!(token = %tag, "Keystone refused a token"),
                }
                self.cache.insert(key, v.clone(), Instant::now(), Utc::now());
                v
            }
        };
        match verdict {
            Verdict::Valid(id) => Ok(id),
            Verdict::Invalid => Err(AuthError::Unauthenticated),
        }
    }

    /// Ask Keystone about `token` (no cache).
    async fn validate(&self, token: &str) -> Result<Verdict, AuthError> {
        let Some(service) = &self.service else {
            let a = self.check(token, token).await?;
            return match a.status {
                200 => parse_validation(&a.body, Utc::now()),
                // 401: the token could not even authenticate its own request.
                401 | 404 => Ok(Verdict::Invalid),
                403 => Err(AuthError::Unavailable(
                    "Keystone does not let tokens validate themselves (403); configure service credentials".into(),
                )),
                s => Err(AuthError::Unavailable(format!("Keystone answered {s}"))),
            };
        };
        // A service token Keystone no longer takes (revoked, keys rotated) is
        // renewed once.
        for attempt in 0..2 {
            let st = self.service_token(service).await?;
            let a = self.check(&st, token).await?;
            match a.status {
                200 => return parse_validation(&a.body, Utc::now()),
                404 => return Ok(Verdict::Invalid),
                401 if attempt == 0 => {
                    let mut current = service.token.lock().await;
                    if current.as_ref().is_some_and(|c| c.token == st) {
                        *current = None;
                    }
                }
                401 => return Err(AuthError::Unavailable("Keystone refused the service token".into())),
                403 => {
                    return Err(AuthError::Unavailable(format!(
                        "the service user {} may not validate tokens (403); it needs the service or admin role",
                        service.user
                    )))
                }
                s => return Err(AuthError::Unavailable(format!("Keystone answered {s}"))),
            }
        }
        Err(AuthError::Unavailable("Keystone refused the service token".into()))
    }

    /// `GET /v3/auth/tokens?nocatalog` about `subject`, authenticated by `auth`.
    async fn check(&self, auth: &str, subject: &str) -> Result<Answer, AuthError> {
        let url = format!("{}/auth/tokens?nocatalog", self.url);
        self.send(|| {
            self.http
                .get(&url)
                .header("accept", "application/json")
                .header("x-auth-token", auth)
                .header("x-subject-token", subject)
        })
        .await
    }

    /// The service's token, fetched when there is none or it is about to expire.
    async fn service_token(&self, service: &Service) -> Result<String, AuthError> {
        let mut current = service.token.lock().await;
        if let Some(t) = current.as_ref() {
            if Instant::now() < t.renew_at {
                return Ok(t.token.clone());
            }
        }
        let body = serde_json::json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": service.user, "domain": {"name": service.domain}, "password": service.password}}},
            "scope": {"project": {"name": service.project, "domain": {"name": service.domain}}}}});
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let url = format!("{}/auth/tokens?nocatalog", self.url);
        let a = self
            .send(|| {
                self.http
                    .post(&url)
                    .header("accept", "application/json")
                    .header("content-type", "application/json")
                    .body(body.clone())
            })
            .await?;
        match a.status {
            200 | 201 => {}
            401 => {
                tracing::error!(user = %service.user, project = %service.project, "Keystone refused the service credentials");
                return Err(AuthError::Unavailable(
                    "Keystone refused the service credentials".into(),
                ));
            }
            s => {
                return Err(AuthError::Unavailable(format!(
                    "Keystone answered {s} to the service's login"
                )))
            }
        }
        let token = a
            .subject_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| AuthError::Unavailable("Keystone's login answer has no X-Subject-Token".into()))?;
        let expires_at = serde_json::from_slice::<Value>(&a.body)
            .ok()
            .and_then(|v| v["token"]["expires_at"].as_str().and_then(parse_time))
            .ok_or_else(|| AuthError::Unavailable("Keystone's login answer has no expires_at".into()))?;
        let left = (expires_at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        let renew_at = Instant::now() + left.saturating_sub(SERVICE_TOKEN_MARGIN.min(left / 2));
        tracing::info!(user = %service.user, project = %service.project, expires_at = %expires_at, "got a service token from Keystone");
        *current = Some(ServiceToken {
            token: token.clone(),
            renew_at,
        });
        Ok(token)
    }

    /// Send a request (rebuilt per attempt), retrying when no connection can be made.
    async fn send(&self, build: impl Fn() -> reqwest::RequestBuilder) -> Result<Answer, AuthError> {
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
                        "TLS with Keystone at {} failed: {reason}",
                        self.url
                    )));
                }
                Err(e) if e.is_connect() && attempt < CONNECT_ATTEMPTS => {
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                }
                Err(e) if e.is_timeout() => {
                    return Err(AuthError::Unavailable("Keystone did not answer in time".into()))
                }
                Err(e) => {
                    return Err(AuthError::Unavailable(format!(
                        "cannot reach Keystone at {}: {}",
                        self.url,
                        reason(&e)
                    )))
                }
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

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// The verdict in Keystone's 200 answer to a validation: the identity, or
/// `Invalid` when the token has expired by `now` (as keystonemiddleware checks).
pub fn parse_validation(body: &[u8], now: DateTime<Utc>) -> Result<Verdict, AuthError> {
    let bad = |what: &str| AuthError::Unavailable(format!("Keystone's token answer has no {what}"));
    let v: Value = serde_json::from_slice(body).map_err(|_| bad("JSON body"))?;
    let t = &v["token"];
    let expires_at = t["expires_at"]
        .as_str()
        .and_then(parse_time)
        .ok_or_else(|| bad("expires_at"))?;
    let user_id = t["user"]["id"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("user id"))?;
    if expires_at <= now {
        return Ok(Verdict::Invalid);
    }
    let project_id = t["project"]["id"].as_str().unwrap_or("").to_string();
    let roles = t["roles"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str().map(str::to_string))
        .collect();
    Ok(Verdict::Valid(Arc::new(Identity {
        user_id: user_id.to_string(),
        project_id,
        roles,
        expires_at,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystone_answers_are_read() {
        let now = DateTime::parse_from_rfc3339("2026-11-23T03:00:00Z").unwrap().to_utc();
        let body = br#"{"token": {"methods": ["password"], "user": {"domain": {"id": "default", "name": "Default"},
            "id": "711b", "name": "member", "password_expires_at": null}, "audit_ids": ["JpVX"],
            "expires_at": "2026-11-23T03:52:13.000000Z", "issued_at": "2026-11-23T02:52:13.000000Z",
            "project": {"domain": {"id": "default", "name": "Default"}, "id": "2fba", "name": "demo"},
            "is_domain": false, "roles": [{"id": "4f47", "name": "reader"}, {"id": "f930", "name": "member"}]}}"#;
        let Verdict::Valid(id) = parse_validation(body, now).unwrap() else {
            panic!("valid")
        };
        assert_eq!(id.user_id, "711b");
        assert_eq!(id.project_id, "2fba");
        assert_eq!(id.roles, ["reader", "member"]);
        assert_eq!(id.expires_at.to_rfc3339(), "2026-11-23T03:52:13+00:00");
        let later = DateTime::parse_from_rfc3339("2026-11-23T03:52:13Z").unwrap().to_utc();
        assert_eq!(parse_validation(body, later).unwrap(), Verdict::Invalid);
        // An unscoped token: no project, no roles.
        let unscoped = br#"{"token": {"user": {"id": "u1"}, "expires_at": "2026-11-23T04:00:00Z"}}"#;
        let Verdict::Valid(id) = parse_validation(unscoped, now).unwrap() else {
            panic!("valid")
        };
        assert_eq!((id.project_id.as_str(), id.roles.len()), ("", 0));
        for bad in [
            &b"<html>"[..],
            br#"{"token": {"user": {"id": "u"}}}"#,
            br#"{"token": {"expires_at": "2026-11-23T04:00:00Z"}}"#,
        ] {
            assert!(matches!(parse_validation(bad, now), Err(AuthError::Unavailable(_))));
        }
    }
}
