//! Request-body validation of the image metadata calls, with the messages
//! Nova's jsonschema validator produces (`schemas/image_metadata.py`,
//! `parameter_types.metadata`, `nova/api/validation/validators.py`).

use super::fault::Fault;
use crate::edge::pyjson::{py_repr, py_repr_str, py_str};
use serde_json::{Map, Value};

pub const KEY_PATTERN: &str = "^[a-zA-Z0-9-_:. ]{1,255}$";

/// `re.search('^[a-zA-Z0-9-_:. ]{1,255}$', key)` (`$` also matches before a final newline).
pub fn key_matches(key: &str) -> bool {
    let key = key.strip_suffix('\n').unwrap_or(key);
    let n = key.chars().count();
    (1..=255).contains(&n)
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.' | ' '))
}

/// Which top-level key the body must have and how many items it may hold.
#[derive(Clone, Copy)]
pub enum BodyKind {
    /// POST and PUT of the collection: `{"metadata": {...}}`.
    Metadata,
    /// PUT of one key: `{"meta": {<one key>}}`.
    Meta,
}

fn invalid(path: &str, instance: &Value, message: String) -> Fault {
    Fault::bad_request(format!(
        "Invalid input for field/attribute {path}. Value: {}. {message}",
        py_str(instance)
    ))
}

/// Validate `body` and return the (validated) metadata object. `legacy` applies
/// the soft rules of the `/v2` compatibility mode.
pub fn metadata_body(body: Option<&Value>, kind: BodyKind, legacy: bool) -> Result<Map<String, Value>, Fault> {
    let field = match kind {
        BodyKind::Metadata => "metadata",
        BodyKind::Meta => "meta",
    };
    let Some(Value::Object(top)) = body else {
        let shown = body.map_or_else(|| "None".to_string(), py_repr);
        return Err(Fault::bad_request(format!("{shown} is not of type 'object'")));
    };
    // properties → required → additionalProperties, as jsonschema iterates them.
    let mut result = None;
    if let Some(inner) = top.get(field) {
        result = Some(validate_inner(field, inner, kind, legacy)?);
    }
    let Some(inner) = result else {
        return Err(Fault::bad_request(format!(
            "{} is a required property",
            py_repr_str(field)
        )));
    };
    let mut extras: Vec<&String> = top.keys().filter(|k| k.as_str() != field).collect();
    // Legacy mode strips unknown top-level keys instead of refusing them.
    if !extras.is_empty() && !legacy {
        extras.sort();
        let verb = if extras.len() == 1 { "was" } else { "were" };
        let joined: Vec<String> = extras.iter().map(|k| py_repr_str(k)).collect();
        return Err(Fault::bad_request(format!(
            "Additional properties are not allowed ({} {verb} unexpected)",
            joined.join(", ")
        )));
    }
    Ok(inner)
}

