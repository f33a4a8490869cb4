//! Glance v2's views: an image as `GET /v2/images/{id}` shows it, the
//! version document. Pure functions.

use crate::backend::Image;
use serde_json::{json, Value};

/// The image as Glance v2 serializes it: extra properties first, then the
/// core attributes, in Glance's key order.
pub fn image(image: &Image) -> Value {
    let mut m = image.properties.clone();
    m.insert("name".into(), opt_str(&image.name));
    m.insert("disk_format".into(), opt_str(&image.disk_format));
    m.insert("container_format".into(), opt_str(&image.container_format));
    m.insert("visibility".into(), Value::String(image.visibility.clone()));
    m.insert("size".into(), image.size.map_or(Value::Null, Value::from));
    m.insert(
        "virtual_size".into(),
        image.virtual_size.map_or(Value::Null, Value::from),
    );
    m.insert("status".into(), Value::String(image.status.clone()));
    m.insert("checksum".into(), opt_str(&image.checksum));
    m.insert("protected".into(), Value::Bool(image.protected));
    m.insert("min_ram".into(), Value::from(image.min_ram));
    m.insert("min_disk".into(), Value::from(image.min_disk));
    m.insert("owner".into(), opt_str(&image.owner));
    m.insert("os_hidden".into(), Value::Bool(image.os_hidden));
    m.insert("os_hash_algo".into(), opt_str(&image.os_hash_algo));
    m.insert("os_hash_value".into(), opt_str(&image.os_hash_value));
    m.insert("id".into(), Value::String(image.id.clone()));
    m.insert("created_at".into(), Value::String(image.created_at.clone()));
    m.insert("updated_at".into(), Value::String(image.updated_at.clone()));
    m.insert("tags".into(), Value::from(image.tags.clone()));
    m.insert("self".into(), Value::String(format!("/v2/images/{}", image.id)));
    m.insert("file".into(), Value::String(format!("/v2/images/{}/file", image.id)));
    m.insert("schema".into(), Value::String("/v2/schemas/image".into()));
    Value::Object(m)
}

fn opt_str(v: &Option<String>) -> Value {
    v.as_ref().map_or(Value::Null, |s| Value::String(s.clone()))
}

/// Glance's version document, its links under `base`.
/// `GET /v2/images/{id}/members`'s body.
pub fn members(members: &[crate::backend::Member]) -> Value {
    let list: Vec<Value> = members
        .iter()
        .map(|m| {
            serde_json::json!({
                "created_at": m.created_at,
                "image_id": m.image_id,
                "member_id": m.member_id,
                "schema": "/v2/schemas/member",
                "status": m.status,
                "updated_at": m.updated_at,
            })
        })
        .collect();
    serde_json::json!({"members": list, "schema": "/v2/schemas/members"})
}

pub fn versions(base: &str) -> Value {
    let list: Vec<Value> = [
        ("v2.9", "CURRENT"),
        ("v2.8", "SUPPORTED"),
        ("v2.7", "SUPPORTED"),
        ("v2.6", "SUPPORTED"),
    ]
    .into_iter()
    .map(|(id, status)| json!({"id": id, "status": status, "links": [{"rel": "self", "href": format!("{base}/v2/")}]}))
    .collect();
    json!({ "versions": list })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_show_properties_first_then_glances_attributes() {
        let mut img = Image {
            id: "i".into(),
            status: "queued".into(),
            visibility: "shared".into(),
            ..Default::default()
        };
        img.properties.insert("os_distro".into(), json!("debian"));
        let v = image(&img);
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys[..3], ["os_distro", "name", "disk_format"]);
        assert_eq!(v["self"], "/v2/images/i");
        assert_eq!(v["file"], "/v2/images/i/file");
        assert_eq!(v["size"], Value::Null);
        let vs = versions("http://h");
        assert_eq!(vs["versions"][0]["links"][0]["href"], "http://h/v2/");
    }
}
