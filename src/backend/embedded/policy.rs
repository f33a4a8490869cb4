//! Glance 33's default image policy, enforced by the embedded store on every
//! call (in front of a real Glance, Glance enforces it on the forwarded token).
//!
//! From Glance's source: the rules of `glance/policies/image.py` with the
//! check strings of `glance/policies/base.py`, the database-level visibility
//! of `glance/db/utils.py` (`is_image_visible`), the list query of
//! `glance/db/sqlalchemy/api.py`, and `ImageAPIPolicy` of
//! `glance/api/v2/policy.py`, which answers 404 instead of 403 for an image
//! the caller may not see.
//!
//! Roles come from the token: `admin` is `context_is_admin`; `member` and
//! `reader` count for the caller's own project only (`project_id:%(project_id)s`
//! where the target's project is the image owner). An image without an owner
//! belongs to no project, so only an admin may change it. A `shared` image is
//! also seen by the projects it is shared with (members: [`super::members`]).

use crate::backend::error::{forbidden, not_found};
use crate::backend::{BackendError, BackendResult, Image, RequestContext};

/// A write rule of Glance's default policy (named as in `policy.yaml`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    ModifyImage,
    DeleteImage,
    UploadImage,
    DownloadImage,
    Deactivate,
    Reactivate,
    PublicizeImage,
    CommunitizeImage,
    /// Not a policy rule: Glance's images controller refuses `replace /owner`
    /// by a non-admin before any rule is checked.
    ReplaceOwner,
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::ModifyImage => "modify_image",
            Rule::DeleteImage => "delete_image",
            Rule::UploadImage => "upload_image",
            Rule::DownloadImage => "download_image",
            Rule::Deactivate => "deactivate",
            Rule::Reactivate => "reactivate",
            Rule::PublicizeImage => "publicize_image",
            Rule::CommunitizeImage => "communitize_image",
            Rule::ReplaceOwner => "replace_owner",
        }
    }
}

fn has_role(ctx: &RequestContext, role: &str) -> bool {
    ctx.roles.iter().any(|r| r == role)
}

/// `rule:context_is_admin` (`role:admin`).
pub fn is_admin(ctx: &RequestContext) -> bool {
    has_role(ctx, "admin")
}

/// What the visibility rules read of an image: an [`Image`], or an image of
/// the catalogue read in place.
#[derive(Clone, Copy)]
pub struct Seen<'a> {
    pub visibility: &'a str,
    pub owner: Option<&'a str>,
}

impl<'a> From<&'a Image> for Seen<'a> {
    fn from(img: &'a Image) -> Seen<'a> {
        Seen {
            visibility: &img.visibility,
            owner: img.owner.as_deref(),
        }
    }
}

/// The caller's project owns the image (never true for an image without an owner).
fn owns(img: Seen, ctx: &RequestContext) -> bool {
    !ctx.project_id.is_empty() && img.owner == Some(ctx.project_id.as_str())
}

fn open_visibility(img: Seen) -> bool {
    matches!(img.visibility, "public" | "community" | "shared")
}

/// `is_image_visible`: the database lets the caller read the row at all: a
/// `shared` image also to a member project, whatever the membership's status
/// (`membership`: the caller's, if any).
pub fn db_visible<'a>(img: impl Into<Seen<'a>>, ctx: &RequestContext, membership: Option<&str>) -> bool {
    let img = img.into();
    is_admin(ctx)
        || img.owner.is_none()
        || matches!(img.visibility, "public" | "community")
        || owns(img, ctx)
        || (img.visibility == "shared" && membership.is_some())
}

/// `get_image`: `ADMIN_OR_PROJECT_READER_GET_IMAGE`.
fn may_get(img: Seen, ctx: &RequestContext) -> bool {
    is_admin(ctx) || (has_role(ctx, "reader") && (owns(img, ctx) || open_visibility(img)))
}

/// Whether the caller may see the image (show, download, and the target of
/// any write): the database's visibility and the `get_image` rule.
pub fn can_see<'a>(img: impl Into<Seen<'a>>, ctx: &RequestContext, membership: Option<&str>) -> bool {
    let img = img.into();
    db_visible(img, ctx, membership) && may_get(img, ctx)
}

/// Whether the image is in the caller's image list: the list query (public,
/// community, the caller's own, shared ones whose membership has
/// `member_status` (`None`: `accepted`; `all`: any); for an admin everything)
/// and `get_image` on each row. Without a `visibility` filter, community
/// images are listed for their owner only.
pub fn listed<'a>(
    img: impl Into<Seen<'a>>,
    ctx: &RequestContext,
    visibility_filter: bool,
    membership: Option<&str>,
    member_status: Option<&str>,
) -> bool {
    let img = img.into();
    let wanted = member_status.unwrap_or("accepted");
    let member = img.visibility == "shared" && membership.is_some_and(|s| wanted == "all" || s == wanted);
    let in_query = is_admin(ctx) || matches!(img.visibility, "public" | "community") || owns(img, ctx) || member;
    in_query && may_get(img, ctx) && (visibility_filter || img.visibility != "community" || owns(img, ctx))
}

