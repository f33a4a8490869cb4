//! Whole-image updates and image members on a real Glance (what Glance v1's
//! `PUT /v1/images/{id}` and member calls become): one JSON-patch `PATCH
//! /v2/images/{id}` (Glance applies it as one save: all of it or nothing),
//! and `GET/POST /v2/images/{id}/members`, `DELETE
//! /v2/images/{id}/members/{member}`, with the client's token.

use super::{check_id, error_from_response, image_from_glance, within, GlanceBackend, JSON_PATCH, PATH_SEGMENT};
use crate::backend::{BackendError, BackendResult, Image, Member, PatchOp, RequestContext};
use serde_json::{json, Value};

/// The JSON-patch document of `ops` (`/` and `~` in names escaped).
pub(super) fn patch_body(ops: &[PatchOp]) -> Value {
    let path = |k: &str| format!("/{}", k.replace('~', "~0").replace('/', "~1"));
    Value::Array(
        ops.iter()
            .map(|op| match op {
                PatchOp::Add(k, v) => json!({"op": "add", "path": path(k), "value": v}),
                PatchOp::Replace(k, v) => json!({"op": "replace", "path": path(k), "value": v}),
                PatchOp::Remove(k) => json!({"op": "remove", "path": path(k)}),
            })
            .collect(),
    )
}

fn member_from_glance(v: &Value) -> BackendResult<Member> {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    Ok(Member {
        image_id: s("image_id").unwrap_or_default(),
        member_id: s("member_id").ok_or_else(|| BackendError::BadResponse("image member without member_id".into()))?,
        status: s("status").unwrap_or_default(),
        created_at: s("created_at").unwrap_or_default(),
        updated_at: s("updated_at").unwrap_or_default(),
    })
}

impl GlanceBackend {
    fn members_url(&self, id: &str) -> String {
        format!("{}/members", self.image_url(id))
    }

    pub(super) async fn patch_v2(&self, ctx: &RequestContext, id: &str, ops: Vec<PatchOp>) -> BackendResult<Image> {
        check_id(id)?;
        if ops.is_empty() {
            return crate::backend::ImageBackend::get(self, ctx, id).await;
        }
        let url = self.image_url(id);
        let body = patch_body(&ops).to_string();
        let deadline = self.deadline();
        within(deadline, async {
            let base = self.base_properties(ctx, deadline).await;
            let resp = self
                .send(deadline, false, || {
                    self.request(ctx, reqwest::Method::PATCH, &url)
                        .header(reqwest::header::CONTENT_TYPE, JSON_PATCH)
                        .body(body.clone())
                })
                .await
                .map_err(|e| match e {
                    // Sent, and no answer: Glance may have saved it.
                    BackendError::Timeout => BackendError::OutcomeUnknown { timed_out: true },
                    other => other,
                })?;
            image_from_glance(self.json_or_error(resp).await?, &base)
        })
        .await
    }

    pub(super) async fn members_v2(&self, ctx: &RequestContext, id: &str) -> BackendResult<Vec<Member>> {
        check_id(id)?;
        let url = self.members_url(id);
        let deadline = self.deadline();
        within(deadline, async {
            let resp = self
                .send(deadline, true, || self.request(ctx, reqwest::Method::GET, &url))
                .await?;
            let body = self.json_or_error(resp).await?;
            body.get("members")
                .and_then(Value::as_array)
                .ok_or_else(|| BackendError::BadResponse("member list without members".into()))?
                .iter()
                .map(member_from_glance)
                .collect()
        })
        .await
    }

    pub(super) async fn add_member_v2(&self, ctx: &RequestContext, id: &str, member: &str) -> BackendResult<Member> {
        check_id(id)?;
        let url = self.members_url(id);
        let body = json!({ "member": member }).to_string();
        let deadline = self.deadline();
        within(deadline, async {
            let resp = self.post_json(ctx, &url, body, deadline).await?;
            member_from_glance(&self.json_or_error(resp).await?)
        })
        .await
    }

    pub(super) async fn remove_member_v2(&self, ctx: &RequestContext, id: &str, member: &str) -> BackendResult<()> {
        check_id(id)?;
        let member = percent_encoding::utf8_percent_encode(member, PATH_SEGMENT);
        self.delete_url(ctx, &format!("{}/{member}", self.members_url(id)))
            .await
    }

    /// `DELETE url`: any 2xx is done.
    pub(super) async fn delete_url(&self, ctx: &RequestContext, url: &str) -> BackendResult<()> {
        let deadline = self.deadline();
        within(deadline, async {
            let resp = self
                .send(deadline, false, || self.request(ctx, reqwest::Method::DELETE, url))
                .await?;
            if resp.status().is_success() {
                Ok(())
            } else {
                Err(error_from_response(resp).await)
            }
        })
        .await
    }

    /// `POST url` with the JSON `body`, sent once (not idempotent).
    pub(super) async fn post_json(
        &self,
        ctx: &RequestContext,
        url: &str,
        body: String,
        deadline: tokio::time::Instant,
    ) -> BackendResult<reqwest::Response> {
        self.send(deadline, false, || {
            self.request(ctx, reqwest::Method::POST, url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_documents() {
        let ops = vec![
            PatchOp::Replace("name".into(), json!("n")),
            PatchOp::Add("hw:a/b~c".into(), json!("v")),
            PatchOp::Remove("old".into()),
        ];
        assert_eq!(
            patch_body(&ops),
            json!([
                {"op": "replace", "path": "/name", "value": "n"},
                {"op": "add", "path": "/hw:a~1b~0c", "value": "v"},
                {"op": "remove", "path": "/old"}
            ])
        );
    }
}
