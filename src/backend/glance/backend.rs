//! The [`ImageBackend`] of a real Glance: each call of the trait on the
//! client's calls (reads in `reads.rs`, writes in `writes.rs`, `images.rs`,
//! `members.rs`), bounded by the backend's deadline.

use super::{check_id, image_from_glance, within, GlanceBackend, PendingWrite};
use crate::backend::embedded::NewImage;
use crate::backend::{
    BackendError, BackendResult, ByteRange, Image, ImageBackend, ImageData, ListOptions, ListQuery, Member, PatchOp,
    PropertyChange, RequestContext, UploadStream,
};
use async_trait::async_trait;

#[async_trait]
impl ImageBackend for GlanceBackend {
    fn describe(&self) -> String {
        format!("glance {}", self.servers.names())
    }

    fn public_image_url(&self) -> String {
        self.servers.first().to_string()
    }

    async fn ping(&self) -> BackendResult<()> {
        // Any HTTP answer of any server means Glance is there; its version
        // document needs no token.
        let mut last = BackendError::Unreachable("no server".into());
        let start = self.servers.start();
        for attempt in 0..self.servers.len() as u32 {
            let server = self.servers.of_attempt(start, attempt);
            match self
                .http
                .get(format!("{}/versions", self.servers.get(server)))
                .send()
                .await
            {
                Ok(_) => {
                    self.servers.answered(server);
                    return Ok(());
                }
                Err(e) if e.is_timeout() => last = BackendError::Timeout,
                Err(e) => last = BackendError::Unreachable(e.to_string()),
            }
        }
        Err(last)
    }

    async fn list(&self, ctx: &RequestContext, query: &ListQuery) -> BackendResult<Vec<Image>> {
        let deadline = self.deadline();
        within(deadline, self.list_params(ctx, query, &[], deadline)).await
    }

    async fn list_with(
        &self,
        ctx: &RequestContext,
        query: &ListQuery,
        options: &ListOptions,
    ) -> BackendResult<Vec<Image>> {
        let mut extra = Vec::new();
        for (name, value) in [
            ("sort_key", &options.sort_key),
            ("sort_dir", &options.sort_dir),
            ("member_status", &options.member_status),
        ] {
            if let Some(v) = value {
                extra.push((name.to_string(), v.clone()));
            }
        }
        let deadline = self.deadline();
        within(deadline, self.list_params(ctx, query, &extra, deadline)).await
    }

    /// The deadline bounds opening the data; the stream itself is bounded
    /// between reads (`glance.timeout_secs` each), not as a whole.
    async fn data(&self, ctx: &RequestContext, id: &str, range: Option<ByteRange>) -> BackendResult<ImageData> {
        let deadline = self.deadline();
        within(deadline, self.open_data(ctx, id, range, deadline)).await
    }

    async fn get(&self, ctx: &RequestContext, id: &str) -> BackendResult<Image> {
        let deadline = self.deadline();
        within(deadline, async {
            let base = self.base_properties(ctx, deadline).await;
            let raw = self.get_raw(ctx, id, deadline).await?;
            image_from_glance(raw, &base)
        })
        .await
    }

    async fn delete(&self, ctx: &RequestContext, id: &str) -> BackendResult<()> {
        check_id(id)?;
        self.delete_url(ctx, &self.image_url(id)).await
    }

    async fn create_image(&self, ctx: &RequestContext, new: NewImage) -> BackendResult<Image> {
        self.create_v2(ctx, new).await
    }

    async fn upload(&self, ctx: &RequestContext, id: &str, body: UploadStream) -> BackendResult<Image> {
        self.upload_v2(ctx, id, body).await
    }

    async fn patch_image(&self, ctx: &RequestContext, id: &str, ops: Vec<PatchOp>) -> BackendResult<Image> {
        self.patch_v2(ctx, id, ops).await
    }

    async fn members(&self, ctx: &RequestContext, id: &str) -> BackendResult<Vec<Member>> {
        self.members_v2(ctx, id).await
    }

    async fn add_member(&self, ctx: &RequestContext, id: &str, member: &str) -> BackendResult<Member> {
        self.add_member_v2(ctx, id, member).await
    }

    async fn remove_member(&self, ctx: &RequestContext, id: &str, member: &str) -> BackendResult<()> {
        self.remove_member_v2(ctx, id, member).await
    }

    async fn update_properties(
        &self,
        ctx: &RequestContext,
        id: &str,
        change: PropertyChange,
        max_properties: Option<usize>,
    ) -> BackendResult<Image> {
        check_id(id)?;
        let (pending, answer) = PendingWrite::new(ctx, change, max_properties, self.deadline());
        self.enqueue_write(id, pending, answer).await
    }
}
