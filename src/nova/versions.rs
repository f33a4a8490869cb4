//! Version discovery documents (`nova/api/openstack/compute/versions.py`).

use super::views::url_join;
use crate::nova::microversion::{Version, MIN};
use serde_json::{json, Value};

const V20_UPDATED: &str = "2025-07-04T12:00:00Z";
const V21_UPDATED: &str = "2013-07-23T11:33:21Z";

fn entry(id: &str, max: Version) -> (Value, Value, Value, Value) {
    // (status, version, min_version, updated)
    if id == "v2.0" {
        (json!("DEPRECATED"), json!(""), json!(""), json!(V20_UPDATED))
    } else {
        (
            json!("CURRENT"),
            json!(max.to_string()),
            json!(MIN.to_string()),
            json!(V21_UPDATED),
        )
    }
}

fn media_type(id: &str) -> Value {
    let v = if id == "v2.0" { "2" } else { "2.1" };
    json!([{"base": "application/json", "type": format!("application/vnd.openstack.compute+json;version={v}")}])
}

/// `GET /`: both versions, self links `<host>/v2/` and `<host>/v2.1/`.
pub fn root(host_url: &str, max: Version) -> Value {
    let mut versions = Vec::new();
    for (id, path) in [("v2.0", "v2"), ("v2.1", "v2.1")] {
        let (status, version, min_version, updated) = entry(id, max);
        versions.push(json!({
            "id": id, "status": status, "version": version, "min_version": min_version, "updated": updated,
            "links": [{"rel": "self", "href": url_join(&[host_url, path, ""])}],
        }));
    }
    json!({ "versions": versions })
}

/// One version document; `self_url` is the version's application URL.
pub fn show(id: &str, self_url: &str, max: Version) -> Value {
    let (status, version, min_version, updated) = entry(id, max);
    json!({"version": {
        "id": id, "status": status, "version": version, "min_version": min_version, "updated": updated,
        "links": [
            {"rel": "self", "href": format!("{}/", self_url.trim_end_matches('/'))},
            {"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"},
        ],
        "media-types": media_type(id),
    }})
}

/// 300 Multiple Choices for an unversioned path (`path` as webob's `req.path`).
pub fn choices(base_url: &str, path: &str) -> Value {
    let mut out = Vec::new();
    for (id, prefix, status) in [("v2.0", "v2", "DEPRECATED"), ("v2.1", "v2.1", "CURRENT")] {
        out.push(json!({
            "id": id, "status": status,
            "links": [{"rel": "self", "href": url_join(&[base_url, prefix, path])}],
            "media-types": media_type(id),
        }));
    }
    json!({ "choices": out })
}

pub fn known(id: &str) -> bool {
    id == "v2.0" || id == "v2.1"
}
