//! `GET /v1/images` and `GET /v1/images/detail`: Glance v1's query checks, and
//! their translation into Glance v2 list requests.
//!
//! Checks, in Glance v1's order: first the API server's (`Bad value passed to
//! filter …` for `size_min`, `size_max`, `min_ram` (non-negative integers),
//! `protected` and `is_public` (`none/true/false/1/0`)), then its registry's
//! (`changes-since`, `protected`, `limit`, `sort_key`, `sort_dir`, `marker`),
//! whose messages reach the client wrapped in the API server's own 400 page.
//! Unknown parameters are ignored, as Glance v1 did.
//!
//! Translation to Glance v2 (`ImageBackend::list_with`):
//! - `name`, `status`, `container_format`, `disk_format`, `min_ram`,
//!   `min_disk`, `size_min`, `size_max`: the same v2 filter (same database
//!   semantics: equality, `>=`/`<=` for the ranges);
//! - `protected`: v2 `protected=true|false`;
//! - `changes-since=T`: v2 `updated_at=gt:T` (T normalised to UTC);
//! - `property-<key>=v`: v2 `<key>=v` (v2 treats unknown keys as properties);
//! - `limit` (default 25, at most 1000), `marker`, `sort_key`, `sort_dir`:
//!   v2's; `member_status=all` is always sent (v1 listed shared images
//!   whatever their membership status).
//!
//! Filtered here, because Glance v2 cannot express them (the listing then
//! pages through v2 until `limit` matches are found):
//! - `is_public` for admins (non-admins: ignored, as Glance v1's registry
//!   did): absent or true → v1's "as a regular user" view, kept here as
//!   public images plus those the caller's project owns (shared images the
//!   project is a member of are not known without one call per image);
//!   `false` → images that are not public; `none` → everything v2 lists;
//! - `property-<key>` where `<key>` means something else to v2 (a base
//!   attribute or list parameter such as `name`, `owner`, `tag`, `limit`, a
//!   `*_min`/`*_max` range, or an empty key): compared with the image's
//!   extra properties here.
//!
//! Not reproduced: v1's `changes-since` also listed deleted images (v2 cannot
//! list those); errors v2 raises for filters v1 passed to its database (e.g.
//! `name=a:b`, an unknown operator) are v2's 400 message, where Glance v1
//! answered 500.

use super::oslo::{is_uuid_like, parse_isotime, py_int};
use crate::backend::{BackendError, Image, ImageBackend, ListOptions, ListQuery, RequestContext, SORT_KEYS};
use crate::edge::params::last;
use crate::edge::webob::HttpError;

/// Glance v1's `SUPPORTED_FILTERS` (API server).
const FILTERS: &[&str] = &[
    "name",
    "status",
    "container_format",
    "disk_format",
    "min_ram",
    "min_disk",
    "size_min",
    "size_max",
    "is_public",
    "changes-since",
    "protected",
];

/// Keys Glance v2 does not read as extra-property filters.
const V2_NOT_PROPERTIES: &[&str] = &[
    "limit",
    "marker",
    "sort",
    "sort_key",
    "sort_dir",
    "member_status",
    "tag",
    "changes-since",
    "deleted",
    "deleted_at",
];

/// The default and largest page (`limit_param_default`, `api_limit_max`).
const LIMIT_DEFAULT: i128 = 25;
const LIMIT_MAX: i128 = 1000;

/// What the caller asked for, checked.
#[derive(Debug, Default)]
pub struct V1Query {
    /// Glance v2 filters.
    pub filters: Vec<(String, String)>,
    /// Filters applied here.
    pub local: Vec<Local>,
    pub limit: u64,
    pub marker: Option<String>,
    pub sort_key: Option<String>,
    pub sort_dir: Option<String>,
}

/// A filter Glance v2 cannot apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Local {
    /// Extra property `key` equals the value.
    Property(String, String),
    /// Public, or owned by this project.
    PublicOrOwnedBy(String),
    NotPublic,
}

impl Local {
    fn matches(&self, img: &Image) -> bool {
        match self {
            Local::Property(k, v) => img
                .properties
                .get(k)
                .is_some_and(|p| !p.is_null() && crate::edge::pyjson::py_str(p) == *v),
            Local::PublicOrOwnedBy(project) => {
                img.visibility == "public" || (!project.is_empty() && img.owner.as_deref() == Some(project))
            }
            Local::NotPublic => img.visibility != "public",
        }
    }
}

fn v2_reads_as_property(key: &str) -> bool {
    !key.is_empty()
        && !crate::backend::GLANCE_BASE_PROPERTIES.contains(&key)
        && !V2_NOT_PROPERTIES.contains(&key)
        && !key.ends_with("_min")
        && !key.ends_with("_max")
}

