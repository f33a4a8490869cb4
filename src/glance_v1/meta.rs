//! An image as Glance v1 showed it: the registry's image dict
//! (`make_image_dict` after `mutate_image_dict_to_v1`, location redacted) as
//! `x-image-meta-*` headers (HEAD/GET of one image) and as list items.
//!
//! Values follow Glance v1: `True`/`False`, decimal integers, timestamps as
//! `YYYY-MM-DDTHH:MM:SS.ffffff` (no zone; Glance v2 only keeps seconds, so the
//! fraction is `.000000`), `is_public` = (v2 visibility is `public`),
//! `deleted` always false (v2 never shows deleted images), null attributes left
//! out. Extra properties become `x-image-meta-property-<key lower-cased>`.
//!
//! # Header values and names that HTTP cannot carry as they are
//!
//! Glance v1 wrote each value as its UTF-8 bytes (Python 2 `str`), and that is
//! what is sent here: non-ASCII text (an image named `café`, `镜像`) goes out
//! as raw UTF-8 (`obs-text`, which HTTP/1.1 allows in field values). This is
//! what python-glanceclient v1 was written for: `_image_meta_from_headers`
//! `safe_decode`s every value as UTF-8 and never URL-unquotes response headers
//! (it only %-quotes *request* headers). Under Python 3 the `requests` stack
//! hands it the bytes decoded as Latin-1, so there `value.encode('latin-1')
//! .decode('utf-8')` recovers the text exactly; a %-encoded value could not
//! be told apart from a name that really contains `%XX`.
//!
//! Two things cannot be sent raw at all, and Glance v1 broke its own response
//! on them:
//! - a value containing a control character (U+0000–U+001F, U+007F; e.g. a
//!   newline in a description): the whole value is then percent-encoded as
//!   UTF-8, keeping only `A-Z a-z 0-9 - . _ ~` (Python's
//!   `urllib.parse.quote(value, safe='')`, undone by `unquote`);
//! - a property key with characters a header name cannot hold (anything but
//!   RFC 9110 `tchar`, e.g. `:`, `/`, space, non-ASCII): after lower-casing,
//!   each such byte, and `%` itself, is written `%xx` (lower-case hex, as
//!   header names are lower-case), e.g. `hw:cpu` → `x-image-meta-property-hw%3acpu`.
//!
//! Header names go out lower-case (Glance v1's eventlet capitalised each
//! word; names are case-insensitive and python-glanceclient lower-cases them).

use crate::backend::Image;
use actix_web::http::header::{HeaderName, HeaderValue};
use serde_json::{Map, Value};

/// A Glance v2 timestamp (`2026-01-02T03:04:05Z`) as the v1 registry wrote it
/// (`2026-01-02T03:04:05.000000`). Anything unparsable is passed through.
pub fn v1_time(t: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(t) {
        Ok(dt) => dt
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%dT%H:%M:%S%.6f")
            .to_string(),
        Err(_) => t.to_string(),
    }
}

fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// Python's `str()` of a property value.
fn py_str(v: &Value) -> String {
    crate::edge::pyjson::py_str(v)
}

/// The core attributes of the v1 image dict, in a fixed order, as JSON values
/// (`None` = null): `id, name, size, virtual_size, disk_format,
/// container_format, checksum, min_disk, min_ram, status, is_public, owner,
/// protected, created_at, updated_at, deleted_at, deleted`.
pub fn attributes(img: &Image) -> Vec<(&'static str, Value)> {
    let s = |v: &Option<String>| v.clone().map_or(Value::Null, Value::String);
    let n = |v: Option<i64>| v.map_or(Value::Null, Value::from);
    vec![
        ("id", Value::String(img.id.clone())),
        ("name", s(&img.name)),
        ("size", n(img.size)),
        ("virtual_size", n(img.virtual_size)),
        ("disk_format", s(&img.disk_format)),
        ("container_format", s(&img.container_format)),
        ("checksum", s(&img.checksum)),
        ("min_disk", Value::from(img.min_disk)),
        ("min_ram", Value::from(img.min_ram)),
        ("status", Value::String(img.status.clone())),
        ("is_public", Value::Bool(img.visibility == "public")),
        ("owner", s(&img.owner)),
        ("protected", Value::Bool(img.protected)),
        ("created_at", Value::String(v1_time(&img.created_at))),
        ("updated_at", Value::String(v1_time(&img.updated_at))),
        ("deleted_at", Value::Null),
        ("deleted", Value::Bool(false)),
    ]
}

/// The v1 properties dict: every extra property with a non-null value, as text.
pub fn properties(img: &Image) -> Map<String, Value> {
    img.properties
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), Value::String(py_str(v))))
        .collect()
}

/// An item of `GET /v1/images/detail`.
pub fn detail_item(img: &Image) -> Value {
    let mut m: Map<String, Value> = attributes(img).into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    m.insert("properties".into(), Value::Object(properties(img)));
    Value::Object(m)
}

/// An item of `GET /v1/images` (`DISPLAY_FIELDS_IN_INDEX`).
pub fn index_item(img: &Image) -> Value {
    let all = attributes(img);
    let mut m = Map::new();
    for field in ["id", "name", "size", "disk_format", "container_format", "checksum"] {
        if let Some((_, v)) = all.iter().find(|(k, _)| *k == field) {
            m.insert(field.to_string(), v.clone());
        }
    }
    Value::Object(m)
}

/// RFC 9110 `tchar`, minus `%` (kept for our escapes).
fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$&'*+-.^_`|~".contains(&b)
}

