//! Authentication: who a request's `X-Auth-Token` stands for.
//!
//! * `noauth2`: `X-Auth-Token: <user>:<project>` (Nova's historic development
//!   form); `admin` as the user gives the admin role.
//! * `keystone`: the token is validated by Keystone ([`keystone`]), as
//!   keystonemiddleware's `auth_token` does it.
//!
//! Identity comes from the token only; identity headers a client sends
//! (`X-Project-Id`, `X-Roles`, …) are ignored. The surfaces hold one
//! [`Authenticator`] (built at start-up, shared, so one validation cache) and
//! turn an [`AuthError`] into their own 401 or 503.

pub mod catalog;
mod http;
pub mod keystone;
pub mod service;
pub mod token;

use crate::backend::RequestContext;
use crate::config::AuthSettings;
use std::sync::Arc;

/// Why a request has no identity.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token, or one that is not (or no longer) valid: keystonemiddleware's 401.
    #[error("the request has no valid token")]
    Unauthenticated,
    /// The token could not be checked (Keystone unreachable, failing, or
    /// refusing the service's own credentials): 503, not 401.
    #[error("the identity service is unavailable: {0}")]
    Unavailable(String),
}

/// The configured authentication strategy. Cheap to clone; clones share the
/// Keystone client, the service token and the validation cache.
#[derive(Clone)]
pub enum Authenticator {
    NoAuth2,
    Keystone(Arc<keystone::Keystone>),
}

impl Authenticator {
    /// The strategy `auth.strategy` names (validated when the settings load),
    /// with a service login of its own when service credentials are set.
    pub fn from_settings(settings: &AuthSettings) -> Result<Authenticator, String> {
        Self::with_service(settings, service::ServiceAuth::from_settings(settings)?)
    }

    /// The same, validating with `service`'s token (one login shared with the
    /// Glance client that sends it as `X-Service-Token`).
    pub fn with_service(
        settings: &AuthSettings,
        service: Option<Arc<service::ServiceAuth>>,
    ) -> Result<Authenticator, String> {
        match settings.strategy.as_str() {
            "noauth2" => Ok(Authenticator::NoAuth2),
            "keystone" => Ok(Authenticator::Keystone(Arc::new(keystone::Keystone::new(
                settings, service,
            )?))),
            other => Err(format!("auth.strategy {other:?} is not supported")),
        }
    }

    pub fn strategy(&self) -> &'static str {
        match self {
            Authenticator::NoAuth2 => "noauth2",
            Authenticator::Keystone(_) => "keystone",
        }
    }

    /// The strategy and its parameters, for the start-up log (no secrets).
    pub fn describe(&self) -> String {
        match self {
            Authenticator::NoAuth2 => "noauth2 (X-Auth-Token: <user>:<project>)".to_string(),
            Authenticator::Keystone(k) => k.describe(),
        }
    }

    /// The identity of a request carrying `token` (`X-Auth-Token`, if any).
    pub async fn authenticate(&self, token: Option<&str>, request_id: &str) -> Result<RequestContext, AuthError> {
        match self {
            Authenticator::NoAuth2 => noauth2_context(token, request_id).ok_or(AuthError::Unauthenticated),
            Authenticator::Keystone(k) => {
                let token = token.map(str::trim).filter(|t| !t.is_empty());
                let token = token.ok_or(AuthError::Unauthenticated)?;
                let id = k.identify(token).await?;
                Ok(RequestContext {
                    token: token.to_string(),
                    user_id: id.user_id.clone(),
                    project_id: id.project_id.clone(),
                    roles: id.roles.clone(),
                    request_id: request_id.to_string(),
                })
            }
        }
    }
}

impl Authenticator {
    /// An `X-Service-Token` the client sent (Keystone only: keystonemiddleware
    /// refuses a request whose service token is not valid, or lacks the
    /// roles `auth.service_token_roles` names; `noauth2` has no such filter).
    pub async fn check_service_token(&self, token: &str) -> Result<(), AuthError> {
        match self {
            Authenticator::NoAuth2 => Ok(()),
            Authenticator::Keystone(k) => k.check_service_token(token.trim()).await,
        }
    }
}

/// The identity a token stands for, or `None` when no token was sent.
pub fn noauth2_context(token: Option<&str>, request_id: &str) -> Option<RequestContext> {
    let token = token?.trim();
    if token.is_empty() {
        return None;
    }
    let (user, project) = match token.split_once(':') {
        Some((u, p)) => (u.to_string(), p.to_string()),
        None => (token.to_string(), token.to_string()),
    };
    let roles = if user == "admin" {
        vec!["admin".to_string(), "member".to_string(), "reader".to_string()]
    } else {
        vec!["member".to_string(), "reader".to_string()]
    };
    Some(RequestContext {
        token: token.to_string(),
        user_id: user,
        project_id: project,
        roles,
        request_id: request_id.to_string(),
    })
}

/// keystonemiddleware's answer to a request without a valid token.
pub fn unauthorized_body() -> &'static [u8] {
    br#"{"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}"#
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_user_and_project() {
        let c = noauth2_context(Some("demo:6f70"), "req-1").unwrap();
        assert_eq!((c.user_id.as_str(), c.project_id.as_str()), ("demo", "6f70"));
        assert!(!c.is_admin());
        let c = noauth2_context(Some("admin"), "req-1").unwrap();
        assert_eq!(c.project_id, "admin");
        assert!(c.is_admin());
        assert!(noauth2_context(Some("  "), "r").is_none());
        assert!(noauth2_context(None, "r").is_none());
    }

    #[actix_web::test]
    async fn authenticators_follow_the_settings() {
        let mut settings = crate::config::Settings::defaults().auth;
        let noauth = Authenticator::from_settings(&settings).unwrap();
        assert_eq!(noauth.strategy(), "noauth2");
        let c = noauth.authenticate(Some("demo:p1"), "req-1").await.unwrap();
        assert_eq!(
            (c.user_id.as_str(), c.project_id.as_str(), c.request_id.as_str()),
            ("demo", "p1", "req-1")
        );
        assert_eq!(
            noauth.authenticate(None, "r").await.unwrap_err(),
            AuthError::Unauthenticated
        );

        // Keystone on a port nothing listens on: no token is still a 401, a
        // token cannot be checked (503), and that outcome is not cached.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        settings.strategy = "keystone".into();
        settings.keystone_url = format!("http://127.0.0.1:{port}");
        let ks = Authenticator::from_settings(&settings).unwrap();
        assert_eq!(ks.strategy(), "keystone");
        assert!(ks.describe().contains(&format!("http://127.0.0.1:{port}/v3")));
        assert_eq!(
            ks.authenticate(Some(" "), "r").await.unwrap_err(),
            AuthError::Unauthenticated
        );
        assert!(matches!(
            ks.authenticate(Some("tok"), "r").await,
            Err(AuthError::Unavailable(_))
        ));
        let Authenticator::Keystone(k) = &ks else {
            unreachable!()
        };
        assert!(k.cache().is_empty());
        let long = "x".repeat(keystone::MAX_TOKEN_LEN + 1);
        assert_eq!(
            ks.authenticate(Some(&long), "r").await.unwrap_err(),
            AuthError::Unauthenticated
        );
    }
}