/// `get_images`: `ADMIN_OR_PROJECT_READER` on the caller's own project.
pub fn may_list(ctx: &RequestContext) -> BackendResult<()> {
    if is_admin(ctx) || (has_role(ctx, "reader") && !ctx.project_id.is_empty()) {
        Ok(())
    } else {
        Err(unauthorized("get_images"))
    }
}

fn admin_or_project_member(img: &Image, ctx: &RequestContext) -> bool {
    is_admin(ctx) || (has_role(ctx, "member") && owns(img.into(), ctx))
}

fn allows(rule: Rule, img: &Image, ctx: &RequestContext) -> bool {
    match rule {
        Rule::PublicizeImage | Rule::ReplaceOwner => is_admin(ctx),
        Rule::DownloadImage => {
            is_admin(ctx) || (has_role(ctx, "member") && (owns(img.into(), ctx) || open_visibility(img.into())))
        }
        Rule::ModifyImage
        | Rule::DeleteImage
        | Rule::UploadImage
        | Rule::Deactivate
        | Rule::Reactivate
        | Rule::CommunitizeImage => admin_or_project_member(img, ctx),
    }
}

fn owner_is_admin_only() -> BackendError {
    forbidden("Owner can't be updated by non admin.")
}

fn unauthorized(rule: &str) -> BackendError {
    forbidden(&format!("You are not authorized to complete {rule} action."))
}

/// Enforce `rule` on an image the caller found: Glance's 403, or its bare 404
/// when the caller may not even see the image (`ImageAPIPolicy._enforce`).
/// Visibility rules (`publicize_image`, `communitize_image`) always answer 403,
/// as `_enforce_visibility` does.
pub fn enforce(rule: Rule, img: &Image, ctx: &RequestContext) -> BackendResult<()> {
    if allows(rule, img, ctx) {
        return Ok(());
    }
    match rule {
        Rule::ReplaceOwner => Err(owner_is_admin_only()),
        Rule::PublicizeImage | Rule::CommunitizeImage => Err(unauthorized(rule.name())),
        _ if !may_get(img.into(), ctx) => Err(not_found("The resource could not be found.")),
        _ => Err(unauthorized(rule.name())),
    }
}

/// The rule a change of visibility to `visibility` needs first, if any.
pub fn visibility_rule(visibility: &str) -> Option<Rule> {
    match visibility {
        "public" => Some(Rule::PublicizeImage),
        "community" => Some(Rule::CommunitizeImage),
        _ => None,
    }
}

/// `add_image` on the proposed image (owner and visibility as they will be):
/// an admin may create anything; a member only for its own project; then the
/// visibility rule of the proposed visibility.
pub fn enforce_create(proposed: &Image, ctx: &RequestContext) -> BackendResult<()> {
    let owner_ok = proposed.owner.as_deref().unwrap_or("") == ctx.project_id;
    let member_of_owner = has_role(ctx, "member") && owner_ok && !ctx.project_id.is_empty();
    if !(is_admin(ctx) || member_of_owner) {
        return Err(match &proposed.owner {
            Some(o) if !owner_ok => forbidden(&format!("You are not permitted to create images owned by '{o}'")),
            _ => unauthorized("add_image"),
        });
    }
    match visibility_rule(&proposed.visibility) {
        Some(rule) if !allows(rule, proposed, ctx) => Err(unauthorized(rule.name())),
        _ => Ok(()),
    }
}

