//! Which metadata keys a write may name. Nova's key pattern lets through keys
//! that Glance would not store as extra properties under that name:
//!
//! * Glance's base image attributes (`name`, `owner`, `status`, …): a JSON-patch
//!   on them changes the image itself (or Glance refuses the whole patch);
//! * keys with leading or trailing white space (as Python's `str.strip()` sees
//!   it) and the empty key: Glance strips every JSON-pointer part
//!   (`glance/api/v2/images.py` `_decode_json_pointer`), so the write would land
//!   on another key.
//!
//! Such a key is refused with a 400 naming it, before any call to the backend.
//! A deliberate deviation from Nova, which passes them on (and then answers
//! 200, 403 or 500 depending on what Glance does with them).

use super::fault::Fault;
use crate::backend::GLANCE_BASE_PROPERTIES;
use crate::edge::pyjson::{py_repr_str, py_strip};

/// Why `key` cannot be written as an extra property, if it cannot.
fn refusal(key: &str) -> Option<String> {
    let shown = py_repr_str(key);
    if GLANCE_BASE_PROPERTIES.contains(&key) {
        return Some(format!(
            "Invalid metadata key {shown}: it is an attribute of the image itself, not an extra property."
        ));
    }
    let stripped = py_strip(key);
    if stripped.is_empty() {
        return Some(format!(
            "Invalid metadata key {shown}: it is empty or only white space."
        ));
    }
    if stripped != key {
        return Some(format!(
            "Invalid metadata key {shown}: the image service would store it as {} (leading or trailing white space).",
            py_repr_str(stripped)
        ));
    }
    None
}

/// Check every key a write names: the URL key first (if any), then the body's
/// keys in sorted order; the first refused one is named in a 400.
pub fn check<'a>(url_key: Option<&'a str>, body_keys: impl IntoIterator<Item = &'a String>) -> Result<(), Fault> {
    let mut keys: Vec<&str> = body_keys.into_iter().map(String::as_str).collect();
    keys.sort_unstable();
    match url_key.into_iter().chain(keys).find_map(refusal) {
        Some(message) => Err(Fault::bad_request(message)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(key: &str) -> Option<String> {
        check(Some(key), []).err().map(|f| f.message)
    }

    #[test]
    fn base_attributes_are_refused() {
        for key in GLANCE_BASE_PROPERTIES {
            let msg = refused(key).unwrap_or_else(|| panic!("{key} accepted"));
            assert_eq!(
                msg,
                format!("Invalid metadata key '{key}': it is an attribute of the image itself, not an extra property.")
            );
        }
        for fine in ["Name", "names", "owner_id", "hw_disk_bus", "os_glance", "x.name", "k"] {
            assert_eq!(refused(fine), None, "{fine}");
        }
    }

    #[test]
    fn keys_glance_would_strip_are_refused() {
        assert_eq!(
            refused("hostile_seed_a ").unwrap(),
            "Invalid metadata key 'hostile_seed_a ': the image service would store it as 'hostile_seed_a' (leading or trailing white space)."
        );
        assert_eq!(
            refused("k\n").unwrap(),
            "Invalid metadata key 'k\\n': the image service would store it as 'k' (leading or trailing white space)."
        );
        for key in [
            " a",
            "a\t",
            "\u{a0}a",
            "a\u{1c}",
            "a\u{1f}",
            "a\u{3000}",
            "\u{85}a",
            "a\u{2028}",
            "\u{b}a",
        ] {
            assert!(refused(key).is_some(), "{key:?}");
        }
        for key in ["", " ", "\n", "\t \u{a0}"] {
            assert!(refused(key).unwrap().contains("empty or only white space"), "{key:?}");
        }
        // Inner white space is kept by Glance, and so accepted.
        for key in ["a b", "a\u{a0}b", "a\u{180e}"] {
            assert_eq!(refused(key), None, "{key:?}");
        }
    }

    #[test]
    fn the_url_key_comes_first_then_body_keys_sorted() {
        let body: Vec<String> = vec!["z ".into(), "name".into(), "ok".into()];
        assert!(check(Some("owner"), &body).unwrap_err().message.contains("'owner'"));
        assert!(check(None, &body).unwrap_err().message.contains("'name'"));
        assert!(check(None, &vec!["ok".to_string()]).is_ok());
    }
}
