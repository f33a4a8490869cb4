//! Glance 33's image schemas (`GET /v2/schemas/image(s)`): base attributes
//! only (no `schema-image.json` extras), extra properties as strings.

use super::error::V2Error;
use serde_json::{json, Value};

pub const CONTAINER_FORMATS: &[&str] = &["ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"];
pub const DISK_FORMATS: &[&str] = &[
    "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop",
];

/// Glance's 400 for a value its schema refuses.
pub fn invalid(value: &Value, problem: &str) -> V2Error {
    V2Error::new(
        400,
        format!("Provided object does not match schema 'image': {value} {problem}"),
    )
}

pub fn image() -> Value {
    let nullable_string =
        |desc: &str| json!({"type": ["null", "string"], "readOnly": true, "description": desc, "maxLength": 255});
    json!({
        "name": "image",
        "properties": {
            "id": {"type": "string", "description": "An identifier for the image", "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"},
            "name": {"type": ["null", "string"], "description": "Descriptive name for the image", "maxLength": 255},
            "status": {"type": "string", "readOnly": true, "description": "Status of the image", "enum": ["queued", "saving", "active", "killed", "deleted", "uploading", "importing", "pending_delete", "deactivated"]},
            "visibility": {"type": "string", "description": "Scope of image accessibility", "enum": ["community", "public", "private", "shared"]},
            "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
            "os_hidden": {"type": "boolean", "description": "If true, image will not appear in default image list response."},
            "checksum": {"type": ["null", "string"], "readOnly": true, "description": "md5 hash of image contents.", "maxLength": 32},
            "os_hash_algo": {"type": ["null", "string"], "readOnly": true, "description": "Algorithm to calculate the os_hash_value", "maxLength": 64},
            "os_hash_value": {"type": ["null", "string"], "readOnly": true, "description": "Hexdigest of the image contents using the algorithm specified by the os_hash_algo", "maxLength": 128},
            "owner": {"type": ["null", "string"], "description": "Owner of the image", "maxLength": 255},
            "size": {"type": ["null", "integer"], "readOnly": true, "description": "Size of image file in bytes"},
            "virtual_size": {"type": ["null", "integer"], "readOnly": true, "description": "Virtual size of image in bytes"},
            "container_format": {"type": ["null", "string"], "description": "Format of the container", "enum": [null, "ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"]},
            "disk_format": {"type": ["null", "string"], "description": "Format of the disk", "enum": [null, "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"]},
            "created_at": {"type": "string", "readOnly": true, "description": "Date and time of image registration"},
            "updated_at": {"type": "string", "readOnly": true, "description": "Date and time of the last image modification"},
            "tags": {"type": "array", "description": "List of strings related to the image", "items": {"type": "string", "maxLength": 255}},
            "direct_url": {"type": "string", "readOnly": true, "description": "URL to access the image file kept in external store"},
            "min_ram": {"type": "integer", "description": "Amount of ram (in MB) required to boot image."},
            "min_disk": {"type": "integer", "description": "Amount of disk space (in GB) required to boot image."},
            "self": {"type": "string", "readOnly": true, "description": "An image self url"},
            "file": {"type": "string", "readOnly": true, "description": "An image file url"},
            "stores": nullable_string("Store in which image data resides."),
            "schema": {"type": "string", "readOnly": true, "description": "An image schema url"},
            "locations": {"type": "array", "description": "A set of URLs to access the image file kept in external store", "items": {"type": "object", "properties": {"url": {"type": "string", "maxLength": 255}, "metadata": {"type": "object"}}, "required": ["url", "metadata"]}},
        },
        "additionalProperties": {"type": "string"},
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "enclosure", "href": "{file}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    })
}

pub fn images() -> Value {
    json!({
        "name": "images",
        "properties": {
            "images": {"type": "array", "items": image()},
            "schema": {"type": "string"},
            "first": {"type": "string"},
            "next": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn schema_base_attributes_match_the_backend_list() {
        let s = super::image();
        let mut names: Vec<&String> = s["properties"].as_object().unwrap().keys().collect();
        names.sort();
        let mut base: Vec<&str> = crate::backend::GLANCE_BASE_PROPERTIES.to_vec();
        base.sort();
        assert_eq!(names, base);
    }
}
