//! JSON bytes exactly as Python's `json.dumps` writes them with its defaults
//! (what `oslo_serialization.jsonutils.dumps` gives Nova): `", "` and `": "`
//! separators and `ensure_ascii=True`, so every character outside printable
//! ASCII is written as `\uXXXX` (UTF-16 code units, lower-case hex).

use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter, Serializer};
use std::io;

/// A serde_json formatter producing Python `json.dumps` output.
#[derive(Default)]
pub struct PyFormatter;

fn write_u_escape<W: ?Sized + io::Write>(w: &mut W, unit: u16) -> io::Result<()> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let buf = [
        b'\\',
        b'u',
        HEX[(unit >> 12) as usize & 0xf],
        HEX[(unit >> 8) as usize & 0xf],
        HEX[(unit >> 4) as usize & 0xf],
        HEX[unit as usize & 0xf],
    ];
    w.write_all(&buf)
}

impl Formatter for PyFormatter {
    fn begin_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + io::Write>(&mut self, w: &mut W, fragment: &str) -> io::Result<()> {
        // Python escapes everything outside ' '..='~' (ESCAPE_ASCII); serde_json has
        // already escaped the control characters, quote and backslash.
        let bytes = fragment.as_bytes();
        // Most fragments are printable ASCII throughout: one pass over the bytes.
        if bytes.iter().all(|b| (b' '..=b'~').contains(b)) {
            return w.write_all(bytes);
        }
        let mut start = 0;
        for (i, ch) in fragment.char_indices() {
            if (' '..='~').contains(&ch) {
                continue;
            }
            if start < i {
                w.write_all(&bytes[start..i])?;
            }
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                write_u_escape(w, *unit)?;
            }
            start = i + ch.len_utf8();
        }
        if start < bytes.len() {
            w.write_all(&bytes[start..])?;
        }
        Ok(())
    }

    fn write_char_escape<W: ?Sized + io::Write>(&mut self, w: &mut W, escape: CharEscape) -> io::Result<()> {
        let s: &[u8] = match escape {
            CharEscape::Quote => b"\\\"",
            CharEscape::ReverseSolidus => b"\\\\",
            CharEscape::Solidus => b"\\/",
            CharEscape::Backspace => b"\\b",
            CharEscape::FormFeed => b"\\f",
            CharEscape::LineFeed => b"\\n",
            CharEscape::CarriageReturn => b"\\r",
            CharEscape::Tab => b"\\t",
            CharEscape::AsciiControl(byte) => return write_u_escape(w, u16::from(byte)),
        };
        w.write_all(s)
    }
}

/// Serialize `value` as Python's `json.dumps(value)` would.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let mut ser = Serializer::with_formatter(&mut out, PyFormatter);
    // Serializing serde_json values and plain structs into a Vec cannot fail.
    if value.serialize(&mut ser).is_err() {
        out.clear();
        out.extend_from_slice(b"null");
    }
    out
}

/// Python's `str.strip()`: Unicode white space and the separators U+001C..U+001F.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

/// Python's `str()` of a JSON-decoded value (dicts and lists use `repr` quoting),
/// as Nova's validation messages print the failing instance.
pub fn py_str(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

/// Python's `repr()` of a JSON-decoded value.
pub fn py_repr(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Null => "None".to_string(),
        Value::Bool(true) => "True".to_string(),
        Value::Bool(false) => "False".to_string(),
        Value::Number(n) => py_number(n),
        Value::String(s) => py_repr_str(s),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(py_repr).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", py_repr_str(k), py_repr(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

fn py_number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    match n.as_f64() {
        Some(f) if f.is_finite() && f == f.trunc() && f.abs() < 1e16 => format!("{f:.1}"),
        Some(f) => {
            let s = format!("{f:?}");
            s.replace("e", "e+").replace("e+-", "e-")
        }
        None => n.to_string(),
    }
}

/// Python's `repr()` of a `str`: single quotes unless the text holds a single
/// quote and no double quote; printable non-ASCII kept as is.
pub fn py_repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (0x80..0xa0).contains(&(c as u32)) => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn separators_and_ascii_escapes_match_python() {
        let cases = [
            (json!({"a": [1, 2], "b": null}), r#"{"a": [1, 2], "b": null}"#),
            (json!("imagé ☃"), r#""imag\u00e9 \u2603""#),
            (json!("\u{1F600}"), r#""\ud83d\ude00""#),
            (json!("a\"b\\c\n\u{7f}\u{1}/"), r#""a\"b\\c\n\u007f\u0001/""#),
            (json!({}), "{}"),
            (json!([]), "[]"),
        ];
        for (value, expected) in cases {
            assert_eq!(String::from_utf8(to_vec(&value)).unwrap(), expected);
        }
    }

    #[test]
    fn repr_matches_python() {
        let cases = [
            (json!({"bad/key": "v"}), "{'bad/key': 'v'}"),
            (
                json!({"k": null, "b": true, "n": 1.5}),
                "{'k': None, 'b': True, 'n': 1.5}",
            ),
            (json!(["a"]), "['a']"),
            (json!("it's"), "\"it's\""),
            (json!("é\n"), "'é\\n'"),
            (json!(2.0), "2.0"),
        ];
        for (value, expected) in cases {
            assert_eq!(py_repr(&value), expected);
        }
    }
}
