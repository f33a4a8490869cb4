//! Image metadata from a Glance v1 write's request headers, as Glance v1
//! (Queens, `glance/common/utils.py` `get_image_meta_from_headers` and
//! `glance/api/v1/images.py` `validate_image_meta`) read them:
//!
//! * `x-image-meta-<field>`: one of v1's fields (`name`, `size`, `is_public`,
//!   `disk_format`, … `virtual_size`), `-` read as `_`; any other field is
//!   `400 Bad header: <header>`. An empty value is no value (`None`).
//! * `x-image-meta-property-<key>`: an extra property; the key lower-cased
//!   (HTTP header names are case-insensitive), `-` read as `_`.
//! * `size`, `min_ram`, `min_disk` integers ≥ 0 (`virtual_size` may also be
//!   `None`); `is_public`, `protected`, `deleted` by oslo's
//!   `bool_from_string` (`1 t true on y yes`, any case, are true; anything
//!   else false).
//! * Formats from Glance's default lists; `aki`/`ari`/`ami` pair up; a name
//!   of at most 255 characters; a checksum of at most 32.
//!
//! Beyond Queens: python-glanceclient ≥ 2.11 percent-encodes header names and
//! values (`urllib.parse.quote(…, safe='/:')`), which Glance v1 never decoded
//! (an image named `my image` was stored as `my%20image`). Names and values
//! are percent-decoded here, then read as UTF-8 (older clients sent raw UTF-8,
//! which decodes the same); text that is not UTF-8 is refused with a 400.

use crate::edge::webob::HttpError;
use actix_web::http::header::HeaderMap;
use serde_json::{Map, Value};

/// The `x-image-meta-*` fields Glance v1 knew (`IMAGE_META_HEADERS`).
pub const FIELDS: &[&str] = &[
    "location",
    "size",
    "is_public",
    "disk_format",
    "container_format",
    "name",
    "status",
    "copy_from",
    "uri",
    "checksum",
    "created_at",
    "updated_at",
    "deleted_at",
    "min_ram",
    "min_disk",
    "owner",
    "store",
    "id",
    "protected",
    "deleted",
    "virtual_size",
];

/// Glance's default `[image_format] disk_formats` and `container_formats`.
pub const DISK_FORMATS: &[&str] = &[
    "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop",
];
pub const CONTAINER_FORMATS: &[&str] = &["ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"];

/// Image metadata read from headers: every field given (with its value, or
/// `None` for an empty one) and the extra properties.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct V1Meta {
    pub fields: Map<String, Value>,
    pub properties: Map<String, Value>,
}

impl V1Meta {
    pub fn has(&self, field: &str) -> bool {
        self.fields.contains_key(field)
    }

    pub fn str(&self, field: &str) -> Option<&str> {
        self.fields.get(field).and_then(Value::as_str)
    }

    pub fn int(&self, field: &str) -> Option<i64> {
        self.fields.get(field).and_then(Value::as_i64)
    }

    pub fn bool(&self, field: &str) -> Option<bool> {
        self.fields.get(field).and_then(Value::as_bool)
    }
}

/// oslo.utils `strutils.bool_from_string(value)` (not strict).
pub fn bool_from_string(v: &str) -> bool {
    matches!(
        v.trim().to_lowercase().as_str(),
        "1" | "t" | "true" | "on" | "y" | "yes"
    )
}

fn decode(raw: &[u8], what: &str) -> Result<String, HttpError> {
    let bytes: Vec<u8> = percent_encoding::percent_decode(raw).collect();
    String::from_utf8(bytes).map_err(|_| HttpError::explained(400, format!("Header {what} is not valid UTF-8.")))
}

/// `InvalidParameterValue(value, param, extra_msg)` as v1 answered it.
fn invalid(value: &str, param: &str, extra: &str) -> HttpError {
    HttpError::explained(400, format!("Invalid value '{value}' for parameter '{param}': {extra}"))
}

