//! `HEAD /v1/images/{id}` (the metadata headers) and `GET /v1/images/{id}`
//! (the data, with them).
//!
//! `GET /v1/images/{id}`: 403 `Image <id> is deactivated`, 404 `Image <id> is
//! not active` for any other status but `active`, 404 `Image with identifier
//! <id> not found`. The body streams from the backend (constant memory);
//! `Content-Length` is the image size; a backend stream that breaks off or
//! ends short aborts the response (the connection is dropped), never a
//! silently short body. Beyond Glance v1 (which ignored `Range`), one
//! `Range: bytes=a-b | a- | -n` is honoured when the backend honours it (206,
//! `Content-Range`); a start past the end is 416; a malformed or multi-range
//! header is ignored (200, all of it).

use super::error::{self, from_backend, Op, V1Error};
use super::{get_image, meta};
use crate::backend::{ByteRange, Image, ImageBackend, RequestContext};
use crate::edge::webob;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use std::pin::Pin;
use std::task::{Context, Poll};

fn with_meta(mut b: actix_web::HttpResponseBuilder, img: &Image) -> actix_web::HttpResponseBuilder {
    for (name, value) in meta::headers(img) {
        b.insert_header((name, value));
    }
    b
}

/// `HEAD /v1/images/{id}`: the metadata headers, whatever the status.
pub async fn meta(backend: &dyn ImageBackend, ctx: &RequestContext, id: &str) -> Result<HttpResponse, V1Error> {
    let img = get_image(backend, ctx, id).await?;
    // webob's default type for a response that sets none.
    Ok(with_meta(HttpResponse::Ok(), &img)
        .insert_header((header::CONTENT_TYPE, webob::TEXT_HTML))
        .finish())
}

/// `GET /v1/images/{id}`: the data, with the metadata headers.
pub async fn show(
    req: &HttpRequest,
    backend: &dyn ImageBackend,
    ctx: &RequestContext,
    id: &str,
) -> Result<HttpResponse, V1Error> {
    let img = get_image(backend, ctx, id).await?;
    match img.status.as_str() {
        "active" => {}
        "deactivated" => return Err(error::deactivated(id).into()),
        _ => return Err(error::not_active(id).into()),
    }
    let size = u64::try_from(img.size.unwrap_or(0)).unwrap_or(0);
    let octets = |b: actix_web::HttpResponseBuilder| {
        let mut b = with_meta(b, &img);
        b.insert_header((header::CONTENT_TYPE, "application/octet-stream"));
        b
    };
    if size == 0 {
        // Glance v1 did not touch the store for an empty image.
        return Ok(octets(HttpResponse::Ok()).body(Vec::new()));
    }
    let range = crate::edge::range::of(req);
    let unsatisfiable = match range {
        Some(ByteRange::From { start, .. }) => start >= size,
        Some(ByteRange::Last(n)) => n == 0,
        None => false,
    };
    if unsatisfiable {
        return Err(error::range_not_satisfiable(
            size,
            format!(
                "Invalid start position in Range header. Start position MUST be in the inclusive range [0, {}].",
                size - 1
            ),
        )
        .into());
    }
    let data = backend
        .data(ctx, id, range)
        .await
        .map_err(|e| from_backend(&e, Op::Data { id, size }))?;
    let (status, expected) = match data.range {
        Some(r) if r.end >= r.start => (StatusCode::PARTIAL_CONTENT, r.end - r.start + 1),
        _ => (StatusCode::OK, size),
    };
    if data.length.is_some_and(|n| n != expected) {
        tracing::error!(image = id, expected, got = ?data.length, "the image service sends a different size");
        return Err(error::unexpected().into());
    }
    let mut b = octets(HttpResponse::build(status));
    if let Some(r) = data.range {
        b.insert_header((
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{}", r.start, r.end, r.total),
        ));
    }
    let body = SizeChecked {
        inner: data.stream,
        remaining: expected,
        image: id.to_string(),
        done: false,
    };
    Ok(b.no_chunking(expected).streaming(body))
}

/// The data stream, checked against the length announced (Glance v1's
/// `size_checked_iter`): a backend error, a short or a long stream becomes an
/// error of the body, and actix drops the connection instead of ending a
/// short response as if it were complete.
struct SizeChecked {
    inner: crate::backend::DataStream,
    remaining: u64,
    image: String,
    done: bool,
}

impl Stream for SizeChecked {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let fail = |this: &mut Self, why: String| {
            this.done = true;
            tracing::error!(image = %this.image, "{why}; aborting the download");
            Poll::Ready(Some(Err(std::io::Error::other(format!(
                "Corrupt image download for image {}",
                this.image
            )))))
        };
        match self.inner.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                let n = chunk.len() as u64;
                if n > self.remaining {
                    return fail(&mut self, "the image service sent more data than the image size".into());
                }
                self.remaining -= n;
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => fail(&mut self, format!("image data stream failed: {e}")),
            Poll::Ready(None) if self.remaining > 0 => {
                let left = self.remaining;
                fail(&mut self, format!("image data ended {left} bytes short"))
            }
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
        }
    }
}
