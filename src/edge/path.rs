//! The request path as Nova's stack sees it: the WSGI server resolves `.` and
//! `..` segments (RFC 3986 `remove_dot_segments`, on the path as sent: `%2E%2E`
//! stays a name) and percent-decodes it into WSGI's `PATH_INFO`, a native
//! string of the bytes read as Latin-1 (which is what Nova's router matches, so
//! the ids and keys it hands on are Latin-1: `%D0%BA` is `Ð\u{ba}`, `%A0` is
//! U+00A0); paste's `urlmap` collapses runs of `/`.

/// RFC 3986 §5.2.4 on a path as sent.
pub fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len().saturating_sub(1);
    // A path ending in `.` or `..` keeps a trailing slash.
    let mut trailing = false;
    for (i, seg) in segments.iter().enumerate() {
        trailing = false;
        match *seg {
            "." => trailing = i == last,
            ".." => {
                if out.len() > 1 {
                    out.pop();
                }
                trailing = i == last;
            }
            s => out.push(s),
        }
    }
    let mut joined = out.join("/");
    if trailing || joined.is_empty() {
        joined.push('/');
    }
    if !joined.starts_with('/') && path.starts_with('/') {
        joined.insert(0, '/');
    }
    joined
}

/// `PATH_INFO` as the WSGI server passes it: dot segments resolved,
/// percent-decoded, each byte read as Latin-1.
pub fn decoded(raw: &str) -> String {
    percent_encoding::percent_decode_str(&remove_dot_segments(raw))
        .map(char::from)
        .collect()
}

/// The path Nova routes: [`decoded`], runs of `/` collapsed.
pub fn routed(raw: &str) -> String {
    if is_plain(raw) {
        return raw.to_string();
    }
    let decoded = decoded(raw);
    let mut out = String::with_capacity(decoded.len());
    for c in decoded.chars() {
        if c == '/' && out.ends_with('/') {
            continue;
        }
        out.push(c);
    }
    out
}

/// A path [`routed`] leaves as it is: ASCII without `%` (nothing to decode,
/// each byte its own Latin-1 character), no `//`, no `.` or `..` segment.
fn is_plain(raw: &str) -> bool {
    raw.starts_with('/')
        && raw.bytes().all(|b| b.is_ascii() && b != b'%')
        && !raw.contains("//")
        && !raw.split('/').any(|s| s == "." || s == "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`routed`] without its shortcut.
    fn routed_in_full(raw: &str) -> String {
        let mut out = String::new();
        for c in decoded(raw).chars() {
            if !(c == '/' && out.ends_with('/')) {
                out.push(c);
            }
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn the_plain_path_shortcut_routes_as_the_full_way(raw in "[/a-z.%2E0-9é-]{0,24}") {
            proptest::prop_assert_eq!(routed(&raw), routed_in_full(&raw));
        }
    }

    #[test]
    fn plain_paths_take_the_shortcut() {
        assert!(is_plain("/v2.1/images/a0a0a0a0-0000-4000-8000-000000000001"));
        for raw in [
            "",
            "v2.1",
            "/v2.1//images",
            "/v2.1/./images",
            "/v2.1/images/..",
            "/a%20b",
            "/é",
        ] {
            assert!(!is_plain(raw), "{raw}");
            assert_eq!(routed(raw), routed_in_full(raw), "{raw}");
        }
    }

    #[test]
    fn dot_segments_resolve_as_the_wsgi_server_resolves_them() {
        for (raw, want) in [
            ("/v2.1/images/..", "/v2.1/"),
            ("/v2.1/images/../metadata/x", "/v2.1/metadata/x"),
            ("/v2.1/images/./x", "/v2.1/images/x"),
            ("/v2.1/images/x/..", "/v2.1/images/"),
            ("/images/..", "/"),
            ("/..", "/"),
            ("/../../v2.1", "/v2.1"),
            ("/v2.1/images/%2E%2E", "/v2.1/images/%2E%2E"),
            ("/v2.1/images/...", "/v2.1/images/..."),
            ("/v2.1/images/", "/v2.1/images/"),
            ("/", "/"),
        ] {
            assert_eq!(remove_dot_segments(raw), want, "{raw}");
        }
    }

    #[test]
    fn routed_paths_are_decoded_with_slashes_collapsed() {
        assert_eq!(routed("//v2.1///images"), "/v2.1/images");
        assert_eq!(routed("/images/x%2F%2Fy"), "/images/x/y");
        assert_eq!(routed("/images/%C3%A9%20"), "/images/\u{c3}\u{a9} ");
        assert_eq!(routed("/images/é/%A0"), "/images/\u{c3}\u{a9}/\u{a0}");
        assert_eq!(routed("/v2.1/images/.."), "/v2.1/");
        assert_eq!(decoded("//images//x%2F%2F"), "//images//x//");
    }
}
