//! `GET /images`, `GET /images/detail`, `GET /images/{id}`, `DELETE /images/{id}`
//! (`nova/api/openstack/compute/images.py`).

use super::error::{from_backend, Op};
use super::{fault::Fault, query, views, Call, Reply};
use crate::backend::Drawing;
use crate::edge::pyjson;
use actix_web::http::StatusCode;
use serde::Serialize;

pub async fn index(call: &Call<'_>, detail: bool) -> Result<Reply, Fault> {
    let params = query::validate(call.params.clone())?;
    let list_query = query::list_query(&params);
    let images = match call.state.backend.list(&call.ctx, &list_query).await {
        Ok(images) => images,
        Err(e) => return Err(from_backend(&e, Op::List)),
    };
    let mut next = None;
    if let Some(last) = images.last() {
        if query::wants_next_link(&params, images.len(), call.state.settings.api.max_limit) {
            let collection = if detail { "images/detail" } else { "images" };
            let href = format!(
                "{}?{}",
                views::url_join(&[&call.links.app_url, &call.links.project_id, collection]),
                query::next_query(&params, &last.id)
            );
            next = Some([NextLink { rel: "next", href }]);
        }
    }
    // Written straight from the images, key order as Nova's dict.
    let body = if detail {
        Index::body(images.iter().map(|img| views::detail(img, &call.links)), next)
    } else {
        Index::body(images.iter().map(|img| views::basic(img, &call.links)), next)
    };
    Ok(Reply::Body(StatusCode::OK, body.into()))
}

/// `{"images": [...], ["images_links": [next]]}`.
#[derive(Serialize)]
struct Index<T> {
    images: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    images_links: Option<[NextLink; 1]>,
}

impl<T: Serialize> Index<T> {
    fn body(images: impl Iterator<Item = T>, images_links: Option<[NextLink; 1]>) -> Vec<u8> {
        pyjson::to_vec(&Index {
            images: images.collect(),
            images_links,
        })
    }
}

#[derive(Serialize)]
struct NextLink {
    rel: &'static str,
    href: String,
}

#[derive(Serialize)]
struct Show<'a> {
    image: views::DetailView<'a>,
}

pub async fn show(call: &Call<'_>, id: &str) -> Result<Reply, Fault> {
    let links = &call.links;
    let drawing = Drawing {
        key: &links.drawing_key("images.show"),
        render: &|image| {
            pyjson::to_vec(&Show {
                image: views::detail(image, links),
            })
        },
    };
    match call.state.backend.get_rendered(&call.ctx, id, &drawing).await {
        Ok(body) => Ok(Reply::Body(StatusCode::OK, body)),
        Err(e) => Err(from_backend(&e, Op::Show(id))),
    }
}

pub async fn delete(call: &Call<'_>, id: &str) -> Result<Reply, Fault> {
    match call.state.backend.delete(&call.ctx, id).await {
        Ok(()) => Ok(Reply::NoContent),
        Err(e) => Err(from_backend(&e, Op::Delete(id))),
    }
}
