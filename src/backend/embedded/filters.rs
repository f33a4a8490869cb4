//! Glance v2 list semantics over stored records: visibility, filters,
//! marker and limit, with Glance's error messages.

use super::catalog::{Catalog, View};
use super::policy;
use crate::backend::{BackendError, Image, RequestContext};

use crate::backend::error::{bad_marker, bad_request};

enum Op {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
}

fn split_op(value: &str) -> (Op, &str) {
    for (prefix, op) in [
        ("gte:", Op::Gte),
        ("gt:", Op::Gt),
        ("lte:", Op::Lte),
        ("lt:", Op::Lt),
        ("neq:", Op::Neq),
        ("eq:", Op::Eq),
    ] {
        if let Some(rest) = value.strip_prefix(prefix) {
            return (op, rest);
        }
    }
    (Op::Eq, value)
}

fn parse_time(value: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return Some(t.with_timezone(&chrono::Utc));
    }
    // oslo's parse_isotime also takes a time without zone (UTC) and a date.
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(value, fmt) {
            return Some(t.and_utc());
        }
    }
    chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

type Pred = Box<dyn Fn(&View) -> bool>;

fn compare<T: PartialOrd>(op: &Op, a: T, b: T) -> bool {
    match op {
        Op::Eq => a == b,
        Op::Neq => a != b,
        Op::Gt => a > b,
        Op::Gte => a >= b,
        Op::Lt => a < b,
        Op::Lte => a <= b,
    }
}

/// One Glance filter as a predicate, or Glance's 400 for it.
fn predicate(key: &str, value: &str) -> Result<Pred, BackendError> {
    let v = value.to_string();
    Ok(match key {
        "created_at" | "updated_at" => {
            let (op, raw) = split_op(value);
            let at = parse_time(raw).ok_or_else(|| {
                bad_request(&format!(
                    "Bad \"{key}\" query filter format. Use ISO 8601 DateTime notation."
                ))
            })?;
            let key = key.to_string();
            Box::new(move |r| {
                let t = if key == "created_at" {
                    r.created_us()
                } else {
                    r.updated_at()
                };
                parse_time(t).is_some_and(|t| compare(&op, t, at))
            })
        }
        "size_min" | "size_max" => {
            let n: i64 = value
                .parse()
                .map_err(|_| bad_request(&format!("Invalid value for option {key}: {value}")))?;
            let min = key == "size_min";
            Box::new(move |r| r.size().is_some_and(|s| if min { s >= n } else { s <= n }))
        }
        // Integer columns: a value that is not an integer matches nothing.
        "min_ram" | "min_disk" | "size" | "virtual_size" => {
            let n = value.trim().parse::<i64>().ok();
            let key = key.to_string();
            Box::new(move |r| {
                let col = match key.as_str() {
                    "min_ram" => Some(r.min_ram()),
                    "min_disk" => Some(r.min_disk()),
                    "size" => r.size(),
                    _ => r.virtual_size(),
                };
                n.is_some() && col == n
            })
        }
        "protected" | "os_hidden" => {
            let b = match value.to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(bad_request(&format!(
                        "Invalid value '{value}' for '{key}' filter. Valid values are 'true' or 'false'."
                    )))
                }
            };
            let prot = key == "protected";
            Box::new(move |r| (if prot { r.protected() } else { r.os_hidden() }) == b)
        }
        "name" => Box::new(move |r| r.name() == Some(v.as_str())),
        "status" => Box::new(move |r| r.status() == v),
        "visibility" => Box::new(move |r| r.visibility() == v),
        "owner" => Box::new(move |r| r.owner() == Some(v.as_str())),
        "checksum" => Box::new(move |r| r.checksum() == Some(v.as_str())),
        "container_format" => Box::new(move |r| r.container_format() == Some(v.as_str())),
        "disk_format" => Box::new(move |r| r.disk_format() == Some(v.as_str())),
        "id" => Box::new(move |r| r.id() == v),
        "tag" => Box::new(move |r| r.tags().any(|t| t == v)),
        // Anything else is an extra property, matched exactly.
        other => {
            let k = other.to_string();
            Box::new(move |r| r.property(&k) == Some(v.as_str()))
        }
    })
}

/// Apply `filters`, `marker` and `limit` to the catalogue (already in
/// Glance's order); only the selected images are copied.
pub fn select(
    catalog: &Catalog,
    ctx: &RequestContext,
    filters: &[(String, String)],
    marker: Option<&str>,
    limit: Option<u64>,
) -> Result<Vec<Image>, BackendError> {
    let found = positions(catalog, ctx, filters, marker, limit)?;
    Ok(found.into_iter().map(|i| catalog.at(i).image()).collect())
}

/// Where the images [`select`] selects are in the catalogue, in order.
pub fn positions(
    catalog: &Catalog,
    ctx: &RequestContext,
    filters: &[(String, String)],
    marker: Option<&str>,
    limit: Option<u64>,
) -> Result<Vec<usize>, BackendError> {
    policy::may_list(ctx)?;
    // `member_status` is a list parameter, not a filter.
    let member_status = filters
        .iter()
        .rev()
        .find(|(k, _)| k == "member_status")
        .map(|(_, v)| v.as_str());
    let preds: Vec<Pred> = filters
        .iter()
        .filter(|(k, _)| k != "member_status")
        .map(|(k, v)| predicate(k, v))
        .collect::<Result<_, _>>()?;
    let has_visibility = filters.iter().any(|(k, _)| k == "visibility");
    let mut start = 0;
    // The marker only has to be an image the requester may see (not one the
    // listing shows): paging continues after its place in the order, found
    // through the index (a deep page costs no scan to its marker).
    if let Some(m) = marker {
        let pos = catalog
            .position(m)
            .filter(|&i| {
                let r = catalog.at(i);
                policy::can_see(r.seen(), ctx, r.membership(&ctx.project_id))
            })
            .ok_or_else(|| bad_marker(m))?;
        start = pos + 1;
    }
    let limit = usize::try_from(limit.unwrap_or(u64::MAX)).unwrap_or(usize::MAX);
    Ok(catalog
        .from(start)
        .filter(|r| {
            let membership = r.membership(&ctx.project_id);
            policy::listed(r.seen(), ctx, has_visibility, membership, member_status)
        })
        .filter(|r| preds.iter().all(|p| p(r)))
        .take(limit)
        .map(|r| r.index())
        .collect())
}
