//! The compute API's route table for the images proxy, parsed from method and
//! path into one `Endpoint` (the paths are relative to `/v2.1` or `/v2`).

use actix_web::http::Method;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /{project_id}/` and `GET /versions/{id}`: a version document.
    VersionShow(Option<String>),
    ImagesIndex,
    ImagesDetail,
    ImageShow(String),
    ImageDelete(String),
    MetadataIndex(String),
    MetadataCreate(String),
    MetadataUpdateAll(String),
    MetadataShow(String, String),
    MetadataUpdate(String, String),
    MetadataDelete(String, String),
}

impl Endpoint {
    /// Calls under `/images/{id}/metadata` stay until 2.38; the rest until 2.35.
    pub fn is_metadata(&self) -> bool {
        matches!(
            self,
            Endpoint::MetadataIndex(_)
                | Endpoint::MetadataCreate(_)
                | Endpoint::MetadataUpdateAll(_)
                | Endpoint::MetadataShow(..)
                | Endpoint::MetadataUpdate(..)
                | Endpoint::MetadataDelete(..)
        )
    }

    pub fn is_version(&self) -> bool {
        matches!(self, Endpoint::VersionShow(_))
    }

    /// A short name for logs and spans.
    pub fn name(&self) -> &'static str {
        match self {
            Endpoint::VersionShow(_) => "versions.show",
            Endpoint::ImagesIndex => "images.index",
            Endpoint::ImagesDetail => "images.detail",
            Endpoint::ImageShow(_) => "images.show",
            Endpoint::ImageDelete(_) => "images.delete",
            Endpoint::MetadataIndex(_) => "image_metadata.index",
            Endpoint::MetadataCreate(_) => "image_metadata.create",
            Endpoint::MetadataUpdateAll(_) => "image_metadata.update_all",
            Endpoint::MetadataShow(..) => "image_metadata.show",
            Endpoint::MetadataUpdate(..) => "image_metadata.update",
            Endpoint::MetadataDelete(..) => "image_metadata.delete",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The `{project_id}` path segment, when the URL has one.
    pub project_id: Option<String>,
    pub endpoint: Endpoint,
}

/// Nova accepts a project id segment only if it is hex digits and dashes.
fn is_project_id(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-')
}

/// Route `method` + `path` (already percent-decoded, as `PATH_INFO`: Latin-1,
/// relative to the version prefix, starting with `/`). `None` is the router's plain 404 (never a 405).
pub fn parse(method: &Method, path: &str) -> Option<Route> {
    // Routes matches `/{project_id}/` literally; everything else must not end
    // with a slash. Empty segments (`//`) collapse, as they do in Nova.
    let trailing_slash = path.len() > 1 && path.ends_with('/');
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if trailing_slash {
        return match segs.as_slice() {
            [p] if is_project_id(p) && method == Method::GET => Some(Route {
                project_id: Some(p.to_string()),
                endpoint: Endpoint::VersionShow(None),
            }),
            _ => None,
        };
    }
    // Nova registers every route with and without the project id prefix.
    if let Some(endpoint) = endpoint(method, &segs) {
        return Some(Route {
            project_id: None,
            endpoint,
        });
    }
    match segs.split_first() {
        Some((p, rest)) if is_project_id(p) => endpoint(method, rest).map(|endpoint| Route {
            project_id: Some(p.to_string()),
            endpoint,
        }),
        _ => None,
    }
}

