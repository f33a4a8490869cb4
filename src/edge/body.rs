//! Reading a request body whole, within a size limit and a deadline.

use actix_web::web;
use futures_util::StreamExt;
use std::time::Duration;

/// Why a request body was not read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyError {
    /// More than the limit (oslo.middleware `sizelimit`).
    TooLarge,
    /// Not all there within the deadline (`server.body_timeout_secs`).
    TooSlow,
    /// The client broke the framing or went away.
    Broken,
}

/// Read the body, refusing more than `max` bytes or taking longer than `deadline`.
pub async fn read(mut payload: web::Payload, max: usize, deadline: Duration) -> Result<Vec<u8>, BodyError> {
    let read = async {
        let mut body = Vec::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| match e {
                actix_web::error::PayloadError::Overflow => BodyError::TooLarge,
                _ => BodyError::Broken,
            })?;
            if body.len() + chunk.len() > max {
                return Err(BodyError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    tokio::time::timeout(deadline, read)
        .await
        .unwrap_or(Err(BodyError::TooSlow))
}

/// The request's `Content-Length`, when it is a number.
pub fn content_length(req: &actix_web::HttpRequest) -> Option<u64> {
    req.headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}
