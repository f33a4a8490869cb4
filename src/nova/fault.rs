//! Nova's JSON faults (`nova/api/openstack/wsgi.py` `Fault`).

use crate::edge::pyjson;
use crate::edge::webob::NOT_FOUND_DEFAULT;
use serde_json::json;

/// A Nova fault: `{"<name>": {"code": <code>, "message": "<message>"}}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    pub code: u16,
    pub message: String,
}

impl Fault {
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        Fault {
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }

    /// The bare 404 of a version-gated call (`VersionNotFoundForAPIMethod`).
    pub fn resource_not_found() -> Self {
        Self::new(404, NOT_FOUND_DEFAULT)
    }

    pub fn image_not_found() -> Self {
        Self::new(404, "Image not found.")
    }

    /// What Nova's `expected_errors` makes of an exception it did not expect.
    pub fn unexpected(exception_class: &str) -> Self {
        Self::new(
            500,
            format!("Unexpected API Error. Please contact the administrator\n<class '{exception_class}'>"),
        )
    }

    pub fn name(&self) -> &'static str {
        match self.code {
            400 => "badRequest",
            401 => "unauthorized",
            403 => "forbidden",
            404 => "itemNotFound",
            405 => "badMethod",
            409 => "conflictingRequest",
            413 | 429 => "overLimit",
            415 => "badMediaType",
            501 => "notImplemented",
            503 => "serviceUnavailable",
            _ => "computeFault",
        }
    }

    pub fn body(&self) -> Vec<u8> {
        let mut inner = serde_json::Map::new();
        inner.insert("code".into(), json!(self.code));
        inner.insert("message".into(), json!(self.message));
        let mut outer = serde_json::Map::new();
        outer.insert(self.name().into(), serde_json::Value::Object(inner));
        pyjson::to_vec(&outer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_names_and_bodies() {
        assert_eq!(
            Fault::image_not_found().body(),
            br#"{"itemNotFound": {"code": 404, "message": "Image not found."}}"#.to_vec()
        );
        assert_eq!(Fault::new(406, "x").name(), "computeFault");
        assert_eq!(Fault::new(415, "x").name(), "badMediaType");
    }
}
