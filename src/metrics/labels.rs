//! The label sets of the metrics, and how a request or a Glance call is named
//! in them: bounded values only (a route's name, never a raw path; an
//! operation's path template, never an id).

use prometheus_client::encoding::EncodeLabelSet;

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub listener: &'static str,
    pub endpoint: &'static str,
    pub method: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub listener: &'static str,
    pub endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabels {
    pub listener: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendLabels {
    pub operation: String,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeprecatedLabels {
    pub surface: &'static str,
    pub endpoint: &'static str,
    pub client: String,
}

/// The endpoint label of a request: the route's name on the compute
/// listener (Nova's routing), a fixed name per Glance v1 / v2 call shape on
/// the image listener, `other` for anything unrouted.
pub fn endpoint(listener: &str, method: &actix_web::http::Method, path: &str) -> &'static str {
    if path == crate::health::PATH {
        return "healthcheck";
    }
    if listener == "compute" {
        let rest = match path {
            "" | "/" | "/v2" | "/v2/" | "/v2.1" | "/v2.1/" => return "versions",
            p => p.strip_prefix("/v2.1").or_else(|| p.strip_prefix("/v2")),
        };
        let decoded = rest.map(|r| percent_encoding::percent_decode_str(r).decode_utf8_lossy());
        return decoded
            .as_deref()
            .and_then(|r| crate::nova::routes::parse(method, r))
            .map_or("other", |route| route.endpoint.name());
    }
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["v1", "images"] => "v1.images.index",
        ["v1", "images", "detail"] => "v1.images.detail",
        ["v1", "images", _] => "v1.images.show",
        ["v1", "images", _, "members", ..] => "v1.images.members",
        ["v1", "shared-images", _] => "v1.shared_images",
        ["v2", "images", ..] | ["v2", "schemas", ..] => "v2.images",
        [] | ["versions"] => "versions",
        _ => "other",
    }
}

/// A request's endpoint label, worked out once (its log line, its metrics
/// and the usage accounting all read it).
#[derive(Clone, Copy)]
struct Known(&'static str);

/// [`endpoint`] of `req` on `listener`, kept on the request after the first call.
pub fn endpoint_of(req: &actix_web::HttpRequest, listener: &str) -> &'static str {
    use actix_web::HttpMessage;
    if let Some(known) = req.extensions().get::<Known>() {
        return known.0;
    }
    let label = endpoint(listener, req.method(), req.path());
    req.extensions_mut().insert(Known(label));
    label
}

/// The method label of a request: a standard method's name, `other` for an
/// extension method (any token is a method; a label's values stay bounded).
pub fn method(method: &actix_web::http::Method) -> &'static str {
    const STANDARD: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
    ];
    STANDARD.into_iter().find(|m| *m == method.as_str()).unwrap_or("other")
}

/// The operation label of a Glance call: its method and path with ids
/// replaced by `{id}` (`GET /v2/images/{id}`).
pub fn operation(method: &str, path: &str) -> String {
    let template: Vec<&str> = path
        .split('/')
        .map(|seg| {
            if seg.len() >= 32 && seg.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
                "{id}"
            } else {
                seg
            }
        })
        .collect();
    format!("{method} {}", template.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::Method;

    #[test]
    fn endpoints_are_route_names() {
        let get = Method::GET;
        assert_eq!(endpoint("compute", &get, "/v2.1/images/detail"), "images.detail");
        assert_eq!(
            endpoint("compute", &get, "/v2/6f70656e737461636b20342065766572/images/abc"),
            "images.show"
        );
        assert_eq!(
            endpoint("compute", &get, "/v2.1/images/abc/metadata"),
            "image_metadata.index"
        );
        assert_eq!(endpoint("compute", &get, "/v2.1"), "versions");
        assert_eq!(endpoint("compute", &get, "/v2.1/servers"), "other");
        assert_eq!(endpoint("image", &get, "/v1/images/abc"), "v1.images.show");
        assert_eq!(endpoint("image", &get, "/v1/images/abc/members/p"), "v1.images.members");
        assert_eq!(endpoint("image", &get, "/v1/shared-images/p"), "v1.shared_images");
        assert_eq!(endpoint("image", &get, "/healthcheck"), "healthcheck");
        assert_eq!(endpoint("image", &get, "/nothing/here"), "other");
        assert_eq!(
            operation("PATCH", "/v2/images/8fceaebd-9239-5d3f-8486-ca03631dd433"),
            "PATCH /v2/images/{id}"
        );
        assert_eq!(operation("GET", "/v2/schemas/image"), "GET /v2/schemas/image");
        assert_eq!(method(&Method::PATCH), "PATCH");
        assert_eq!(method(&Method::from_bytes(b"BREW").unwrap()), "other");
    }
}
