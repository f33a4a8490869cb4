//! Glance v1's image writes over the [`ImageBackend`]: `POST /v1/images`
//! (create, with the data in the body or none) and `DELETE /v1/images/{id}`,
//! as Glance v1 (Queens, `glance/api/v1/images.py`, `upload_utils.py`)
//! answered them, carried out as Glance v2 calls (a real Glance: `POST
//! /v2/images`, `PUT /v2/images/{id}/file`, `DELETE /v2/images/{id}` with the
//! client's token; the embedded store: its own policy-checked operations).
//!
//! A create lands whole or not at all: metadata refused before anything is
//! made; an upload that breaks off, stalls, or fails v1's size/checksum checks
//! deletes the image it made (Glance v1 left it `killed`, a state Glance v2
//! does not have and in which the image could only be deleted).

use super::error::{from_backend, Op, V1Error};
use super::headers::{self, V1Meta};
use super::{get_image, meta as v1meta, RequestBody};
use crate::backend::embedded::NewImage;
use crate::backend::{BackendError, Image, ImageBackend, RequestContext, UploadStream};
use crate::edge::webob::HttpError;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use md5::{Digest, Md5};
use serde_json::{json, Value};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// Why an upload stream failed.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Failure {
    /// The client broke off (or the body was malformed).
    Disconnected,
    /// No data for the body timeout.
    Stalled,
    /// v1's size or checksum check: its message.
    Mismatch(String),
}

pub(super) type Verdict = Arc<Mutex<Option<Failure>>>;

fn set(verdict: &Verdict, f: Failure) {
    let mut v = verdict.lock().unwrap_or_else(|p| p.into_inner());
    v.get_or_insert(f);
}

/// The request body as an [`UploadStream`] in constant memory: a local task
/// reads the (not `Send`) payload into a channel of two chunks; the stream
/// counts and hashes what passes, and at its end checks v1's supplied `size`
/// and `checksum`, failing instead of ending on a mismatch.
/// `consequence` ends a mismatch's message (what became of the image).
pub(super) fn body_stream(body: RequestBody, meta: &V1Meta, consequence: &'static str) -> (UploadStream, Verdict) {
    let RequestBody { mut payload, idle } = body;
    let verdict: Verdict = Arc::new(Mutex::new(None));
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Failure>>(2);
    actix_web::rt::spawn(async move {
        loop {
            let item = match tokio::time::timeout(idle, payload.next()).await {
                Ok(Some(Ok(chunk))) => Ok(chunk),
                Ok(Some(Err(_))) => Err(Failure::Disconnected),
                Ok(None) => return,
                Err(_) => Err(Failure::Stalled),
            };
            let stop = item.is_err();
            if tx.send(item).await.is_err() || stop {
                return;
            }
        }
    });
    let checked = Checked {
        rx,
        md5: Md5::new(),
        size: 0,
        expect_size: meta.int("size").and_then(|n| u64::try_from(n).ok()),
        expect_checksum: meta.str("checksum").map(str::to_string),
        consequence,
        verdict: verdict.clone(),
        done: false,
    };
    (Box::pin(checked), verdict)
}

struct Checked {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, Failure>>,
    md5: Md5,
    size: u64,
    expect_size: Option<u64>,
    expect_checksum: Option<String>,
    consequence: &'static str,
    verdict: Verdict,
    done: bool,
}

impl Checked {
    fn fail(&mut self, f: Failure) -> Poll<Option<Result<Bytes, std::io::Error>>> {
        self.done = true;
        let why = match &f {
            Failure::Disconnected => "the client broke off".to_string(),
            Failure::Stalled => "the client stopped sending".to_string(),
            Failure::Mismatch(m) => m.clone(),
        };
        set(&self.verdict, f);
        Poll::Ready(Some(Err(std::io::Error::other(why))))
    }

