//! What a property write's PATCH did: sent once, its failure told apart as
//! "not applied" or "may have been applied"; an answer lost resolved by
//! reading the image back; a quota overrun caused by another replica undone.

use super::writes::json_pointer;
use super::{image_from_glance, within, GlanceBackend, JSON_PATCH};
use crate::backend::{BackendError, BackendResult, Image, RequestContext};
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::time::Duration;
use tokio::time::Instant;

/// Time beyond a write's deadline for reading the image back when the PATCH
/// itself ran out of time (so that a write that landed can still be told).
pub(super) const RESOLVE_GRACE: Duration = Duration::from_millis(500);

/// A property write as its PATCH was sent: by whom, to which image, the
/// extra properties it read (`before`) and those it meant to leave
/// (`after`), the image schema's base attributes, and when its answer is due.
pub(super) struct Sent<'a> {
    pub ctx: &'a RequestContext,
    pub id: &'a str,
    pub before: &'a Map<String, Value>,
    pub after: &'a Map<String, Value>,
    pub base: &'a HashSet<String>,
    pub deadline: Instant,
}

impl GlanceBackend {
    /// The quota was checked against the image as read; another replica may
    /// have added keys since. If what Glance saved (the whole state after the
    /// PATCH) holds more than `max`, the keys this write added are removed
    /// again and the write is refused. Two writers meeting this way may both
    /// be refused, but the quota holds. If Glance refuses the undo, the write
    /// stands (and so says the answer); if the undo's answer is lost, nobody
    /// can tell.
    pub(super) async fn undo_if_over_quota(
        &self,
        sent: &Sent<'_>,
        saved: Image,
        max: Option<usize>,
    ) -> BackendResult<Image> {
        let Some(max) = max else { return Ok(saved) };
        if saved.properties.len() <= max {
            return Ok(saved);
        }
        let undo: Vec<Value> = sent
            .after
            .iter()
            .filter(|(k, v)| !sent.before.contains_key(*k) && saved.properties.get(*k) == Some(v))
            .map(|(k, _)| json!({"op": "remove", "path": json_pointer(k)}))
            .collect();
        if undo.is_empty() {
            return Ok(saved);
        }
        match self.patch(sent.ctx, sent.id, &undo, sent.base, sent.deadline).await {
            Ok(_) => {
                tracing::info!(
                    image = sent.id,
                    keys = undo.len(),
                    "over the quota after another write; undone"
                );
                Err(BackendError::QuotaExceeded)
            }
            Err(Patched::No(e)) => {
                tracing::warn!(image = sent.id, error = %e, "over the quota after another write; cannot undo");
                Ok(saved)
            }
            Err(Patched::Unknown(e)) => {
                tracing::error!(image = sent.id, error = %e, "over the quota after another write; the undo's outcome is unknown");
                Err(BackendError::OutcomeUnknown {
                    timed_out: matches!(e, BackendError::Timeout),
                })
            }
        }
    }

    /// The answer to a PATCH was lost or was a 5xx: read the image again. If
    /// exactly the written change (`before` → `after`) is there, the write
    /// landed and its answer is the image as read; if not, `fault` stands;
    /// if the image cannot be read (by the deadline, or shortly after it when
    /// the PATCH took all the time), nobody can tell.
    pub(super) async fn resolve(&self, sent: &Sent<'_>, fault: BackendError) -> BackendResult<Image> {
        let id = sent.id;
        let deadline = sent.deadline.max(Instant::now() + RESOLVE_GRACE);
        let reread = within(deadline, async {
            image_from_glance(self.get_raw(sent.ctx, id, deadline).await?, sent.base)
        });
        match reread.await {
            Ok(image) if landed(sent.before, sent.after, &image.properties) => {
                tracing::warn!(image = id, error = %fault, "a write's answer was lost; the image read back shows it applied");
                Ok(image)
            }
            Ok(_) => {
                tracing::warn!(image = id, error = %fault, "a write's answer was lost; the image read back shows it not applied");
                Err(fault)
            }
            Err(e) => {
                tracing::error!(image = id, error = %fault, reread = %e, "a write's outcome is unknown: its answer was lost and the image cannot be read");
                let timed_out = matches!(fault, BackendError::Timeout) || matches!(e, BackendError::Timeout);
                Err(BackendError::OutcomeUnknown { timed_out })
            }
        }
    }

