//! The service's own Keystone login, as keystoneauth's password plugin makes
//! it for keystonemiddleware and for Nova's `[service_user]`: the service user
//! (its domain by id or name) scoped to its project (the project's domain by
//! id or name). The token is kept and reused until two minutes before it
//! expires (keystoneauth's `MIN_TOKEN_LIFE_SECONDS`), or until a call it was
//! sent with is refused with 401 (then it is dropped and the next call logs
//! in again, as keystoneauth's `invalidate` does). The login's catalog is
//! kept with it: it names the identity endpoint validations go to
//! (`auth.interface`, `auth.region_name`) and, at start-up, Glance.
//!
//! The token is never logged, nor the password.

use super::catalog::Catalog;
use super::http::{parse_time, send};
use super::AuthError;
use crate::config::{AuthSettings, Scope};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A service token is renewed this long before it expires (keystoneauth's margin).
const SERVICE_TOKEN_MARGIN: Duration = Duration::from_secs(120);

/// The service's token and what came with it.
#[derive(Clone)]
pub struct Login {
    pub token: String,
    renew_at: Instant,
    pub catalog: Arc<Catalog>,
    /// The identity v3 endpoint of `auth.interface` in `auth.region_name`
    /// from the catalog, if it names one.
    pub identity_url: Option<String>,
}

pub struct ServiceAuth {
    /// `auth.keystone_url` as the identity v3 endpoint (where the login goes).
    url: String,
    http: reqwest::Client,
    user: String,
    password: String,
    user_domain: Scope,
    project: String,
    project_domain: Scope,
    interface: String,
    region: String,
    timeout: Duration,
    current: tokio::sync::Mutex<Option<Login>>,
}

impl ServiceAuth {
    /// The service login of `settings`, if service credentials are configured.
    pub fn from_settings(settings: &AuthSettings) -> Result<Option<Arc<ServiceAuth>>, String> {
        if settings.strategy != "keystone" || !settings.has_service_credentials() {
            return Ok(None);
        }
        Ok(Some(Arc::new(ServiceAuth {
            url: settings.keystone_v3_url(),
            http: super::http::client(settings)?,
            user: settings.service_user.clone(),
            password: settings.service_password.expose().to_string(),
            user_domain: settings.user_domain(),
            project: settings.service_project.clone(),
            project_domain: settings.project_domain(),
            interface: settings.interface.trim().to_string(),
            region: settings.region_name.trim().to_string(),
            timeout: Duration::from_secs_f64(settings.timeout_secs),
            current: tokio::sync::Mutex::new(None),
        })))
    }

    /// For the start-up log.
    pub fn describe(&self) -> String {
        format!(
            "service user {} ({}), project {} ({})",
            self.user, self.user_domain, self.project, self.project_domain
        )
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// The current login, made when there is none or it is about to expire;
    /// at most `auth.timeout_secs`.
    pub async fn login(&self) -> Result<Login, AuthError> {
        let mut current = self.current.lock().await;
        if let Some(l) = current.as_ref() {
            if Instant::now() < l.renew_at {
                return Ok(l.clone());
            }
        }
        let login = tokio::time::timeout(self.timeout, self.log_in())
            .await
            .unwrap_or_else(|_| {
                Err(AuthError::Unavailable(
                    "Keystone did not answer the service's login in time".into(),
                ))
            })?;
        *current = Some(login.clone());
        Ok(login)
    }

    /// The service's token.
    pub async fn token(&self) -> Result<String, AuthError> {
        Ok(self.login().await?.token)
    }

    /// `token` was refused: the next call logs in again (unless another one
    /// already did).
    pub async fn invalidate(&self, token: &str) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|c| c.token == token) {
            tracing::info!(user = %self.user, "the service token was refused; logging in again");
            *current = None;
        }
    }

    async fn log_in(&self) -> Result<Login, AuthError> {
        let body = serde_json::json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": self.user, "domain": self.user_domain.json(), "password": self.password}}},
            "scope": {"project": {"name": self.project, "domain": self.project_domain.json()}}}});
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let url = format!("{}/auth/tokens", self.url);
        let a = send(&self.url, || {
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
                tracing::error!(
                    user = %self.user, user_domain = %self.user_domain, project = %self.project,
                    project_domain = %self.project_domain, "Keystone refused the service credentials"
                );
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
        let doc: Value = serde_json::from_slice(&a.body).unwrap_or(Value::Null);
        let expires_at = doc["token"]["expires_at"]
            .as_str()
            .and_then(parse_time)
            .ok_or_else(|| AuthError::Unavailable("Keystone's login answer has no expires_at".into()))?;
        let left = (expires_at - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO);
        let renew_at = Instant::now() + left.saturating_sub(SERVICE_TOKEN_MARGIN.min(left / 2));
        let catalog = Catalog::from_token(&doc);
        let identity_url = catalog
            .find("identity", &[self.interface.as_str()], &self.region)
            .map(|e| crate::config::v3_url(&e.url));
        tracing::info!(
            user = %self.user, project = %self.project, expires_at = %expires_at, catalog_endpoints = catalog.len(),
            identity = identity_url.as_deref().unwrap_or("(none in the catalog: auth.keystone_url)"),
            "got a service token from Keystone"
        );
        Ok(Login {
            token,
            renew_at,
            catalog: Arc::new(catalog),
            identity_url,
        })
    }
}

#[async_trait::async_trait]
impl crate::backend::glance::ServiceToken for ServiceAuth {
    async fn token(&self) -> Result<String, String> {
        ServiceAuth::token(self).await.map_err(|e| e.to_string())
    }

    async fn invalidate(&self, token: &str) {
        ServiceAuth::invalidate(self, token).await
    }
}