fn v1_bool(v: &str) -> Option<bool> {
    match v.to_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// Check `params` as Glance v1 did and translate them (see the module doc).
pub fn parse(params: &[(String, String)], ctx: &RequestContext) -> Result<V1Query, HttpError> {
    // The API server's checks (`glance/api/v1/filters.py`), in query order.
    for (key, _) in params {
        if !(FILTERS.contains(&key.as_str()) || key.starts_with("property-")) {
            continue;
        }
        let value = last(params, key).unwrap_or_default();
        let ok = match key.as_str() {
            "size_max" | "size_min" | "min_ram" => py_int(value).is_some_and(|n| n >= 0),
            "protected" | "is_public" => {
                matches!(value.to_lowercase().as_str(), "none" | "true" | "false" | "1" | "0")
            }
            _ => true,
        };
        if !ok {
            return Err(HttpError::positional(
                400,
                format!("Bad value passed to filter {key} got {value}"),
            ));
        }
    }
    let registry = |e: HttpError| HttpError::from_registry(e);
    let mut q = V1Query::default();
    // The registry's checks (`glance/registry/api/v1/images.py`), in its order.
    let mut updated_since = None;
    if let Some(v) = last(params, "changes-since") {
        let t =
            parse_isotime(v).ok_or_else(|| registry(HttpError::positional(400, "Unrecognized changes-since value")))?;
        updated_since = Some(t);
    }
    let protected = match last(params, "protected") {
        Some(v) => {
            Some(v1_bool(v).ok_or_else(|| registry(HttpError::positional(400, "protected must be True, or False")))?)
        }
        None => None,
    };
    let limit = match last(params, "limit") {
        Some(v) => py_int(v).ok_or_else(|| registry(HttpError::positional(400, "limit param must be an integer")))?,
        None => LIMIT_DEFAULT,
    };
    if limit < 0 {
        return Err(registry(HttpError::positional(400, "limit param must be positive")));
    }
    q.limit = limit.min(LIMIT_MAX) as u64;
    if let Some(k) = last(params, "sort_key") {
        if !SORT_KEYS.contains(&k) {
            return Err(registry(HttpError::explained(
                400,
                format!("Unsupported sort_key. Acceptable values: {}", SORT_KEYS.join(", ")),
            )));
        }
        q.sort_key = Some(k.to_string());
    }
    if let Some(d) = last(params, "sort_dir") {
        if d != "asc" && d != "desc" {
            return Err(registry(HttpError::explained(
                400,
                "Unsupported sort_dir. Acceptable values: asc, desc",
            )));
        }
        q.sort_dir = Some(d.to_string());
    }
    if let Some(m) = last(params, "marker").filter(|m| !m.is_empty()) {
        if !is_uuid_like(m) {
            return Err(registry(HttpError::explained(400, "Invalid marker format")));
        }
        q.marker = Some(m.to_string());
    }

    // Translation, one filter per name (the last value), in query order.
    let mut seen: Vec<&str> = Vec::new();
    for (key, _) in params {
        if seen.contains(&key.as_str()) {
            continue;
        }
        seen.push(key);
        let value = last(params, key).unwrap_or_default();
        match key.as_str() {
            "name" | "status" | "container_format" | "disk_format" | "min_disk" => {
                q.filters.push((key.clone(), value.to_string()))
            }
            "min_ram" | "size_min" | "size_max" => {
                let n = py_int(value).unwrap_or_default();
                q.filters.push((key.clone(), n.to_string()))
            }
            "protected" => {
                if let Some(p) = protected {
                    q.filters.push(("protected".into(), p.to_string()));
                }
            }
            "changes-since" => {
                if let Some(t) = updated_since {
                    let t = t.format("%Y-%m-%dT%H:%M:%S%.6fZ");
                    q.filters.push(("updated_at".into(), format!("gt:{t}")));
                }
            }
            k => {
                if let Some(prop) = k.strip_prefix("property-") {
                    if v2_reads_as_property(prop) {
                        q.filters.push((prop.to_string(), value.to_string()));
                    } else {
                        q.local.push(Local::Property(prop.to_string(), value.to_string()));
                    }
                }
            }
        }
    }
    // Only admins' `is_public` counts (the registry reads it for admins only).
    if ctx.is_admin() {
        match last(params, "is_public").map(str::to_lowercase).as_deref() {
            Some("none") => {}
            Some(v) if v1_bool(v) == Some(false) => q.local.push(Local::NotPublic),
            _ => q.local.push(Local::PublicOrOwnedBy(ctx.project_id.clone())),
        }
    }
    Ok(q)
}

/// The images of `query`, from `backend`.
pub async fn fetch(backend: &dyn ImageBackend, ctx: &RequestContext, q: &V1Query) -> Result<Vec<Image>, BackendError> {
    let options = ListOptions {
        sort_key: q.sort_key.clone(),
        sort_dir: q.sort_dir.clone(),
        member_status: Some("all".into()),
    };
    if q.local.is_empty() || q.limit == 0 {
        let query = ListQuery {
            filters: q.filters.clone(),
            limit: Some(q.limit),
            marker: q.marker.clone(),
        };
        return backend.list_with(ctx, &query, &options).await;
    }
    // Page through v2 until `limit` images pass the local filters.
    let page = q.limit.clamp(100, 1000);
    let mut out = Vec::new();
    let mut marker = q.marker.clone();
    loop {
        let query = ListQuery {
            filters: q.filters.clone(),
            limit: Some(page),
            marker: marker.clone(),
        };
        let images = backend.list_with(ctx, &query, &options).await?;
        let got = images.len() as u64;
        marker = images.last().map(|i| i.id.clone());
        for img in images {
            if q.local.iter().all(|f| f.matches(&img)) {
                out.push(img);
                if out.len() as u64 == q.limit {
                    return Ok(out);
                }
            }
        }
        if got < page {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(admin: bool) -> RequestContext {
        crate::auth::noauth2_context(Some(if admin { "admin:p1" } else { "demo:p1" }), "req-1").unwrap()
    }

    fn p(q: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    fn err(q: &str) -> String {
        let e = parse(&p(q), &ctx(false)).unwrap_err();
        String::from_utf8(e.page(crate::edge::webob::WebobFormat::Plain, "GET").1).unwrap()
    }

    #[test]
    fn api_and_registry_errors() {
        assert!(err("size_min=-1").ends_with("\n\n Bad value passed to filter size_min got -1  "));
        assert!(err("is_public=maybe").contains("Bad value passed to filter is_public got maybe"));
        assert!(err("protected=none").contains("protected must be True, or False"));
        assert!(err("limit=x").contains("limit param must be an integer"));
        assert!(err("limit=-1").contains("limit param must be positive"));
        assert!(err("sort_key=owner").contains(
            "Unsupported sort_key. Acceptable values: name, status, container_format, disk_format, size, id, created_at, updated_at"
        ));
        assert!(err("sort_dir=up").contains("Unsupported sort_dir. Acceptable values: asc, desc"));
        assert!(err("marker=abc").contains("Invalid marker format"));
        assert!(err("changes-since=yesterday").contains("Unrecognized changes-since value"));
        // API-server checks come before the registry's, whatever the query order.
        assert!(err("limit=x&min_ram=a").contains("Bad value passed to filter min_ram got a"));
        // The last value counts.
        assert!(parse(&p("limit=x&limit=3"), &ctx(false)).is_ok());
    }

    #[test]
    fn translation() {
        let q = parse(
            &p("name=a&foo=bar&protected=TRUE&changes-since=2024-01-02T03:04:05%2B01:00&property-os_distro=u&property-owner=x&size_min=%2B5&limit=2000&sort_key=name&marker="),
            &ctx(false),
        )
        .unwrap();
        assert_eq!(
            q.filters,
            vec![
                ("name".to_string(), "a".to_string()),
                ("protected".to_string(), "true".to_string()),
                ("updated_at".to_string(), "gt:2024-01-02T02:04:05.000000Z".to_string()),
                ("os_distro".to_string(), "u".to_string()),
                ("size_min".to_string(), "5".to_string()),
            ]
        );
        assert_eq!(q.local, vec![Local::Property("owner".into(), "x".into())]);
        assert_eq!(
            (q.limit, q.marker.as_deref(), q.sort_key.as_deref()),
            (1000, None, Some("name"))
        );
        // is_public: ignored for users; for admins, a view kept here.
        assert!(parse(&p("is_public=false"), &ctx(false)).unwrap().local.is_empty());
        assert_eq!(
            parse(&p(""), &ctx(true)).unwrap().local,
            vec![Local::PublicOrOwnedBy("p1".into())]
        );
        assert_eq!(
            parse(&p("is_public=0"), &ctx(true)).unwrap().local,
            vec![Local::NotPublic]
        );
        assert!(parse(&p("is_public=None"), &ctx(true)).unwrap().local.is_empty());
        assert_eq!(parse(&p(""), &ctx(false)).unwrap().limit, 25);
    }
}
