//! The deliberate differences from Nova 34 that README's compatibility notes
//! list: a difference the fuzzer finds that matches one of these is counted
//! apart (documented), any other is undocumented. Each names the words of its
//! README row, and the test checks README still says them.

use super::grammar::Request;
use super::Answer;
use serde_json::Value;
use std::collections::BTreeSet;

pub struct Deviation {
    /// What it is, in the report.
    pub name: &'static str,
    /// Words README's compatibility notes say about it.
    pub readme: &'static str,
    pub matches: fn(&Request, &Answer, &Answer) -> bool,
}

fn is_metadata(r: &Request) -> bool {
    r.route.contains("/metadata")
}

pub const ANSWERS: &[Deviation] = &[
    Deviation {
        name: "204 without Content-Length",
        readme: "RFC 9110 §8.6 forbids it on 204",
        matches: |_, nova, ours| {
            nova.status == 204 && ours.status == 204 && {
                let strip = |a: &Answer| {
                    a.headers
                        .iter()
                        .filter(|(k, _)| k != "content-length")
                        .cloned()
                        .collect::<Vec<_>>()
                };
                strip(nova) == strip(ours) && nova.body == ours.body
            }
        },
    },
    Deviation {
        name: "metadata key naming a base attribute refused",
        readme: "a metadata write naming a base attribute of the image",
        matches: |r, _, ours| {
            is_metadata(r) && ours.status == 400 && ours.body.contains("it is an attribute of the image itself")
        },
    },
    Deviation {
        name: "metadata key Glance would store under another name refused",
        readme: "a metadata key Glance would store under another name",
        matches: |r, _, ours| {
            is_metadata(r)
                && ours.status == 400
                && (ours.body.contains("the image service would store it as")
                    || ours.body.contains("it is empty or only white space"))
        },
    },
    Deviation {
        name: "image id longer than 36 characters",
        readme: "an image id longer than 36 characters",
        matches: |r, nova, ours| {
            ours.status == 404
                && nova.status >= 500
                && r.target
                    .split(['/', '?'])
                    .any(|segment| segment.len() > 36 && !segment.contains('='))
        },
    },
    Deviation {
        name: "metadata GET with a query parameter (Nova 500 KeyError)",
        readme: "a query parameter on a metadata `GET`",
        matches: |r, nova, _| {
            is_metadata(r)
                && matches!(r.method.as_str(), "GET" | "HEAD")
                && r.target.contains('?')
                && nova.status == 500
                && (nova.body.contains("KeyError") || r.method == "HEAD")
        },
    },
    Deviation {
        name: "block_device_mapping holding invalid JSON (Nova 500)",
        readme: "`block_device_mapping`/`mappings` holding invalid JSON",
        matches: |_, nova, _| nova.status == 500 && nova.body.contains("JSONDecodeError"),
    },
    Deviation {
        name: "metadata PUT moving a value to a new key (Nova 500)",
        readme: "metadata `PUT` that moves a value to a new key",
        matches: |r, nova, ours| is_metadata(r) && r.method == "PUT" && nova.status == 500 && ours.status == 200,
    },
    Deviation {
        name: "metadata POST answer: keys in the order of Glance's PATCH answer",
        readme: "the keys of a metadata `POST` answer",
        matches: |r, nova, ours| {
            let json = |a: &Answer| serde_json::from_str::<serde_json::Value>(&a.body).ok();
            is_metadata(r)
                && r.method == "POST"
                && nova.status == 200
                && nova.status == ours.status
                && nova.headers == ours.headers
                // The same keys and values (map equality ignores order).
                && json(nova).is_some_and(|n| Some(n) == json(ours))
        },
    },
];

/// A state difference left by a listed deviation: Nova's metadata writes turn a
/// `shared` or `community` image `private` (its `is_public` round trip).
pub const STATE: &[(&str, &str)] = &[(
    "metadata write on a shared or community image keeps its visibility",
    "a metadata write on a `shared` or `community` image",
)];

/// The listed deviation `nova` and `ours` (as Glance holds them) differ by:
/// Nova's image `private` where the service's kept `shared`/`community`, and
/// nothing else.
pub fn state_matches(nova: &serde_json::Value, ours: &serde_json::Value) -> Option<&'static str> {
    let vis = |v: &serde_json::Value| v.get("visibility").and_then(|v| v.as_str()).map(str::to_string);
    let (nv, ov) = (vis(nova)?, vis(ours)?);
    if nv != "private" || !(ov == "shared" || ov == "community") {
        return None;
    }
    let mut a = nova.clone();
    a["visibility"] = ov.into();
    (a == *ours).then_some(STATE[0].0)
}

/// Not a deviation of the service but a limit of the fuzzer: once it has had
/// to bring an image's extra properties back to Nova's side (after a listed
/// deviation wrote on one side only), the two Glances may list them in
/// another order (Glance keeps the order it first stored each key in).
pub const RESYNCED_ORDER: (&str, &str) = (
    "order of the extra properties of an image the fuzzer brought back",
    "the order of the extra properties of an image it had to",
);

/// The seeded image a request's path names (decoded: `%30e2…` is `0e2…`).
fn target_image(r: &Request) -> Option<String> {
    let path = r.target.split('?').next().unwrap_or("");
    let path = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    let mut segments = path.split('/');
    segments.find(|s| *s == "images")?;
    segments.next().map(str::to_string)
}

/// Answers that differ only in the order of extra properties, of images that
/// are all in `resynced`.
pub fn reordered(r: &Request, nova: &Answer, ours: &Answer, resynced: &BTreeSet<String>) -> bool {
    if nova.status != ours.status || nova.headers != ours.headers {
        return false;
    }
    let parse = |a: &Answer| serde_json::from_str::<Value>(&a.body).ok();
    let (Some(n), Some(o)) = (parse(nova), parse(ours)) else {
        return false;
    };
    // Map equality ignores the order of keys.
    if n != o {
        return false;
    }
    let id = |image: &Value| image["id"].as_str().map(str::to_string);
    let ids: Vec<Option<String>> = match (n.get("images"), o.get("images"), n.get("image")) {
        (Some(Value::Array(a)), Some(Value::Array(b)), _) => a
            .iter()
            .zip(b)
            .filter(|(x, y)| x.to_string() != y.to_string())
            .map(|(x, _)| id(x))
            .collect(),
        (_, _, Some(image)) => vec![id(image)],
        _ => vec![target_image(r)],
    };
    !ids.is_empty() && ids.iter().all(|i| i.as_ref().is_some_and(|i| resynced.contains(i)))
}