    /// One PATCH; whether it may have been applied when it has no answer.
    async fn patch_once(
        &self,
        ctx: &RequestContext,
        url: &str,
        body: &[u8],
        service_token: Option<&str>,
        deadline: Instant,
    ) -> Result<reqwest::Response, Patched> {
        let rb = self
            .request(ctx, reqwest::Method::PATCH, url)
            .header("Content-Type", JSON_PATCH)
            .body(body.to_vec());
        let sent = super::GlanceInner::with_service_token(rb, service_token).send();
        match tokio::time::timeout_at(deadline, sent).await {
            Err(_) => Err(Patched::Unknown(BackendError::Timeout)),
            Ok(Ok(resp)) => Ok(resp),
            // No connection: nothing reached Glance.
            Ok(Err(e)) if e.is_connect() => Err(Patched::No(BackendError::Unreachable(e.to_string()))),
            Ok(Err(e)) if e.is_timeout() => Err(Patched::Unknown(BackendError::Timeout)),
            Ok(Err(e)) => Err(Patched::Unknown(BackendError::Unreachable(e.to_string()))),
        }
    }

    /// `PATCH /v2/images/{id}` with JSON-patch `ops` (sent once, never
    /// retried, but for a refused service token); the image Glance saved, or whether the PATCH may have been
    /// applied although it failed.
    pub(super) async fn patch(
        &self,
        ctx: &RequestContext,
        id: &str,
        ops: &[Value],
        base: &HashSet<String>,
        deadline: Instant,
    ) -> Result<Image, Patched> {
        let url = self.image_url(id);
        let body = serde_json::to_vec(ops).map_err(|e| Patched::No(BackendError::Internal(e.to_string())))?;
        let mut token = self.service_token(deadline).await.map_err(Patched::No)?;
        let mut resp = self.patch_once(ctx, &url, &body, token.as_deref(), deadline).await?;
        // A refused service token: nothing was applied; once more with a new one.
        if let Some(refused) = token.take() {
            if self.refused_service_token(&resp, &refused).await {
                token = self.service_token(deadline).await.map_err(Patched::No)?;
                resp = self.patch_once(ctx, &url, &body, token.as_deref(), deadline).await?;
            }
        }
        let status = resp.status().as_u16();
        match within(deadline, self.json_or_error(resp)).await {
            Ok(raw) => image_from_glance(raw, base).map_err(Patched::Unknown),
            // Glance refused the patch: nothing was applied.
            Err(e @ BackendError::Refused(_)) if status < 500 => Err(Patched::No(e)),
            // A 5xx (from Glance or from a proxy in front of it), or an answer
            // that broke off: the patch may have been applied.
            Err(e) => Err(Patched::Unknown(e)),
        }
    }
}

/// How a PATCH failed.
pub(super) enum Patched {
    /// Not applied (no connection, or Glance refused it).
    No(BackendError),
    /// Sent, but its answer was lost or was a 5xx: it may have been applied.
    Unknown(BackendError),
}

/// Whether `now` (an image's extra properties read back) shows exactly the
/// change from `before` to `after`: every key written has the value written,
/// every key removed is gone. Keys the write did not name are not looked at.
fn landed(before: &Map<String, Value>, after: &Map<String, Value>, now: &Map<String, Value>) -> bool {
    let written = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(v))
        .all(|(k, v)| now.get(k) == Some(v));
    let removed = before
        .keys()
        .filter(|k| !after.contains_key(*k))
        .all(|k| !now.contains_key(k));
    written && removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn a_change_landed_only_if_every_written_and_removed_key_shows_it() {
        let before = props(json!({"k": "v", "gone": "x", "other": "o"}));
        let after = props(json!({"k": "w", "other": "o", "new": "n"}));
        assert!(landed(&before, &after, &after));
        // Keys the write did not name may have changed meanwhile.
        assert!(landed(
            &before,
            &after,
            &props(json!({"k": "w", "new": "n", "else": "e"}))
        ));
        assert!(!landed(&before, &after, &before));
        assert!(!landed(
            &before,
            &after,
            &props(json!({"k": "w", "new": "n", "gone": "x"}))
        ));
        assert!(!landed(&before, &after, &props(json!({"k": "v", "new": "n"}))));
    }
}
