//! Glance v2 attribute rules for create and JSON-patch updates
//! (`glance/api/v2/images.py` `RequestDeserializer`, `ImagesController._do_*`).

use super::error::V2Error;
use super::schema;
use crate::backend::embedded::policy::{self, Rule};
use crate::backend::Image;
use serde_json::Value;

const DISALLOWED: &[&str] = &["direct_url", "self", "file", "schema", "stores"];
const READ_ONLY: &[&str] = &[
    "created_at",
    "updated_at",
    "status",
    "checksum",
    "size",
    "virtual_size",
    "os_hash_algo",
    "os_hash_value",
];
const RESERVED: &[&str] = &["location", "deleted", "deleted_at"];

/// Refuse what no client may set: 403 read-only or reserved (`id` only on create).
pub fn check_writable(key: &str, create: bool) -> Result<(), V2Error> {
    if DISALLOWED.contains(&key) || READ_ONLY.contains(&key) || (!create && key == "id") {
        return Err(V2Error::new(403, format!("Attribute '{key}' is read-only.")));
    }
    if RESERVED.contains(&key) || key.starts_with("os_glance") {
        return Err(V2Error::new(403, format!("Attribute '{key}' is reserved.")));
    }
    Ok(())
}

pub fn opt_string(key: &str, v: &Value) -> Result<Option<String>, V2Error> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.chars().count() <= 255 => Ok(Some(s.clone())),
        Value::String(_) => Err(schema::invalid(v, &format!("is too long (attribute {key})"))),
        other => Err(schema::invalid(other, "is not of type 'null', 'string'")),
    }
}

