//! Where links in answers point: the request's own `scheme://host`, and
//! Nova's rewriting of a link by a configured prefix.

use crate::edge::forwarded::Origin;
use actix_web::HttpRequest;

/// `scheme://host` of the request: the `Host` header (or, trusted, the
/// proxy's word for both), else `default_host` (a request without `Host`).
pub fn host_url(req: &HttpRequest, default_host: &str) -> String {
    Origin::trusted_as_configured(req).host_url(default_host)
}

/// Nova's `common.url_join`: strip `/` from each non-empty part, join with `/`.
pub fn url_join(parts: &[&str]) -> String {
    let mut clean: Vec<&str> = parts
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| p.trim_matches('/'))
        .collect();
    if parts.last().is_some_and(|p| p.is_empty()) {
        clean.push("");
    }
    clean.join("/")
}

/// Nova's `remove_trailing_version_from_href` of an application URL (whose
/// last segment is the version): the segments before it, `url_join`ed.
pub fn remove_trailing_version(href: &str) -> String {
    let (origin, path) = match href.find("://").map(|i| i + 3) {
        Some(start) => match href[start..].find('/') {
            Some(slash) => href.split_at(start + slash),
            None => (href, ""),
        },
        None => ("", href),
    };
    let head = path.rsplit_once('/').map_or("", |(head, _)| head);
    let joined = url_join(&[head]);
    if joined.is_empty() {
        origin.to_string()
    } else {
        format!("{origin}/{joined}")
    }
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
    fn trailing_versions_are_removed_as_nova_does() {
        assert_eq!(remove_trailing_version("http://h:1/v2.1"), "http://h:1");
        assert_eq!(remove_trailing_version("https://h/compute//v2.1"), "https://h/compute");
        assert_eq!(remove_trailing_version("https://h/a/b/v2"), "https://h/a/b");
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
