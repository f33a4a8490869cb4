//! The request grammar of the differential fuzzer: every prefix Nova routes
//! images on, the images and metadata routes, ids and keys (seeded, unknown,
//! malformed, percent-encoded, dot segments), query parameters, microversion,
//! `Accept` and `Content-Type` headers, and bodies (valid, malformed, wrong
//! shapes, over the limits). Deterministic for a seed.

use rand::{Rng, RngExt};
use serde_json::{json, Value};

pub const TOKEN: &str = "demo:6f70656e737461636b20342065766572";
const PROJECT: &str = "6f70656e737461636b20342065766572";

/// One generated request, and what it is about.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// The request target as sent (already percent-encoded where it is).
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    /// The route template it was built from (`{prefix}/images/{id}/metadata`).
    pub route: String,
    /// The seeded image it names, if any (its state is compared after a write).
    pub image: Option<String>,
}

impl Request {
    /// The request as `curl` would send it, for reports and fixtures.
    pub fn describe(&self) -> String {
        let mut s = format!("{} {}", self.method, self.target);
        for (k, v) in &self.headers {
            s.push_str(&format!(" -H '{k}: {v}'"));
        }
        if let Some(b) = &self.body {
            s.push_str(&format!(" --data-binary '{}'", String::from_utf8_lossy(b)));
        }
        s
    }

    /// Whether it may change an image (anything but a read).
    pub fn may_write(&self) -> bool {
        !matches!(self.method.as_str(), "GET" | "HEAD")
    }
}

/// Pick one of `items`, each with its weight.
fn weighted<T: Copy, R: Rng>(rng: &mut R, items: &[(u32, T)]) -> T {
    let total: u32 = items.iter().map(|(w, _)| w).sum();
    let mut n = rng.random_range(0..total);
    for (w, item) in items {
        if n < *w {
            return *item;
        }
        n -= w;
    }
    items[items.len() - 1].1
}

fn pick<'a, T, R: Rng>(rng: &mut R, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

fn chance<R: Rng>(rng: &mut R, percent: u32) -> bool {
    rng.random_range(0..100) < percent
}

/// The generator, over the seeded image ids.
pub struct Grammar {
    pub ids: Vec<String>,
}

const KEYS: &[&str] = &[
    "os_distro",
    "os_version",
    "hw_disk_bus",
    "auto_disk_config",
    "kernel_id",
    "k1",
    "k2",
    "fuzz_key",
    "ключ",
    "a.b",
    "x-y_z:1",
];

/// Keys as they go into a URL path.
const URL_KEYS: &[&str] = &[
    "os_distro",
    "k1",
    "k2",
    "fuzz_key",
    "%D0%BA%D0%BB%D1%8E%D1%87",
    "a%20b",
    "a%2Fb",
    "bad!key",
    "..",
    "",
];

impl Grammar {
    fn image<R: Rng>(&self, rng: &mut R) -> (String, Option<String>) {
        match weighted(
            rng,
            &[(70u32, 0u8), (10, 1), (5, 2), (3, 3), (3, 4), (3, 5), (3, 6), (3, 7)],
        ) {
            0 => {
                let id = pick(rng, &self.ids).clone();
                (id.clone(), Some(id))
            }
            1 => ("00000000-0000-4000-8000-000000000000".into(), None),
            2 => ("not-a-uuid".into(), None),
            3 => ("0e2ef53e-f293-586d-beb6-ad92b2a40722-and-more".into(), None),
            4 => ("%30e2ef53e-f293-586d-beb6-ad92b2a40722".into(), None),
            5 => ("..".into(), None),
            6 => (".".into(), None),
            _ => ("a%20b".into(), None),
        }
    }

