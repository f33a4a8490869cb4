//! Property writes to Glance: one writer task per image at a time, group
//! commit of the writes that queue up behind it (one GET and one JSON-patch
//! PATCH for all those with the same token), and the JSON-patch operations
//! that touch only the keys a write names.

use super::outcome::{Patched, Sent, RESOLVE_GRACE};
use super::{image_from_glance, within, GlanceBackend};
use crate::backend::{BackendError, BackendResult, Image, PropertyChange, Refusal, RequestContext};
use serde_json::{json, Map, Value};
use std::time::Duration;
use tokio::time::Instant;

/// PATCHes a collection PUT may take to leave exactly its collection when
/// other replicas write to the image at the same time.
const COLLECTION_ATTEMPTS: usize = 6;

/// One property write waiting for its image's writer.
pub(super) struct PendingWrite {
    ctx: RequestContext,
    change: PropertyChange,
    max_properties: Option<usize>,
    /// When its answer is due: nothing is sent for it after this.
    deadline: Instant,
    reply: tokio::sync::oneshot::Sender<BackendResult<Image>>,
}

/// Where the answer to a queued write comes.
pub(super) type Answer = tokio::sync::oneshot::Receiver<BackendResult<Image>>;

impl PendingWrite {
    /// A write of `change` by `ctx` (at most `max_properties` extra properties
    /// after it), due by `deadline`, and where its answer will come.
    pub(super) fn new(
        ctx: &RequestContext,
        change: PropertyChange,
        max_properties: Option<usize>,
        deadline: Instant,
    ) -> (PendingWrite, Answer) {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let pending = PendingWrite {
            ctx: ctx.clone(),
            change,
            max_properties,
            deadline,
            reply,
        };
        (pending, answer)
    }
}

