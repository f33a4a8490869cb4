//! Image data of Glance v2: upload (streamed to the store) and download
//! (streamed from it, one `Range`).

use super::error::V2Error;
use super::{content_type, no_content, Answer, Call};
use crate::backend::ImageBackend;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse};
use futures_util::StreamExt;

/// `PUT /v2/images/{id}/file`.
pub async fn upload(call: Call<'_>, payload: web::Payload, id: &str) -> Answer {
    let (req, store, ctx, settings) = (call.req, call.store, call.ctx, call.settings);
    let ct = content_type(req);
    if !ct.is_empty() && !ct.starts_with("application/octet-stream") {
        return Err(V2Error::new(415, format!("Content type {ct} not supported.")));
    }
    // A client that stops sending for `body_timeout_secs` loses the upload
    // (the image goes back to `queued`, as when it disconnects).
    let idle = std::time::Duration::from_secs_f64(settings.server.body_timeout_secs);
    let stalled = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stalled.clone();
    let body = futures_util::stream::unfold(Some(payload), move |payload| {
        let flag = flag.clone();
        async move {
            let mut payload = payload?;
            match tokio::time::timeout(idle, payload.next()).await {
                Ok(Some(item)) => Some((item.map_err(|e| e.to_string()), Some(payload))),
                Ok(None) => None,
                Err(_) => {
                    flag.store(true, std::sync::atomic::Ordering::SeqCst);
                    Some((Err(format!("no data for {} s", idle.as_secs_f64())), None))
                }
            }
        }
    });
    match store.upload(ctx, id, Box::pin(body)).await {
        Ok(_) => Ok(no_content(req)),
        Err(_) if stalled.load(std::sync::atomic::Ordering::SeqCst) => {
            tracing::warn!(image = id, "upload abandoned: the client stopped sending");
            Err(V2Error::new(408, "The image data was not received in time."))
        }
        Err(e) => Err(e.into()),
    }
}

/// `GET /v2/images/{id}/file`.
pub async fn download(call: Call<'_>, id: &str) -> Answer {
    let Call { req, store, ctx, .. } = call;
    let image = store.get(ctx, id).await?;
    let range = crate::edge::range::of(req);
    let data = match store.data(ctx, id, range).await {
        Ok(d) => d,
        Err(e) => return Err(e.into()),
    };
    let mut b = HttpResponse::build(if data.range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    });
    b.insert_header((header::CONTENT_TYPE, "application/octet-stream"))
        .insert_header(("x-openstack-request-id", crate::edge::request_id::of(req)));
    // Glance sends the hex checksum here (not RFC 1864's base64).
    if let Some(checksum) = image.checksum.as_deref() {
        b.insert_header(("Content-MD5", checksum.to_string()));
    }
    if let Some(r) = data.range {
        b.insert_header((
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{}", r.start, r.end, r.total),
        ));
    }
    let length = data.length.unwrap_or(0);
    let stream = data
        .stream
        .map(|chunk| chunk.map_err(|e| actix_web::error::ErrorInternalServerError(e.to_string())));
    Ok(b.body(actix_web::body::SizedStream::new(length, stream)))
}
