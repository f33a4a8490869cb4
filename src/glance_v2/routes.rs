//! The Glance v2 route table of the embedded store: one [`Endpoint`] parsed
//! from method and path, dispatched by one exhaustive `match` in `mod.rs`.

use actix_web::http::Method;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `/`, `/v2`, `/v2/` (300) and `/versions` (200), whatever the method,
    /// without authentication.
    Versions {
        listed: bool,
    },
    ImagesList,
    ImageCreate,
    ImageShow(String),
    ImageDelete(String),
    ImageUpdate(String),
    Upload(String),
    Download(String),
    /// `POST /v2/images/{id}/actions/deactivate` (`active` false) or `reactivate`.
    SetActive(String, bool),
    /// `PUT` (`add` true) or `DELETE /v2/images/{id}/tags/{tag}`.
    Tag {
        id: String,
        tag: String,
        add: bool,
    },
    /// `GET /v2/images/{id}/members`.
    Members(String),
    SchemaImage,
    SchemaImages,
    /// A served resource, another method: 405.
    MethodNotAllowed,
    NotFound,
}

/// Route `method` + `path` (percent-decoded).
pub fn parse(method: &Method, path: &str) -> Endpoint {
    match path {
        "/versions" => return Endpoint::Versions { listed: true },
        "/" | "/v2" | "/v2/" => return Endpoint::Versions { listed: false },
        _ => {}
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return Endpoint::NotFound;
    };
    let segs: Vec<&str> = rest.split('/').collect();
    let id = |s: &str| s.to_string();
    match (segs.as_slice(), method.as_str()) {
        (["images"], "GET") => Endpoint::ImagesList,
        (["images"], "POST") => Endpoint::ImageCreate,
        (["images", i], "GET") => Endpoint::ImageShow(id(i)),
        (["images", i], "DELETE") => Endpoint::ImageDelete(id(i)),
        (["images", i], "PATCH") => Endpoint::ImageUpdate(id(i)),
        (["images", i, "file"], "PUT") => Endpoint::Upload(id(i)),
        (["images", i, "file"], "GET") => Endpoint::Download(id(i)),
        (["images", i, "members"], "GET") => Endpoint::Members(id(i)),
        (["images", i, "actions", a @ ("deactivate" | "reactivate")], "POST") => {
            Endpoint::SetActive(id(i), *a == "reactivate")
        }
        (["images", i, "tags", t], m @ ("PUT" | "DELETE")) => Endpoint::Tag {
            id: id(i),
            tag: id(t),
            add: m == "PUT",
        },
        (["schemas", "image"], "GET") => Endpoint::SchemaImage,
        (["schemas", "images"], "GET") => Endpoint::SchemaImages,
        (["images"] | ["images", _] | ["images", _, "file" | "members"] | ["images", _, "actions", _], _) => {
            Endpoint::MethodNotAllowed
        }
        _ => Endpoint::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request lines of Glance's API reference for the calls served, and
    /// their neighbours that are not.
    #[test]
    fn route_table() {
        let i = || "abc".to_string();
        let table: Vec<(&str, &str, Endpoint)> = vec![
            ("GET", "/", Endpoint::Versions { listed: false }),
            ("GET", "/v2", Endpoint::Versions { listed: false }),
            ("POST", "/v2/", Endpoint::Versions { listed: false }),
            ("GET", "/versions", Endpoint::Versions { listed: true }),
            ("GET", "/v2/images", Endpoint::ImagesList),
            ("POST", "/v2/images", Endpoint::ImageCreate),
            ("GET", "/v2/images/abc", Endpoint::ImageShow(i())),
            ("DELETE", "/v2/images/abc", Endpoint::ImageDelete(i())),
            ("PATCH", "/v2/images/abc", Endpoint::ImageUpdate(i())),
            ("PUT", "/v2/images/abc/file", Endpoint::Upload(i())),
            ("GET", "/v2/images/abc/file", Endpoint::Download(i())),
            (
                "POST",
                "/v2/images/abc/actions/deactivate",
                Endpoint::SetActive(i(), false),
            ),
            (
                "POST",
                "/v2/images/abc/actions/reactivate",
                Endpoint::SetActive(i(), true),
            ),
            (
                "PUT",
                "/v2/images/abc/tags/t",
                Endpoint::Tag {
                    id: i(),
                    tag: "t".into(),
                    add: true,
                },
            ),
            (
                "DELETE",
                "/v2/images/abc/tags/t",
                Endpoint::Tag {
                    id: i(),
                    tag: "t".into(),
                    add: false,
                },
            ),
            ("GET", "/v2/schemas/image", Endpoint::SchemaImage),
            ("GET", "/v2/schemas/images", Endpoint::SchemaImages),
            ("PUT", "/v2/images", Endpoint::MethodNotAllowed),
            ("POST", "/v2/images/abc", Endpoint::MethodNotAllowed),
            ("DELETE", "/v2/images/abc/file", Endpoint::MethodNotAllowed),
            ("POST", "/v2/images/abc/actions/other", Endpoint::MethodNotAllowed),
            ("GET", "/v2/images/abc/tags/t", Endpoint::NotFound),
            ("GET", "/v2/images/abc/members", Endpoint::Members(i())),
            ("GET", "/v2/tasks", Endpoint::NotFound),
            ("GET", "/v2/v2/images", Endpoint::NotFound),
            ("GET", "/v1/images", Endpoint::NotFound),
        ];
        for (method, path, want) in table {
            let m = Method::from_bytes(method.as_bytes()).unwrap();
            assert_eq!(parse(&m, path), want, "{method} {path}");
        }
    }
}
