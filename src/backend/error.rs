//! What a backend call can fail with, as data: a refusal carries its status,
//! its explanation and the text python-glanceclient prints for it as separate
//! fields; the outcomes Glance signals with odd statuses (no data, range not
//! satisfiable) and a broken upload have variants of their own. Each surface
//! maps these with one exhaustive `match`: a new variant is a compile error
//! there, not a silent 500.
//!
//! The constructors word a refusal as Glance does (what the embedded store
//! answers, and what the Glance client answers without a call).

use crate::edge::webob::{html_escape, title};

/// Glance (or the embedded store, as Glance would) refused the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The HTTP status Glance answered with.
    pub status: u16,
    /// Glance's explanation as plain text (not HTML-escaped).
    pub explanation: String,
    /// The text python-glanceclient makes of Glance's error page
    /// (`400 Bad Request: No image found with ID …`, HTML-escaped as webob
    /// wrote it): what Nova quotes in its faults as `HTTP <details>`.
    pub details: String,
}

impl Refusal {
    /// A refusal worded as Glance's webob page reads through python-glanceclient:
    /// `<status line>: <explanation, escaped as webob escapes it>`.
    pub fn glance(status: u16, explanation: &str) -> Refusal {
        Refusal {
            status,
            explanation: explanation.to_string(),
            details: format!("{status} {}: {}", title(status), html_escape(explanation)),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// Glance answered with an error status.
    #[error("image service answered {}: {}", .0.status, .0.details)]
    Refused(Refusal),
    /// A list's `marker` names no image the caller may see (Glance's 400).
    #[error("image service answered {}: {}", .0.status, .0.details)]
    BadMarker(Refusal),
    /// The image has no data (Glance answers its download with 204).
    #[error("the image has no data")]
    NoData,
    /// The range asked for lies outside the image data (Glance's 416).
    #[error("requested range not satisfiable for image {image}")]
    RangeNotSatisfiable { image: String },
    /// The body of an upload broke off; nothing of it was kept.
    #[error("upload interrupted: {0}")]
    UploadInterrupted(String),
    /// A property to remove is not on the image.
    #[error("no such property")]
    KeyNotFound,
    /// A write would leave more extra properties than allowed.
    #[error("too many properties")]
    QuotaExceeded,
    #[error("image service unreachable: {0}")]
    Unreachable(String),
    #[error("image service timed out")]
    Timeout,
    /// A write was sent but its answer was lost (or was a 5xx), and the image
    /// could not be read back to tell whether it was applied. `timed_out`:
    /// the time allowed ran out.
    #[error("the outcome of a write is unknown")]
    OutcomeUnknown { timed_out: bool },
    #[error("image service answered something unexpected: {0}")]
    BadResponse(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// Glance's 400 (`webob.exc.HTTPBadRequest(explanation=message)`).
pub fn bad_request(message: &str) -> BackendError {
    BackendError::Refused(Refusal::glance(400, message))
}

/// Glance's 404.
pub fn not_found(message: &str) -> BackendError {
    BackendError::Refused(Refusal::glance(404, message))
}

/// Glance's 403.
pub fn forbidden(message: &str) -> BackendError {
    BackendError::Refused(Refusal::glance(403, message))
}

/// Glance's 409.
pub fn conflict(message: &str) -> BackendError {
    BackendError::Refused(Refusal::glance(409, message))
}

/// Glance's 400 for a list marker it cannot find.
pub fn bad_marker(marker: &str) -> BackendError {
    BackendError::BadMarker(Refusal::glance(400, &format!("No image found with ID {marker}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_keep_explanation_and_glanceclient_text_apart() {
        let BackendError::Refused(r) = bad_request("Bad \"x\" <é>") else {
            panic!("not a refusal")
        };
        assert_eq!(r.status, 400);
        assert_eq!(r.explanation, "Bad \"x\" <é>");
        // webob writes non-ASCII as decimal character references.
        assert_eq!(r.details, "400 Bad Request: Bad &quot;x&quot; &lt;&#233;&gt;");
        assert_eq!(
            conflict("c"),
            BackendError::Refused(Refusal {
                status: 409,
                explanation: "c".into(),
                details: "409 Conflict: c".into()
            })
        );
    }
}
