//! Glance's error answers read as python-glanceclient reads them: the text it
//! prints (what Nova quotes) and the explanation alone, as a [`Refusal`].

use crate::backend::{BackendError, Refusal};
use serde_json::Value;
use std::collections::HashSet;

/// The refusal of a Glance error response.
pub async fn error_from_response(resp: reqwest::Response) -> BackendError {
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = resp.text().await.unwrap_or_default();
    BackendError::Refused(from_page(status, &content_type, &body))
}

/// A refusal from Glance's error page: glanceclient's text, and the
/// explanation (the text without the status line, HTML entities decoded).
pub fn from_page(status: u16, content_type: &str, body: &str) -> Refusal {
    let details = glanceclient_details(content_type, body);
    let explanation = if content_type.contains("html") {
        let text = details
            .strip_prefix(&status.to_string())
            .map_or(details.as_str(), |rest| {
                // `400 Bad Request: <explanation>`: the title is webob's, any words.
                rest.split_once(": ").map_or("", |(_, e)| e)
            });
        unescape(text)
    } else {
        details.clone()
    };
    Refusal {
        status,
        explanation,
        details,
    }
}

/// Decode the character references webob's `html_escape` writes.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let end = tail.find(';').filter(|&e| e <= 10);
        let decoded = end.and_then(|e| match &tail[1..e] {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            name => match name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
                Some(hex) => u32::from_str_radix(hex, 16).ok().and_then(char::from_u32),
                None => name
                    .strip_prefix('#')
                    .and_then(|d| d.parse().ok())
                    .and_then(char::from_u32),
            },
        });
        match (decoded, end) {
            (Some(c), Some(e)) => {
                out.push(c);
                rest = &tail[e + 1..];
            }
            _ => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The text python-glanceclient makes of an error body (`glanceclient.exc.from_response`):
/// JSON → the `message`s; HTML → tags stripped per line, empty and repeated lines
/// dropped, joined with `": "`; other text → the body with blank lines collapsed.
pub fn glanceclient_details(content_type: &str, body: &str) -> String {
    if body.is_empty() {
        return String::new();
    }
    if content_type.contains("json") {
        if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(body) {
            let msgs: Vec<String> = m
                .values()
                .filter_map(|o| o.get("message"))
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect();
            return msgs.join("\n");
        }
    }
    if content_type.contains("html") {
        let mut seen = HashSet::new();
        let mut parts = Vec::new();
        for line in body.lines() {
            let text = strip_tags(line.trim());
            if !text.is_empty() && seen.insert(text.clone()) {
                parts.push(text);
            }
        }
        return parts.join(": ");
    }
    body.replace("\n\n", "\n")
}

/// Python's `re.sub(r'<.+?>', '', line)`.
fn strip_tags(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find('<') {
        // `.+?` needs at least one character between the brackets.
        let after = &rest[start + 1..];
        let mut chars = after.char_indices();
        let close = match chars.next() {
            Some((_, c)) if c != '\n' => after[c.len_utf8()..].find('>').map(|p| p + c.len_utf8()),
            _ => None,
        };
        match close {
            Some(end) => {
                out.push_str(&rest[..start]);
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[..start + 1]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_error_bodies_become_glanceclient_details() {
        let html = "<html>\n <head>\n  <title>400 Bad Request</title>\n </head>\n <body>\n  <h1>400 Bad Request</h1>\n  No image found with ID x<br /><br />\n\n\n\n </body>\n</html>";
        assert_eq!(
            glanceclient_details("text/html; charset=UTF-8", html),
            "400 Bad Request: No image found with ID x"
        );
        assert_eq!(
            glanceclient_details("text/plain", "403 Forbidden\n\nYou are not authorized\n"),
            "403 Forbidden\nYou are not authorized\n"
        );
        assert_eq!(
            glanceclient_details("application/json", r#"{"error": {"message": "boom"}}"#),
            "boom"
        );
        assert_eq!(strip_tags("a<>b<c>d"), "ad");
    }

    #[test]
    fn refusals_carry_the_explanation_unescaped() {
        let html = "<html>\n <head>\n  <title>400 Bad Request</title>\n </head>\n <body>\n  <h1>400 Bad Request</h1>\n  Bad &quot;x&quot; &lt;&#233;&#x27;&gt; &amp;c<br /><br />\n\n\n\n </body>\n</html>";
        let r = from_page(400, "text/html; charset=UTF-8", html);
        assert_eq!(
            r.details,
            "400 Bad Request: Bad &quot;x&quot; &lt;&#233;&#x27;&gt; &amp;c"
        );
        assert_eq!(r.explanation, "Bad \"x\" <é'> &c");
        assert_eq!(from_page(404, "text/plain", "gone").explanation, "gone");
        assert_eq!(unescape("a & b &bogus; &#xZZ;"), "a & b &bogus; &#xZZ;");
    }
}