/// What a change did, checked after the fact so that no write path can skip
/// the rules: a new owner needs an admin ("Owner can't be updated by non
/// admin."), a new public or community visibility its rule, any change at all
/// `modify_image`. Glance itself lets `add /owner` through the API and then
/// refuses to save a row the caller can no longer see (answering 403 with the
/// owner changed); the store refuses before writing.
pub fn enforce_change(before: &Image, after: &Image, ctx: &RequestContext) -> BackendResult<()> {
    if before == after {
        return Ok(());
    }
    enforce(Rule::ModifyImage, before, ctx)?;
    if before.owner != after.owner && !is_admin(ctx) {
        return Err(owner_is_admin_only());
    }
    if before.visibility != after.visibility {
        if let Some(rule) = visibility_rule(&after.visibility) {
            enforce(rule, before, ctx)?;
        }
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A caller of `project` with `roles` (also for the members tests).
    pub fn ctx(project: &str, roles: &[&str]) -> RequestContext {
        RequestContext {
            token: String::new(),
            user_id: "u".into(),
            project_id: project.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            request_id: String::new(),
        }
    }

    fn image(owner: Option<&str>, visibility: &str) -> Image {
        Image {
            id: "i".into(),
            owner: owner.map(str::to_string),
            visibility: visibility.into(),
            status: "active".into(),
            ..Default::default()
        }
    }

    fn status(r: BackendResult<()>) -> u16 {
        match r {
            Ok(()) => 200,
            Err(BackendError::Refused(r)) => r.status,
            Err(e) => panic!("unexpected {e}"),
        }
    }

    #[test]
    fn modify_needs_admin_or_a_member_of_the_owner_project() {
        let admin = ctx("adm", &["admin", "member", "reader"]);
        let member = ctx("a", &["member", "reader"]);
        let other = ctx("b", &["member", "reader"]);
        let reader = ctx("a", &["reader"]);
        // (image, admin, member of a, member of b, reader of a)
        let table = [
            (image(Some("a"), "private"), [200, 200, 404, 403]),
            (image(Some("a"), "shared"), [200, 200, 403, 403]),
            (image(Some("a"), "community"), [200, 200, 403, 403]),
            (image(Some("a"), "public"), [200, 200, 403, 403]),
            (image(Some("b"), "public"), [200, 403, 200, 403]),
            (image(None, "private"), [200, 404, 404, 404]),
            (image(None, "public"), [200, 403, 403, 403]),
        ];
        for (img, want) in table {
            let got: Vec<u16> = [&admin, &member, &other, &reader]
                .iter()
                .map(|c| status(enforce(Rule::ModifyImage, &img, c)))
                .collect();
            assert_eq!(got, want, "{:?} {}", img.owner, img.visibility);
        }
    }

    #[test]
    fn visibility_rules_answer_403_even_when_hidden() {
        let member = ctx("a", &["member", "reader"]);
        assert_eq!(
            status(enforce(Rule::PublicizeImage, &image(Some("a"), "private"), &member)),
            403
        );
        assert_eq!(
            status(enforce(Rule::CommunitizeImage, &image(Some("a"), "private"), &member)),
            200
        );
        assert_eq!(
            status(enforce(Rule::CommunitizeImage, &image(Some("b"), "public"), &member)),
            403
        );
    }

    #[test]
    fn reads() {
        let member = ctx("a", &["member", "reader"]);
        let none = ctx("a", &[]);
        assert!(can_see(&image(None, "shared"), &member, None));
        assert!(!can_see(&image(None, "private"), &member, None));
        assert!(!listed(&image(None, "shared"), &member, false, None, None));
        assert!(!listed(&image(Some("b"), "community"), &member, false, None, None));
        assert!(listed(&image(Some("b"), "community"), &member, true, None, None));
        assert!(listed(&image(Some("a"), "community"), &member, false, None, None));
        // Shared with the caller: seen whatever the status, listed when accepted (or asked for).
        let shared = image(Some("b"), "shared");
        assert!(!can_see(&shared, &member, None));
        assert!(can_see(&shared, &member, Some("pending")));
        assert!(!listed(&shared, &member, false, Some("pending"), None));
        assert!(listed(&shared, &member, false, Some("pending"), Some("all")));
        assert!(listed(&shared, &member, false, Some("accepted"), None));
        assert!(!can_see(&image(Some("b"), "private"), &member, Some("accepted")));
        assert!(!can_see(&image(Some("a"), "private"), &none, None));
        assert_eq!(status(may_list(&none)), 403);
        // A reader sees but may not download.
        let reader = ctx("a", &["reader"]);
        assert_eq!(
            status(enforce(Rule::DownloadImage, &image(Some("a"), "private"), &reader)),
            403
        );
    }

    #[test]
    fn create() {
        let member = ctx("a", &["member", "reader"]);
        let reader = ctx("a", &["reader"]);
        let admin = ctx("adm", &["admin"]);
        assert_eq!(status(enforce_create(&image(Some("a"), "shared"), &member)), 200);
        assert_eq!(status(enforce_create(&image(Some("b"), "shared"), &member)), 403);
        assert_eq!(status(enforce_create(&image(Some("a"), "public"), &member)), 403);
        assert_eq!(status(enforce_create(&image(Some("a"), "community"), &member)), 200);
        assert_eq!(status(enforce_create(&image(Some("a"), "shared"), &reader)), 403);
        assert_eq!(status(enforce_create(&image(None, "public"), &admin)), 200);
    }

    #[test]
    fn changes() {
        let member = ctx("a", &["member", "reader"]);
        let before = image(Some("a"), "private");
        let mut moved = before.clone();
        moved.owner = Some("b".into());
        assert_eq!(status(enforce_change(&before, &moved, &member)), 403);
        let mut public = before.clone();
        public.visibility = "public".into();
        assert_eq!(status(enforce_change(&before, &public, &member)), 403);
        let mut prop = before.clone();
        prop.properties.insert("k".into(), "v".into());
        assert_eq!(status(enforce_change(&before, &prop, &member)), 200);
        assert_eq!(status(enforce_change(&before, &prop, &ctx("b", &["member"]))), 404);
    }
}