/// `x-image-meta-property-<key>` for a property key (see the module doc).
pub fn property_header_name(key: &str) -> HeaderName {
    let mut name = String::from("x-image-meta-property-");
    for b in key.to_lowercase().bytes() {
        if is_name_char(b) {
            name.push(b as char);
        } else {
            name.push_str(&format!("%{b:02x}"));
        }
    }
    // Only tchar and `%xx` are left: always a valid name.
    HeaderName::try_from(name).unwrap_or_else(|_| HeaderName::from_static("x-image-meta-property-"))
}

/// Python's `urllib.parse.quote(value, safe='')`.
const QUOTE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A header value for `v` (see the module doc): its UTF-8 bytes, or, when it
/// holds a control character, the whole value percent-encoded.
pub fn header_value(v: &str) -> HeaderValue {
    if !v.chars().any(|c| c.is_ascii_control()) {
        if let Ok(h) = HeaderValue::from_bytes(v.as_bytes()) {
            return h;
        }
    }
    let quoted = percent_encoding::utf8_percent_encode(v, QUOTE).to_string();
    HeaderValue::from_str(&quoted).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The `x-image-meta-*` headers of `img`, then its `ETag` when it has a checksum.
pub fn headers(img: &Image) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::new();
    for (k, v) in attributes(img) {
        let text = match &v {
            Value::Null => continue,
            Value::Bool(b) => py_bool(*b).to_string(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let name = HeaderName::try_from(format!("x-image-meta-{k}")).expect("static attribute names are valid");
        out.push((name, header_value(&text)));
    }
    for (k, v) in &img.properties {
        if v.is_null() {
            continue;
        }
        let name = property_header_name(k);
        // Keys equal once lower-cased: the last one wins, as in Glance's dict.
        out.retain(|(n, _)| *n != name);
        out.push((name, header_value(&py_str(v))));
    }
    if let Some(sum) = &img.checksum {
        out.push((HeaderName::from_static("etag"), header_value(sum)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn image() -> Image {
        let mut img = Image {
            id: "5b0b4a2e-0000-4000-8000-000000000001".into(),
            name: Some("café".into()),
            status: "active".into(),
            visibility: "public".into(),
            checksum: Some("781e5e245d69b566979b86e28d23f2c7".into()),
            size: Some(10),
            disk_format: Some("raw".into()),
            container_format: Some("bare".into()),
            min_ram: 512,
            created_at: "2026-01-02T03:04:05Z".into(),
            updated_at: "2026-01-02T03:04:06Z".into(),
            ..Default::default()
        };
        img.properties.insert("OS_Distro".into(), json!("ubuntu"));
        img.properties.insert("hw:cpu policy".into(), json!("a\nb"));
        img.properties.insert("n".into(), json!(null));
        img
    }

    fn find<'a>(h: &'a [(HeaderName, HeaderValue)], name: &str) -> Option<&'a [u8]> {
        h.iter().find(|(n, _)| n.as_str() == name).map(|(_, v)| v.as_bytes())
    }

    #[test]
    fn v1_headers() {
        let h = headers(&image());
        assert_eq!(find(&h, "x-image-meta-name"), Some("café".as_bytes()));
        assert_eq!(find(&h, "x-image-meta-is_public"), Some(&b"True"[..]));
        assert_eq!(find(&h, "x-image-meta-protected"), Some(&b"False"[..]));
        assert_eq!(find(&h, "x-image-meta-deleted"), Some(&b"False"[..]));
        assert_eq!(find(&h, "x-image-meta-min_ram"), Some(&b"512"[..]));
        assert_eq!(
            find(&h, "x-image-meta-created_at"),
            Some(&b"2026-01-02T03:04:05.000000"[..])
        );
        assert_eq!(find(&h, "x-image-meta-owner"), None);
        assert_eq!(find(&h, "x-image-meta-virtual_size"), None);
        assert_eq!(find(&h, "x-image-meta-deleted_at"), None);
        assert_eq!(find(&h, "x-image-meta-property-os_distro"), Some(&b"ubuntu"[..]));
        assert_eq!(find(&h, "x-image-meta-property-hw%3acpu%20policy"), Some(&b"a%0Ab"[..]));
        assert_eq!(find(&h, "x-image-meta-property-n"), None);
        assert_eq!(find(&h, "etag"), Some(&b"781e5e245d69b566979b86e28d23f2c7"[..]));
        assert_eq!(
            h.iter()
                .filter(|(n, _)| n.as_str().starts_with("x-image-meta-"))
                .count(),
            16
        );
    }

    #[test]
    fn encodings() {
        assert_eq!(header_value("50% off").as_bytes(), b"50% off");
        assert_eq!(header_value("é\t").as_bytes(), b"%C3%A9%09");
        assert_eq!(
            property_header_name("Ключ").as_str(),
            "x-image-meta-property-%d0%ba%d0%bb%d1%8e%d1%87"
        );
        assert_eq!(property_header_name("a%b").as_str(), "x-image-meta-property-a%25b");
        assert_eq!(v1_time("2026-01-02T03:04:05Z"), "2026-01-02T03:04:05.000000");
        assert_eq!(v1_time("garbage"), "garbage");
    }

    #[test]
    fn list_items() {
        let img = image();
        assert_eq!(
            crate::edge::pyjson::to_vec(&index_item(&img)),
            br#"{"id": "5b0b4a2e-0000-4000-8000-000000000001", "name": "caf\u00e9", "size": 10, "disk_format": "raw", "container_format": "bare", "checksum": "781e5e245d69b566979b86e28d23f2c7"}"#.to_vec()
        );
        let d = detail_item(&img);
        assert_eq!(d["is_public"], json!(true));
        assert_eq!(d["deleted_at"], json!(null));
        assert_eq!(d["properties"], json!({"OS_Distro": "ubuntu", "hw:cpu policy": "a\nb"}));
    }
}
