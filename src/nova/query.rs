//! Query strings of `GET /images` and `GET /images/detail`: validation
//! (`schemas/images.py` `index_query`), filters (`ImagesController._get_filters`
//! and `glance._extract_query_params_v2`), paging and next links.

use super::fault::Fault;
use crate::backend::ListQuery;

/// Parameters the schema knows; anything else is removed before use.
const KNOWN: &[&str] = &[
    "name",
    "status",
    "changes-since",
    "server",
    "type",
    "minRam",
    "minDisk",
    "limit",
    "page_size",
    "marker",
    "offset",
];
/// Validated as `positive_integer`, in the schema's order.
const POSITIVE: &[&str] = &["limit", "page_size", "offset"];

pub use crate::edge::params::{last, parse};

fn is_known(key: &str) -> bool {
    KNOWN.contains(&key) || key.starts_with("property-")
}

/// Validate, then keep only the parameters Nova keeps.
pub fn validate(params: Vec<(String, String)>) -> Result<Vec<(String, String)>, Fault> {
    for name in POSITIVE {
        for (_, value) in params.iter().filter(|(k, _)| k == name) {
            if let Some(problem) = positive_integer_problem(value) {
                return Err(Fault::bad_request(format!(
                    "Invalid input for query parameters {name}. Value: {value}. {problem}"
                )));
            }
        }
    }
    Ok(params.into_iter().filter(|(k, _)| is_known(k)).collect())
}

/// jsonschema's complaint about `value` as Nova's `positive_integer`
/// (`pattern ^[0-9]*$`, `minimum 1` on numeric strings, `minLength 1`).
fn positive_integer_problem(value: &str) -> Option<String> {
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(format!(
            "{} does not match '^[0-9]*$'",
            crate::edge::pyjson::py_repr_str(value)
        ));
    }
    if value.is_empty() {
        return Some("'' should be non-empty".to_string());
    }
    if value.bytes().all(|b| b == b'0') {
        return Some("0 is less than the minimum of 1".to_string());
    }
    None
}

fn int_param(params: &[(String, String)], key: &str) -> Option<u64> {
    // Validated digits; values past u64 behave as "everything".
    last(params, key).map(|v| v.parse::<u64>().unwrap_or(u64::MAX))
}

/// Python's `str.lstrip('property-')`: strips any leading run of those characters.
pub fn lstrip_property(key: &str) -> &str {
    key.trim_start_matches(|c: char| "property-".contains(c))
}

/// The Glance v2 list request Nova makes for these (validated) parameters.
pub fn list_query(params: &[(String, String)]) -> ListQuery {
    // Internal filter names in order of first appearance, each with its last value.
    let mut filters: Vec<(String, String)> = Vec::new();
    for (key, _) in params {
        let internal = match key.as_str() {
            "name" => "name".to_string(),
            "status" => "status".to_string(),
            "changes-since" => "changes-since".to_string(),
            "server" => "property-instance_uuid".to_string(),
            "type" => "property-image_type".to_string(),
            "minRam" => "min_ram".to_string(),
            "minDisk" => "min_disk".to_string(),
            k if k.starts_with("property-") => k.to_string(),
            _ => continue,
        };
        let value = last(params, key).unwrap_or_default().to_string();
        match filters.iter_mut().find(|(k, _)| *k == internal) {
            Some(entry) => entry.1 = value,
            None => filters.push((internal, value)),
        }
    }
    let mut glance = Vec::with_capacity(filters.len());
    for (key, mut value) in filters {
        if key == "property-instance_uuid" {
            // `server` may be a link: keep what follows the last `/`.
            if let Some((_, tail)) = value.rsplit_once('/') {
                value = tail.to_string();
            }
        }
        if key == "status" {
            value = value.to_lowercase();
        }
        let (name, value) = if key == "changes-since" {
            ("updated_at".to_string(), format!("gte:{value}"))
        } else if key.starts_with("property-") {
            // Nova's quirk: `property-os_distro` becomes `s_distro`.
            (lstrip_property(&key).to_string(), value)
        } else {
            (key, value)
        };
        match glance.iter_mut().find(|(k, _): &&mut (String, String)| *k == name) {
            Some(entry) => entry.1 = value,
            None => glance.push((name, value)),
        }
    }
    ListQuery {
        filters: glance,
        limit: int_param(params, "limit"),
        // Nova hands `page_size` to glanceclient; pages to Glance are ours to size.
        // An empty marker is not sent (`if params.get(param)`).
        marker: last(params, "marker").filter(|m| !m.is_empty()).map(str::to_string),
    }
}

