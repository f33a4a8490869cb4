//! Where links in answers point: the request's own `scheme://host`, and
//! Nova's rewriting of a link by a configured prefix.

use actix_web::http::header;
use actix_web::HttpRequest;

/// `scheme://host` of the request as the service sees it: the `Host` header
/// (no proxy headers), else `default_host` (a request without `Host`).
pub fn host_url(req: &HttpRequest, default_host: &str) -> String {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(default_host);
    let scheme = if req.app_config().secure() { "https" } else { "http" };
    format!("{scheme}://{host}")
}

/// Nova's `_update_link_prefix`: scheme and host from `prefix`, its path prepended.
pub fn update_link_prefix(orig: &str, prefix: &str) -> String {
    if prefix.is_empty() {
        return orig.to_string();
    }
    let (Ok(o), Ok(p)) = (url::Url::parse(orig), url::Url::parse(prefix)) else {
        return orig.to_string();
    };
    let host = match p.port() {
        Some(port) => format!("{}:{}", p.host_str().unwrap_or(""), port),
        None => p.host_str().unwrap_or("").to_string(),
    };
    let ppath = if p.path() == "/" && !prefix.ends_with('/') {
        ""
    } else {
        p.path()
    };
    let opath = if o.path() == "/" && !orig.ends_with('/') {
        ""
    } else {
        o.path()
    };
    let mut out = format!("{}://{}{}{}", p.scheme(), host, ppath, opath);
    if let Some(q) = o.query() {
        out.push('?');
        out.push_str(q);
    }
    out.trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn host_from_the_header_else_the_default() {
        let req = TestRequest::default().insert_header(("Host", "h:1")).to_http_request();
        assert_eq!(host_url(&req, "d:2"), "http://h:1");
        let req = TestRequest::default().to_http_request();
        assert_eq!(host_url(&req, "d:2"), "http://d:2");
    }

    #[test]
    fn prefixes_replace_scheme_and_host_and_prepend_their_path() {
        assert_eq!(update_link_prefix("http://h:1/v2.1", ""), "http://h:1/v2.1");
        assert_eq!(update_link_prefix("http://h:1/v2.1", "https://p"), "https://p/v2.1");
        assert_eq!(
            update_link_prefix("http://h:1/v2.1", "https://p:8/c/"),
            "https://p:8/c//v2.1"
        );
        assert_eq!(update_link_prefix("http://h:1", "https://p/c"), "https://p/c");
    }
}