impl GlanceBackend {
    /// Queue a property write for `id` and wait for its answer. An image has
    /// a queue exactly while its writer runs (the writer removes it, under
    /// the lock, when it finds it empty); the first write to an idle image
    /// starts the writer, as a task of its own so that a client leaving does
    /// not stop the writes queued behind it. Its answer comes by the
    /// write's deadline (plus the time to read the image back when the
    /// PATCH ran out of it).
    pub(super) async fn enqueue_write(&self, id: &str, pending: PendingWrite, answer: Answer) -> BackendResult<Image> {
        let deadline = pending.deadline;
        let lead = {
            let mut queues = self.write_queues.lock().unwrap_or_else(|p| p.into_inner());
            match queues.entry(id.to_string()) {
                std::collections::hash_map::Entry::Occupied(mut q) => {
                    q.get_mut().push_back(pending);
                    false
                }
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert([pending].into());
                    true
                }
            }
        };
        if lead {
            tokio::spawn(self.clone().drain_writes(id.to_string()));
        }
        // The writer answers by then; should it not, the write may be under way.
        match tokio::time::timeout_at(deadline + 2 * RESOLVE_GRACE, answer).await {
            Ok(answer) => answer.unwrap_or_else(|_| Err(BackendError::Internal("the property writer stopped".into()))),
            Err(_) => Err(BackendError::OutcomeUnknown { timed_out: true }),
        }
    }

    /// Apply the writes queued for `id` until none is left: each round takes
    /// the first waiting write and every other one with the same token.
    /// Writes whose deadline has passed while they waited are answered with
    /// a timeout, nothing sent.
    async fn drain_writes(self, id: String) {
        loop {
            let batch: Vec<PendingWrite> = {
                let mut queues = self.write_queues.lock().unwrap_or_else(|p| p.into_inner());
                let Some(queue) = queues.get_mut(&id) else { return };
                let Some(token) = queue.front().map(|p| p.ctx.token.clone()) else {
                    queues.remove(&id);
                    return;
                };
                // A collection PUT goes alone (it is checked against what
                // Glance saved and corrected, see `write_once`).
                let alone = queue
                    .front()
                    .is_some_and(|p| matches!(p.change, PropertyChange::ReplaceAll(..)));
                let first = queue.pop_front().into_iter();
                let (same, rest): (std::collections::VecDeque<_>, _) = queue.drain(..).partition(|p| {
                    !alone && p.ctx.token == token && !matches!(p.change, PropertyChange::ReplaceAll(..))
                });
                *queue = rest;
                first.chain(same).collect()
            };
            let now = Instant::now();
            let (batch, late): (Vec<_>, Vec<_>) = batch.into_iter().partition(|p| p.deadline > now);
            for p in late {
                let _ = p.reply.send(Err(BackendError::Timeout));
            }
            if !batch.is_empty() {
                self.apply_batch(&id, batch).await;
            }
        }
    }

    /// One GET, the writes applied in order to what it read (each checked on
    /// its own: a key to remove that is not there, the quota), one PATCH with
    /// the difference. If Glance refuses a combined PATCH, the writes are
    /// made again one by one so that each gets its own answer.
    async fn apply_batch(&self, id: &str, batch: Vec<PendingWrite>) {
        let reply = |p: PendingWrite, r: BackendResult<Image>| {
            let _ = p.reply.send(r);
        };
        if let Some(m) = crate::metrics::get() {
            m.group_commit_writes.observe(batch.len() as f64);
        }
        if batch.len() == 1 {
            let p = batch.into_iter().next().expect("one write");
            let r = self
                .write_once(&p.ctx, id, &p.change, p.max_properties, p.deadline)
                .await;
            return reply(p, r);
        }
        let ctx = batch[0].ctx.clone();
        // The batch is done by the earliest deadline among its writes.
        let deadline = batch.iter().map(|p| p.deadline).min().expect("a batch");
        let read = within(deadline, async {
            let base = self.base_properties(&ctx, deadline).await;
            let raw = self.get_raw(&ctx, id, deadline).await?;
            Ok((image_from_glance(raw, &base)?, base))
        });
        let (current, base) = match read.await {
            Ok(c) => c,
            Err(e) => {
                for p in batch {
                    reply(p, Err(e.clone()));
                }
                return;
            }
        };
        let mut state = current.properties.clone();
        let mut included = Vec::new();
        for p in batch {
            match patch_for(&state, &p.change) {
                Err(e) => reply(p, Err(e)),
                Ok((_, after)) if p.max_properties.is_some_and(|max| after.len() > max) => {
                    reply(p, Err(BackendError::QuotaExceeded))
                }
                Ok((_, after)) => {
                    state = after;
                    included.push(p);
                }
            }
        }
        let (ops, _) = patch_for(
            &current.properties,
            &PropertyChange::ReplaceAll(state.clone(), Vec::new()),
        )
        .expect("a replacement always applies");
        if ops.is_empty() {
            for p in included {
                reply(p, Ok(current.clone()));
            }
            return;
        }
        tracing::debug!(
            image = id,
            writes = included.len(),
            "property writes combined into one PATCH"
        );
        let max = included.iter().filter_map(|p| p.max_properties).min();
        let sent = Sent {
            ctx: &ctx,
            id,
            before: &current.properties,
            after: &state,
            base: &base,
            deadline,
        };
        let outcome = match self.patch(&ctx, id, &ops, &base, deadline).await {
            Ok(saved) => self.undo_if_over_quota(&sent, saved, max).await,
            Err(Patched::No(BackendError::Refused(_))) => {
                for p in included {
                    let r = self.write_once(&p.ctx, id, &p.change, p.max_properties, deadline).await;
                    reply(p, r);
                }
                return;
            }
            Err(Patched::No(e)) => Err(e),
            // Glance applies a patch whole or not at all: the combined change
            // is there or it is not.
            Err(Patched::Unknown(e)) => self.resolve(&sent, e).await,
        };
        for p in included {
            if let Ok(saved) = &outcome {
                warn_if_differs(id, &p.change, saved);
            }
            reply(p, outcome.clone());
        }
    }

    /// One write on its own: GET, check, PATCH, all by `deadline`.
    async fn write_once(
        &self,
        ctx: &RequestContext,
        id: &str,
        change: &PropertyChange,
        max_properties: Option<usize>,
        deadline: Instant,
    ) -> BackendResult<Image> {
        let (base, raw) = within(deadline, async {
            let base = self.base_properties(ctx, deadline).await;
            Ok((base.clone(), self.get_raw(ctx, id, deadline).await?))
        })
        .await?;
        let mut current = image_from_glance(raw, &base)?;
        let replace_all = matches!(change, PropertyChange::ReplaceAll(..));
        for attempt in 1..=COLLECTION_ATTEMPTS {
            let last = attempt == COLLECTION_ATTEMPTS || !replace_all;
            let (ops, expected) = patch_for(&current.properties, change)?;
            if max_properties.is_some_and(|max| expected.len() > max) {
                return Err(BackendError::QuotaExceeded);
            }
            if ops.is_empty() {
                return Ok(current);
            }
            let sent = Sent {
                ctx,
                id,
                before: &current.properties,
                after: &expected,
                base: &base,
                deadline,
            };
            match self.patch(ctx, id, &ops, &base, deadline).await {
                // Another replica changed the collection between the read and
                // the PATCH: what Glance saved (the whole state after the
                // PATCH) is not the collection asked for. Correct it.
                Ok(saved) if !last && saved.properties != expected => {
                    tracing::info!(image = id, attempt, "a collection PUT met another write; correcting it");
                    current = saved;
                }
                Ok(saved) => {
                    let saved = self.undo_if_over_quota(&sent, saved, max_properties).await?;
                    warn_if_differs(id, change, &saved);
                    return Ok(saved);
                }
                // A key it read is gone already (Glance: 409 on removing a
                // missing property): read again and redo the collection.
                Err(Patched::No(BackendError::Refused(Refusal { status: 409, .. }))) if !last => {
                    tracing::info!(image = id, attempt, "a collection PUT met another write; reading again");
                    // A short, uneven pause, so that writers meeting this way
                    // do not meet again.
                    let jitter = u64::from(
                        std::time::SystemTime::UNIX_EPOCH
                            .elapsed()
                            .unwrap_or_default()
                            .subsec_nanos()
                            % 40,
                    );
                    let pause = Duration::from_millis(20 * attempt as u64 + jitter);
                    if Instant::now() + pause < deadline {
                        tokio::time::sleep(pause).await;
                    }
                    let raw = within(deadline, self.get_raw(ctx, id, deadline)).await?;
                    current = image_from_glance(raw, &base)?;
                }
                Err(Patched::No(e)) => return Err(e),
                Err(Patched::Unknown(e)) => return self.resolve(&sent, e).await,
            }
        }
        Err(BackendError::Internal("no attempt made".into()))
    }
}

