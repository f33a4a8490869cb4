//! Python's and oslo's parsers as Glance v1 applies them to list parameters:
//! `int()`, `uuidutils.is_uuid_like`, `timeutils.parse_isotime`.

/// Python's `int(s)` for a `str`: surrounding white space, a sign, ASCII digits
/// with single underscores between them. Saturates far beyond any use here.
pub fn py_int(s: &str) -> Option<i128> {
    let t = s.trim();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let b = digits.as_bytes();
    if b.is_empty() || !b[0].is_ascii_digit() || !b[b.len() - 1].is_ascii_digit() {
        return None;
    }
    let mut n: i128 = 0;
    let mut prev_underscore = false;
    for &c in b {
        match c {
            b'_' if !prev_underscore => prev_underscore = true,
            b'0'..=b'9' => {
                prev_underscore = false;
                n = n.saturating_mul(10).saturating_add(i128::from(c - b'0'));
            }
            _ => return None,
        }
    }
    Some(if neg { -n } else { n })
}

/// oslo's `uuidutils.is_uuid_like`.
pub fn is_uuid_like(v: &str) -> bool {
    let s = v.replace("urn:", "").replace("uuid:", "");
    let s = s.trim_matches(|c| c == '{' || c == '}').replace('-', "");
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// oslo's `parse_isotime` (the `iso8601` package's grammar), normalised to UTC.
pub fn parse_isotime(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    iso8601::parse(s)
}

/// oslo `timeutils.parse_isotime`: the `iso8601` package's grammar
/// `YYYY[(-M|MM)[(-D|DD)[(T| )hh[[:]mm][[:]s[s][(.|,)f…]][Z|±hh[[:]mm]]]]]`,
/// tried in the regular expression's order; a zone-less time is UTC.
mod iso8601 {
    use chrono::{DateTime, Duration, NaiveDate, Utc};

    #[derive(Clone, Copy, Default)]
    struct Parts {
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
        micros: u32,
        offset_secs: i64,
    }

    fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
        let s = b.get(at..at + n)?;
        if !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(s.iter().fold(0, |acc, d| acc * 10 + u32::from(d - b'0')))
    }

    /// `-D`, `-DD` or `DD` at `at`, in that order (with `two_not_at_end`, `DD` may
    /// not end the text: `(?!$)`, no `YYYYMM`).
    fn dash_or_two(b: &[u8], at: usize, two_not_at_end: bool) -> Vec<(usize, u32)> {
        let mut out = Vec::new();
        if b.get(at) == Some(&b'-') {
            for n in [2, 1] {
                if let Some(v) = digits(b, at + 1, n) {
                    out.push((at + 1 + n, v));
                }
            }
        }
        if let Some(v) = digits(b, at, 2) {
            if !two_not_at_end || at + 2 != b.len() {
                out.push((at + 2, v));
            }
        }
        out
    }

    fn colon(b: &[u8], at: usize) -> Vec<usize> {
        if b.get(at) == Some(&b':') {
            vec![at + 1, at]
        } else {
            vec![at]
        }
    }

    /// Every way the optional time part can match from `at`, in regex order.
    fn times(b: &[u8], at: usize) -> Vec<(usize, Parts)> {
        let mut out = Vec::new();
        if matches!(b.get(at), Some(b' ' | b'T')) {
            if let Some(hour) = digits(b, at + 1, 2) {
                let p = at + 3;
                let mut minutes: Vec<(usize, u32)> = Vec::new();
                for c in colon(b, p) {
                    if let Some(m) = digits(b, c, 2) {
                        minutes.push((c + 2, m));
                    }
                }
                minutes.push((p, 0));
                for (pm, minute) in minutes {
                    let mut seconds: Vec<(usize, u32, u32)> = Vec::new();
                    for c in colon(b, pm) {
                        for n in [2, 1] {
                            if let Some(s) = digits(b, c, n) {
                                let after = c + n;
                                if matches!(b.get(after), Some(b'.' | b',')) {
                                    let f = b[after + 1..].iter().take_while(|d| d.is_ascii_digit()).count();
                                    if f > 0 {
                                        let frac = &b[after + 1..after + 1 + f];
                                        let micros = (0..6).fold(0u32, |acc, i| {
                                            acc * 10 + frac.get(i).map_or(0, |d| u32::from(d - b'0'))
                                        });
                                        seconds.push((after + 1 + f, s, micros));
                                    }
                                }
                                seconds.push((after, s, 0));
                            }
                        }
                    }
                    seconds.push((pm, 0, 0));
                    for (ps, second, micros) in seconds {
                        let mut zones: Vec<(usize, i64)> = Vec::new();
                        match b.get(ps) {
                            Some(b'Z') => zones.push((ps + 1, 0)),
                            Some(&sign @ (b'+' | b'-')) => {
                                if let Some(h) = digits(b, ps + 1, 2) {
                                    let sign = if sign == b'-' { -1 } else { 1 };
                                    for c in colon(b, ps + 3) {
                                        if let Some(m) = digits(b, c, 2) {
                                            zones.push((c + 2, sign * (i64::from(h) * 3600 + i64::from(m) * 60)));
                                        }
                                        zones.push((c, sign * i64::from(h) * 3600));
                                    }
                                }
                            }
                            _ => {}
                        }
                        zones.push((ps, 0));
                        for (pz, offset_secs) in zones {
                            out.push((
                                pz,
                                Parts {
                                    hour,
                                    minute,
                                    second,
                                    micros,
                                    offset_secs,
                                    ..Parts::default()
                                },
                            ));
                        }
                    }
                }
            }
        }
        out.push((at, Parts::default()));
        out
    }

    fn build(year: i32, p: Parts) -> Option<DateTime<Utc>> {
        if year < 1 || p.offset_secs.abs() >= 86_400 {
            return None;
        }
        let naive =
            NaiveDate::from_ymd_opt(year, p.month, p.day)?.and_hms_micro_opt(p.hour, p.minute, p.second, p.micros)?;
        let utc = naive.checked_sub_signed(Duration::seconds(p.offset_secs))?;
        Some(utc.and_utc())
    }

    pub fn parse(s: &str) -> Option<DateTime<Utc>> {
        // Python's `$` also matches before one final newline.
        let s = s.strip_suffix('\n').unwrap_or(s);
        let b = s.as_bytes();
        let year = digits(b, 0, 4)? as i32;
        for (pm, month) in dash_or_two(b, 4, true) {
            for (pd, day) in dash_or_two(b, pm, false) {
                for (end, parts) in times(b, pd) {
                    if end == b.len() {
                        return build(year, Parts { month, day, ..parts });
                    }
                }
            }
            // The day (and with it the time) is optional: `YYYY-MM`.
            if pm == b.len() {
                return build(
                    year,
                    Parts {
                        month,
                        day: 1,
                        ..Parts::default()
                    },
                );
            }
        }
        if b.len() == 4 {
            return build(
                year,
                Parts {
                    month: 1,
                    day: 1,
                    ..Parts::default()
                },
            );
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_ints_and_uuids() {
        assert_eq!(py_int(" +1_000 "), Some(1000));
        assert_eq!(py_int("-3"), Some(-3));
        for bad in ["", "1.0", "1__0", "_1", "1_", "0x10", "abc", "- 1"] {
            assert_eq!(py_int(bad), None, "{bad}");
        }
        assert!(is_uuid_like("5b0b4a2e-0000-4000-8000-000000000001"));
        assert!(is_uuid_like("{5B0B4A2E000040008000000000000001}"));
        assert!(is_uuid_like("urn:uuid:5b0b4a2e-0000-4000-8000-000000000001"));
        assert!(!is_uuid_like("5b0b4a2e-0000-4000-8000-00000000000"));
        assert!(!is_uuid_like("not-a-uuid"));
    }

    #[test]
    fn isotimes_as_iso8601_parses_them() {
        let t = |s: &str| parse_isotime(s).map(|t| t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string());
        // Expected values from iso8601 2.1.0 (`parse_date`), normalised to UTC.
        assert_eq!(t("2024").as_deref(), Some("2024-01-01T00:00:00.000000"));
        assert_eq!(t("2024-01").as_deref(), Some("2024-01-01T00:00:00.000000"));
        assert_eq!(
            t("2024-01-02T03:04:05+00:99").as_deref(),
            Some("2024-01-02T01:25:05.000000")
        );
        assert_eq!(t("2024-01-02T03:04:5.5").as_deref(), Some("2024-01-02T03:04:05.500000"));
        assert_eq!(t("2024-01-02T1"), None);
        assert_eq!(t("202401"), None);
        assert_eq!(t("20240102").as_deref(), Some("2024-01-02T00:00:00.000000"));
        assert_eq!(t("2024-1-2").as_deref(), Some("2024-01-02T00:00:00.000000"));
        assert_eq!(t("2024-01-02T03:04:05Z").as_deref(), Some("2024-01-02T03:04:05.000000"));
        assert_eq!(t("2024-01-02 03:04").as_deref(), Some("2024-01-02T03:04:00.000000"));
        assert_eq!(t("2024-01-02T0304").as_deref(), Some("2024-01-02T03:04:00.000000"));
        assert_eq!(t("2024-01-02T03:0").as_deref(), Some("2024-01-02T03:00:00.000000"));
        assert_eq!(
            t("2024-01-02T03:04:05,1234567+01:30").as_deref(),
            Some("2024-01-02T01:34:05.123456")
        );
        assert_eq!(t("2024-01-02T03-05").as_deref(), Some("2024-01-02T08:00:00.000000"));
        assert_eq!(
            t("2024-01-02T03:04:05\n").as_deref(),
            Some("2024-01-02T03:04:05.000000")
        );
        for bad in [
            "",
            "garbage",
            "2024-13-01",
            "2024-02-30",
            "2024-01-02T24:00",
            "2024-01-02T03:04:60",
            "2024-01-02T",
            "0000-01-01",
            "2024-01-02T03:04:05+24:00",
        ] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }
}
