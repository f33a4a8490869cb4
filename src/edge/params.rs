//! Query parameters as webob reads them.

/// Parse a query string as webob does (`+` is a space, blank values kept,
/// repeated keys kept in order).
pub fn parse(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The last value of `key` (webob's `params.get`).
pub fn last<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_keep_the_last() {
        let p = parse("a=1&b=+x&a=2&c=");
        assert_eq!(p.len(), 4);
        assert_eq!(last(&p, "a"), Some("2"));
        assert_eq!(last(&p, "b"), Some(" x"));
        assert_eq!(last(&p, "c"), Some(""));
        assert_eq!(last(&p, "d"), None);
    }
}
