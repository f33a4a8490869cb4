//! The Glance v2 surface's one error type, [`V2Error`], its one wire answer
//! (webob pages as Glance answers them), and the one exhaustive mapping of
//! backend errors onto it.

use crate::backend::{BackendError, Refusal};
use crate::edge::webob::HttpError;
use actix_web::{HttpRequest, HttpResponse};

/// Why a Glance v2 call did not succeed.
#[derive(Clone, Debug)]
pub enum V2Error {
    /// `webob.exc.HTTP…(explanation=…)`, rendered as WebOb does.
    Page(HttpError),
    /// The download of an image without data: Glance's bare 204.
    NoData,
    /// keystonemiddleware's 401.
    Unauthenticated { www_authenticate_uri: String },
}

impl V2Error {
    /// A refusal with Glance's `explanation` (plain text; escaped where the page needs it).
    pub fn new(status: u16, explanation: impl Into<String>) -> Self {
        V2Error::Page(HttpError::explained(status, explanation))
    }

    pub fn status(&self) -> u16 {
        match self {
            V2Error::Page(p) => p.status,
            V2Error::NoData => 204,
            V2Error::Unauthenticated { .. } => 401,
        }
    }

    /// The refusal as the store reports it, for a check made inside a store
    /// transaction (nothing is written then).
    pub fn into_backend(self) -> BackendError {
        match self {
            V2Error::Page(p) => BackendError::Refused(Refusal::glance(p.status, &p.explanation)),
            V2Error::NoData => BackendError::NoData,
            V2Error::Unauthenticated { .. } => BackendError::Refused(Refusal::glance(401, "")),
        }
    }

    /// The answer, with the request's `x-openstack-request-id`.
    pub fn into_response(self, req: &HttpRequest) -> HttpResponse {
        let mut resp = match self {
            V2Error::Page(p) => p.response(req),
            V2Error::NoData => HttpResponse::NoContent().finish(),
            V2Error::Unauthenticated { www_authenticate_uri } => crate::edge::unauthorized(Some(&www_authenticate_uri)),
        };
        crate::edge::set_header(&mut resp, "x-openstack-request-id", &crate::edge::request_id::of(req));
        resp
    }
}

impl From<BackendError> for V2Error {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::Refused(r) | BackendError::BadMarker(r) => V2Error::new(r.status, r.explanation),
            BackendError::NoData => V2Error::NoData,
            BackendError::RangeNotSatisfiable { image } => {
                V2Error::new(416, format!("Requested range not satisfiable for image {image}"))
            }
            BackendError::KeyNotFound => V2Error::new(409, "Property does not exist."),
            BackendError::QuotaExceeded => V2Error::new(413, "Maximum number of properties exceeded."),
            BackendError::UploadInterrupted(m) => V2Error::new(400, m),
            BackendError::Unreachable(_)
            | BackendError::Timeout
            | BackendError::OutcomeUnknown { .. }
            | BackendError::BadResponse(_)
            | BackendError::Internal(_) => {
                tracing::error!(error = %e, "image store failure");
                V2Error::new(
                    500,
                    "The server has either erred or is incapable of performing the requested operation.",
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::error::{conflict, not_found};
    use crate::edge::webob::WebobFormat;

    fn page(e: V2Error) -> HttpError {
        match e {
            V2Error::Page(p) => p,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn store_refusals_keep_their_explanation() {
        let p = page(not_found("No image found with ID é<x>").into());
        assert_eq!((p.status, p.explanation.as_str()), (404, "No image found with ID é<x>"));
        // WebOb's bytes: escaped (non-ASCII as `&#N;`) in HTML only, `\u` in JSON.
        let html = String::from_utf8(p.page(WebobFormat::Html, "GET").1).unwrap();
        assert!(
            html.contains("No image found with ID &#233;&lt;x&gt;<br /><br />"),
            "{html}"
        );
        let json = String::from_utf8(p.page(WebobFormat::Json, "GET").1).unwrap();
        assert!(
            json.contains(r#""message": "No image found with ID \u00e9<x><br /><br />"#),
            "{json}"
        );
        assert!(matches!(V2Error::from(BackendError::NoData), V2Error::NoData));
        assert_eq!(page(BackendError::Timeout.into()).status, 500);
        assert_eq!(page(BackendError::UploadInterrupted("cut".into()).into()).status, 400);
    }

    #[test]
    fn checks_inside_a_transaction_round_trip() {
        let e = V2Error::new(409, "Property x does not exist.").into_backend();
        assert_eq!(e, conflict("Property x does not exist."));
        assert_eq!(page(e.into()).explanation, "Property x does not exist.");
    }
}