pub fn tags(v: &Value) -> Result<Vec<String>, V2Error> {
    let arr = v
        .as_array()
        .ok_or_else(|| schema::invalid(v, "is not of type 'array'"))?;
    let mut out = Vec::new();
    for t in arr {
        match t.as_str() {
            Some(s) if s.chars().count() <= 255 => out.push(s.to_string()),
            _ => return Err(schema::invalid(t, "is not a valid tag")),
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn enum_value(v: &Value, allowed: &[&str], nullable: bool) -> Result<Option<String>, V2Error> {
    match v {
        Value::Null if nullable => Ok(None),
        Value::String(s) if allowed.contains(&s.as_str()) => Ok(Some(s.clone())),
        other => Err(schema::invalid(other, &format!("is not one of {allowed:?}"))),
    }
}

fn non_negative(v: &Value) -> Result<i64, V2Error> {
    match v.as_i64() {
        Some(n) if (0..=i64::from(i32::MAX)).contains(&n) => Ok(n),
        Some(_) => Err(V2Error::new(400, "Cannot be a negative value")),
        None => Err(schema::invalid(v, "is not of type 'integer'")),
    }
}

/// Set attribute `key` (a writable base attribute or an extra property) of `img`.
pub fn set_attribute(img: &mut Image, key: &str, v: Value) -> Result<(), V2Error> {
    match key {
        "name" => img.name = opt_string(key, &v)?,
        "visibility" => {
            img.visibility = enum_value(&v, &["community", "public", "private", "shared"], false)?.unwrap_or_default()
        }
        "protected" | "os_hidden" => {
            let b = v
                .as_bool()
                .ok_or_else(|| schema::invalid(&v, "is not of type 'boolean'"))?;
            if key == "protected" {
                img.protected = b
            } else {
                img.os_hidden = b
            }
        }
        "container_format" | "disk_format" => {
            if !matches!(img.status.as_str(), "queued" | "importing" | "") {
                return Err(V2Error::new(
                    403,
                    format!("Attribute {key} can be only replaced for a queued image."),
                ));
            }
            if key == "container_format" {
                img.container_format = enum_value(&v, schema::CONTAINER_FORMATS, true)?;
            } else {
                img.disk_format = enum_value(&v, schema::DISK_FORMATS, true)?;
            }
        }
        "min_ram" => img.min_ram = non_negative(&v)?,
        "min_disk" => img.min_disk = non_negative(&v)?,
        "owner" => img.owner = opt_string(key, &v)?,
        "tags" => img.tags = tags(&v)?,
        "id" => return Err(V2Error::new(403, "Attribute 'id' is read-only.")),
        _ => {
            // Extra properties are strings (`additionalProperties: {"type": "string"}`).
            let Value::String(_) = v else {
                return Err(schema::invalid(&v, "is not of type 'string'"));
            };
            img.properties.insert(key.to_string(), v);
        }
    }
    Ok(())
}

fn is_base(key: &str) -> bool {
    crate::backend::GLANCE_BASE_PROPERTIES.contains(&key)
}

pub use crate::backend::PatchOp as Op;

/// Parse a JSON-patch body (one path segment per operation, as Glance allows
/// for everything but locations); Glance strips white space around names.
pub fn parse(body: &Value) -> Result<Vec<Op>, V2Error> {
    let ops = body
        .as_array()
        .ok_or_else(|| V2Error::new(400, "Request body must be a JSON array of operation objects."))?;
    let mut out = Vec::new();
    for op in ops {
        let obj = op
            .as_object()
            .ok_or_else(|| V2Error::new(400, "Operations must be JSON objects."))?;
        let name = obj.get("op").and_then(Value::as_str).unwrap_or("");
        if !matches!(name, "add" | "replace" | "remove") {
            return Err(V2Error::new(
                400,
                format!("Invalid operation: `{name}`. It must be one of the following: add, remove, replace."),
            ));
        }
        let raw = obj.get("path").and_then(Value::as_str).ok_or_else(|| {
            V2Error::new(
                400,
                "Unable to find `path` in JSON Schema change. It must be one of the following: add, remove, replace.",
            )
        })?;
        let segs: Vec<&str> = raw
            .strip_prefix('/')
            .map(|p| p.split('/').collect())
            .unwrap_or_default();
        if segs.len() != 1 || segs[0].is_empty() {
            return Err(V2Error::new(
                400,
                format!("Invalid JSON pointer for this resource: '{raw}'"),
            ));
        }
        let key = crate::edge::pyjson::py_strip(&segs[0].replace("~1", "/").replace("~0", "~")).to_string();
        let value = obj.get("value").cloned();
        out.push(match (name, value) {
            ("remove", _) => Op::Remove(key),
            (_, None) => {
                return Err(V2Error::new(
                    400,
                    "Operation objects must contain exactly one member named \"value\".",
                ))
            }
            ("add", Some(v)) => Op::Add(key, v),
            (_, Some(v)) => Op::Replace(key, v),
        });
    }
    Ok(out)
}

fn key(op: &Op) -> &str {
    match op {
        Op::Add(k, _) | Op::Replace(k, _) | Op::Remove(k) => k,
    }
}

/// Glance's deserializer refuses read-only and reserved paths before the
/// image is looked up.
pub fn check_paths(ops: &[Op]) -> Result<(), V2Error> {
    ops.iter().try_for_each(|op| check_writable(key(op), false))
}

/// The policy rules `ops` need, in the order Glance's images controller checks
/// them: `replace /owner` is for admins, a new visibility needs its own rule,
/// every change `modify_image`. No change, no rule (Glance then saves nothing).
pub fn rules(ops: &[Op]) -> Vec<Rule> {
    let mut rules = Vec::new();
    for op in ops {
        match op {
            Op::Replace(k, _) if k == "owner" => rules.push(Rule::ReplaceOwner),
            Op::Add(k, v) | Op::Replace(k, v) if k == "visibility" => {
                rules.extend(v.as_str().and_then(policy::visibility_rule));
            }
            _ => {}
        }
    }
    if !ops.is_empty() {
        rules.push(Rule::ModifyImage);
    }
    rules
}

/// Apply `ops` to `img` with Glance's rules; the first refusal stops everything.
pub fn apply(img: &mut Image, ops: &[Op]) -> Result<(), V2Error> {
    for op in ops {
        match op {
            Op::Add(k, v) => {
                check_writable(k, false)?;
                set_attribute(img, k, v.clone())?;
            }
            Op::Replace(k, v) => {
                check_writable(k, false)?;
                if !is_base(k) && !img.properties.contains_key(k) {
                    return Err(V2Error::new(409, format!("Property {k} does not exist.")));
                }
                set_attribute(img, k, v.clone())?;
            }
            Op::Remove(k) => {
                check_writable(k, false)?;
                if k == "tags" {
                    img.tags.clear();
                } else if is_base(k) {
                    return Err(V2Error::new(403, format!("Property {k} may not be removed.")));
                } else if img.properties.shift_remove(k).is_none() {
                    return Err(V2Error::new(409, format!("Property {k} does not exist.")));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patches_follow_glance_rules() {
        let mut img = Image {
            status: "queued".into(),
            ..Default::default()
        };
        let ops = parse(&json!([
            {"op": "add", "path": "/k~1x", "value": "v"},
            {"op": "replace", "path": "/name", "value": "n"},
            {"op": "add", "path": "/tags", "value": ["b", "a", "a"]},
        ]))
        .unwrap();
        apply(&mut img, &ops).unwrap();
        assert_eq!(img.properties["k/x"], "v");
        assert_eq!(img.name.as_deref(), Some("n"));
        assert_eq!(img.tags, ["a", "b"]);
        let bad = |body: Value| {
            let mut i = img.clone();
            parse(&body).and_then(|ops| apply(&mut i, &ops)).unwrap_err().status()
        };
        assert_eq!(bad(json!([{"op": "move", "path": "/a"}])), 400);
        assert_eq!(
            bad(json!([{"op": "replace", "path": "/status", "value": "active"}])),
            403
        );
        assert_eq!(bad(json!([{"op": "remove", "path": "/missing"}])), 409);
        assert_eq!(bad(json!([{"op": "replace", "path": "/missing", "value": "x"}])), 409);
        assert_eq!(bad(json!([{"op": "remove", "path": "/name"}])), 403);
        assert_eq!(bad(json!([{"op": "add", "path": "/k", "value": 1}])), 400);
        assert_eq!(bad(json!([{"op": "add", "path": "/os_glance_x", "value": "1"}])), 403);
        assert_eq!(bad(json!([{"op": "add", "path": "/min_ram", "value": -1}])), 400);
    }
}
