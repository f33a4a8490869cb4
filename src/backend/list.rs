//! Image list requests: Glance v2's filters, paging and sort order, and the
//! sorting and paging done here for a backend that cannot sort.

use super::{error, BackendResult, Image, ImageBackend, RequestContext};

/// A Glance v2 image list request.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    /// Glance v2 filters, in the order they are sent (`name`, `status`,
    /// `updated_at=gte:…`, `min_ram`, any extra property name, …).
    pub filters: Vec<(String, String)>,
    /// Total number of images wanted (client side); `None` = all of them.
    pub limit: Option<u64>,
    pub marker: Option<String>,
}

/// List parameters beyond [`ListQuery`] that Glance v2 takes (the Glance v1
/// surface needs them): sort order and which shared images count.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// One of Glance's sort keys (`name, status, container_format, disk_format,
    /// size, id, created_at, updated_at`); `None` = `created_at`.
    pub sort_key: Option<String>,
    /// `asc` or `desc`; `None` = `desc`.
    pub sort_dir: Option<String>,
    /// Glance v2 `member_status` (`all` also lists shared images whose
    /// membership is pending or rejected); `None` = Glance's `accepted`.
    pub member_status: Option<String>,
}

/// Glance's sort keys (v1 registry and v2 list).
pub const SORT_KEYS: &[&str] = &[
    "name",
    "status",
    "container_format",
    "disk_format",
    "size",
    "id",
    "created_at",
    "updated_at",
];

/// Sort `images` as Glance's database does: by `key` in direction `desc`, then
/// by `created_at` and `id` in the same direction; nulls sort first ascending.
pub fn sort_images(images: &mut [Image], key: &str, desc: bool) {
    use std::cmp::Ordering;
    fn field(img: &Image, key: &str) -> (Option<i64>, Option<String>) {
        let s = |v: &Option<String>| (None, v.clone());
        match key {
            "name" => s(&img.name),
            "status" => (None, Some(img.status.clone())),
            "container_format" => s(&img.container_format),
            "disk_format" => s(&img.disk_format),
            "size" => (img.size, None),
            "id" => (None, Some(img.id.clone())),
            "updated_at" => (None, Some(img.updated_at.clone())),
            _ => (None, Some(img.created_at.clone())),
        }
    }
    images.sort_by(|a, b| {
        let mut ord = Ordering::Equal;
        for k in [key, "created_at", "id"] {
            ord = field(a, k).cmp(&field(b, k));
            if ord != Ordering::Equal {
                break;
            }
        }
        if desc {
            ord.reverse()
        } else {
            ord
        }
    });
}

/// `backend.list` sorted as `options` say, then paged by `query`'s marker
/// and limit (`options.member_status` is not looked at).
pub async fn list_sorted<B: ImageBackend + ?Sized>(
    backend: &B,
    ctx: &RequestContext,
    query: &ListQuery,
    options: &ListOptions,
) -> BackendResult<Vec<Image>> {
    if options.sort_key.is_none() && options.sort_dir.is_none() {
        return backend.list(ctx, query).await;
    }
    let everything = ListQuery {
        filters: query.filters.clone(),
        limit: None,
        marker: None,
    };
    let mut images = backend.list(ctx, &everything).await?;
    let key = options.sort_key.as_deref().unwrap_or("created_at");
    sort_images(&mut images, key, options.sort_dir.as_deref() != Some("asc"));
    let start = match &query.marker {
        Some(m) => {
            images
                .iter()
                .position(|i| &i.id == m)
                .ok_or_else(|| error::bad_marker(m))?
                + 1
        }
        None => 0,
    };
    let limit = usize::try_from(query.limit.unwrap_or(u64::MAX)).unwrap_or(usize::MAX);
    Ok(images.into_iter().skip(start).take(limit).collect())
}
