//! Pure conversions from the domain `Image` to Nova's JSON
//! (`nova/api/openstack/compute/views/images.py`). No I/O.

use crate::backend::Image;
use serde_json::{json, Map, Value};

/// Where links point, worked out once per request.
#[derive(Clone, Debug)]
pub struct Links {
    /// `<compute prefix>/v2.1` (Nova's prefixed `application_url`).
    pub app_url: String,
    /// `app_url` without its trailing version segment.
    pub bookmark_url: String,
    /// The token's project id when it occurs in the request URL, else empty.
    pub project_id: String,
    /// Base of `alternate` links (the Glance endpoint, prefixed).
    pub glance_url: String,
}

pub use crate::edge::links::url_join;

impl Links {
    pub fn href(&self, collection: &str, id: &str) -> String {
        url_join(&[&self.app_url, &self.project_id, collection, id])
    }

    pub fn bookmark(&self, collection: &str, id: &str) -> String {
        url_join(&[&self.bookmark_url, &self.project_id, collection, id])
    }

    fn image_links(&self, id: &str) -> Value {
        json!([
            {"rel": "self", "href": self.href("images", id)},
            {"rel": "bookmark", "href": self.bookmark("images", id)},
            {"rel": "alternate", "type": "application/vnd.openstack.image", "href": format!("{}/images/{}", self.glance_url, id)},
        ])
    }
}

/// `(status, progress)` for a Glance status (`_get_status`, `_get_progress`).
pub fn status_and_progress(glance_status: &str) -> (&'static str, u8) {
    match glance_status {
        "active" => ("ACTIVE", 100),
        "queued" => ("SAVING", 25),
        "saving" => ("SAVING", 50),
        "deleted" | "pending_delete" => ("DELETED", 0),
        "killed" => ("ERROR", 0),
        _ => ("UNKNOWN", 0),
    }
}

/// Nova's `utils.isotime(parse_isotime(t))`: seconds precision, `Z` for UTC.
pub fn format_date(glance_time: &str) -> Value {
    if glance_time.is_empty() {
        return Value::Null;
    }
    match chrono::DateTime::parse_from_rfc3339(glance_time) {
        Ok(t) if t.offset().local_minus_utc() == 0 => Value::String(t.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        Ok(t) => Value::String(t.format("%Y-%m-%dT%H:%M:%S%:z").to_string()),
        // Glance always sends RFC 3339; pass anything else through untouched.
        Err(_) => Value::String(glance_time.to_string()),
    }
}

/// `oslo_utils.strutils.bool_from_string` (non-strict).
pub fn bool_from_string(s: &str) -> bool {
    matches!(
        s.trim().to_ascii_lowercase().as_str(),
        "1" | "t" | "true" | "on" | "y" | "yes"
    )
}

/// Nova's view of an image's extra properties: `block_device_mapping` and
/// `mappings` are JSON-decoded (`nova/image/glance.py` `_convert_from_string`).
pub fn metadata(image: &Image) -> Map<String, Value> {
    let mut props = image.properties.clone();
    for key in ["block_device_mapping", "mappings"] {
        if let Some(Value::String(s)) = props.get(key) {
            // Nova answers 500 when these are not JSON; we keep the string.
            if let Ok(decoded) = serde_json::from_str::<Value>(s) {
                props.insert(key.to_string(), decoded);
            }
        }
    }
    props
}

/// The basic view (`GET /images` items).
pub fn basic(image: &Image, links: &Links) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(image.id));
    m.insert("name".into(), json!(image.name));
    m.insert("links".into(), links.image_links(&image.id));
    Value::Object(m)
}

