//! `GET /images`, `GET /images/detail`, `GET /images/{id}`, `DELETE /images/{id}`
//! (`nova/api/openstack/compute/images.py`).

use super::error::{from_backend, Op};
use super::{fault::Fault, query, views, Call, Reply};
use crate::backend::{Drawing, Render};
use crate::edge::pyjson;
use actix_web::http::StatusCode;
use bytes::Bytes;
use serde::Serialize;

pub async fn index(call: &Call<'_>, detail: bool) -> Result<Reply, Fault> {
    let params = query::validate(call.params.clone())?;
    let list_query = query::list_query(&params);
    let links = &call.links;
    let (key, render): (_, &Render<'_>) = if detail {
        (links.drawing_key(DETAIL), &|img| {
            pyjson::to_vec(&views::detail(img, links))
        })
    } else {
        (links.drawing_key(BASIC), &|img| {
            pyjson::to_vec(&views::basic(img, links))
        })
    };
    let drawing = Drawing { key: &key, render };
    let images = match call.state.backend.list_rendered(&call.ctx, &list_query, &drawing).await {
        Ok(images) => images,
        Err(e) => return Err(from_backend(&e, Op::List)),
    };
    let mut next = None;
    if let Some(last) = &images.last_id {
        if query::wants_next_link(&params, images.bodies.len(), call.state.settings.api.max_limit) {
            let collection = if detail { "images/detail" } else { "images" };
            let href = format!(
                "{}?{}",
                views::url_join(&[&links.app_url, &links.project_id, collection]),
                query::next_query(&params, last)
            );
            next = Some([NextLink { rel: "next", href }]);
        }
    }
    Ok(Reply::Body(StatusCode::OK, index_body(&images.bodies, next).into()))
}

/// The drawings of an image: its detail view (a show's `image`, an entry of
/// `/images/detail`) and its basic view (an entry of `/images`).
const DETAIL: &str = "images.detail";
const BASIC: &str = "images.basic";

/// `{"images": [...], ["images_links": [next]]}` as `json.dumps` writes it,
/// the entries already written.
fn index_body(entries: &[Bytes], next: Option<[NextLink; 1]>) -> Vec<u8> {
    let len: usize = entries.iter().map(|e| e.len() + 2).sum();
    let mut out = Vec::with_capacity(len + 64);
    out.extend_from_slice(b"{\"images\": [");
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(entry);
    }
    out.push(b']');
    if let Some(next) = next {
        out.extend_from_slice(b", \"images_links\": ");
        out.extend_from_slice(&pyjson::to_vec(&next));
    }
    out.push(b'}');
    out
}

#[derive(Serialize)]
struct NextLink {
    rel: &'static str,
    href: String,
}

pub async fn show(call: &Call<'_>, id: &str) -> Result<Reply, Fault> {
    let links = &call.links;
    let drawing = Drawing {
        key: &links.drawing_key(DETAIL),
        render: &|image| pyjson::to_vec(&views::detail(image, links)),
    };
    match call.state.backend.get_rendered(&call.ctx, id, &drawing).await {
        // `{"image": <detail>}`.
        Ok(detail) => {
            let mut body = Vec::with_capacity(detail.len() + 12);
            body.extend_from_slice(b"{\"image\": ");
            body.extend_from_slice(&detail);
            body.push(b'}');
            Ok(Reply::Body(StatusCode::OK, body.into()))
        }
        Err(e) => Err(from_backend(&e, Op::Show(id))),
    }
}

pub async fn delete(call: &Call<'_>, id: &str) -> Result<Reply, Fault> {
    match call.state.backend.delete(&call.ctx, id).await {
        Ok(()) => Ok(Reply::NoContent),
        Err(e) => Err(from_backend(&e, Op::Delete(id))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bodies written from their entries are `json.dumps`' of the whole.
    #[test]
    fn index_bodies_are_the_serialized_whole() {
        #[derive(Serialize)]
        struct Whole {
            images: Vec<serde_json::Value>,
            #[serde(skip_serializing_if = "Option::is_none")]
            images_links: Option<[NextLink; 1]>,
        }
        let entries = [
            serde_json::json!({"id": "a", "name": "é \"x\"", "links": [{"rel": "self", "href": "h"}]}),
            serde_json::json!({"id": "b", "metadata": {}, "minRam": 0}),
        ];
        let next = || {
            Some([NextLink {
                rel: "next",
                href: "http://h/v2.1/images?marker=b&limit=2".into(),
            }])
        };
        for (n, links) in [(0, None), (1, None), (2, None), (2, next())] {
            let drawn: Vec<Bytes> = entries[..n].iter().map(|e| Bytes::from(pyjson::to_vec(e))).collect();
            let whole = Whole {
                images: entries[..n].to_vec(),
                images_links: links.as_ref().map(|_| next().unwrap()),
            };
            assert_eq!(
                String::from_utf8(index_body(&drawn, links)).unwrap(),
                String::from_utf8(pyjson::to_vec(&whole)).unwrap()
            );
        }
    }
}