/// Whether a page of `count` items gets a next link (`_get_collection_links`).
pub fn wants_next_link(params: &[(String, String)], count: usize, max_limit: u64) -> bool {
    let limit = int_param(params, "limit").unwrap_or(max_limit).min(max_limit);
    count > 0 && limit == count as u64
}

/// The query string of a next link: parameters sorted by (name, value), one
/// value per name (the greatest), `marker` set to the last id.
pub fn next_query(params: &[(String, String)], last_id: &str) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut ordered: Vec<(String, String)> = Vec::new();
    for (k, v) in sorted {
        match ordered.iter_mut().find(|(ek, _)| ek == k) {
            Some(entry) => entry.1 = v.clone(),
            None => ordered.push((k.clone(), v.clone())),
        }
    }
    match ordered.iter_mut().find(|(k, _)| k == "marker") {
        Some(entry) => entry.1 = last_id.to_string(),
        None => ordered.push(("marker".to_string(), last_id.to_string())),
    }
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in &ordered {
        s.append_pair(k, v);
    }
    s.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(q: &str) -> Vec<(String, String)> {
        parse(q)
    }

    #[test]
    fn positive_integer_messages_match_nova() {
        let cases = [
            (
                "limit=0",
                "Invalid input for query parameters limit. Value: 0. 0 is less than the minimum of 1",
            ),
            (
                "limit=-1",
                "Invalid input for query parameters limit. Value: -1. '-1' does not match '^[0-9]*$'",
            ),
            (
                "limit=",
                "Invalid input for query parameters limit. Value: . '' should be non-empty",
            ),
            (
                "limit=2&limit=abc",
                "Invalid input for query parameters limit. Value: abc. 'abc' does not match '^[0-9]*$'",
            ),
            (
                "offset=x&limit=y",
                "Invalid input for query parameters limit. Value: y. 'y' does not match '^[0-9]*$'",
            ),
            (
                "page_size=0",
                "Invalid input for query parameters page_size. Value: 0. 0 is less than the minimum of 1",
            ),
            (
                "limit=%20",
                "Invalid input for query parameters limit. Value:  . ' ' does not match '^[0-9]*$'",
            ),
        ];
        for (q, msg) in cases {
            assert_eq!(validate(p(q)).unwrap_err().message, msg, "{q}");
        }
        assert!(validate(p("limit=99999999999999999999999")).is_ok());
    }

    #[test]
    fn filters_translate_like_nova() {
        let params = validate(p("name=cirros&status=ACTIVE&changes-since=2024-01-02T00:00:00Z&minRam=0&minDisk=0&type=snapshot&server=http://h/v2.1/servers/aaaa&property-os_distro=ubuntu&property-hw_disk_bus=virtio&page_size=3&offset=1&foo=bar")).unwrap();
        let q = list_query(&params);
        let got: Vec<String> = q.filters.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            got,
            [
                "name=cirros",
                "status=active",
                "updated_at=gte:2024-01-02T00:00:00Z",
                "min_ram=0",
                "min_disk=0",
                "image_type=snapshot",
                "instance_uuid=aaaa",
                "s_distro=ubuntu",
                "hw_disk_bus=virtio"
            ]
        );
        assert_eq!((q.limit, q.marker), (None, None));
        assert_eq!(lstrip_property("property-rescue"), "scue");
        assert_eq!(lstrip_property("property-owner_id"), "wner_id");
    }

    #[test]
    fn next_links_sort_and_collapse() {
        let params = validate(p("limit=3&limit=2&foo=bar")).unwrap();
        assert_eq!(list_query(&params).limit, Some(2));
        assert_eq!(next_query(&params, "X"), "limit=3&marker=X");
        let params = validate(p("limit=1&name=cirros&limit=1")).unwrap();
        assert_eq!(next_query(&params, "X"), "limit=1&name=cirros&marker=X");
        let params = validate(p("marker=A&limit=1&zzz=1")).unwrap();
        assert_eq!(next_query(&params, "B"), "limit=1&marker=B");
        assert!(wants_next_link(&params, 1, 1000));
        assert!(!wants_next_link(&[], 999, 1000));
        assert!(wants_next_link(&[], 1000, 1000));
        assert!(!wants_next_link(&p("limit=2000"), 2000, 1000));
    }
}
