//! Image members in the embedded store (Glance v2's image members: a shared
//! image's owner shares it with other projects, each membership `pending`
//! until the member answers), kept in the `image_members` table, with the
//! rules of Glance 33's members controller (`glance/api/v2/image_members.py`)
//! and default policy (`add_member`, `delete_member`: admin or a member of the
//! owner project; `get_members`: admin or a reader of the owner project or of
//! a member project, who then sees only its own membership).

use super::db::{self, internal, Record};
use super::{policy, EmbeddedStore};
use crate::backend::error::{conflict, forbidden, not_found};
use crate::backend::{BackendError, BackendResult, Member, Refusal, RequestContext};
use rusqlite::{params, Connection};

/// Glance's `image_member_quota` default.
pub const MEMBER_QUOTA: usize = 128;

/// The members of one image: (project, status), by project.
pub fn of_image(conn: &Connection, image_id: &str) -> BackendResult<Vec<(String, String)>> {
    db::rows(
        conn,
        "SELECT member, status FROM image_members WHERE image_id = ?1 ORDER BY member",
        [image_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

fn rows(conn: &Connection, image_id: &str) -> BackendResult<Vec<Member>> {
    db::rows(
        conn,
        "SELECT member, status, created_at, updated_at FROM image_members WHERE image_id = ?1 ORDER BY member",
        [image_id],
        |r| {
            Ok(Member {
                image_id: image_id.to_string(),
                member_id: r.get(0)?,
                status: r.get(1)?,
                created_at: db::display_time(&r.get::<_, String>(2)?),
                updated_at: db::display_time(&r.get::<_, String>(3)?),
            })
        },
    )
}

fn insert(conn: &Connection, image_id: &str, member: &str) -> BackendResult<()> {
    let now = db::now();
    conn.execute(
        "INSERT INTO image_members (image_id, member, status, created_at, updated_at) \
         VALUES (?1, ?2, 'pending', ?3, ?3)",
        params![image_id, member, now],
    )
    .map_err(internal)?;
    Ok(())
}

fn delete(conn: &Connection, image_id: &str, member: &str) -> BackendResult<usize> {
    conn.execute(
        "DELETE FROM image_members WHERE image_id = ?1 AND member = ?2",
        params![image_id, member],
    )
    .map_err(internal)
}

fn has_role(ctx: &RequestContext, role: &str) -> bool {
    ctx.roles.iter().any(|r| r == role)
}

/// `add_member` / `delete_member`: admin, or a member of the owner project.
fn may_manage(rec: &Record, ctx: &RequestContext) -> bool {
    policy::is_admin(ctx)
        || (has_role(ctx, "member")
            && !ctx.project_id.is_empty()
            && rec.image.owner.as_deref() == Some(&ctx.project_id))
}

fn only_shared(rec: &Record, what: &str) -> BackendResult<()> {
    if rec.image.visibility == "shared" {
        return Ok(());
    }
    Err(forbidden(&format!("{what}Only shared images have members.")))
}

fn quota_exceeded(id: &str, attempted: usize) -> BackendError {
    BackendError::Refused(Refusal::glance(
        413,
        &format!(
            "Image member limit exceeded for image {id}: The limit has been exceeded on the number of allowed image \
             members for this image. Attempted: {attempted}, Maximum: {MEMBER_QUOTA}:"
        ),
    ))
}

/// A store-level membership change of a shared image the caller may manage.
fn managed(conn: &Connection, ctx: &RequestContext, id: &str, verb: &str) -> BackendResult<Record> {
    let rec = EmbeddedStore::live(conn, ctx, id)?;
    if !may_manage(&rec, ctx) {
        // `ImageAPIPolicy` hides an image the caller may not even get.
        if !policy::can_see(&rec.image, ctx, rec.membership(&ctx.project_id)) {
            return Err(not_found(&format!("Image {id} not found.")));
        }
        return Err(forbidden(&format!("Not allowed to {verb} members for image {id}.")));
    }
    only_shared(&rec, "")?;
    Ok(rec)
}

impl EmbeddedStore {
    /// Glance v2 `GET /v2/images/{id}/members`.
    pub async fn list_members(&self, ctx: &RequestContext, id: &str) -> BackendResult<Vec<Member>> {
        let (ctx, id) = (ctx.clone(), id.to_string());
        self.read(move |conn| {
            let rec = Self::live(conn, &ctx, &id)?;
            let prefix = format!("Not allowed to list members for image {id}: ");
            only_shared(&rec, &prefix)?;
            let member = rec.membership(&ctx.project_id).is_some();
            let owner = rec.image.owner.as_deref() == Some(ctx.project_id.as_str()) && !ctx.project_id.is_empty();
            let admin = policy::is_admin(&ctx);
            if !(admin || (has_role(&ctx, "reader") && (owner || member))) {
                return Err(forbidden(&format!(
                    "{prefix}You are not authorized to complete get_members action."
                )));
            }
            let mut all = rows(conn, &id)?;
            // The database shows others' memberships only to the owner (and admins).
            if !(admin || owner) {
                all.retain(|m| m.member_id == ctx.project_id);
            }
            Ok(all)
        })
        .await
    }

    /// Glance v2 `POST /v2/images/{id}/members`.
    pub async fn create_member(&self, ctx: &RequestContext, id: &str, member: &str) -> BackendResult<Member> {
        let (ctx, id, member) = (ctx.clone(), id.to_string(), member.to_string());
        self.write(move |conn| {
            let rec = managed(conn, &ctx, &id, "create")?;
            if rec.membership(&member).is_some() {
                return Err(conflict(&format!("Member {member} is duplicated for image {id}")));
            }
            if rec.members.len() + 1 > MEMBER_QUOTA {
                return Err(quota_exceeded(&id, rec.members.len() + 1));
            }
            insert(conn, &id, &member)?;
            rows(conn, &id)?
                .into_iter()
                .find(|m| m.member_id == member)
                .ok_or_else(|| internal("the new member is not there"))
        })
        .await
    }

    /// Glance v2 `DELETE /v2/images/{id}/members/{member}`.
    pub async fn delete_member(&self, ctx: &RequestContext, id: &str, member: &str) -> BackendResult<()> {
        let (ctx, id, member) = (ctx.clone(), id.to_string(), member.to_string());
        self.write(move |conn| {
            managed(conn, &ctx, &id, "delete")?;
            if delete(conn, &id, &member)? == 0 {
                return Err(not_found(&format!(
                    "{member} not found in the member list of the image {id}."
                )));
            }
            Ok(())
        })
        .await
    }

    /// Make the members of image `id` exactly `members` in one transaction
    /// (kept ones keep their status; new ones are `pending`).
    pub async fn set_members(&self, ctx: &RequestContext, id: &str, members: Vec<String>) -> BackendResult<()> {
        let (ctx, id) = (ctx.clone(), id.to_string());
        self.write(move |conn| {
            let rec = managed(conn, &ctx, &id, "create")?;
            if members.len() > MEMBER_QUOTA {
                return Err(quota_exceeded(&id, members.len()));
            }
            for (m, _) in &rec.members {
                if !members.contains(m) {
                    delete(conn, &id, m)?;
                }
            }
            for m in &members {
                if rec.membership(m).is_none() {
                    insert(conn, &id, m)?;
                }
            }
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::super::policy::tests::ctx;
    use super::*;

    fn status<T>(r: BackendResult<T>) -> u16 {
        match r {
            Ok(_) => 200,
            Err(BackendError::Refused(r)) => r.status,
            Err(e) => panic!("{e}"),
        }
    }

    #[actix_web::test]
    async fn members_follow_glance_rules() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let owner = ctx("a", &["member", "reader"]);
        let b = ctx("b", &["member", "reader"]);
        let c = ctx("c", &["member", "reader"]);
        let img = store.create(&owner, Default::default()).await.unwrap();
        let private = store
            .create(
                &owner,
                super::super::NewImage {
                    visibility: Some("private".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        // b sees nothing of a's shared image until it is a member.
        assert_eq!(
            status(crate::backend::ImageBackend::get(&store, &b, &img.id).await),
            404
        );
        assert_eq!(status(store.create_member(&b, &img.id, "b").await), 404);
        assert_eq!(status(store.create_member(&owner, &private.id, "b").await), 403);
        let m = store.create_member(&owner, &img.id, "b").await.unwrap();
        assert_eq!((m.member_id.as_str(), m.status.as_str()), ("b", "pending"));
        assert_eq!(status(store.create_member(&owner, &img.id, "b").await), 409);
        store.create_member(&owner, &img.id, "c").await.unwrap();
        assert_eq!(
            status(crate::backend::ImageBackend::get(&store, &b, &img.id).await),
            200
        );
        // Pending: visible, but not listed by default.
        let listed = crate::backend::ImageBackend::list(&store, &b, &Default::default())
            .await
            .unwrap();
        assert!(listed.iter().all(|i| i.id != img.id));
        // The owner sees every member, a member only itself; a member may not manage.
        assert_eq!(store.list_members(&owner, &img.id).await.unwrap().len(), 2);
        let own = store.list_members(&b, &img.id).await.unwrap();
        assert_eq!(own.iter().map(|m| m.member_id.as_str()).collect::<Vec<_>>(), ["b"]);
        assert_eq!(status(store.delete_member(&b, &img.id, "c").await), 403);
        // Replace: c goes, d comes, b stays.
        store
            .set_members(&owner, &img.id, vec!["b".into(), "d".into()])
            .await
            .unwrap();
        let now: Vec<String> = store
            .list_members(&owner, &img.id)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.member_id)
            .collect();
        assert_eq!(now, ["b", "d"]);
        assert_eq!(
            status(crate::backend::ImageBackend::get(&store, &c, &img.id).await),
            404
        );
        assert_eq!(status(store.delete_member(&owner, &img.id, "c").await), 404);
        store.delete_member(&owner, &img.id, "b").await.unwrap();
        assert_eq!(
            status(crate::backend::ImageBackend::get(&store, &b, &img.id).await),
            404
        );
        let too_many: Vec<String> = (0..=MEMBER_QUOTA).map(|i| format!("p{i}")).collect();
        assert_eq!(status(store.set_members(&owner, &img.id, too_many).await), 413);
        assert_eq!(store.list_members(&owner, &img.id).await.unwrap().len(), 1);
    }

    #[test]
    fn a_database_without_members_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("images.sqlite");
        {
            // A database as the first release made it: no members table, version 0.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE images (id TEXT PRIMARY KEY, name TEXT, status TEXT NOT NULL, visibility TEXT NOT NULL, \
                 protected INTEGER NOT NULL DEFAULT 0, os_hidden INTEGER NOT NULL DEFAULT 0, checksum TEXT, \
                 os_hash_algo TEXT, os_hash_value TEXT, owner TEXT, size INTEGER, virtual_size INTEGER, \
                 container_format TEXT, disk_format TEXT, min_ram INTEGER NOT NULL DEFAULT 0, \
                 min_disk INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, \
                 deleted INTEGER NOT NULL DEFAULT 0, deleted_at TEXT);
                 INSERT INTO images (id, status, visibility, owner, created_at, updated_at)
                 VALUES ('old', 'queued', 'shared', 'a', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z');",
            )
            .unwrap();
        }
        let conn = db::open(&path).unwrap();
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, 1);
        let rec = db::get(&conn, "old").unwrap().unwrap();
        assert!(rec.members.is_empty());
        insert(&conn, "old", "b").unwrap();
        drop(conn);
        // Opening again changes nothing.
        let conn = db::open(&path).unwrap();
        assert_eq!(
            of_image(&conn, "old").unwrap(),
            [("b".to_string(), "pending".to_string())]
        );
    }
}