/// Read the image metadata of `headers` (see the module doc).
pub fn parse(headers: &HeaderMap) -> Result<V1Meta, HttpError> {
    let mut meta = V1Meta::default();
    for (name, value) in headers {
        let key = decode(name.as_str().as_bytes(), name.as_str())?.to_lowercase();
        let Some(rest) = key.strip_prefix("x-image-meta-") else {
            continue;
        };
        let value = decode(value.as_bytes(), &key)?;
        let value = if value.is_empty() {
            Value::Null
        } else {
            Value::String(value)
        };
        if let Some(prop) = rest.strip_prefix("property-") {
            meta.properties.insert(prop.replace('-', "_"), value);
        } else {
            let field = rest.replace('-', "_");
            if !FIELDS.contains(&field.as_str()) {
                return Err(HttpError::positional(400, format!("Bad header: {key}")).plain_typed());
            }
            meta.fields.insert(field, value);
        }
    }
    for (key, nullable) in [
        ("size", false),
        ("min_disk", false),
        ("min_ram", false),
        ("virtual_size", true),
    ] {
        let Some(v) = meta.fields.get(key).cloned() else {
            continue;
        };
        let text = v.as_str().unwrap_or("None").to_string();
        // Python's int(): surrounding white space and one sign allowed.
        let parsed = match text.trim().parse::<i64>() {
            Ok(n) => Value::from(n),
            Err(_) if nullable && text == "None" => Value::Null,
            Err(_) => {
                return Err(invalid(
                    &text,
                    key,
                    &format!("Cannot convert image {key} '{text}' to an integer."),
                ))
            }
        };
        if parsed.as_i64().is_some_and(|n| n < 0) {
            return Err(invalid(&text, key, "Cannot be a negative value."));
        }
        meta.fields.insert(key.into(), parsed);
    }
    for key in ["is_public", "deleted", "protected"] {
        if let Some(v) = meta.fields.get(key) {
            let b = v.as_str().is_some_and(bool_from_string);
            meta.fields.insert(key.into(), Value::Bool(b));
        }
    }
    validate(&mut meta)?;
    Ok(meta)
}

