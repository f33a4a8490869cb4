//! The Nova surface's one error type, [`NovaError`], and the one place its wire
//! answers are built: Nova's JSON faults, the webob pages of its router and
//! middleware, keystonemiddleware's 401. Backend errors become Nova's answers
//! in [`from_backend`], one exhaustive `match`.

use super::fault::Fault;
use super::microversion;
use crate::backend::{BackendError, Refusal};
use crate::edge::webob::{HttpError, NOT_FOUND_DEFAULT, TEXT_HTML};
use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse};

/// Why a Nova call did not succeed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NovaError {
    /// A Nova fault: `{"<name>": {"code": …, "message": …}}`.
    Fault(Fault),
    /// A microversion refused: its fault, echoing `echo` in the version headers
    /// (406 names the version asked for; a malformed one gets none).
    Version { fault: Fault, echo: Option<String> },
    /// A webob page (Nova's router 404, oslo.middleware's sizelimit 413).
    Page(HttpError),
    /// keystonemiddleware's 401.
    Unauthenticated { www_authenticate_uri: String },
}

impl From<Fault> for NovaError {
    fn from(f: Fault) -> Self {
        NovaError::Fault(f)
    }
}

impl NovaError {
    pub fn fault(code: u16, message: impl Into<String>) -> Self {
        NovaError::Fault(Fault::new(code, message))
    }

    /// The router's 404 for a path Nova does not route.
    pub fn not_routed() -> Self {
        NovaError::Page(HttpError::explained(404, NOT_FOUND_DEFAULT))
    }

    /// oslo.middleware `sizelimit`'s 413 (its explanation keeps the unexpanded `%s`).
    pub fn too_large() -> Self {
        NovaError::Page(HttpError::explained(
            413,
            "Request is too large. Larger than max_request_body_size (%s).",
        ))
    }

    pub fn status(&self) -> u16 {
        match self {
            NovaError::Fault(f) | NovaError::Version { fault: f, .. } => f.code,
            NovaError::Page(p) => p.status,
            NovaError::Unauthenticated { .. } => 401,
        }
    }

    /// The answer: status, headers (request ids; version headers as `meta`
    /// says, or as the microversion error says), body.
    pub fn into_response(self, req: &HttpRequest, meta: &Meta) -> HttpResponse {
        let (mut resp, meta) = match self {
            NovaError::Fault(fault) => (fault_response(&fault), meta.clone()),
            NovaError::Version { fault, echo } => (
                fault_response(&fault),
                Meta {
                    request_id: meta.request_id.clone(),
                    version: echo,
                },
            ),
            NovaError::Page(mut page) => {
                // WebOb answers HEAD with its default type, whatever `Accept` says,
                // unless the exception was raised with its own.
                page.head_content_type.get_or_insert(TEXT_HTML);
                (page.response(req), meta.clone())
            }
            NovaError::Unauthenticated { www_authenticate_uri } => {
                (crate::edge::unauthorized(Some(&www_authenticate_uri)), meta.clone())
            }
        };
        meta.apply(&mut resp);
        resp
    }
}

fn fault_response(fault: &Fault) -> HttpResponse {
    let status = StatusCode::from_u16(fault.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, "application/json; charset=UTF-8"))
        .body(fault.body())
}

/// What a Nova answer carries besides its body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    pub request_id: Option<String>,
    /// The microversion to echo (`X.Y`), if the request has one.
    pub version: Option<String>,
}

impl Meta {
    /// Add the version and request id headers to `resp`.
    pub fn apply(&self, resp: &mut HttpResponse) {
        let h = resp.headers_mut();
        let value = |s: &str| header::HeaderValue::from_str(s).ok();
        if let Some(v) = &self.version {
            // The names of microversion::STANDARD_HEADER and LEGACY_HEADER.
            if let Some(compute) = value(&format!("compute {v}")) {
                h.insert(header::HeaderName::from_static("openstack-api-version"), compute);
            }
            if let Some(echo) = value(v) {
                h.insert(header::HeaderName::from_static("x-openstack-nova-api-version"), echo);
            }
            h.append(
                header::VARY,
                header::HeaderValue::from_static(microversion::STANDARD_HEADER),
            );
            h.append(
                header::VARY,
                header::HeaderValue::from_static(microversion::LEGACY_HEADER),
            );
        }
        if let Some(id) = self.request_id.as_deref().and_then(value) {
            h.insert(header::HeaderName::from_static("x-openstack-request-id"), id.clone());
            h.insert(header::HeaderName::from_static("x-compute-request-id"), id);
        }
    }
}

