//! Glance v1's error answers: `webob.exc` exceptions rendered by WebOb 1.8
//! (`WSGIHTTPException.generate_response`). The body format follows the
//! request's `Accept` (HTML, JSON, else plain text); HEAD gets no body.

use crate::nova::fault::{webob_format, WebobFormat};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse};

/// Which body template the exception uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Template {
    /// `${explanation}<br /><br />\n${detail}\n${html_comment}\n`.
    Default,
    /// `HTTPMethodNotAllowed`'s own: `The method ${REQUEST_METHOD} is not allowed …`.
    MethodNotAllowed,
    /// `body_template='${explanation}'`.
    ExplanationOnly,
}

pub const TEXT_PLAIN: &str = "text/plain; charset=UTF-8";
pub const TEXT_HTML: &str = "text/html; charset=UTF-8";

/// One `webob.exc.HTTP*` exception.
#[derive(Clone, Debug)]
pub struct HttpError {
    pub status: u16,
    pub explanation: String,
    pub detail: String,
    pub template: Template,
    pub headers: Vec<(&'static str, String)>,
    /// The type a HEAD answer carries: the exception's own (`text/plain` when
    /// Glance raised it with `content_type='text/plain'`, else webob's `text/html`).
    pub head_content_type: &'static str,
}

/// webob's title and default explanation of a status.
fn title_and_explanation(status: u16) -> (&'static str, &'static str) {
    match status {
        400 => (
            "Bad Request",
            "The server could not comply with the request since it is either malformed or otherwise incorrect.",
        ),
        403 => ("Forbidden", "Access was denied to this resource."),
        404 => ("Not Found", "The resource could not be found."),
        405 => ("Method Not Allowed", ""),
        416 => ("Request Range Not Satisfiable", "The Range requested is not available."),
        502 => ("Bad Gateway", "Bad gateway."),
        503 => (
            "Service Unavailable",
            "The server is currently unavailable. Please try again at a later time.",
        ),
        504 => ("Gateway Timeout", "The gateway has timed out."),
        _ => (
            "Internal Server Error",
            "The server has either erred or is incapable of performing the requested operation.",
        ),
    }
}

impl HttpError {
    /// `HTTPxxx(detail)`: the message passed positionally, after webob's explanation.
    pub fn positional(status: u16, detail: impl Into<String>) -> Self {
        HttpError {
            status,
            explanation: title_and_explanation(status).1.to_string(),
            detail: detail.into(),
            template: Template::Default,
            headers: Vec::new(),
            head_content_type: TEXT_HTML,
        }
    }

    /// `HTTPxxx(explanation=message)`.
    pub fn explained(status: u16, explanation: impl Into<String>) -> Self {
        HttpError {
            explanation: explanation.into(),
            detail: String::new(),
            ..Self::positional(status, "")
        }
    }

    /// Glance v1's API server relaying an error of its registry: the registry
    /// answered webob's plain-text page (its client sends no `Accept`), and the
    /// API raises `HTTPBadRequest(explanation=<that page>)`.
    pub fn from_registry(registry: HttpError) -> Self {
        let page = registry.plain_body("GET");
        Self::explained(registry.status, page)
    }

    /// `HTTPMethodNotAllowed(headers=[('Allow', allow)])` (`RejectMethodController`).
    pub fn method_not_allowed(allow: &str) -> Self {
        HttpError {
            template: Template::MethodNotAllowed,
            headers: vec![("allow", allow.to_string())],
            ..Self::positional(405, "")
        }
    }

    /// Raised with `content_type='text/plain'` (HEAD answers carry that type).
    pub fn plain_typed(mut self) -> Self {
        self.head_content_type = TEXT_PLAIN;
        self
    }

    fn status_line(&self) -> String {
        format!("{} {}", self.status, title_and_explanation(self.status).0)
    }

    fn body(&self, escape: bool, method: &str) -> String {
        let e = |s: &str| if escape { html_escape(s) } else { s.to_string() };
        match self.template {
            Template::Default => format!("{}<br /><br />\n{}\n\n", e(&self.explanation), e(&self.detail)),
            Template::MethodNotAllowed => format!(
                "The method {} is not allowed for this resource. <br /><br />\n{}",
                e(method),
                e(&self.detail)
            ),
            Template::ExplanationOnly => e(&self.explanation),
        }
    }

