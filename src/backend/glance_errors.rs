//! Glance's refusals as python-glanceclient words them (`<status line>:
//! <HTML-escaped explanation>`, read off Glance's webob pages): what the
//! embedded store answers, and what the Glance client answers without a call.

use super::BackendError;

/// A Glance 400 as python-glanceclient reports it (`400 Bad Request: <html-escaped message>`).
pub fn bad_request(message: &str) -> BackendError {
    BackendError::Status {
        status: 400,
        details: format!("400 Bad Request: {}", html_escape(message)),
    }
}

pub fn not_found(message: &str) -> BackendError {
    BackendError::Status {
        status: 404,
        details: format!("404 Not Found: {}", html_escape(message)),
    }
}

pub fn forbidden(message: &str) -> BackendError {
    BackendError::Status {
        status: 403,
        details: format!("403 Forbidden: {}", html_escape(message)),
    }
}

pub fn conflict(message: &str) -> BackendError {
    BackendError::Status {
        status: 409,
        details: format!("409 Conflict: {}", html_escape(message)),
    }
}

/// webob's escaping of an explanation in its HTML page.
pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
}
