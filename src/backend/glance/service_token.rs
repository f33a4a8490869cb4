//! The service's own token sent to Glance as `X-Service-Token` (Nova's
//! `[service_user] send_service_user_token`), beside the user's token, never
//! instead of it; a 401 drops it, as keystoneauth's `invalidate` does.

use super::{within, GlanceInner};
use crate::backend::{BackendError, BackendResult};
use async_trait::async_trait;
use tokio::time::Instant;

/// Where the service's own token comes from (the service's Keystone login).
#[async_trait]
pub trait ServiceToken: Send + Sync {
    /// The current token (a login when there is none or it is about to expire).
    async fn token(&self) -> Result<String, String>;
    /// `token` was refused (401): the next call gets a new one.
    async fn invalidate(&self, token: &str);
}

impl std::fmt::Debug for dyn ServiceToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServiceToken")
    }
}

impl GlanceInner {
    /// The service's token to send, if it is to be sent.
    pub(super) async fn service_token(&self, deadline: Instant) -> BackendResult<Option<String>> {
        let Some(source) = &self.settings.service_token else {
            return Ok(None);
        };
        within(deadline, async {
            source
                .token()
                .await
                .map(Some)
                .map_err(|e| BackendError::Unreachable(format!("no service token: {e}")))
        })
        .await
    }

    /// Whether `resp` refused the call that carried the service's `token`
    /// (then dropped: the next call logs in again).
    pub(super) async fn refused_service_token(&self, resp: &reqwest::Response, token: &str) -> bool {
        match &self.settings.service_token {
            Some(source) if resp.status().as_u16() == 401 => {
                source.invalidate(token).await;
                true
            }
            _ => false,
        }
    }

    /// `rb` with the service's token, when it is to be sent.
    pub(super) fn with_service_token(rb: reqwest::RequestBuilder, token: Option<&str>) -> reqwest::RequestBuilder {
        match token {
            Some(t) => rb.header("X-Service-Token", t),
            None => rb,
        }
    }
}