    /// webob's `plain_body`.
    pub fn plain_body(&self, method: &str) -> String {
        format!("{}\n\n{}", self.status_line(), strip_tags(&self.body(false, method)))
    }

    /// (content type, body) for `format`.
    pub fn page(&self, format: WebobFormat, method: &str) -> (&'static str, Vec<u8>) {
        match format {
            WebobFormat::Html => {
                let status = self.status_line();
                (
                    TEXT_HTML,
                    format!(
                        "<html>\n <head>\n  <title>{status}</title>\n </head>\n <body>\n  <h1>{status}</h1>\n  {}\n </body>\n</html>",
                        self.body(true, method)
                    )
                    .into_bytes(),
                )
            }
            WebobFormat::Json => {
                let mut m = serde_json::Map::new();
                m.insert("message".into(), self.body(false, method).into());
                m.insert("code".into(), self.status_line().into());
                m.insert("title".into(), title_and_explanation(self.status).0.into());
                ("application/json", crate::pyjson::to_vec(&m))
            }
            WebobFormat::Plain => (TEXT_PLAIN, self.plain_body(method).into_bytes()),
        }
    }

    /// The answer to `req`, with `x-openstack-request-id: rid`.
    pub fn response(&self, req: &HttpRequest, rid: &str) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut b = HttpResponse::build(status);
        for (k, v) in &self.headers {
            b.insert_header((*k, v.as_str()));
        }
        b.insert_header(("x-openstack-request-id", rid));
        if req.method() == Method::HEAD {
            return b.insert_header(("content-type", self.head_content_type)).finish();
        }
        let accept = req.headers().get("accept").and_then(|v| v.to_str().ok());
        let (ct, body) = self.page(webob_format(accept), req.method().as_str());
        b.insert_header(("content-type", ct)).body(body)
    }
}

/// webob's `html_escape`: `html.escape(s, quote=True)`, then non-ASCII as
/// decimal character references.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c if c.is_ascii() => out.push(c),
            c => out.push_str(&format!("&#{};", c as u32)),
        }
    }
    out
}