fn validate_inner(field: &str, inner: &Value, kind: BodyKind, legacy: bool) -> Result<Map<String, Value>, Fault> {
    let Value::Object(map) = inner else {
        return Err(invalid(
            field,
            inner,
            format!("{} is not of type 'object'", py_repr(inner)),
        ));
    };
    // patternProperties: each matching key's value must be a string of ≤ 255 characters.
    for (k, v) in map {
        if !key_matches(k) {
            continue;
        }
        match v {
            Value::String(s) if s.chars().count() > 255 => {
                return Err(invalid(k, v, format!("{} is too long", py_repr(v))));
            }
            Value::String(_) => {}
            other => return Err(invalid(k, other, format!("{} is not of type 'string'", py_repr(other)))),
        }
    }
    let mut bad: Vec<&String> = map.keys().filter(|k| !key_matches(k)).collect();
    if !bad.is_empty() {
        bad.sort();
        let joined: Vec<String> = bad.iter().map(|k| py_repr_str(k)).collect();
        if !legacy {
            let verb = if bad.len() == 1 { "does" } else { "do" };
            return Err(invalid(
                field,
                inner,
                format!(
                    "{} {verb} not match any of the regexes: {}",
                    joined.join(", "),
                    py_repr_str(KEY_PATTERN)
                ),
            ));
        }
        // Nova's soft validator lets the body through when every key is invalid.
        if bad.len() != map.len() {
            let verb = if bad.len() == 1 { "was" } else { "were" };
            return Err(invalid(
                field,
                inner,
                format!(
                    "Additional properties are not allowed ({} {verb} unexpected)",
                    joined.join(", ")
                ),
            ));
        }
    }
    if let BodyKind::Meta = kind {
        if map.is_empty() {
            return Err(invalid(field, inner, format!("{} should be non-empty", py_repr(inner))));
        }
        if map.len() > 1 {
            return Err(invalid(
                field,
                inner,
                format!("{} has too many properties", py_repr(inner)),
            ));
        }
    }
    Ok(map.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg(body: Option<Value>, kind: BodyKind, legacy: bool) -> String {
        metadata_body(body.as_ref(), kind, legacy).unwrap_err().message
    }

    #[test]
    fn messages_match_nova() {
        use BodyKind::*;
        let long = "x".repeat(256);
        let cases: Vec<(Option<Value>, BodyKind, &str)> = vec![
            (None, Metadata, "None is not of type 'object'"),
            (Some(json!([1])), Metadata, "[1] is not of type 'object'"),
            (Some(json!({"meta": {"a": "b"}})), Metadata, "'metadata' is a required property"),
            (Some(json!({"metadata": {"a": "b"}, "extra": 1})), Metadata, "Additional properties are not allowed ('extra' was unexpected)"),
            (Some(json!({"metadata": {"k": 1}})), Metadata, "Invalid input for field/attribute k. Value: 1. 1 is not of type 'string'"),
            (Some(json!({"metadata": {"k": null}})), Metadata, "Invalid input for field/attribute k. Value: None. None is not of type 'string'"),
            (Some(json!({"metadata": {"bad/key": "v"}})), Metadata, "Invalid input for field/attribute metadata. Value: {'bad/key': 'v'}. 'bad/key' does not match any of the regexes: '^[a-zA-Z0-9-_:. ]{1,255}$'"),
            (Some(json!({"metadata": ["a"]})), Metadata, "Invalid input for field/attribute metadata. Value: ['a']. ['a'] is not of type 'object'"),
            (Some(json!({"meta": {"Label": "v3", "x": "y"}})), Meta, "Invalid input for field/attribute meta. Value: {'Label': 'v3', 'x': 'y'}. {'Label': 'v3', 'x': 'y'} has too many properties"),
            (Some(json!({"meta": {}})), Meta, "Invalid input for field/attribute meta. Value: {}. {} should be non-empty"),
            (Some(json!({"metadata": {"k": "v"}})), Meta, "'meta' is a required property"),
        ];
        for (body, kind, expected) in cases {
            assert_eq!(msg(body.clone(), kind, false), expected, "{body:?}");
        }
        assert_eq!(
            msg(Some(json!({"metadata": {"k": long.clone()}})), Metadata, false),
            format!("Invalid input for field/attribute k. Value: {long}. '{long}' is too long")
        );
    }

    #[test]
    fn legacy_mode_is_soft() {
        let ok = metadata_body(
            Some(&json!({"metadata": {"k": "v"}, "extra": 1})),
            BodyKind::Metadata,
            true,
        )
        .unwrap();
        assert_eq!(ok, json!({"k": "v"}).as_object().unwrap().clone());
        assert!(metadata_body(Some(&json!({"metadata": {"bad/key": "v"}})), BodyKind::Metadata, true).is_ok());
        assert_eq!(
            msg(Some(json!({"metadata": {"bad/key": "v", "ok": "v"}})), BodyKind::Metadata, true),
            "Invalid input for field/attribute metadata. Value: {'bad/key': 'v', 'ok': 'v'}. Additional properties are not allowed ('bad/key' was unexpected)"
        );
    }

    #[test]
    fn key_pattern() {
        for good in ["a", "A-b_c:d.e f", "x\n", &"k".repeat(255)] {
            assert!(key_matches(good), "{good:?}");
        }
        for bad in ["", "a/b", "é", "a\nb", &"k".repeat(256), "a\n\n"] {
            assert!(!key_matches(bad), "{bad:?}");
        }
    }
}
