//! Nova's error bodies: JSON faults (`nova/api/openstack/wsgi.py` `Fault`) and the
//! bare webob pages its router and middleware answer with.

use crate::pyjson;
use serde_json::json;

/// A Nova fault: `{"<name>": {"code": <code>, "message": "<message>"}}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    pub code: u16,
    pub message: String,
}

/// webob's default explanations, used when Nova raises without a message.
pub const NOT_FOUND_DEFAULT: &str = "The resource could not be found.";

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

/// The kinds of body webob's `HTTPException` can answer with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebobFormat {
    Html,
    Json,
    Plain,
}

/// webob picks the error page format from `Accept` among
/// `text/html` and `application/json`; nothing acceptable → plain text.
pub fn webob_format(accept: Option<&str>) -> WebobFormat {
    match super::accept::best_offer(accept.unwrap_or(""), &["text/html", "application/json"]) {
        Some(0) => WebobFormat::Html,
        Some(_) => WebobFormat::Json,
        None => WebobFormat::Plain,
    }
}

/// A webob error page: (content type, body). `status` is e.g. `404 Not Found`,
/// `title` e.g. `Not Found`, `explanation` webob's sentence.
pub fn webob_page(format: WebobFormat, status: &str, title: &str, explanation: &str) -> (&'static str, Vec<u8>) {
    match format {
        WebobFormat::Html => (
            "text/html; charset=UTF-8",
            format!(
                "<html>\n <head>\n  <title>{status}</title>\n </head>\n <body>\n  <h1>{status}</h1>\n  {explanation}<br /><br />\n\n\n\n </body>\n</html>"
            )
            .into_bytes(),
        ),
        WebobFormat::Json => {
            let mut m = serde_json::Map::new();
            m.insert("message".into(), json!(format!("{explanation}<br /><br />\n\n\n")));
            m.insert("code".into(), json!(status));
            m.insert("title".into(), json!(title));
            ("application/json", pyjson::to_vec(&m))
        }
        WebobFormat::Plain => ("text/plain; charset=UTF-8", format!("{status}\n\n{explanation}\n\n   ").into_bytes()),
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

    #[test]
    fn webob_404_pages_have_nova_bytes() {
        let (ct, body) = webob_page(WebobFormat::Plain, "404 Not Found", "Not Found", NOT_FOUND_DEFAULT);
        assert_eq!(ct, "text/plain; charset=UTF-8");
        assert_eq!(body.len(), 52);
        let (_, body) = webob_page(WebobFormat::Html, "404 Not Found", "Not Found", NOT_FOUND_DEFAULT);
        assert_eq!(body.len(), 154);
        let (ct, body) = webob_page(WebobFormat::Json, "404 Not Found", "Not Found", NOT_FOUND_DEFAULT);
        assert_eq!(ct, "application/json");
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"message": "The resource could not be found.<br /><br />\n\n\n", "code": "404 Not Found", "title": "Not Found"}"#
        );
        assert_eq!(webob_format(None), WebobFormat::Plain);
        assert_eq!(webob_format(Some("*/*")), WebobFormat::Html);
        assert_eq!(webob_format(Some("application/json")), WebobFormat::Json);
        assert_eq!(webob_format(Some("application/xml")), WebobFormat::Plain);
    }
}
