//! The Glance v1 surface's one error type, [`V1Error`], its one wire answer,
//! and the one exhaustive mapping of backend errors onto Glance v1's answers.

use crate::backend::{BackendError, Refusal};
use crate::edge::webob::{HttpError, TEXT_HTML};
use actix_web::{HttpRequest, HttpResponse};

/// Why a Glance v1 call did not succeed.
#[derive(Clone, Debug)]
pub enum V1Error {
    /// A `webob.exc` exception, rendered as WebOb does.
    Page(HttpError),
    /// keystonemiddleware's 401: with `WWW-Authenticate` when the middleware
    /// refused the token; without when Glance did.
    Unauthenticated { www_authenticate_uri: Option<String> },
}

impl From<HttpError> for V1Error {
    fn from(e: HttpError) -> Self {
        V1Error::Page(e)
    }
}

impl V1Error {
    /// The answer, with `x-openstack-request-id: rid`.
    pub fn into_response(self, req: &HttpRequest, rid: &str) -> HttpResponse {
        let mut resp = match self {
            V1Error::Page(mut e) => {
                if e.status >= 500 {
                    tracing::error!(status = e.status, detail = %e.detail, "Glance v1 call failed");
                }
                // Glance v1 answers HEAD with webob's default type unless it raised
                // the exception with its own.
                e.head_content_type.get_or_insert(TEXT_HTML);
                e.response(req)
            }
            V1Error::Unauthenticated { www_authenticate_uri } => {
                crate::edge::unauthorized(www_authenticate_uri.as_deref())
            }
        };
        crate::edge::set_header(&mut resp, "x-openstack-request-id", rid);
        resp
    }
}