    fn prefix<R: Rng>(rng: &mut R) -> &'static str {
        weighted(
            rng,
            &[
                (50u32, "/v2.1"),
                (15, "/v2"),
                (10, "/v2.1/{project}"),
                (5, "/v2/{project}"),
                (10, ""),
                (3, "/v2.1/0123456789abcdef"),
                (2, "/v2.1/not_hex"),
                (2, "/v2.10"),
                (3, "//v2.1"),
            ],
        )
    }

    fn query<R: Rng>(&self, rng: &mut R, list: bool) -> String {
        let n = if list {
            weighted(rng, &[(40u32, 0usize), (35, 1), (18, 2), (7, 3)])
        } else {
            weighted(rng, &[(92u32, 0usize), (8, 1)])
        };
        let mut parts = Vec::new();
        for _ in 0..n {
            let id = pick(rng, &self.ids).clone();
            let (k, v): (&str, String) = match rng.random_range(0..14) {
                0 => (
                    "limit",
                    pick(rng, &["0", "1", "2", "5", "25", "-1", "abc", "1000", "1001"]).to_string(),
                ),
                1 => ("marker", if chance(rng, 80) { id } else { "bogus".into() }),
                2 => (
                    "name",
                    pick(rng, &["cirros-0.6.2-x86_64-disk", "nomatch", "im%C3%A9", "a+b"]).to_string(),
                ),
                3 => (
                    "status",
                    pick(rng, &["active", "ACTIVE", "queued", "saving", "bogus"]).to_string(),
                ),
                4 => (
                    "changes-since",
                    pick(
                        rng,
                        &[
                            "2000-01-01T00:00:00Z",
                            "2999-01-01T00:00:00Z",
                            "yesterday",
                            "2020-01-01",
                        ],
                    )
                    .to_string(),
                ),
                5 => ("minRam", pick(rng, &["0", "64", "512", "x"]).to_string()),
                6 => ("minDisk", pick(rng, &["0", "1", "20", "-5"]).to_string()),
                7 => ("type", pick(rng, &["snapshot", "backup", "x"]).to_string()),
                8 => ("server", "b3f0b7a2-6c0c-4c5e-9a51-3a8f0f4f1a01".to_string()),
                9 => ("page_size", pick(rng, &["1", "3", "x"]).to_string()),
                10 => ("property-os_distro", pick(rng, &["cirros", "ubuntu"]).to_string()),
                11 => ("sort_key", "name".to_string()),
                12 => ("fuzz", "1".to_string()),
                _ => ("limit", "2".to_string()),
            };
            parts.push(format!("{k}={v}"));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }

    fn metadata_body<R: Rng>(rng: &mut R, wrapper: &str) -> Value {
        let mut m = serde_json::Map::new();
        let n = weighted(rng, &[(10u32, 0usize), (50, 1), (30, 2), (10, 4)]);
        for _ in 0..n {
            let key = pick(rng, KEYS).to_string();
            let value = match weighted(rng, &[(80u32, 0u8), (5, 1), (5, 2), (5, 3), (5, 4)]) {
                0 => json!(pick(rng, &["v1", "v2", "12", "", "ünï ☃", "True"])),
                1 => json!(7),
                2 => Value::Null,
                3 => json!({"nested": "x"}),
                _ => json!("x".repeat(256)),
            };
            m.insert(key, value);
        }
        json!({ wrapper: Value::Object(m) })
    }

    fn body<R: Rng>(rng: &mut R, route_key: Option<&str>) -> Vec<u8> {
        let wrapper = if route_key.is_some() { "meta" } else { "metadata" };
        let choice = weighted(
            rng,
            &[(70u32, 0u8), (6, 1), (4, 2), (4, 3), (4, 4), (4, 5), (4, 6), (4, 7)],
        );
        let v = match choice {
            0 => {
                if let Some(k) = route_key.filter(|_| chance(rng, 80)) {
                    let k = percent_encoding::percent_decode_str(k).decode_utf8_lossy().into_owned();
                    json!({"meta": {k: pick(rng, &["v1", "v2", "7"])}})
                } else {
                    Self::metadata_body(rng, wrapper)
                }
            }
            1 => return pick(rng, &[&b"{"[..], b"", b"not json", b"[]", b"null"]).to_vec(),
            2 => json!({"other": {}}),
            3 => json!({wrapper: "string"}),
            4 => json!({wrapper: {}, "extra": 1}),
            5 => {
                let m: serde_json::Map<String, Value> = (0..129).map(|i| (format!("q{i}"), json!("v"))).collect();
                json!({ wrapper: m })
            }
            6 => json!({wrapper: {"x".repeat(256): "v"}}),
            _ => Self::metadata_body(rng, if wrapper == "meta" { "metadata" } else { "meta" }),
        };
        serde_json::to_vec(&v).expect("json")
    }

    /// The next request.
    pub fn request<R: Rng>(&self, rng: &mut R) -> Request {
        let method = weighted(
            rng,
            &[
                (38u32, "GET"),
                (8, "HEAD"),
                (16, "POST"),
                (16, "PUT"),
                (12, "DELETE"),
                (4, "PATCH"),
                (2, "OPTIONS"),
            ],
        )
        .to_string();
        let prefix = Self::prefix(rng);
        let resource = weighted(
            rng,
            &[
                (4u32, "/"),
                (2, ""),
                (14, "/images"),
                (12, "/images/detail"),
                (22, "/images/{id}"),
                (26, "/images/{id}/metadata"),
                (22, "/images/{id}/metadata/{key}"),
                (2, "/images/{id}/action"),
            ],
        );
        // Deleting the seeded images would soon leave nothing to fuzz.
        let resource = if method == "DELETE" && resource == "/images/{id}" && chance(rng, 85) {
            "/images/{id}/metadata/{key}"
        } else {
            resource
        };
        let (id, image) = self.image(rng);
        let key = pick(rng, URL_KEYS).to_string();
        let mut route = format!("{prefix}{resource}");
        let mut target = route
            .replace("{project}", PROJECT)
            .replace("{id}", &id)
            .replace("{key}", &key);
        if chance(rng, 5) {
            target.push('/');
            route.push('/');
        }
        if target.is_empty() {
            target.push('/');
        }
        let list = resource.ends_with("images") || resource.ends_with("detail");
        target.push_str(&self.query(rng, list));

        let mut headers = Vec::new();
        match weighted(rng, &[(92u32, 0u8), (4, 1), (2, 2), (2, 3)]) {
            0 => headers.push(("X-Auth-Token".into(), TOKEN.into())),
            1 => {}
            2 => headers.push(("X-Auth-Token".into(), "admin:admin".into())),
            _ => headers.push(("X-Auth-Token".into(), "demo:0123456789abcdef".into())),
        }
        if chance(rng, 40) {
            let v = pick(
                rng,
                &[
                    "2.1", "2.35", "2.36", "2.38", "2.39", "2.100", "latest", "2.105", "3.0", "2.a", " 2.36 ",
                ],
            );
            if chance(rng, 50) {
                headers.push(("X-OpenStack-Nova-API-Version".into(), v.to_string()));
            } else {
                headers.push(("OpenStack-API-Version".into(), format!("compute {v}")));
            }
        }
        if chance(rng, 55) {
            let a = pick(
                rng,
                &[
                    "*/*",
                    "application/json",
                    "application/xml",
                    "text/html",
                    "text/plain",
                    "application/vnd.openstack.compute+json;version=2.1",
                    "application/vnd.openstack.compute+json;version=2",
                    "application/vnd.openstack.compute+json;version=2.55",
                    "application/json;q=0.1, text/html",
                ],
            );
            headers.push(("Accept".into(), a.to_string()));
        }
        let wants_body = matches!(method.as_str(), "POST" | "PUT" | "PATCH") && chance(rng, 92)
            || (method == "GET" && chance(rng, 3));
        let body = wants_body.then(|| {
            let route_key = resource.ends_with("{key}").then_some(key.as_str());
            Self::body(rng, route_key)
        });
        if body.is_some() {
            let ct = weighted(
                rng,
                &[
                    (80u32, Some("application/json")),
                    (5, Some("text/plain")),
                    (4, Some("application/xml")),
                    (4, Some("application/json; charset=UTF-8")),
                    (3, Some("application/octet-stream")),
                    (4, None),
                ],
            );
            if let Some(ct) = ct {
                headers.push(("Content-Type".into(), ct.to_string()));
            }
        }
        Request {
            method,
            target,
            headers,
            body,
            route,
            image,
        }
    }
}
