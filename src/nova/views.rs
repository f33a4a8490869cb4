//! Pure conversions from the domain `Image` to Nova's JSON
//! (`nova/api/openstack/compute/views/images.py`). No I/O.

use crate::backend::Image;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{Map, Value};

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
    /// Names `view` drawn with these links, for [`crate::backend::Drawing::key`].
    pub fn drawing_key(&self, view: &str) -> String {
        // No URL nor project id holds a line break (HTTP refuses them in headers).
        [
            view,
            &self.app_url,
            &self.bookmark_url,
            &self.project_id,
            &self.glance_url,
        ]
        .join("\n")
    }

    pub fn href(&self, collection: &str, id: &str) -> String {
        url_join(&[&self.app_url, &self.project_id, collection, id])
    }

    pub fn bookmark(&self, collection: &str, id: &str) -> String {
        url_join(&[&self.bookmark_url, &self.project_id, collection, id])
    }

    fn image_links(&self, id: &str) -> [LinkView; 3] {
        [
            LinkView::new("self", self.href("images", id)),
            LinkView::new("bookmark", self.bookmark("images", id)),
            LinkView {
                rel: "alternate",
                kind: Some("application/vnd.openstack.image"),
                href: format!("{}/images/{}", self.glance_url, id),
            },
        ]
    }
}

/// One entry of a `links` list: `{"rel", ["type",] "href"}`.
#[derive(Serialize)]
pub struct LinkView {
    rel: &'static str,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    href: String,
}

impl LinkView {
    fn new(rel: &'static str, href: String) -> LinkView {
        LinkView { rel, kind: None, href }
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

/// Nova's `utils.isotime(parse_isotime(t))`: seconds precision, `Z` for UTC;
/// `None` (JSON `null`) for no time.
pub fn format_date(glance_time: &str) -> Option<String> {
    use chrono::{Datelike, Timelike};
    if glance_time.is_empty() {
        return None;
    }
    Some(match chrono::DateTime::parse_from_rfc3339(glance_time) {
        // `%Y-%m-%dT%H:%M:%S` then `Z` or `%:z`, without a strftime parse per call
        // (RFC 3339 years have four digits).
        Ok(t) => {
            let offset = t.offset().local_minus_utc();
            let mut out = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                t.year(),
                t.month(),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            );
            if offset == 0 {
                out.push('Z');
            } else {
                let (sign, abs) = if offset < 0 { ('-', -offset) } else { ('+', offset) };
                out.push_str(&format!("{sign}{:02}:{:02}", abs / 3600, abs % 3600 / 60));
            }
            out
        }
        // Glance always sends RFC 3339; pass anything else through untouched.
        Err(_) => glance_time.to_string(),
    })
}

/// `oslo_utils.strutils.bool_from_string` (non-strict).
pub fn bool_from_string(s: &str) -> bool {
    matches!(
        s.trim().to_ascii_lowercase().as_str(),
        "1" | "t" | "true" | "on" | "y" | "yes"
    )
}

/// One extra property as Nova shows it: `block_device_mapping` and
/// `mappings` are JSON-decoded (`nova/image/glance.py` `_convert_from_string`);
/// Nova answers 500 when they are not JSON, we keep the string.
fn property<'a>(key: &str, value: &'a Value) -> std::borrow::Cow<'a, Value> {
    match (key, value) {
        ("block_device_mapping" | "mappings", Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(decoded) => std::borrow::Cow::Owned(decoded),
            Err(_) => std::borrow::Cow::Borrowed(value),
        },
        _ => std::borrow::Cow::Borrowed(value),
    }
}

/// Nova's view of an image's extra properties (each as [`property`] has it).
pub fn metadata(image: &Image) -> Map<String, Value> {
    image
        .properties
        .iter()
        .map(|(key, value)| (key.clone(), property(key, value).into_owned()))
        .collect()
}

/// The properties as [`metadata`] has them, serialized without a copy.
pub struct MetadataView<'a>(pub &'a Map<String, Value>);

impl Serialize for MetadataView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in self.0 {
            map.serialize_entry(key, &property(key, value))?;
        }
        map.end()
    }
}

/// The basic view (`GET /images` items).
#[derive(Serialize)]
pub struct BasicView<'a> {
    id: &'a str,
    name: &'a Option<String>,
    links: [LinkView; 3],
}

pub fn basic<'a>(image: &'a Image, links: &Links) -> BasicView<'a> {
    BasicView {
        id: &image.id,
        name: &image.name,
        links: links.image_links(&image.id),
    }
}

/// The server an image was taken from.
#[derive(Serialize)]
pub struct ServerView {
    id: String,
    links: [LinkView; 2],
}

/// The detailed view (`GET /images/detail` items, `GET /images/{id}`).
#[derive(Serialize)]
pub struct DetailView<'a> {
    id: &'a str,
    name: &'a Option<String>,
    #[serde(rename = "minRam")]
    min_ram: i64,
    #[serde(rename = "minDisk")]
    min_disk: i64,
    metadata: MetadataView<'a>,
    created: Option<String>,
    updated: Option<String>,
    status: &'static str,
    progress: u8,
    #[serde(rename = "OS-EXT-IMG-SIZE:size")]
    size: i64,
    links: [LinkView; 3],
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<ServerView>,
    #[serde(rename = "OS-DCF:diskConfig", skip_serializing_if = "Option::is_none")]
    disk_config: Option<&'static str>,
}

pub fn detail<'a>(image: &'a Image, links: &Links) -> DetailView<'a> {
    let (status, progress) = status_and_progress(&image.status);
    let props = &image.properties;
    let server = props.get("instance_uuid").filter(|v| !v.is_null()).map(|uuid| {
        let uuid = match uuid {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        ServerView {
            links: [
                LinkView::new("self", links.href("servers", &uuid)),
                LinkView::new("bookmark", links.bookmark("servers", &uuid)),
            ],
            id: uuid,
        }
    });
    let disk_config = props.get("auto_disk_config").filter(|v| !v.is_null()).map(|adc| {
        let on = match adc {
            Value::String(s) => bool_from_string(s),
            Value::Bool(b) => *b,
            other => bool_from_string(&other.to_string()),
        };
        if on {
            "AUTO"
        } else {
            "MANUAL"
        }
    });
    DetailView {
        id: &image.id,
        name: &image.name,
        min_ram: image.min_ram,
        min_disk: image.min_disk,
        metadata: MetadataView(props),
        created: format_date(&image.created_at),
        updated: format_date(&image.updated_at),
        status,
        progress,
        size: image.size.unwrap_or(0),
        links: links.image_links(&image.id),
        server,
        disk_config,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        let v = serde_json::to_value(detail(&img, &links("p1"))).unwrap();
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
            assert_eq!(
                serde_json::to_value(detail(&img, &links(""))).unwrap()["OS-DCF:diskConfig"],
                expected
            );
        }
        let plain = serde_json::to_value(detail(&image(), &links(""))).unwrap();
        assert!(plain.get("OS-DCF:diskConfig").is_none());
        assert!(plain.get("server").is_none());
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
