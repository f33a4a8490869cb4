//! Request ids: `req-<uuid4>`, minted at the edge for every request.

/// The uuid4's random bits come from `fastrand` (a request id is a label,
/// not a secret): `Uuid::new_v4` asks the kernel for them on every request.
pub fn mint() -> String {
    let bytes = fastrand::u128(..).to_le_bytes();
    format!("req-{}", uuid::Builder::from_random_bytes(bytes).into_uuid())
}

/// A caller's `X-OpenStack-Request-ID` is kept as the global id sent to Glance
/// when it has the `req-<uuid>` form (oslo.middleware's rule); otherwise ours.
pub fn global_id(inbound: Option<&str>, own: &str) -> String {
    match inbound {
        Some(id) if is_request_id(id) => id.to_string(),
        _ => own.to_string(),
    }
}

fn is_request_id(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("req-") else {
        return false;
    };
    let groups: Vec<&str> = rest.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    groups.len() == 5
        && groups
            .iter()
            .zip(lens)
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_ids_are_kept() {
        let own = mint();
        assert!(is_request_id(&own));
        assert_eq!(
            global_id(Some("req-12345678-1234-1234-1234-123456789012"), &own),
            "req-12345678-1234-1234-1234-123456789012"
        );
        assert_eq!(global_id(Some("req-XYZ"), &own), own);
        assert_eq!(global_id(Some("req-12345678-1234-1234-1234-12345678901G"), &own), own);
        assert_eq!(global_id(None, &own), own);
    }
}

/// The request id of this request: the one the tracing root span minted, or a
/// new one when the app runs without that middleware.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

pub fn of(req: &actix_web::HttpRequest) -> String {
    use actix_web::HttpMessage;
    req.extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_else(mint)
}

/// tracing-actix-web root spans that carry our `req-<uuid>` (and never the
/// query string, headers or body).
pub struct RootSpan;

impl tracing_actix_web::RootSpanBuilder for RootSpan {
    fn on_request_start(request: &actix_web::dev::ServiceRequest) -> tracing::Span {
        use actix_web::HttpMessage;
        let id = mint();
        request.extensions_mut().insert(RequestId(id.clone()));
        tracing::info_span!(
            "request",
            request_id = %id,
            method = %request.method(),
            path = %request.path(),
        )
    }

    fn on_request_end<B: actix_web::body::MessageBody>(
        _span: tracing::Span,
        _outcome: &Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>,
    ) {
        // The request's log line, with its status, is access_log's (written
        // when the body is sent); nothing is logged in the span after this.
    }
}