/// A successful Nova answer: `body` of `content_type` with `meta`'s headers.
pub fn finish(status: StatusCode, meta: &Meta, content_type: &str, body: impl Into<bytes::Bytes>) -> HttpResponse {
    let mut resp = HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, content_type))
        .body(body.into());
    meta.apply(&mut resp);
    resp
}

/// What the Nova call was doing when the backend failed: Nova translates
/// Glance's errors differently per call (`nova/image/glance.py`).
#[derive(Clone, Copy, Debug)]
pub enum Op<'a> {
    /// `GET /images[/detail]` (`_translate_plain_exception`).
    List,
    /// `GET /images/{id}` and the metadata reads (`_translate_image_exception`).
    Show(&'a str),
    /// `DELETE /images/{id}`.
    Delete(&'a str),
    /// A metadata write.
    Write(&'a str),
}

/// Nova's answer to a backend error during `op`.
pub fn from_backend(e: &BackendError, op: Op) -> Fault {
    match e {
        BackendError::Refused(r) | BackendError::BadMarker(r) => refused(r, op),
        // Nova would answer 500 after its retries; an outage is a 503, a timeout a 504.
        BackendError::Unreachable(_) => unavailable(),
        BackendError::Timeout => Fault::new(504, "The image service did not answer in time."),
        BackendError::OutcomeUnknown { timed_out } => Fault::new(
            if *timed_out { 504 } else { 503 },
            "The image service did not confirm the write and cannot be read: its outcome is unknown. \
             Read the image before trying again.",
        ),
        BackendError::BadResponse(_) | BackendError::Internal(_) => {
            Fault::new(502, "The image service answered something unexpected.")
        }
        BackendError::KeyNotFound => match op {
            Op::Write(_) => Fault::not_found("Invalid metadata key"),
            Op::List | Op::Show(_) | Op::Delete(_) => nova_exception(),
        },
        BackendError::QuotaExceeded => match op {
            Op::Write(_) => Fault::forbidden("Image metadata limit exceeded"),
            Op::List | Op::Show(_) | Op::Delete(_) => nova_exception(),
        },
        // Outcomes of data calls, which Nova's image API never makes.
        BackendError::NoData | BackendError::RangeNotSatisfiable { .. } | BackendError::UploadInterrupted(_) => {
            nova_exception()
        }
    }
}

fn unavailable() -> Fault {
    Fault::new(503, "The image service is unavailable. Please try again later.")
}

fn nova_exception() -> Fault {
    Fault::unexpected("nova.exception.NovaException")
}

/// Glance refused: Nova's translation of the status for `op`.
fn refused(r: &Refusal, op: Op) -> Fault {
    let quoted = || format!("HTTP {}", r.details);
    match (r.status, op) {
        // Glance still answering 503 after the retries counts as unreachable.
        (503, _) => unavailable(),
        (400, Op::List) => Fault::bad_request(quoted()),
        (401 | 403, Op::List) => Fault::forbidden(quoted()),
        (404, Op::List) => Fault::unexpected("nova.exception.NotFound"),
        (404, Op::Show(_) | Op::Delete(_) | Op::Write(_)) => Fault::image_not_found(),
        // Nova lets ImageNotAuthorized escape `show` as a 500; we answer the 403
        // its metadata calls use for the same case.
        (401 | 403, Op::Show(id) | Op::Write(id)) => Fault::forbidden(format!("Not authorized for image {id}.")),
        (401 | 403, Op::Delete(_)) => Fault::forbidden("You are not allowed to delete the image."),
        // Nova answers 500 (ImageDeleteConflict is not expected); a conflict is a 409.
        (409, Op::Delete(_)) => Fault::new(409, format!("Conflict deleting image. Reason: {}.", quoted())),
        // Glance refusing a property value (its own quota, a bad value) is a 500 in
        // Nova; the client's request is what was refused, so we answer 400.
        (400 | 413, Op::Write(_)) => Fault::bad_request(quoted()),
        (409, Op::Write(_)) => Fault::new(409, quoted()),
        (status, _) => unexpected_glance(status),
    }
}

/// Nova's 500 for a Glance error it does not expect, naming the glanceclient class.
fn unexpected_glance(status: u16) -> Fault {
    let class = match status {
        400 => "HTTPBadRequest",
        401 => "HTTPUnauthorized",
        403 => "HTTPForbidden",
        404 => "HTTPNotFound",
        405 => "HTTPMethodNotAllowed",
        409 => "HTTPConflict",
        413 => "HTTPOverLimit",
        415 => "HTTPUnsupported",
        501 => "HTTPNotImplemented",
        502 => "HTTPBadGateway",
        503 => "HTTPServiceUnavailable",
        _ => "HTTPInternalServerError",
    };
    Fault::unexpected(&format!("glanceclient.exc.{class}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::error::{bad_marker, bad_request, conflict, forbidden, not_found};

    #[test]
    fn backend_errors_per_call() {
        let img = "abc";
        let cases: Vec<(BackendError, Op, u16, &str)> = vec![
            (bad_request("x"), Op::List, 400, "HTTP 400 Bad Request: x"),
            (
                bad_marker("m"),
                Op::List,
                400,
                "HTTP 400 Bad Request: No image found with ID m",
            ),
            (forbidden("x"), Op::List, 403, "HTTP 403 Forbidden: x"),
            (not_found("x"), Op::Show(img), 404, "Image not found."),
            (forbidden("x"), Op::Show(img), 403, "Not authorized for image abc."),
            (
                forbidden("x"),
                Op::Delete(img),
                403,
                "You are not allowed to delete the image.",
            ),
            (
                conflict("c"),
                Op::Delete(img),
                409,
                "Conflict deleting image. Reason: HTTP 409 Conflict: c.",
            ),
            (conflict("c"), Op::Write(img), 409, "HTTP 409 Conflict: c"),
            (BackendError::KeyNotFound, Op::Write(img), 404, "Invalid metadata key"),
            (
                BackendError::QuotaExceeded,
                Op::Write(img),
                403,
                "Image metadata limit exceeded",
            ),
            (
                BackendError::Timeout,
                Op::List,
                504,
                "The image service did not answer in time.",
            ),
            (
                BackendError::Unreachable("x".into()),
                Op::Show(img),
                503,
                "The image service is unavailable. Please try again later.",
            ),
            (
                conflict("c"),
                Op::Show(img),
                500,
                "Unexpected API Error. Please contact the administrator\n<class 'glanceclient.exc.HTTPConflict'>",
            ),
            (
                not_found("x"),
                Op::List,
                500,
                "Unexpected API Error. Please contact the administrator\n<class 'nova.exception.NotFound'>",
            ),
        ];
        for (e, op, code, message) in cases {
            let f = from_backend(&e, op);
            assert_eq!((f.code, f.message.as_str()), (code, message), "{e:?} {op:?}");
        }
    }

    #[test]
    fn answers_carry_the_request_ids_and_version() {
        let req = actix_web::test::TestRequest::default().to_http_request();
        let meta = Meta {
            request_id: Some("req-1".into()),
            version: Some("2.1".into()),
        };
        let resp = NovaError::fault(400, "x").into_response(&req, &meta);
        assert_eq!(resp.status(), 400);
        assert_eq!(resp.headers().get("x-compute-request-id").unwrap(), "req-1");
        assert_eq!(resp.headers().get("openstack-api-version").unwrap(), "compute 2.1");
        let resp = NovaError::Version {
            fault: Fault::bad_request("bad"),
            echo: None,
        }
        .into_response(&req, &meta);
        assert!(resp.headers().get("openstack-api-version").is_none());
        let resp = NovaError::not_routed().into_response(&req, &meta);
        assert_eq!(resp.headers().get("content-type").unwrap(), "text/plain; charset=UTF-8");
    }
}