/// `validate_image_meta`: formats, name and checksum lengths.
fn validate(meta: &mut V1Meta) -> Result<(), HttpError> {
    let disk = meta.str("disk_format").map(str::to_string);
    let container = meta.str("container_format").map(str::to_string);
    if meta.has("disk_format") && !disk.as_deref().is_some_and(|d| DISK_FORMATS.contains(&d)) {
        let shown = disk.as_deref().unwrap_or("None");
        return Err(HttpError::explained(
            400,
            format!("Invalid disk format '{shown}' for image."),
        ));
    }
    if meta.has("container_format") && !container.as_deref().is_some_and(|c| CONTAINER_FORMATS.contains(&c)) {
        let shown = container.as_deref().unwrap_or("None");
        return Err(HttpError::explained(
            400,
            format!("Invalid container format '{shown}' for image."),
        ));
    }
    let amazon = |f: &Option<String>| f.as_deref().is_some_and(|f| ["aki", "ari", "ami"].contains(&f));
    if amazon(&disk) || amazon(&container) {
        match (&disk, &container) {
            (None, Some(c)) => {
                meta.fields.insert("disk_format".into(), Value::String(c.clone()));
            }
            (Some(d), None) => {
                meta.fields.insert("container_format".into(), Value::String(d.clone()));
            }
            (Some(d), Some(c)) if d != c => {
                return Err(HttpError::explained(
                    400,
                    "Invalid mix of disk and container formats. When setting a disk or container format to one of \
                     'aki', 'ari', or 'ami', the container and disk formats must match.",
                ))
            }
            _ => {}
        }
    }
    if let Some(name) = meta.str("name") {
        let n = name.chars().count();
        if n > 255 {
            return Err(HttpError::explained(400, format!("Image name too long: {n}")));
        }
    }
    if let Some(sum) = meta.str("checksum") {
        if sum.chars().count() > 32 {
            return Err(HttpError::explained(
                400,
                format!("Invalid checksum '{sum}': can't exceed 32 characters"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};
    use serde_json::json;

    fn map(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_bytes(v).unwrap(),
            );
        }
        h
    }

    fn page(e: &HttpError) -> String {
        String::from_utf8(e.page(crate::edge::webob::WebobFormat::Plain, "POST").1).unwrap()
    }

    #[test]
    fn values_and_forms() {
        // (header, value, field, parsed value)
        let table: &[(&str, &[u8], &str, Value)] = &[
            ("x-image-meta-name", b"cirros", "name", json!("cirros")),
            ("x-image-meta-name", "café 镜像".as_bytes(), "name", json!("café 镜像")),
            ("x-image-meta-name", b"my%20image", "name", json!("my image")),
            ("x-image-meta-name", b"caf%C3%A9", "name", json!("café")),
            ("x-image-meta-name", b"", "name", Value::Null),
            ("x-image-meta-size", b"1024", "size", json!(1024)),
            ("x-image-meta-size", b" 7 ", "size", json!(7)),
            ("x-image-meta-min-ram", b"64", "min_ram", json!(64)),
            ("x-image-meta-min_disk", b"0", "min_disk", json!(0)),
            ("x-image-meta-virtual_size", b"None", "virtual_size", Value::Null),
            ("x-image-meta-is_public", b"True", "is_public", json!(true)),
            ("x-image-meta-is_public", b"yes", "is_public", json!(true)),
            ("x-image-meta-is_public", b"1", "is_public", json!(true)),
            ("x-image-meta-is_public", b"False", "is_public", json!(false)),
            ("x-image-meta-is_public", b"maybe", "is_public", json!(false)),
            ("x-image-meta-protected", b"ON", "protected", json!(true)),
            ("X-Image-Meta-Disk-Format", b"qcow2", "disk_format", json!("qcow2")),
            (
                "x-image-meta-container_format",
                b"bare",
                "container_format",
                json!("bare"),
            ),
            (
                "x-image-meta-checksum",
                b"781e5e245d69b566979b86e28d23f2c7",
                "checksum",
                json!("781e5e245d69b566979b86e28d23f2c7"),
            ),
        ];
        for (h, v, field, want) in table {
            let meta = parse(&map(&[(h, v)])).unwrap_or_else(|e| panic!("{h}: {}", page(&e)));
            assert_eq!(meta.fields.get(*field), Some(want), "{h}: {v:?}");
        }
    }

    #[test]
    fn properties() {
        let table: &[(&str, &[u8], &str, Value)] = &[
            (
                "x-image-meta-property-os_distro",
                b"ubuntu",
                "os_distro",
                json!("ubuntu"),
            ),
            (
                "X-Image-Meta-Property-OS-Distro",
                b"ubuntu",
                "os_distro",
                json!("ubuntu"),
            ),
            (
                "x-image-meta-property-hw%3Acpu_policy",
                b"dedicated",
                "hw:cpu_policy",
                json!("dedicated"),
            ),
            ("x-image-meta-property-%D0%BA%D0%BB", b"%D0%B7", "кл", json!("з")),
            ("x-image-meta-property-note", b"50%25 off", "note", json!("50% off")),
            ("x-image-meta-property-empty", b"", "empty", Value::Null),
        ];
        for (h, v, key, want) in table {
            let meta = parse(&map(&[(h, v)])).unwrap();
            assert_eq!(meta.properties.get(*key), Some(want), "{h}");
            assert!(meta.fields.is_empty());
        }
        let meta = parse(&map(&[
            ("x-image-meta-property-b", b"2"),
            ("x-image-meta-property-a", b"1"),
            ("x-auth-token", b"t"),
            ("content-type", b"application/octet-stream"),
        ]))
        .unwrap();
        let mut keys: Vec<_> = meta.properties.keys().collect();
        keys.sort();
        assert_eq!(keys, ["a", "b"]);
    }

    #[test]
    fn refusals() {
        type Case<'a> = (&'a [(&'a str, &'a [u8])], &'a str);
        let table: &[Case] = &[
            (&[("x-image-meta-colour", b"red")], "Bad header: x-image-meta-colour"),
            (
                &[("x-image-meta-size", b"ten")],
                "Invalid value 'ten' for parameter 'size': Cannot convert image size 'ten' to an integer.",
            ),
            (
                &[("x-image-meta-size", b"None")],
                "Cannot convert image size 'None' to an integer.",
            ),
            (
                &[("x-image-meta-min_ram", b"-1")],
                "Invalid value '-1' for parameter 'min_ram': Cannot be a negative value.",
            ),
            (
                &[("x-image-meta-disk_format", b"floppy")],
                "Invalid disk format 'floppy' for image.",
            ),
            (
                &[("x-image-meta-container_format", b"zip")],
                "Invalid container format 'zip' for image.",
            ),
            (
                &[
                    ("x-image-meta-disk_format", b"aki"),
                    ("x-image-meta-container_format", b"bare"),
                ],
                "Invalid mix of disk and container formats.",
            ),
            (
                &[("x-image-meta-checksum", b"0123456789abcdef0123456789abcdef0")],
                "can't exceed 32 characters",
            ),
            (&[("x-image-meta-name", b"%FF")], "is not valid UTF-8"),
        ];
        for (headers, want) in table {
            let e = parse(&map(headers)).expect_err(want);
            assert_eq!(e.status, 400);
            assert!(page(&e).contains(want), "{want}: {}", page(&e));
        }
        let long = "n".repeat(256);
        let e = parse(&map(&[("x-image-meta-name", long.as_bytes())])).unwrap_err();
        assert!(page(&e).contains("Image name too long: 256"));
        assert!(parse(&map(&[("x-image-meta-name", "é".repeat(255).as_bytes())])).is_ok());
    }

    #[test]
    fn amazon_formats_pair_up() {
        let meta = parse(&map(&[("x-image-meta-disk_format", b"ami")])).unwrap();
        assert_eq!(meta.str("container_format"), Some("ami"));
        let meta = parse(&map(&[("x-image-meta-container_format", b"aki")])).unwrap();
        assert_eq!(meta.str("disk_format"), Some("aki"));
        assert!(bool_from_string(" Yes "));
        assert!(!bool_from_string("2"));
    }
}
