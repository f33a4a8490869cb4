//! Keystone token validation, as keystonemiddleware's `auth_token` does it.
//!
//! A user token is validated with `GET /v3/auth/tokens?nocatalog`
//! (`X-Subject-Token: <user token>`). With service credentials configured the
//! request is made with the service's own token ([`super::service`]) and goes
//! to the identity endpoint of the service's catalog (`auth.interface`,
//! `auth.region_name`; `auth.keystone_url` when the catalog has none); without
//! them the user token validates itself (`X-Auth-Token` = `X-Subject-Token`),
//! which Keystone's default policy allows (`rule:token_subject`).
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

use super::http::{parse_time, Answer};
use super::service::ServiceAuth;
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

/// Token validation against one Keystone.
pub struct Keystone {
    /// The identity v3 endpoint, without a trailing `/`.
    url: String,
    http: reqwest::Client,
    cache: TokenCache,
    service: Option<Arc<ServiceAuth>>,
    /// `auth.service_token_roles` (when `auth.service_token_roles_required`):
    /// an incoming service token needs one of them.
    service_token_roles: Option<Vec<String>>,
    /// `auth.timeout_secs`: the whole validation of one token (service login,
    /// retries and all) takes at most this.
    timeout: Duration,
}

impl Keystone {
    /// The validator of `settings`, validating with `service`'s token when
    /// there is one (shared with the Glance client that sends it).
    pub fn new(settings: &AuthSettings, service: Option<Arc<ServiceAuth>>) -> Result<Keystone, String> {
        Ok(Keystone {
            url: settings.keystone_v3_url(),
            http: super::http::client(settings)?,
            cache: TokenCache::new(Duration::from_secs(settings.cache_secs), settings.cache_entries),
            service,
            service_token_roles: settings.service_token_roles_required.then(|| {
                settings
                    .service_token_roles
                    .split(',')
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(str::to_string)
                    .collect()
            }),
            timeout: Duration::from_secs_f64(settings.timeout_secs),
        })
    }

    /// For the start-up log.
    pub fn describe(&self) -> String {
        let by = match &self.service {
            Some(s) => s.describe(),
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

    /// An `X-Service-Token` sent with a request, checked as keystonemiddleware
    /// checks it: valid, and (with `service_token_roles_required`) holding
    /// one of `service_token_roles`; else the request is refused (401).
    pub async fn check_service_token(&self, token: &str) -> Result<(), AuthError> {
        let id = self.identify(token).await?;
        match &self.service_token_roles {
            Some(wanted) if !id.roles.iter().any(|r| wanted.contains(r)) => {
                tracing::info!(user = %id.user_id, "a service token without a service role; request refused");
                Err(AuthError::Unauthenticated)
            }
            _ => Ok(()),
        }
    }

    /// Ask Keystone about `token` (no cache).
    async fn validate(&self, token: &str) -> Result<Verdict, AuthError> {
        let Some(service) = &self.service else {
            let a = self.check(&self.url, token, token).await?;
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
            let login = service.login().await?;
            let url = login.identity_url.as_deref().unwrap_or(&self.url);
            let a = self.check(url, &login.token, token).await?;
            match a.status {
                200 => return parse_validation(&a.body, Utc::now()),
                404 => return Ok(Verdict::Invalid),
                401 if attempt == 0 => service.invalidate(&login.token).await,
                401 => return Err(AuthError::Unavailable("Keystone refused the service token".into())),
                403 => {
                    return Err(AuthError::Unavailable(format!(
                        "the service user {} may not validate tokens (403); it needs the service or admin role",
                        service.user()
                    )))
                }
                s => return Err(AuthError::Unavailable(format!("Keystone answered {s}"))),
            }
        }
        Err(AuthError::Unavailable("Keystone refused the service token".into()))
    }

    /// `GET /v3/auth/tokens?nocatalog` about `subject` at the identity
    /// endpoint `base`, authenticated by `auth`.
    async fn check(&self, base: &str, auth: &str, subject: &str) -> Result<Answer, AuthError> {
        let url = format!("{base}/auth/tokens?nocatalog");
        super::http::send(base, || {
            self.http
                .get(&url)
                .header("accept", "application/json")
                .header("x-auth-token", auth)
                .header("x-subject-token", subject)
        })
        .await
    }
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
