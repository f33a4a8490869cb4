//! WebOb's error pages: `webob.exc` exceptions rendered by WebOb 1.8
//! (`WSGIHTTPException.generate_response`), as Nova's router and middleware,
//! Glance v1 and Glance v2 answer them. The body format follows the request's
//! `Accept` (HTML, JSON, else plain text); HEAD gets no body. One escape,
//! WebOb's, applied to the HTML page only.

use super::accept;
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse};

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
    match accept::best_offer(accept.unwrap_or(""), &["text/html", "application/json"]) {
        Some(0) => WebobFormat::Html,
        Some(_) => WebobFormat::Json,
        None => WebobFormat::Plain,
    }
}

/// webob's default explanation when an exception is raised without one.
pub const NOT_FOUND_DEFAULT: &str = "The resource could not be found.";

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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpError {
    pub status: u16,
    pub explanation: String,
    pub detail: String,
    pub template: Template,
    pub headers: Vec<(&'static str, String)>,
    /// The type a HEAD answer carries when the exception was raised with one
    /// (`content_type='text/plain'`); `None`: the type `Accept` picks.
    pub head_content_type: Option<&'static str>,
}

/// webob's title of a status (`404` → `Not Found`).
pub fn title(status: u16) -> &'static str {
    title_and_explanation(status).0
}

/// webob's title and default explanation of a status.
fn title_and_explanation(status: u16) -> (&'static str, &'static str) {
    match status {
        400 => (
            "Bad Request",
            "The server could not comply with the request since it is either malformed or otherwise incorrect.",
        ),
        401 => (
            "Unauthorized",
            "This server could not verify that you are authorized to access the document you requested. Either you supplied the wrong credentials (e.g., bad password), or your browser does not understand how to supply the credentials required.",
        ),
        403 => ("Forbidden", "Access was denied to this resource."),
        404 => ("Not Found", NOT_FOUND_DEFAULT),
        405 => ("Method Not Allowed", ""),
        406 => ("Not Acceptable", ""),
        408 => (
            "Request Timeout",
            "The server has waited too long for the request to be sent by the client.",
        ),
        409 => ("Conflict", "There was a conflict when trying to complete your request."),
        410 => (
            "Gone",
            "This resource is no longer available.  No forwarding address is given.",
        ),
        413 => (
            "Request Entity Too Large",
            "The body of your request was too large for this server.",
        ),
        415 => ("Unsupported Media Type", ""),
        416 => ("Request Range Not Satisfiable", "The Range requested is not available."),
        431 => ("Request Header Fields Too Large", "The request header fields were too large"),
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
            head_content_type: None,
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
        self.head_content_type = Some(TEXT_PLAIN);
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
                ("application/json", crate::edge::pyjson::to_vec(&m))
            }
            WebobFormat::Plain => (TEXT_PLAIN, self.plain_body(method).into_bytes()),
        }
    }

    /// The answer to `req`: status, the exception's headers, and the page
    /// `Accept` picks (HEAD: its type, no body).
    pub fn response(&self, req: &HttpRequest) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut b = HttpResponse::build(status);
        for (k, v) in &self.headers {
            b.insert_header((*k, v.as_str()));
        }
        let accept = req.headers().get("accept").and_then(|v| v.to_str().ok());
        let (ct, body) = self.page(webob_format(accept), req.method().as_str());
        if req.method() == Method::HEAD {
            return b
                .insert_header(("content-type", self.head_content_type.unwrap_or(ct)))
                .finish();
        }
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
    fn nova_404_pages_have_nova_bytes() {
        let nf = HttpError::explained(404, NOT_FOUND_DEFAULT);
        let (ct, body) = nf.page(WebobFormat::Plain, "GET");
        assert_eq!(ct, "text/plain; charset=UTF-8");
        assert_eq!(body.len(), 52);
        assert_eq!(nf.page(WebobFormat::Html, "GET").1.len(), 154);
        let (ct, body) = nf.page(WebobFormat::Json, "GET");
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

    #[test]
    fn escaping() {
        assert_eq!(html_escape("a'b\"c<é"), "a&#x27;b&quot;c&lt;&#233;");
        assert_eq!(strip_tags("x<BR/>y<!-- c --><b>z</b>\n"), "x\ny c z ");
    }
}
