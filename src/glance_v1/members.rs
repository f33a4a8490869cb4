//! Glance v1's image members (Queens, `glance/api/v1/members.py` and its
//! registry's `glance/registry/api/v1/members.py`) over Glance v2's members
//! ([`ImageBackend::members`], `add_member`, `remove_member`,
//! `replace_members`):
//!
//! | call | answer |
//! |---|---|
//! | `GET /v1/images/{id}/members` | `{"members": [{"member_id", "can_share"}]}`: an image that is not v2-`shared` has none |
//! | `PUT /v1/images/{id}/members` | `{"memberships": [{"member_id", "can_share"?}]}` replaces the list: 204 |
//! | `PUT /v1/images/{id}/members/{member}` | adds the member (kept if it is one): 204 |
//! | `DELETE /v1/images/{id}/members/{member}` | 204; 404 `Membership could not be found.` |
//! | `GET /v1/images/{id}/members/{member}` | 405, as v1 (it had no such action) |
//! | `GET /v1/shared-images/{member}` | `{"shared_images": [{"image_id", "can_share"}]}` |
//!
//! Glance v2 has no `can_share` (a member cannot share an image further):
//! every member is shown with `can_share: false`, and asking for `true` is
//! refused (400) before anything changes. A v2 membership starts `pending`;
//! v1 had no status, and so neither do these answers. Members are for
//! `shared` images only in v2 (Glance's refusal, as v1 relayed a refusal of
//! its registry: 404 with the reason).
//!
//! `/v1/shared-images/{member}` shows, as v1's registry did, the caller's own
//! memberships (member = the caller's project: the shared images it can see
//! that another project owns) or, for another member, that project's
//! memberships of the shared images the caller owns (an admin: of every
//! shared image); the latter takes one members call per such image.

use super::error::{from_backend, Op, V1Error};
use super::{get_image, RequestBody};
use crate::backend::{Image, ImageBackend, ListOptions, ListQuery, RequestContext};
use crate::edge::body::{self, BodyError};
use crate::edge::webob::HttpError;
use actix_web::http::header;
use actix_web::HttpResponse;
use serde_json::{json, Value};

/// Glance's `image_member_quota` default.
const MEMBER_QUOTA: usize = 128;
/// The largest member body read (128 members with long ids fit).
const MAX_BODY: usize = 64 * 1024;

fn json_ok(v: &Value) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .body(crate::edge::pyjson::to_vec(v))
}

fn no_content() -> HttpResponse {
    HttpResponse::NoContent().finish()
}

fn invalid(what: &str) -> HttpError {
    HttpError::explained(400, format!("Invalid membership association: '{what}'"))
}

fn can_share_refused() -> HttpError {
    HttpError::explained(
        400,
        "can_share is not supported: Glance v2 image members cannot share an image further. Add the member \
         without can_share.",
    )
}

fn only_shared() -> HttpError {
    HttpError::explained(404, "Only shared images have members.")
}

/// The JSON body, if there is one (`None`: an empty body).
async fn read_body(body: RequestBody) -> Result<Option<Value>, HttpError> {
    let raw = body::read(body.payload, MAX_BODY, body.idle)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge => HttpError::positional(413, "Request is too large."),
            BodyError::TooSlow => HttpError::explained(408, "The request body was not received in time."),
            BodyError::Broken => HttpError::explained(400, "Client disconnected before sending all data to backend"),
        })?;
    if raw.is_empty() {
        return Ok(None);
    }
    serde_json::from_slice(&raw)
        .map(Some)
        .map_err(|_| HttpError::explained(400, "Malformed JSON in request body."))
}

/// Python's `bool()` of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// The member ids of `img`, `[]` for one that is not `shared` (v2 has
/// members for shared images only).
async fn member_ids(backend: &dyn ImageBackend, ctx: &RequestContext, img: &Image) -> Result<Vec<String>, V1Error> {
    if img.visibility != "shared" {
        return Ok(Vec::new());
    }
    let members = backend
        .members(ctx, &img.id)
        .await
        .map_err(|e| from_backend(&e, Op::Members(&img.id)))?;
    Ok(members.into_iter().map(|m| m.member_id).collect())
}

/// `GET /v1/images/{id}/members`.
pub async fn index(backend: &dyn ImageBackend, ctx: &RequestContext, id: &str) -> Result<HttpResponse, V1Error> {
    let img = get_image(backend, ctx, id).await?;
    let members: Vec<Value> = member_ids(backend, ctx, &img)
        .await?
        .into_iter()
        .map(|m| json!({"member_id": m, "can_share": false}))
        .collect();
    Ok(json_ok(&json!({ "members": members })))
}

/// `PUT /v1/images/{id}/members/{member}`.
pub async fn add(
    body: RequestBody,
    backend: &dyn ImageBackend,
    ctx: &RequestContext,
    id: &str,
    member: &str,
) -> Result<HttpResponse, V1Error> {
    let body = read_body(body).await?;
    let can_share = body
        .as_ref()
        .and_then(|b| b.get("member"))
        .and_then(|m| m.get("can_share"))
        .is_some_and(truthy);
    if can_share {
        return Err(can_share_refused().into());
    }
    let img = get_image(backend, ctx, id).await?;
    if img.visibility != "shared" {
        return Err(only_shared().into());
    }
    let ids = member_ids(backend, ctx, &img).await?;
    if ids.iter().any(|m| m == member) {
        return Ok(no_content());
    }
    if ids.len() + 1 > MEMBER_QUOTA {
        return Err(quota(ids.len() + 1).into());
    }
    backend
        .add_member(ctx, id, member)
        .await
        .map_err(|e| from_backend(&e, Op::Membership))?;
    Ok(no_content())
}