    /// v1's `_kill_mismatched`, size first.
    fn mismatch(&mut self) -> Option<String> {
        let consequence = self.consequence;
        let msg = |attr: &str, supplied: &str, actual: &str| {
            format!(
                "Supplied {attr} ({supplied}) and {attr} generated from uploaded image ({actual}) did not match. \
                 {consequence}"
            )
        };
        if let Some(s) = self.expect_size.filter(|&s| s != 0 && s != self.size) {
            return Some(msg("size", &s.to_string(), &self.size.to_string()));
        }
        let actual: String = self.md5.clone().finalize().iter().map(|b| format!("{b:02x}")).collect();
        match &self.expect_checksum {
            Some(c) if *c != actual => Some(msg("checksum", c, &actual)),
            _ => None,
        }
    }
}

impl Stream for Checked {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                self.size += chunk.len() as u64;
                self.md5.update(&chunk);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(f))) => self.fail(f),
            Poll::Ready(None) => match self.mismatch() {
                Some(m) => self.fail(Failure::Mismatch(m)),
                None => {
                    self.done = true;
                    Poll::Ready(None)
                }
            },
        }
    }
}

/// Whether the request has a body as Glance v1's `has_body` saw it: chunked,
/// or a length above zero.
pub(super) fn has_body(req: &HttpRequest) -> bool {
    let h = req.headers();
    let chunked = h
        .get(header::TRANSFER_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let length = h
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    chunked || length.is_some_and(|n| n > 0)
}

pub(super) fn plain400(msg: impl Into<String>) -> HttpError {
    HttpError::explained(400, msg).plain_typed()
}

/// v1's external sources, which this service refuses (`verb`: what the call does).
pub(super) fn refuse_sources(meta: &V1Meta, req: &HttpRequest, verb: &str) -> Result<(), HttpError> {
    if req.headers().contains_key("x-glance-api-copy-from") || meta.has("copy_from") {
        return Err(plain400(format!(
            "{verb} an image from x-glance-api-copy-from is not supported: the Glance v2 API behind this \
             service does not copy from external sources. Upload the data in the request body instead."
        )));
    }
    if meta.str("location").is_some() {
        return Err(plain400(format!(
            "{verb} an image from x-image-meta-location is not supported: the Glance v2 API behind this \
             service does not let users set image locations. Upload the data in the request body instead."
        )));
    }
    Ok(())
}

/// A body is data only as `application/octet-stream`, and data needs both
/// formats (`_validate_image_for_activation`).
pub(super) fn check_data(req: &HttpRequest, disk: Option<&str>, container: Option<&str>) -> Result<(), HttpError> {
    let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    if ct.is_none_or(|c| c.split(';').next().unwrap_or("").trim() != "application/octet-stream") {
        return Err(HttpError::explained(
            400,
            "Content-Type must be application/octet-stream",
        ));
    }
    if disk.is_none() {
        return Err(HttpError::explained(400, "Disk format is not specified."));
    }
    if container.is_none() {
        return Err(HttpError::explained(400, "Container format is not specified."));
    }
    Ok(())
}

/// The new image of `meta`, or v1's refusal of what this service cannot do.
fn new_image(meta: &V1Meta, ctx: &RequestContext, req: &HttpRequest) -> Result<NewImage, HttpError> {
    refuse_sources(meta, req, "Creating")?;
    if let Some(owner) = meta.str("owner").filter(|o| *o != ctx.project_id) {
        return Err(plain400(format!(
            "x-image-meta-owner {owner} is not supported: images are owned by the project of the token."
        )));
    }
    let s = |k: &str| meta.str(k).map(str::to_string);
    let mut properties = serde_json::Map::new();
    for (k, v) in &meta.properties {
        // v1 stored an empty property value as None; Glance v2 properties are strings.
        if let Value::String(_) = v {
            properties.insert(k.clone(), v.clone());
        }
    }
    Ok(NewImage {
        id: s("id"),
        name: s("name"),
        visibility: meta.bool("is_public").unwrap_or(false).then(|| "public".to_string()),
        protected: meta.bool("protected").unwrap_or(false),
        container_format: s("container_format"),
        disk_format: s("disk_format"),
        min_ram: meta.int("min_ram").unwrap_or(0),
        min_disk: meta.int("min_disk").unwrap_or(0),
        properties,
        ..Default::default()
    })
}

/// A failed upload: what the body stream saw first (a v1 check, a client
/// that broke off or stalled), else the backend's refusal.
pub(super) fn upload_error(err: &BackendError, failure: Option<Failure>) -> V1Error {
    match failure {
        Some(Failure::Mismatch(m)) => plain400(m).into(),
        Some(Failure::Disconnected) => plain400("Client disconnected before sending all data to backend").into(),
        Some(Failure::Stalled) => HttpError::explained(408, "The image data was not received in time.").into(),
        None => from_backend(err, Op::Upload),
    }
}

/// `POST /v1/images`.
pub async fn create(
    req: &HttpRequest,
    upload: RequestBody,
    backend: &dyn ImageBackend,
    ctx: &RequestContext,
) -> Result<HttpResponse, V1Error> {
    let meta = headers::parse(req.headers())?;
    let new = new_image(&meta, ctx, req)?;
    let body = has_body(req);
    if body {
        check_data(req, new.disk_format.as_deref(), new.container_format.as_deref())?;
    }
    let requested_id = new.id.clone();
    let image = backend.create_image(ctx, new).await.map_err(|e| {
        from_backend(
            &e,
            Op::Create {
                id: requested_id.as_deref(),
            },
        )
    })?;
    let image = if body {
        let (stream, verdict) = body_stream(upload, &meta, "The image has been deleted.");
        match backend.upload(ctx, &image.id, stream).await {
            Ok(img) => img,
            Err(e) => {
                let failure = verdict.lock().unwrap_or_else(|p| p.into_inner()).clone();
                tracing::warn!(image = %image.id, error = %e, ?failure, "Glance v1 upload failed; deleting the image it created");
                if let Err(d) = backend.delete(ctx, &image.id).await {
                    tracing::error!(image = %image.id, error = %d, "could not delete the image of a failed upload");
                }
                return Err(upload_error(&e, failure));
            }
        }
    } else {
        image
    };
    Ok(created(req, &image))
}

/// 201 with `{"image": …}`, `Location` (absolute, as webob made it: the
/// request's scheme and host, trusted proxy headers applied) and `ETag`.
fn created(req: &HttpRequest, img: &Image) -> HttpResponse {
    let host = crate::edge::links::host_url(req, req.app_config().host());
    let location = format!("{host}/v1/images/{}", img.id);
    let mut b = HttpResponse::Created();
    b.insert_header((header::CONTENT_TYPE, "application/json"));
    b.insert_header((header::LOCATION, location));
    if let Some(sum) = &img.checksum {
        b.insert_header((header::ETAG, sum.as_str()));
    }
    b.body(crate::edge::pyjson::to_vec(
        &json!({ "image": v1meta::detail_item(img) }),
    ))
}

/// `DELETE /v1/images/{id}`: 200 with an empty body.
pub async fn delete(backend: &dyn ImageBackend, ctx: &RequestContext, id: &str) -> Result<HttpResponse, V1Error> {
    let img = get_image(backend, ctx, id).await?;
    if img.protected {
        return Err(HttpError::explained(403, "Image is protected").plain_typed().into());
    }
    backend
        .delete(ctx, id)
        .await
        .map_err(|e| from_backend(&e, Op::Delete(id)))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, crate::edge::webob::TEXT_HTML))
        .finish())
}

#[cfg(test)]
mod tests {
    use super::super::error::page;
    use super::*;

    #[test]
    fn upload_failures_answer_as_v1() {
        let e = page(upload_error(&BackendError::Timeout, Some(Failure::Disconnected)));
        assert_eq!(
            (e.status, e.explanation.as_str()),
            (400, "Client disconnected before sending all data to backend")
        );
        let e = page(upload_error(
            &BackendError::Timeout,
            Some(Failure::Mismatch("m".into())),
        ));
        assert_eq!((e.status, e.explanation.as_str()), (400, "m"));
        let e = page(from_backend(
            &crate::backend::error::conflict("exists"),
            Op::Create { id: Some("x") },
        ));
        assert_eq!(e.explanation, "An image with identifier x already exists");
        let e = page(upload_error(&BackendError::UploadInterrupted("cut".into()), None));
        assert_eq!(e.status, 400);
    }
}