fn endpoint(method: &Method, segs: &[&str]) -> Option<Endpoint> {
    let get = method == Method::GET;
    let s = |x: &&str| x.to_string();
    Some(match (segs, method.as_str()) {
        (["versions", id], _) if get => Endpoint::VersionShow(Some(s(id))),
        (["images"], "GET") => Endpoint::ImagesIndex,
        (["images", "detail"], "GET") => Endpoint::ImagesDetail,
        (["images", id], "GET") => Endpoint::ImageShow(s(id)),
        (["images", id], "DELETE") => Endpoint::ImageDelete(s(id)),
        (["images", id, "metadata"], "GET") => Endpoint::MetadataIndex(s(id)),
        (["images", id, "metadata"], "POST") => Endpoint::MetadataCreate(s(id)),
        (["images", id, "metadata"], "PUT") => Endpoint::MetadataUpdateAll(s(id)),
        (["images", id, "metadata", key], "GET") => Endpoint::MetadataShow(s(id), s(key)),
        (["images", id, "metadata", key], "PUT") => Endpoint::MetadataUpdate(s(id), s(key)),
        (["images", id, "metadata", key], "DELETE") => Endpoint::MetadataDelete(s(id), s(key)),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Request lines from Nova's API reference for images (`api-ref/source/images.inc`).
    #[test]
    fn api_reference_request_lines_route() {
        let p = "6f70656e737461636b20342065766572";
        let id = "70a599e0-31e7-49b7-b260-868f441e862b";
        let table: Vec<(&str, String, Option<Endpoint>)> = vec![
            ("GET", "/images".into(), Some(Endpoint::ImagesIndex)),
            ("GET", "/images/detail".into(), Some(Endpoint::ImagesDetail)),
            ("GET", format!("/images/{id}"), Some(Endpoint::ImageShow(id.into()))),
            (
                "DELETE",
                format!("/images/{id}"),
                Some(Endpoint::ImageDelete(id.into())),
            ),
            (
                "GET",
                format!("/images/{id}/metadata"),
                Some(Endpoint::MetadataIndex(id.into())),
            ),
            (
                "POST",
                format!("/images/{id}/metadata"),
                Some(Endpoint::MetadataCreate(id.into())),
            ),
            (
                "PUT",
                format!("/images/{id}/metadata"),
                Some(Endpoint::MetadataUpdateAll(id.into())),
            ),
            (
                "GET",
                format!("/images/{id}/metadata/kernel_id"),
                Some(Endpoint::MetadataShow(id.into(), "kernel_id".into())),
            ),
            (
                "PUT",
                format!("/images/{id}/metadata/k"),
                Some(Endpoint::MetadataUpdate(id.into(), "k".into())),
            ),
            (
                "DELETE",
                format!("/images/{id}/metadata/k"),
                Some(Endpoint::MetadataDelete(id.into(), "k".into())),
            ),
            (
                "GET",
                "/images/detail.json".into(),
                Some(Endpoint::ImageShow("detail.json".into())),
            ),
            ("GET", "//images".into(), Some(Endpoint::ImagesIndex)),
            (
                "GET",
                "/versions/v2.1".into(),
                Some(Endpoint::VersionShow(Some("v2.1".into()))),
            ),
            ("POST", "/images".into(), None),
            ("PATCH", format!("/images/{id}"), None),
            ("HEAD", format!("/images/{id}"), None),
            ("GET", "/images/".into(), None),
            (
                "DELETE",
                "/images/detail".into(),
                Some(Endpoint::ImageDelete("detail".into())),
            ),
            ("GET", "/notaproject/images".into(), None),
            ("GET", "/servers".into(), None),
        ];
        for (method, path, expected) in table {
            let m = Method::from_bytes(method.as_bytes()).unwrap();
            assert_eq!(
                parse(&m, &path).map(|r| r.endpoint),
                expected.clone(),
                "{method} {path}"
            );
            let with_project = format!("/{p}{path}");
            let got = parse(&m, &with_project);
            if path.starts_with("//") {
                continue;
            }
            assert_eq!(got.clone().map(|r| r.endpoint), expected, "{method} {with_project}");
            if let Some(r) = got {
                assert_eq!(r.project_id.as_deref(), Some(p));
            }
        }
        assert_eq!(
            parse(&Method::GET, &format!("/{p}/")),
            Some(Route {
                project_id: Some(p.into()),
                endpoint: Endpoint::VersionShow(None)
            })
        );
        assert_eq!(parse(&Method::GET, &format!("/{p}")), None);

        assert_eq!(
            parse(&Method::GET, "/deadbeef/images").unwrap().project_id.as_deref(),
            Some("deadbeef")
        );
    }
}