/// Check what Glance saved against what was written. Glance normalises some
/// keys (e.g. a trailing newline, which Nova's key pattern lets through); the
/// write did happen, so it is reported, not turned into an error.
fn warn_if_differs(id: &str, change: &PropertyChange, saved: &Image) {
    let differing = match change {
        PropertyChange::Merge(set) | PropertyChange::ReplaceAll(set, _) => {
            set.iter().filter(|(k, v)| saved.properties.get(*k) != Some(v)).count()
        }
        PropertyChange::Remove(k) => usize::from(saved.properties.contains_key(k)),
    };
    if differing > 0 {
        tracing::warn!(
            image = id,
            differing,
            "the image service saved properties other than those written"
        );
    }
}

/// JSON-pointer escaping of a property name (`~` → `~0`, `/` → `~1`).
pub(super) fn json_pointer(key: &str) -> String {
    format!("/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// The JSON-patch operations that apply `change` to `current` (an image's
/// extra properties), and the properties expected afterwards.
pub fn patch_for(
    current: &Map<String, Value>,
    change: &PropertyChange,
) -> BackendResult<(Vec<Value>, Map<String, Value>)> {
    let mut ops = Vec::new();
    let mut after = current.clone();
    match change {
        PropertyChange::Merge(set) => {
            for (k, v) in set {
                if current.get(k) != Some(v) {
                    // With the v2.1 JSON-patch media type Glance's `add` replaces
                    // an existing property, so a merge needs no read of the image.
                    ops.push(json!({"op": "add", "path": json_pointer(k), "value": v}));
                }
                after.insert(k.clone(), v.clone());
            }
        }
        PropertyChange::ReplaceAll(set, keep) => {
            for k in current.keys() {
                if !set.contains_key(k) && !keep.contains(k) {
                    ops.push(json!({"op": "remove", "path": json_pointer(k)}));
                }
            }
            for (k, v) in set {
                if current.get(k) != Some(v) {
                    ops.push(json!({"op": "add", "path": json_pointer(k), "value": v}));
                }
            }
            after = set.clone();
            for k in keep {
                if let Some(v) = current.get(k) {
                    after.insert(k.clone(), v.clone());
                }
            }
        }
        PropertyChange::Remove(k) => {
            if !current.contains_key(k) {
                return Err(BackendError::KeyNotFound);
            }
            ops.push(json!({"op": "remove", "path": json_pointer(k)}));
            after.shift_remove(k);
        }
    }
    Ok((ops, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_adds_only_changed_keys() {
        let mut current = Map::new();
        current.insert("a".into(), json!("1"));
        current.insert("b/c".into(), json!("2"));
        let mut set = Map::new();
        set.insert("a".into(), json!("1"));
        set.insert("n".into(), json!("x"));
        let (ops, after) = patch_for(&current, &PropertyChange::Merge(set.clone())).unwrap();
        assert_eq!(ops, vec![json!({"op": "add", "path": "/n", "value": "x"})]);
        assert_eq!(after.len(), 3);
        let (ops, after) = patch_for(&current, &PropertyChange::ReplaceAll(set.clone(), Vec::new())).unwrap();
        assert_eq!(
            ops,
            vec![
                json!({"op": "remove", "path": "/b~1c"}),
                json!({"op": "add", "path": "/n", "value": "x"})
            ]
        );
        assert_eq!(after.len(), 2);
        // A kept key stays as it is, there or not.
        let keep = vec!["a".to_string(), "zz".to_string()];
        let (ops, after) = patch_for(&current, &PropertyChange::ReplaceAll(Map::new(), keep)).unwrap();
        assert_eq!(ops, vec![json!({"op": "remove", "path": "/b~1c"})]);
        assert_eq!(after, Map::from_iter([("a".to_string(), json!("1"))]));
        assert!(matches!(
            patch_for(&current, &PropertyChange::Remove("zz".into())),
            Err(BackendError::KeyNotFound)
        ));
    }
}
