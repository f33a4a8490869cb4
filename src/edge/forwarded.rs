//! What a request says about where its client sent it: the scheme, host and
//! path prefix of the links in answers, and the client address of the log line.
//!
//! With `[oslo_middleware] enable_proxy_headers_parsing` on, the headers of the
//! proxy in front are read as Nova 34 under uwsgi reads them: uwsgi takes the
//! scheme from `X-Forwarded-Proto` (else `https` for `X-Forwarded-Ssl: on`/`1`),
//! then oslo.middleware's `HTTPProxyToWSGI` takes the first entry of
//! `Forwarded` (RFC 7239: `proto`, `host`, `for`), or without that header
//! `X-Forwarded-Proto`, `X-Forwarded-Host`, `X-Forwarded-For`, and prepends
//! `X-Forwarded-Prefix` to the script name. Repeated headers count as one,
//! their values joined by `, ` (as the WSGI server hands them on). Off (the
//! default), none of these headers counts.

use actix_web::http::header::{HeaderMap, HOST};
use actix_web::HttpRequest;
use percent_encoding::{percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Whether proxy headers are trusted (app data of each listener).
#[derive(Clone, Copy, Debug)]
pub struct TrustProxyHeaders(pub bool);

/// Where the client sent the request, as the application sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// `wsgi.url_scheme`.
    pub scheme: String,
    /// `HTTP_HOST`, if any.
    pub host: Option<String>,
    /// `REMOTE_ADDR` as the proxy names it, if trusted and named.
    pub client: Option<String>,
    /// The `SCRIPT_NAME` prefix (`X-Forwarded-Prefix`), unquoted.
    pub prefix: String,
}

/// webob's `PATH_SAFE`: what `url_quote` leaves alone in a path.
const PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@')
    .remove(b'_')
    .remove(b'.')
    .remove(b'-');

