//! The two Glances' view of an image: read, compared (times masked), and the
//! service's side brought back to Nova's after a divergence, so that one
//! difference does not make every later request on that image differ.

use super::support::raw;
// Glance's base attributes: every other key is an extra property.
use nova_images_proxy::backend::GLANCE_BASE_PROPERTIES as BASE;
use serde_json::{json, Value};

/// `GET /v2/images/{id}` on `glance`: the status and the image, times removed.
pub fn image(glance: &str, id: &str) -> (u16, Value) {
    let req = raw::request(
        "GET",
        format!("/v2/images/{id}").as_bytes(),
        &[("X-Auth-Token", b"admin:admin")],
        None,
    );
    let r = raw::exchange(glance, &req).unwrap_or_else(|e| panic!("GET {glance}/v2/images/{id}: {e}"));
    let mut v = r.json().unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.remove("created_at");
        o.remove("updated_at");
        // Glance keeps tags as a set.
        if let Some(tags) = o.get_mut("tags").and_then(Value::as_array_mut) {
            tags.sort_by_key(|t| t.to_string());
        }
    }
    (r.status, v)
}

/// Make the image `id` in `ours` hold what `theirs` holds: its extra
/// properties and visibility (a JSON-patch straight to Glance). Whether extra
/// properties were written: then the two Glances may list them in another
/// order from now on (Glance lists them in the order it first stored each
/// key, a deleted one keeping its place, which a patch cannot replay).
pub fn resync(ours: &str, id: &str, theirs: &Value, mine: &Value) -> bool {
    let (Some(t), Some(m)) = (theirs.as_object(), mine.as_object()) else {
        return false;
    };
    let mut ops = Vec::new();
    for k in m.keys().filter(|k| !BASE.contains(&k.as_str()) && !t.contains_key(*k)) {
        ops.push(json!({"op": "remove", "path": format!("/{}", pointer(k))}));
    }
    for (k, v) in t {
        if (!BASE.contains(&k.as_str()) || k == "visibility") && m.get(k) != Some(v) {
            ops.push(json!({"op": if m.contains_key(k) {"replace"} else {"add"}, "path": format!("/{}", pointer(k)), "value": v}));
        }
    }
    if ops.is_empty() {
        return false;
    }
    let properties = ops.iter().any(|op| op["path"] != "/visibility");
    let body = serde_json::to_vec(&ops).expect("json");
    let req = raw::request(
        "PATCH",
        format!("/v2/images/{id}").as_bytes(),
        &[
            ("X-Auth-Token", b"admin:admin"),
            ("Content-Type", b"application/openstack-images-v2.1-json-patch"),
        ],
        Some(&body),
    );
    let r = raw::exchange(ours, &req).unwrap_or_else(|e| panic!("PATCH {ours}/v2/images/{id}: {e}"));
    assert_eq!(r.status, 200, "resync of {id}: {}", r.text());
    properties
}

/// A JSON pointer token for `key`.
fn pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}