/// What the Glance v1 call was doing when the backend failed.
#[derive(Clone, Copy, Debug)]
pub enum Op<'a> {
    /// Reading the metadata of image `id`.
    Get(&'a str),
    /// Opening the data of image `id`, `size` bytes.
    Data { id: &'a str, size: u64 },
    /// Listing, `marker` whether the request names one.
    List { marker: bool },
    /// Creating an image (`_reserve`), with the id the request asked for.
    Create { id: Option<&'a str> },
    /// Storing the data of a new image (`upload_data_to_store`).
    Upload,
    /// Deleting image `id`.
    Delete(&'a str),
    /// Updating the metadata of image `id` (`registry.update_image_metadata`).
    Update(&'a str),
    /// Listing the members of image `id`.
    Members(&'a str),
    /// Adding, removing or replacing members of an image.
    Membership,
}

/// `Image with identifier <id> not found` (Glance v1 hides images it may not show).
pub fn image_not_found(id: &str) -> HttpError {
    HttpError::positional(404, format!("Image with identifier {id} not found")).plain_typed()
}

pub fn deactivated(id: &str) -> HttpError {
    HttpError::positional(403, format!("Image {id} is deactivated")).plain_typed()
}

pub fn not_active(id: &str) -> HttpError {
    HttpError::positional(404, format!("Image {id} is not active")).plain_typed()
}

/// The registry's refusal of a marker, relayed by the API server.
fn invalid_marker() -> HttpError {
    HttpError::from_registry(HttpError::explained(400, "Invalid marker. Image could not be found."))
}

/// 416 for data of `size` bytes.
pub fn range_not_satisfiable(size: u64, detail: impl Into<String>) -> HttpError {
    let mut e = HttpError::positional(416, detail);
    e.headers.push(("content-range", format!("bytes */{size}")));
    e
}

pub fn unexpected() -> HttpError {
    HttpError::positional(502, "The image service answered something unexpected.")
}

/// Glance v1's answer to a backend error during `op`.
pub fn from_backend(e: &BackendError, op: Op) -> V1Error {
    let page = match e {
        BackendError::Refused(r) => return refused(r, op),
        BackendError::BadMarker(r) => match op {
            Op::List { .. } => invalid_marker(),
            _ => return refused(r, op),
        },
        BackendError::NoData => match op {
            Op::Data { id, .. } => not_active(id),
            _ => internal(e),
        },
        BackendError::RangeNotSatisfiable { .. } => match op {
            Op::Data { size, .. } => range_not_satisfiable(size, ""),
            _ => internal(e),
        },
        BackendError::Unreachable(_) => unavailable(),
        BackendError::Timeout => HttpError::positional(504, "The image service did not answer in time."),
        // A write sent whose answer did not come.
        BackendError::OutcomeUnknown { .. } => HttpError::positional(
            504,
            "The image service did not answer in time; the change may or may not have been made.",
        ),
        BackendError::BadResponse(_) | BackendError::Internal(_) => {
            tracing::error!(error = %e, "image backend failure");
            unexpected()
        }
        BackendError::UploadInterrupted(_) => match op {
            Op::Upload => {
                HttpError::explained(400, "Client disconnected before sending all data to backend").plain_typed()
            }
            _ => internal(e),
        },
        BackendError::KeyNotFound | BackendError::QuotaExceeded => internal(e),
    };
    V1Error::Page(page)
}

fn unavailable() -> HttpError {
    HttpError::positional(503, "The image service is unavailable. Please try again later.")
}

fn internal(e: &BackendError) -> HttpError {
    tracing::error!(error = %e, "unexpected answer of the image service");
    HttpError::positional(500, "")
}

fn refused(r: &Refusal, op: Op) -> V1Error {
    let page = match (r.status, op) {
        (401, _) => {
            return V1Error::Unauthenticated {
                www_authenticate_uri: None,
            }
        }
        (503, _) => unavailable(),
        (403 | 404, Op::Get(id)) | (404, Op::Data { id, .. }) => image_not_found(id),
        (403, Op::Data { id, .. }) => deactivated(id),
        (403 | 404, Op::List { marker: true }) => invalid_marker(),
        // Glance v2's explanation, raised again by Glance v1's API.
        (400, Op::List { .. }) => HttpError::explained(400, r.explanation.clone()),
        (409, Op::Create { id }) => HttpError::explained(
            409,
            format!("An image with identifier {} already exists", id.unwrap_or("")),
        )
        .plain_typed(),
        // `_enforce` raised a bare HTTPForbidden.
        (403, Op::Create { .. } | Op::Delete(_)) => HttpError::positional(403, ""),
        (400 | 413, Op::Create { .. }) => {
            HttpError::explained(400, format!("Failed to reserve image. Got error: {}", r.explanation)).plain_typed()
        }
        (403, Op::Upload) => {
            HttpError::explained(403, format!("Forbidden upload attempt: {}", r.explanation)).plain_typed()
        }
        (413, Op::Upload) => HttpError::explained(
            413,
            format!(
                "Denying attempt to upload image because it exceeds the quota: {}",
                r.explanation
            ),
        )
        .plain_typed(),
        (400 | 409 | 415, Op::Upload) => {
            HttpError::explained(400, format!("Failed to upload image: {}", r.explanation)).plain_typed()
        }
        (400, Op::Update(_)) => HttpError::explained(
            400,
            format!("Failed to update image metadata. Got error: {}", r.explanation),
        )
        .plain_typed(),
        (404, Op::Update(_)) => {
            HttpError::explained(404, format!("Failed to find image to update: {}", r.explanation)).plain_typed()
        }
        (403, Op::Update(_)) => {
            HttpError::explained(403, format!("Forbidden to update image: {}", r.explanation)).plain_typed()
        }
        (409, Op::Update(_)) => HttpError::explained(409, "Image operation conflicts").plain_typed(),
        (413, Op::Update(_) | Op::Membership) => HttpError::explained(413, r.explanation.clone()),
        (404, Op::Members(id)) => image_not_found(id),
        (403, Op::Members(_)) => HttpError::positional(403, "Unauthorized image access"),
        // The registry's refusals, relayed: a forbidden membership change is a 404.
        (400, Op::Membership) => HttpError::explained(400, r.explanation.clone()),
        (403 | 404, Op::Membership) => HttpError::explained(404, r.explanation.clone()),
        (409, Op::Membership) => HttpError::explained(409, r.explanation.clone()),
        (404, Op::Delete(_)) => {
            HttpError::explained(404, format!("Failed to find image to delete: {}", r.explanation)).plain_typed()
        }
        (409, Op::Delete(id)) => HttpError::explained(
            409,
            format!(
                "Image {id} could not be deleted because it is in use: {}",
                r.explanation
            ),
        )
        .plain_typed(),
        _ => {
            tracing::error!(status = r.status, details = %r.details, "unexpected answer of the image service");
            HttpError::positional(500, "")
        }
    };
    V1Error::Page(page)
}

/// The page of an error that is one (tests).
#[cfg(test)]
pub fn page(e: V1Error) -> HttpError {
    match e {
        V1Error::Page(p) => p,
        other => panic!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::error::{bad_marker, bad_request, forbidden, not_found};

    #[test]
    fn backend_errors_per_call() {
        let get = Op::Get("i");
        let data = Op::Data { id: "i", size: 10 };
        assert_eq!(
            page(from_backend(&forbidden("x"), get)).detail,
            "Image with identifier i not found"
        );
        assert_eq!(
            page(from_backend(&forbidden("x"), data)).detail,
            "Image i is deactivated"
        );
        assert_eq!(
            page(from_backend(&BackendError::NoData, data)).detail,
            "Image i is not active"
        );
        let range = page(from_backend(
            &BackendError::RangeNotSatisfiable { image: "i".into() },
            data,
        ));
        assert_eq!((range.status, range.headers[0].1.as_str()), (416, "bytes */10"));
        let marker = page(from_backend(&bad_marker("m"), Op::List { marker: true }));
        assert!(marker.explanation.contains("Invalid marker. Image could not be found."));
        assert!(page(from_backend(&not_found("x"), Op::List { marker: true }))
            .explanation
            .contains("Invalid marker"));
        let bad = page(from_backend(&bad_request("Bad \"x\""), Op::List { marker: true }));
        assert_eq!((bad.status, bad.explanation.as_str()), (400, "Bad \"x\""));
        assert_eq!(
            page(from_backend(&not_found("x"), Op::List { marker: false })).status,
            500
        );
        assert!(matches!(
            from_backend(&BackendError::Refused(Refusal::glance(401, "")), get),
            V1Error::Unauthenticated {
                www_authenticate_uri: None
            }
        ));
        assert_eq!(page(from_backend(&BackendError::Timeout, get)).status, 504);
    }
}
