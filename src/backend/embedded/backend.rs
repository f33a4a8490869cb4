//! The embedded store as an `ImageBackend`: what the three surfaces call.

use super::data::file_stream;
use super::policy::{self, Rule};
use super::{db, filters, Catalog, EmbeddedStore, NewImage};
use crate::backend::error::{forbidden, not_found};
use crate::backend::{
    BackendError, BackendResult, ByteRange, ContentRange, Drawing, Image, ImageBackend, ImageData, ListQuery,
    PropertyChange, RenderedList, RequestContext,
};
use async_trait::async_trait;
use bytes::Bytes;

#[async_trait]
impl ImageBackend for EmbeddedStore {
    fn describe(&self) -> String {
        format!("embedded {}", self.inner.dir.display())
    }

    fn public_image_url(&self) -> String {
        String::new()
    }

    async fn ping(&self) -> BackendResult<()> {
        self.read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(db::internal))
            .await
    }

    async fn list(&self, ctx: &RequestContext, query: &ListQuery) -> BackendResult<Vec<Image>> {
        let catalog = self.catalog().await?;
        filters::select(&catalog, ctx, &query.filters, query.marker.as_deref(), query.limit)
    }

    async fn list_rendered(
        &self,
        ctx: &RequestContext,
        query: &ListQuery,
        drawing: &Drawing<'_>,
    ) -> BackendResult<RenderedList> {
        let catalog = self.catalog().await?;
        let found = filters::positions(&catalog, ctx, &query.filters, query.marker.as_deref(), query.limit)?;
        Ok(RenderedList {
            last_id: found.last().map(|&i| catalog.at(i).id().to_string()),
            bodies: found.iter().map(|&i| catalog.drawn(i, drawing)).collect(),
        })
    }

    async fn get(&self, ctx: &RequestContext, id: &str) -> BackendResult<Image> {
        let catalog = self.catalog().await?;
        Ok(catalog.at(visible(&catalog, ctx, id)?).image())
    }

    async fn get_rendered(&self, ctx: &RequestContext, id: &str, drawing: &Drawing<'_>) -> BackendResult<Bytes> {
        let catalog = self.catalog().await?;
        let i = visible(&catalog, ctx, id)?;
        Ok(catalog.drawn(i, drawing))
    }

    async fn data(&self, ctx: &RequestContext, id: &str, range: Option<ByteRange>) -> BackendResult<ImageData> {
        let file = self.open_file(ctx, id).await?;
        let total = u64::try_from(file.image.size.unwrap_or(0)).unwrap_or(0);
        let (start, end) = match range {
            None => (0, total.saturating_sub(1)),
            Some(ByteRange::From { start, end }) => (start, end.unwrap_or(u64::MAX).min(total.saturating_sub(1))),
            Some(ByteRange::Last(n)) => (total.saturating_sub(n), total.saturating_sub(1)),
        };
        if range.is_some() && (total == 0 || start > end || start >= total) {
            return Err(BackendError::RangeNotSatisfiable { image: id.to_string() });
        }
        let len = if total == 0 { 0 } else { end - start + 1 };
        Ok(ImageData {
            stream: file_stream(file.path, start, len),
            length: Some(len),
            range: range.map(|_| ContentRange { start, end, total }),
        })
    }

    async fn delete(&self, ctx: &RequestContext, id: &str) -> BackendResult<()> {
        let (c, i) = (ctx.clone(), id.to_string());
        self.write(move |conn| {
            let rec = Self::live(conn, &c, &i)?;
            policy::enforce(Rule::DeleteImage, &rec.image, &c)?;
            if rec.image.protected {
                return Err(forbidden(&format!("Image {i} is protected and cannot be deleted.")));
            }
            db::mark_deleted(conn, &i)
        })
        .await?;
        let _ = tokio::fs::remove_file(self.file_path(id)).await;
        Ok(())
    }

    async fn create_image(&self, ctx: &RequestContext, new: NewImage) -> BackendResult<Image> {
        self.create(ctx, new).await
    }

    async fn list_with(
        &self,
        ctx: &RequestContext,
        query: &ListQuery,
        options: &crate::backend::ListOptions,
    ) -> BackendResult<Vec<Image>> {
        let mut query = query.clone();
        if let Some(status) = &options.member_status {
            query.filters.push(("member_status".into(), status.clone()));
        }
        let options = crate::backend::ListOptions {
            member_status: None,
            ..options.clone()
        };
        crate::backend::list_sorted(self, ctx, &query, &options).await
    }

    async fn patch_image(
        &self,
        ctx: &RequestContext,
        id: &str,
        ops: Vec<crate::backend::PatchOp>,
    ) -> BackendResult<Image> {
        self.patch(ctx, id, ops).await
    }

    async fn members(&self, ctx: &RequestContext, id: &str) -> BackendResult<Vec<crate::backend::Member>> {
        self.list_members(ctx, id).await
    }

    async fn add_member(&self, ctx: &RequestContext, id: &str, member: &str) -> BackendResult<crate::backend::Member> {
        self.create_member(ctx, id, member).await
    }

    async fn remove_member(&self, ctx: &RequestContext, id: &str, member: &str) -> BackendResult<()> {
        self.delete_member(ctx, id, member).await
    }

    async fn replace_members(&self, ctx: &RequestContext, id: &str, members: Vec<String>) -> BackendResult<()> {
        self.set_members(ctx, id, members).await
    }

    async fn upload(&self, ctx: &RequestContext, id: &str, body: crate::backend::UploadStream) -> BackendResult<Image> {
        EmbeddedStore::upload(self, ctx, id, body).await
    }

    async fn update_properties(
        &self,
        ctx: &RequestContext,
        id: &str,
        change: PropertyChange,
        max_properties: Option<usize>,
    ) -> BackendResult<Image> {
        // Glance strips white space around the property names of JSON-patch
        // paths (`_decode_json_pointer`); so does the store.
        let key = |k: &str| crate::edge::pyjson::py_strip(k).to_string();
        self.modify(ctx, id, &[Rule::ModifyImage], move |img| {
            let props = &mut img.properties;
            match change {
                PropertyChange::Merge(set) => {
                    for (k, v) in set {
                        props.insert(key(&k), v);
                    }
                }
                PropertyChange::ReplaceAll(set, keep) => {
                    let kept: Vec<_> = keep
                        .iter()
                        .filter_map(|k| props.get(&key(k)).map(|v| (key(k), v.clone())))
                        .collect();
                    *props = set.into_iter().map(|(k, v)| (key(&k), v)).chain(kept).collect();
                }
                PropertyChange::Remove(k) => {
                    if props.shift_remove(&key(&k)).is_none() {
                        return Err(BackendError::KeyNotFound);
                    }
                }
            }
            if max_properties.is_some_and(|max| props.len() > max) {
                return Err(BackendError::QuotaExceeded);
            }
            Ok(())
        })
        .await
    }
}

/// Where image `id` is in `catalog`, if `ctx` may see it; else Glance's 404.
fn visible(catalog: &Catalog, ctx: &RequestContext, id: &str) -> BackendResult<usize> {
    match catalog.position(id) {
        Some(i) if policy::can_see(catalog.at(i).seen(), ctx, catalog.at(i).membership(&ctx.project_id)) => Ok(i),
        _ => Err(not_found(&format!("No image found with ID {id}"))),
    }
}