fn quota(attempted: usize) -> HttpError {
    HttpError::explained(
        413,
        format!(
            "The limit has been exceeded on the number of allowed image members for this image. Attempted: \
             {attempted}, Maximum: {MEMBER_QUOTA}"
        ),
    )
}

/// `DELETE /v1/images/{id}/members/{member}`.
pub async fn remove(
    backend: &dyn ImageBackend,
    ctx: &RequestContext,
    id: &str,
    member: &str,
) -> Result<HttpResponse, V1Error> {
    let img = get_image(backend, ctx, id).await?;
    if !member_ids(backend, ctx, &img).await?.iter().any(|m| m == member) {
        return Err(HttpError::explained(404, "Membership could not be found.").into());
    }
    backend
        .remove_member(ctx, id, member)
        .await
        .map_err(|e| from_backend(&e, Op::Membership))?;
    Ok(no_content())
}

/// The member ids of a `PUT /v1/images/{id}/members` body, in order, once each.
fn memberships(body: Option<&Value>) -> Result<Vec<String>, HttpError> {
    let list = body
        .and_then(|b| b.get("memberships"))
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("memberships"))?;
    let mut out: Vec<String> = Vec::new();
    for m in list {
        let id = match m.get("member_id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(invalid("member_id")),
        };
        if m.get("can_share").is_some_and(truthy) {
            return Err(can_share_refused());
        }
        if !out.contains(&id) {
            out.push(id);
        }
    }
    if list.len() > MEMBER_QUOTA {
        return Err(quota(list.len()));
    }
    Ok(out)
}

/// `PUT /v1/images/{id}/members`.
pub async fn replace(
    body: RequestBody,
    backend: &dyn ImageBackend,
    ctx: &RequestContext,
    id: &str,
) -> Result<HttpResponse, V1Error> {
    let body = read_body(body).await?;
    let wanted = memberships(body.as_ref())?;
    let img = get_image(backend, ctx, id).await?;
    if img.visibility != "shared" {
        if wanted.is_empty() {
            return Ok(no_content());
        }
        return Err(only_shared().into());
    }
    backend
        .replace_members(ctx, id, wanted)
        .await
        .map_err(|e| from_backend(&e, Op::Membership))?;
    Ok(no_content())
}

/// `GET /v1/shared-images/{member}` (see the module doc).
pub async fn shared_images(
    backend: &dyn ImageBackend,
    ctx: &RequestContext,
    member: &str,
) -> Result<HttpResponse, V1Error> {
    let mine = !ctx.project_id.is_empty() && member == ctx.project_id;
    let admin = ctx.is_admin();
    let mut filters = vec![("visibility".to_string(), "shared".to_string())];
    if !mine && !admin {
        filters.push(("owner".to_string(), ctx.project_id.clone()));
    }
    let query = ListQuery {
        filters,
        limit: None,
        marker: None,
    };
    let options = ListOptions {
        member_status: Some("all".into()),
        ..Default::default()
    };
    let images = backend
        .list_with(ctx, &query, &options)
        .await
        .map_err(|e| from_backend(&e, Op::List { marker: false }))?;
    let mut shared = Vec::new();
    for img in images {
        let owned = img.owner.as_deref() == Some(ctx.project_id.as_str());
        // A shared image a non-admin sees but does not own is shared with it.
        let is_member = if mine && !admin && !owned {
            true
        } else {
            let members = backend
                .members(ctx, &img.id)
                .await
                .map_err(|e| from_backend(&e, Op::Members(&img.id)))?;
            members.iter().any(|m| m.member_id == member)
        };
        if is_member {
            shared.push(json!({"image_id": img.id, "can_share": false}));
        }
    }
    Ok(json_ok(&json!({ "shared_images": shared })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_bodies() {
        let ok =
            json!({"memberships": [{"member_id": "a"}, {"member_id": "b", "can_share": false}, {"member_id": "a"}]});
        assert_eq!(memberships(Some(&ok)).unwrap(), ["a", "b"]);
        assert_eq!(
            memberships(Some(&json!({"memberships": []}))).unwrap(),
            Vec::<String>::new()
        );
        let table = [
            (None, "Invalid membership association: 'memberships'"),
            (
                Some(json!({"members": []})),
                "Invalid membership association: 'memberships'",
            ),
            (
                Some(json!({"memberships": [{"id": "a"}]})),
                "Invalid membership association: 'member_id'",
            ),
            (
                Some(json!({"memberships": [{"member_id": "a", "can_share": true}]})),
                "can_share is not supported",
            ),
        ];
        for (body, want) in table {
            let e = memberships(body.as_ref()).unwrap_err();
            assert_eq!(e.status, 400);
            assert!(e.explanation.starts_with(want), "{}", e.explanation);
        }
        let many: Vec<Value> = (0..=MEMBER_QUOTA)
            .map(|i| json!({"member_id": format!("p{i}")}))
            .collect();
        assert_eq!(
            memberships(Some(&json!({ "memberships": many }))).unwrap_err().status,
            413
        );
        assert!(truthy(&json!(1)) && truthy(&json!("x")) && !truthy(&json!(0)) && !truthy(&json!("")));
    }
}