/// webob's `strip_tags`: newlines to spaces, `<br…>` to newlines, comment
/// markers and other tags removed.
fn strip_tags(value: &str) -> String {
    let value = value.replace('\n', " ").replace('\r', "");
    // `<br.*?>` (case-insensitive) → "\n", then `<!--|-->` → "", then `<.*?>` → "".
    let mut out = String::with_capacity(value.len());
    let mut rest = value.as_str();
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let is_br = tail.len() >= 3 && tail.as_bytes()[1..3].eq_ignore_ascii_case(b"br");
        match (is_br, tail.find('>')) {
            (true, Some(j)) => {
                out.push('\n');
                rest = &tail[j + 1..];
            }
            _ => {
                out.push('<');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    let out = out.replace("<!--", "").replace("-->", "");
    let mut stripped = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(i) = rest.find('<') {
        stripped.push_str(&rest[..i]);
        match rest[i..].find('>') {
            Some(j) => rest = &rest[i + j + 1..],
            None => {
                stripped.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    stripped.push_str(rest);
    stripped
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected bodies below were produced by WebOb 1.8.11 (the version Glance
    // 33 installs) raising the same exceptions.

    #[test]
    fn positional_and_explained_pages() {
        let nf = HttpError::positional(404, "Image with identifier x not found").plain_typed();
        assert_eq!(
            nf.page(WebobFormat::Plain, "GET").1,
            b"404 Not Found\n\nThe resource could not be found.\n\n Image with identifier x not found  "
        );
        assert_eq!(
            String::from_utf8(nf.page(WebobFormat::Html, "GET").1).unwrap(),
            "<html>\n <head>\n  <title>404 Not Found</title>\n </head>\n <body>\n  <h1>404 Not Found</h1>\n  The resource could not be found.<br /><br />\nImage with identifier x not found\n\n\n </body>\n</html>"
        );
        assert_eq!(
            String::from_utf8(nf.page(WebobFormat::Json, "GET").1).unwrap(),
            r#"{"message": "The resource could not be found.<br /><br />\nImage with identifier x not found\n\n", "code": "404 Not Found", "title": "Not Found"}"#
        );
        let bad = HttpError::positional(400, "Bad value passed to filter size_min got <a>");
        assert_eq!(
            String::from_utf8(bad.page(WebobFormat::Html, "GET").1).unwrap(),
            "<html>\n <head>\n  <title>400 Bad Request</title>\n </head>\n <body>\n  <h1>400 Bad Request</h1>\n  The server could not comply with the request since it is either malformed or otherwise incorrect.<br /><br />\nBad value passed to filter size_min got &lt;a&gt;\n\n\n </body>\n</html>"
        );
        // strip_tags removes the `<a>` of the plain page.
        assert_eq!(
            bad.page(WebobFormat::Plain, "GET").1,
            b"400 Bad Request\n\nThe server could not comply with the request since it is either malformed or otherwise incorrect.\n\n Bad value passed to filter size_min got   "
        );
    }

    #[test]
    fn registry_errors_are_nested() {
        let pos = HttpError::from_registry(HttpError::positional(400, "limit param must be an integer"));
        assert_eq!(
            pos.page(WebobFormat::Plain, "GET").1,
            b"400 Bad Request\n\n400 Bad Request  The server could not comply with the request since it is either malformed or otherwise incorrect.   limit param must be an integer  \n\n   "
        );
        assert_eq!(
            String::from_utf8(pos.page(WebobFormat::Html, "GET").1).unwrap(),
            "<html>\n <head>\n  <title>400 Bad Request</title>\n </head>\n <body>\n  <h1>400 Bad Request</h1>\n  400 Bad Request\n\nThe server could not comply with the request since it is either malformed or otherwise incorrect.\n\n limit param must be an integer  <br /><br />\n\n\n\n </body>\n</html>"
        );
        let expl = HttpError::from_registry(HttpError::explained(400, "Invalid marker format"));
        assert_eq!(
            String::from_utf8(expl.page(WebobFormat::Json, "GET").1).unwrap(),
            r#"{"message": "400 Bad Request\n\nInvalid marker format\n\n   <br /><br />\n\n\n", "code": "400 Bad Request", "title": "Bad Request"}"#
        );
        assert_eq!(
            expl.page(WebobFormat::Plain, "GET").1,
            b"400 Bad Request\n\n400 Bad Request  Invalid marker format     \n\n   "
        );
    }

    #[test]
    fn method_not_allowed_pages() {
        let e = HttpError::method_not_allowed("GET, POST");
        assert_eq!(
            e.page(WebobFormat::Plain, "POST").1,
            b"405 Method Not Allowed\n\nThe method POST is not allowed for this resource. \n\n "
        );
        assert_eq!(
            String::from_utf8(e.page(WebobFormat::Json, "POST").1).unwrap(),
            r#"{"message": "The method POST is not allowed for this resource. <br /><br />\n", "code": "405 Method Not Allowed", "title": "Method Not Allowed"}"#
        );
        let detail = HttpError {
            template: Template::ExplanationOnly,
            ..HttpError::explained(
                405,
                "This operation is currently not permitted on Glance images details.",
            )
        };
        assert_eq!(
            String::from_utf8(detail.page(WebobFormat::Html, "GET").1).unwrap(),
            "<html>\n <head>\n  <title>405 Method Not Allowed</title>\n </head>\n <body>\n  <h1>405 Method Not Allowed</h1>\n  This operation is currently not permitted on Glance images details.\n </body>\n</html>"
        );
    }

    #[test]
    fn escaping() {
        assert_eq!(html_escape("a'b\"c<é"), "a&#x27;b&quot;c&lt;&#233;");
        assert_eq!(strip_tags("x<BR/>y<!-- c --><b>z</b>\n"), "x\ny c z ");
    }
}
