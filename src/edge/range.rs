//! One `Range: bytes=…` request header, as both Glance surfaces honour it.

use crate::backend::ByteRange;
use actix_web::http::header;
use actix_web::HttpRequest;

/// The request's single `bytes=` range; `None` for no header or anything
/// else (a malformed or multi-range header is ignored: all of the data).
pub fn of(req: &HttpRequest) -> Option<ByteRange> {
    req.headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse)
}

/// A single `bytes=a-b | a- | -n` range; `None` for anything else.
pub fn parse(v: &str) -> Option<ByteRange> {
    let spec = v.trim().strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    // Digits only: Rust's `parse` would take a leading `+`, HTTP does not.
    let num = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    match (a.is_empty(), b.is_empty()) {
        (true, false) => Some(ByteRange::Last(num(b)?)),
        (false, true) => Some(ByteRange::From {
            start: num(a)?,
            end: None,
        }),
        (false, false) => {
            let (start, end) = (num(a)?, num(b)?);
            (end >= start).then_some(ByteRange::From { start, end: Some(end) })
        }
        (true, true) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_well_formed_ranges_only() {
        assert_eq!(parse("bytes=2-4"), Some(ByteRange::From { start: 2, end: Some(4) }));
        assert_eq!(parse(" bytes= 5-"), Some(ByteRange::From { start: 5, end: None }));
        assert_eq!(parse("bytes=-3"), Some(ByteRange::Last(3)));
        for bad in [
            "bytes=4-2",
            "bytes=0-1,3-4",
            "items=0-1",
            "bytes=-",
            "bytes=a-b",
            "bytes=+1-2",
            "bytes=1-+2",
            "bytes=-+3",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