/// webob's `url_quote` of a path that is a WSGI native string (the request's
/// path, a proxy's prefix: each character one byte, Latin-1), percent-encoded.
/// A character past U+00FF (not from a request) goes as UTF-8.
pub fn quote_path(path: &str) -> String {
    let mut bytes = Vec::with_capacity(path.len());
    for c in path.chars() {
        match u8::try_from(c) {
            Ok(b) => bytes.push(b),
            Err(_) => bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    percent_encode(&bytes, PATH).to_string()
}

/// Every value of header `name`, joined by `, `. `None` when the header is absent.
fn joined_bytes(headers: &HeaderMap, name: &str) -> Option<Vec<u8>> {
    let values: Vec<&[u8]> = headers.get_all(name).map(|v| v.as_bytes()).collect();
    (!values.is_empty()).then(|| values.join(&b", "[..]))
}

/// [`joined_bytes`] read as Latin-1 (WSGI's native strings).
fn joined(headers: &HeaderMap, name: &str) -> Option<String> {
    joined_bytes(headers, name).map(|b| b.into_iter().map(char::from).collect())
}

/// The first proxy of a `Forwarded` header, as `_parse_rfc7239_header` reads it:
/// `key=value` pairs split at `;`, keys lower-cased, both stripped, the last of a
/// repeated key kept.
fn first_forwarded(header: &str) -> Vec<(String, String)> {
    let first = header.split(',').next().unwrap_or("");
    let mut entry: Vec<(String, String)> = Vec::new();
    for pair in first.split(';') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let key = k.trim().to_lowercase();
        entry.retain(|(existing, _)| *existing != key);
        entry.push((key, v.trim().to_string()));
    }
    entry
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

impl Origin {
    /// The request's origin; proxy headers read only when `trust`.
    pub fn of(req: &HttpRequest, trust: bool) -> Origin {
        let scheme = if req.app_config().secure() { "https" } else { "http" };
        let mut origin = Origin {
            scheme: scheme.to_string(),
            host: joined(req.headers(), HOST.as_str()),
            client: None,
            prefix: String::new(),
        };
        if trust {
            origin.apply(req.headers());
        }
        origin
    }

    /// The request's origin with the trust configured on its listener.
    pub fn trusted_as_configured(req: &HttpRequest) -> Origin {
        Origin::of(req, req.app_data::<TrustProxyHeaders>().is_some_and(|t| t.0))
    }

    fn apply(&mut self, headers: &HeaderMap) {
        // uwsgi, before the application sees the request.
        if let Some(proto) = non_empty(joined(headers, "x-forwarded-proto")) {
            self.scheme = proto;
        } else if let Some(ssl) = joined(headers, "x-forwarded-ssl") {
            let ssl = ssl.as_bytes();
            if ssl.first() == Some(&b'1') || (ssl.len() >= 2 && ssl[..2].eq_ignore_ascii_case(b"on")) {
                self.scheme = "https".into();
            }
        }
        // HTTPProxyToWSGI.
        let (proto, host, client) = match non_empty(joined(headers, "forwarded")) {
            Some(fwd) => {
                let entry = first_forwarded(&fwd);
                let get = |k: &str| entry.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
                (get("proto"), get("host"), get("for"))
            }
            None => (
                joined(headers, "x-forwarded-proto"),
                joined(headers, "x-forwarded-host"),
                joined(headers, "x-forwarded-for"),
            ),
        };
        if let Some(proto) = non_empty(proto) {
            self.scheme = proto;
        }
        if let Some(host) = non_empty(host) {
            self.host = Some(host);
        }
        self.client = non_empty(client);
        // webob reads the script name as UTF-8.
        let prefix = joined_bytes(headers, "x-forwarded-prefix").map(|b| String::from_utf8_lossy(&b).into_owned());
        if let Some(prefix) = non_empty(prefix) {
            self.prefix = prefix;
        }
    }

    /// webob's `host_url`: `scheme://host[:port]`, the scheme's default port
    /// dropped; `default_host` (`host:port`) for a request without `Host`.
    pub fn host_url(&self, default_host: &str) -> String {
        let host = self.host.as_deref().unwrap_or(default_host);
        let (name, port) = match host.rsplit_once(':') {
            Some((name, port)) if !host.ends_with(']') => (name, port),
            _ => (host, ""),
        };
        let default_port = match self.scheme.as_str() {
            "https" => "443",
            "http" => "80",
            _ => "",
        };
        if port.is_empty() || port == default_port {
            format!("{}://{name}", self.scheme)
        } else {
            format!("{}://{name}:{port}", self.scheme)
        }
    }

    /// webob's `application_url` of an application mounted at `script_name`.
    pub fn application_url(&self, default_host: &str, script_name: &str) -> String {
        self.application_url_at(&self.host_url(default_host), script_name)
    }

    /// [`application_url`](Self::application_url) with its [`host_url`](Self::host_url) at hand.
    pub fn application_url_at(&self, host_url: &str, script_name: &str) -> String {
        let mut url = String::with_capacity(host_url.len() + self.prefix.len() + script_name.len() + 8);
        url.push_str(host_url);
        if self.prefix.is_empty() {
            url.push_str(&quote_path(script_name));
        } else {
            url.push_str(&quote_path(&format!("{}{script_name}", self.prefix)));
        }
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn paths_are_quoted_as_the_bytes_of_a_native_string() {
        assert_eq!(quote_path("/my cloud/\u{c3}\u{a9}~"), "/my%20cloud/%C3%A9~");
        assert_eq!(quote_path("/\u{a0}"), "/%A0");
        assert_eq!(quote_path("/\u{3000}"), "/%E3%80%80");
    }

    fn origin(headers: &[(&str, &str)], trust: bool) -> Origin {
        let mut req = TestRequest::default();
        for h in headers {
            req = req.append_header(*h);
        }
        Origin::of(&req.to_http_request(), trust)
    }

    #[test]
    fn untrusted_headers_change_nothing() {
        let o = origin(
            &[
                ("Host", "h:1"),
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Prefix", "/p"),
            ],
            false,
        );
        assert_eq!(o.application_url("d", "/v2.1"), "http://h:1/v2.1");
        assert_eq!(o.client, None);
    }

    #[test]
    fn forwarded_first_proxy_wins_over_x_forwarded() {
        let o = origin(
            &[
                ("Host", "h:1"),
                ("Forwarded", "For=192.0.2.60;Proto=https;host=lb:443, proto=http;host=x"),
                ("X-Forwarded-Host", "ignored"),
            ],
            true,
        );
        assert_eq!(o.host_url("d"), "https://lb");
        assert_eq!(o.client.as_deref(), Some("192.0.2.60"));
    }

    #[test]
    fn uwsgi_scheme_rules_then_oslo() {
        let o = origin(&[("Forwarded", "for=a"), ("X-Forwarded-Proto", "https")], true);
        assert_eq!(o.scheme, "https");
        let o = origin(&[("X-Forwarded-Ssl", "ON")], true);
        assert_eq!(o.scheme, "https");
        let o = origin(&[("X-Forwarded-Ssl", "on"), ("X-Forwarded-Proto", "http")], true);
        assert_eq!(o.scheme, "http");
        let o = origin(&[("X-Forwarded-Proto", "https"), ("X-Forwarded-Proto", "http")], true);
        assert_eq!(o.scheme, "https, http");
    }

    #[test]
    fn default_ports_and_prefixes() {
        let o = origin(&[("Host", "h:80")], false);
        assert_eq!(o.host_url("d"), "http://h");
        let o = origin(&[("Host", "[::1]")], false);
        assert_eq!(o.host_url("d"), "http://[::1]");
        let o = origin(&[("Host", "h:443"), ("X-Forwarded-Prefix", "/a b/")], true);
        assert_eq!(o.application_url("d", "/v2.1"), "http://h:443/a%20b//v2.1");
        assert_eq!(origin(&[], false).host_url("d:2"), "http://d:2");
    }
}