/// The detailed view (`GET /images/detail` items, `GET /images/{id}`).
pub fn detail(image: &Image, links: &Links) -> Value {
    let (status, progress) = status_and_progress(&image.status);
    let meta = metadata(image);
    let mut m = Map::new();
    m.insert("id".into(), json!(image.id));
    m.insert("name".into(), json!(image.name));
    m.insert("minRam".into(), json!(image.min_ram));
    m.insert("minDisk".into(), json!(image.min_disk));
    let instance_uuid = meta.get("instance_uuid").filter(|v| !v.is_null()).cloned();
    let auto_disk_config = meta.get("auto_disk_config").filter(|v| !v.is_null()).cloned();
    m.insert("metadata".into(), Value::Object(meta));
    m.insert("created".into(), format_date(&image.created_at));
    m.insert("updated".into(), format_date(&image.updated_at));
    m.insert("status".into(), json!(status));
    m.insert("progress".into(), json!(progress));
    m.insert("OS-EXT-IMG-SIZE:size".into(), json!(image.size.unwrap_or(0)));
    m.insert("links".into(), links.image_links(&image.id));
    if let Some(uuid) = instance_uuid {
        let uuid = match &uuid {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        m.insert(
            "server".into(),
            json!({"id": uuid, "links": [
                {"rel": "self", "href": links.href("servers", &uuid)},
                {"rel": "bookmark", "href": links.bookmark("servers", &uuid)},
            ]}),
        );
    }
    if let Some(adc) = auto_disk_config {
        let on = match &adc {
            Value::String(s) => bool_from_string(s),
            Value::Bool(b) => *b,
            other => bool_from_string(&other.to_string()),
        };
        m.insert("OS-DCF:diskConfig".into(), json!(if on { "AUTO" } else { "MANUAL" }));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(project: &str) -> Links {
        Links {
            app_url: "http://h/v2.1".into(),
            bookmark_url: "http://h".into(),
            project_id: project.into(),
            glance_url: "http://g:9292".into(),
        }
    }

    fn image() -> Image {
        Image {
            id: "i1".into(),
            name: Some("n".into()),
            status: "queued".into(),
            created_at: "2024-01-07T00:00:00.123456Z".into(),
            updated_at: "2024-01-07T00:00:01Z".into(),
            ..Default::default()
        }
    }

    #[test]
    fn status_table() {
        let table = [
            ("active", ("ACTIVE", 100)),
            ("queued", ("SAVING", 25)),
            ("saving", ("SAVING", 50)),
            ("deleted", ("DELETED", 0)),
            ("pending_delete", ("DELETED", 0)),
            ("killed", ("ERROR", 0)),
            ("deactivated", ("UNKNOWN", 0)),
            ("importing", ("UNKNOWN", 0)),
        ];
        for (glance, nova) in table {
            assert_eq!(status_and_progress(glance), nova, "{glance}");
        }
    }

    #[test]
    fn detail_view_has_nova_keys_in_order() {
        let mut img = image();
        img.properties.insert("instance_uuid".into(), json!("u1"));
        img.properties.insert("auto_disk_config".into(), json!("false"));
        img.properties
            .insert("block_device_mapping".into(), json!("[{\"boot_index\": 0}]"));
        let v = detail(&img, &links("p1"));
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "id",
                "name",
                "minRam",
                "minDisk",
                "metadata",
                "created",
                "updated",
                "status",
                "progress",
                "OS-EXT-IMG-SIZE:size",
                "links",
                "server",
                "OS-DCF:diskConfig"
            ]
        );
        assert_eq!(v["created"], "2024-01-07T00:00:00Z");
        assert_eq!(v["OS-EXT-IMG-SIZE:size"], 0);
        assert_eq!(v["OS-DCF:diskConfig"], "MANUAL");
        assert_eq!(v["metadata"]["block_device_mapping"], json!([{"boot_index": 0}]));
        assert_eq!(v["server"]["links"][0]["href"], "http://h/v2.1/p1/servers/u1");
        assert_eq!(v["links"][1]["href"], "http://h/p1/images/i1");
        assert_eq!(v["links"][2]["href"], "http://g:9292/images/i1");
    }

    #[test]
    fn disk_config_follows_bool_from_string() {
        for (value, expected) in [
            ("True", "AUTO"),
            ("yes", "AUTO"),
            ("1", "AUTO"),
            ("False", "MANUAL"),
            ("disabled", "MANUAL"),
        ] {
            let mut img = image();
            img.properties.insert("auto_disk_config".into(), json!(value));
            assert_eq!(detail(&img, &links(""))["OS-DCF:diskConfig"], expected);
        }
        assert!(detail(&image(), &links("")).get("OS-DCF:diskConfig").is_none());
        assert!(detail(&image(), &links("")).get("server").is_none());
    }

    #[test]
    fn url_join_matches_nova() {
        assert_eq!(
            url_join(&["http://h/v2.1", "", "images", "x"]),
            "http://h/v2.1/images/x"
        );
        assert_eq!(url_join(&["http://h/", "p", "images", ""]), "http://h/p/images/");
    }
}
