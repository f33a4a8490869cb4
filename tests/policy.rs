//! Glance's default image policy, on both backends, with one body per case:
//! real Glance 33 behind the real Keystone (keystonemiddleware in its paste
//! pipeline, its stock default policy; `scripts/test` starts it and names it
//! `NIP_KEYSTONE_GLANCE_URL`) against the embedded store behind the same
//! Keystone. Real tokens of an admin, a member of the owner project (`demo`),
//! a member of another project (`other`) and a reader of `demo` call every
//! write and read on images of every visibility and owner, through the Glance
//! v2 API and through Nova's API. Each case must get the same status on both
//! (and, through Nova's API, the same body), and a refused call must leave
//! the image exactly as it was.
//!
//! The images here have no members (a shared image is its owner's alone on
//! both sides); members and what they see: tests/glance_v1_update.rs.

mod support;

use serde_json::{json, Value};
use std::fmt::Write as _;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Admin,
    Member,
    Other,
    Reader,
}

struct Tokens {
    admin: String,
    member: String,
    other: String,
    reader: String,
    demo_id: String,
    other_id: String,
}

impl Tokens {
    fn of(&self, who: Who) -> &str {
        match who {
            Who::Admin => &self.admin,
            Who::Member => &self.member,
            Who::Other => &self.other,
            Who::Reader => &self.reader,
        }
    }

    async fn issue(url: &str) -> Tokens {
        let token = |user: String, password: String, project: String| async move {
            support::password_token(url, "Default", &user, &password, &project)
                .await
                .0
        };
        let demo = support::keystone_var("DEMO_PROJECT");
        Tokens {
            admin: token(
                support::keystone_var("ADMIN_USER"),
                support::keystone_var("ADMIN_PASSWORD"),
                support::keystone_var("ADMIN_PROJECT"),
            )
            .await,
            member: token(
                support::keystone_var("MEMBER_USER"),
                support::keystone_var("MEMBER_PASSWORD"),
                demo.clone(),
            )
            .await,
            other: token(
                support::keystone_var("OTHER_USER"),
                support::keystone_var("OTHER_PASSWORD"),
                support::keystone_var("OTHER_PROJECT"),
            )
            .await,
            reader: token(
                support::keystone_var("READER_USER"),
                support::keystone_var("READER_PASSWORD"),
                demo,
            )
            .await,
            demo_id: support::keystone_var("DEMO_PROJECT_ID"),
            other_id: support::keystone_var("OTHER_PROJECT_ID"),
        }
    }
}

/// One backend behind Keystone: its Glance v2 API and the service's Nova API on it.
struct Side {
    name: &'static str,
    glance: String,
    nova: String,
    _services: Vec<support::Service>,
}

use support::keystone_pairs;

fn refs<'a>(pairs: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn real_side(keystone: &str) -> Side {
    let glance = std::env::var("NIP_KEYSTONE_GLANCE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .expect("NIP_KEYSTONE_GLANCE_URL is not set: scripts/test starts a Glance behind Keystone");
    let pairs = keystone_pairs(keystone);
    let nova = support::start_on(&support::Backend::Glance(glance.clone()), &refs(&pairs));
    Side {
        name: "real Glance",
        glance,
        nova: nova.base.clone(),
        _services: vec![nova],
    }
}

fn embedded_side(keystone: &str) -> Side {
    let pairs = keystone_pairs(keystone);
    let nova = support::start_on(&support::Backend::Embedded, &refs(&pairs));
    let dir = nova
        .data_dir
        .as_ref()
        .expect("data dir")
        .path()
        .to_string_lossy()
        .into_owned();
    let mut all = refs(&pairs);
    all.extend([
        ("embedded.enabled", "true"),
        ("embedded.data_dir", dir.as_str()),
        ("embedded.demo_images", "false"),
    ]);
    let image = support::start_image_listener(support::settings(&all));
    Side {
        name: "embedded store",
        glance: image.base.clone(),
        nova: nova.base.clone(),
        _services: vec![image, nova],
    }
}

struct Answer {
    status: u16,
    body: Value,
}

async fn call(method: &str, url: &str, token: &str, content_type: Option<&str>, body: Option<Vec<u8>>) -> Answer {
    let mut rb = support::client()
        .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url)
        .header("X-Auth-Token", token)
        .header("Accept", "application/json");
    if let Some(ct) = content_type {
        rb = rb.header("Content-Type", ct);
    }
    if let Some(b) = body {
        rb = rb.body(b);
    }
    let r = rb.send().await.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = r.status().as_u16();
    let bytes = r.bytes().await.unwrap_or_default();
    Answer {
        status,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// The images the matrix runs on: (label, owner, visibility).
#[derive(Clone, Copy, Debug)]
enum Owner {
    Demo,
    Other,
    Nobody,
}

const KINDS: [(Owner, &str); 7] = [
    (Owner::Demo, "private"),
    (Owner::Demo, "shared"),
    (Owner::Demo, "community"),
    (Owner::Demo, "public"),
    (Owner::Other, "public"),
    (Owner::Nobody, "private"),
    (Owner::Nobody, "shared"),
];

/// Create an image as the admin, the same on both sides (same id): owned as
/// `owner` says, with one extra property and one tag, and data when `data`.
async fn fixture(side: &Side, t: &Tokens, id: &str, owner: Owner, visibility: &str, data: bool) {
    let owner = match owner {
        Owner::Demo => Value::from(t.demo_id.as_str()),
        Owner::Other => Value::from(t.other_id.as_str()),
        Owner::Nobody => Value::Null,
    };
    let body = json!({"id": id, "name": format!("policy-{id}"), "owner": owner, "visibility": visibility,
        "disk_format": "raw", "container_format": "bare", "tags": ["t"], "t0": "v0"});
    let r = call(
        "POST",
        &format!("{}/v2/images", side.glance),
        &t.admin,
        Some("application/json"),
        Some(body.to_string().into_bytes()),
    )
    .await;
    assert_eq!(r.status, 201, "{}: create {id}: {}", side.name, r.body);
    if data {
        let url = format!("{}/v2/images/{id}/file", side.glance);
        let r = call(
            "PUT",
            &url,
            &t.admin,
            Some("application/octet-stream"),
            Some(b"policy".to_vec()),
        )
        .await;
        assert_eq!(r.status, 204, "{}: upload {id}", side.name);
    }
}

/// The image as the admin sees it (`Null` once it is gone).
async fn snapshot(side: &Side, t: &Tokens, id: &str) -> Value {
    let r = call("GET", &format!("{}/v2/images/{id}", side.glance), &t.admin, None, None).await;
    match r.status {
        200 => r.body,
        404 => Value::Null,
        s => panic!("{}: admin GET {id}: {s}", side.name),
    }
}

/// A call of the matrix: method, path under the API root (`{id}` replaced),
/// content type and body, whether the image needs data, and the API.
struct Call {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    content_type: Option<&'static str>,
    body: fn(&Tokens) -> Option<Vec<u8>>,
    data: bool,
    nova: bool,
}

const PATCH: Option<&str> = Some("application/openstack-images-v2.1-json-patch");
const JSON: Option<&str> = Some("application/json");

fn patch(ops: Value) -> Option<Vec<u8>> {
    Some(ops.to_string().into_bytes())
}

fn calls() -> Vec<Call> {
    let c = |name, method, path, content_type, body: fn(&Tokens) -> Option<Vec<u8>>, data, nova| Call {
        name,
        method,
        path,
        content_type,
        body,
        data,
        nova,
    };
    vec![
        c("show", "GET", "/v2/images/{id}", None, |_| None, true, false),
        c(
            "list",
            "GET",
            "/v2/images?name=policy-{id}",
            None,
            |_| None,
            true,
            false,
        ),
        c(
            "add property",
            "PATCH",
            "/v2/images/{id}",
            PATCH,
            |_| patch(json!([{"op": "add", "path": "/k", "value": "v"}])),
            true,
            false,
        ),
        c(
            "publicize",
            "PATCH",
            "/v2/images/{id}",
            PATCH,
            |_| patch(json!([{"op": "replace", "path": "/visibility", "value": "public"}])),
            true,
            false,
        ),
        c(
            "communitize",
            "PATCH",
            "/v2/images/{id}",
            PATCH,
            |_| patch(json!([{"op": "replace", "path": "/visibility", "value": "community"}])),
            true,
            false,
        ),
        c(
            "replace owner",
            "PATCH",
            "/v2/images/{id}",
            PATCH,
            |t| patch(json!([{"op": "replace", "path": "/owner", "value": t.other_id}])),
            true,
            false,
        ),
        c("delete", "DELETE", "/v2/images/{id}", None, |_| None, true, false),
        c(
            "upload",
            "PUT",
            "/v2/images/{id}/file",
            Some("application/octet-stream"),
            |_| Some(b"data".to_vec()),
            false,
            false,
        ),
        c("download", "GET", "/v2/images/{id}/file", None, |_| None, true, false),
        c(
            "deactivate",
            "POST",
            "/v2/images/{id}/actions/deactivate",
            None,
            |_| None,
            true,
            false,
        ),
        c(
            "reactivate",
            "POST",
            "/v2/images/{id}/actions/reactivate",
            None,
            |_| None,
            true,
            false,
        ),
        c("add tag", "PUT", "/v2/images/{id}/tags/u", None, |_| None, true, false),
        c("nova show", "GET", "/v2.1/images/{id}", None, |_| None, true, true),
        c(
            "nova list",
            "GET",
            "/v2.1/images/detail?name=policy-{id}",
            None,
            |_| None,
            true,
            true,
        ),
        c("nova delete", "DELETE", "/v2.1/images/{id}", None, |_| None, true, true),
        c(
            "nova metadata POST",
            "POST",
            "/v2.1/images/{id}/metadata",
            JSON,
            |_| Some(br#"{"metadata": {"k": "v"}}"#.to_vec()),
            true,
            true,
        ),
        c(
            "nova metadata PUT key",
            "PUT",
            "/v2.1/images/{id}/metadata/k",
            JSON,
            |_| Some(br#"{"meta": {"k": "v"}}"#.to_vec()),
            true,
            true,
        ),
        c(
            "nova metadata DELETE key",
            "DELETE",
            "/v2.1/images/{id}/metadata/t0",
            None,
            |_| None,
            true,
            true,
        ),
    ]
}

/// One side's part of a group of cases (one call on one kind of image, by
/// everyone in turn): the image to call it on, fresh whenever the last call
/// changed it.
struct Target {
    id: String,
    before: Value,
}

impl Target {
    async fn new(side: &Side, t: &Tokens, call: &Call, id: &str, kind: (Owner, &str)) -> Target {
        fixture(side, t, id, kind.0, kind.1, call.data).await;
        Target {
            id: id.to_string(),
            before: snapshot(side, t, id).await,
        }
    }
}

/// What a case did on one side: the answer, and whether the image changed.
struct Outcome {
    status: u16,
    body: Value,
    changed: bool,
}

async fn run_case(side: &Side, t: &Tokens, call: &Call, target: &mut Target, who: Who) -> Outcome {
    let base = if call.nova { &side.nova } else { &side.glance };
    let url = format!("{base}{}", call.path.replace("{id}", &target.id));
    let r = crate::call(call.method, &url, t.of(who), call.content_type, (call.body)(t)).await;
    let changed = call.method != "GET" && snapshot(side, t, &target.id).await != target.before;
    Outcome {
        status: r.status,
        body: r.body,
        changed,
    }
}

/// The ids an image list answer holds (Glance v2 or Nova).
fn listed(body: &Value) -> Vec<String> {
    body["images"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["id"].as_str().map(str::to_string))
        .collect()
}

#[actix_web::test]
async fn default_policy_matrix_is_glances_on_both_backends() {
    let Some(keystone) = support::keystone_url() else {
        return;
    };
    let t = Tokens::issue(&keystone).await;
    let (real, embedded) = (real_side(&keystone), embedded_side(&keystone));
    let (mut cases, mut refused) = (0, 0);
    let mut differences = String::new();
    for call in calls() {
        for kind in KINDS {
            let mut targets = None;
            // Those refused first, so that an image serves several cases.
            for who in [Who::Reader, Who::Other, Who::Member, Who::Admin] {
                if targets.is_none() {
                    let id = uuid::Uuid::new_v4().to_string();
                    targets = Some(tokio::join!(
                        Target::new(&real, &t, &call, &id, kind),
                        Target::new(&embedded, &t, &call, &id, kind)
                    ));
                }
                let (ta, tb) = targets.as_mut().expect("targets");
                let id = ta.id.clone();
                let (a, b) = tokio::join!(
                    run_case(&real, &t, &call, ta, who),
                    run_case(&embedded, &t, &call, tb, who)
                );
                cases += 1;
                let what = format!("{} on {:?}/{} by {who:?}", call.name, kind.0, kind.1);
                if a.changed || b.changed {
                    targets = None;
                }
                if a.status != b.status {
                    let _ = writeln!(differences, "{what}: real Glance {} vs embedded {}", a.status, b.status);
                    continue;
                }
                if call.name.contains("list") && listed(&a.body).contains(&id) != listed(&b.body).contains(&id) {
                    let _ = writeln!(differences, "{what}: listed on one side only");
                }
                // Nova's answers are built from what the backend said: equal bodies.
                if call.nova && a.status >= 400 && a.body != b.body {
                    let _ = writeln!(differences, "{what}: bodies differ: {} vs {}", a.body, b.body);
                }
                if a.status >= 400 {
                    refused += 1;
                    for (side, o) in [(&real, &a), (&embedded, &b)] {
                        if o.changed {
                            let _ = writeln!(
                                differences,
                                "{what}: refused ({}) but changed on {}",
                                o.status, side.name
                            );
                        }
                    }
                }
            }
        }
    }
    let differing = differences.lines().count();
    println!("policy matrix: {cases} cases ({refused} refused), {differing} differences");
    assert!(differences.is_empty(), "the backends differ:\n{differences}");
}

/// Glance lets a member of the owner project `add /owner` through the API, saves
/// it, and then answers 403 because the image is no longer the caller's (the
/// owner is changed all the same). The embedded store refuses before writing:
/// the same 403, and the owner is unchanged (a listed deviation).
#[actix_web::test]
async fn add_owner_by_a_member_is_refused_without_a_write() {
    let Some(keystone) = support::keystone_url() else {
        return;
    };
    let t = Tokens::issue(&keystone).await;
    let (real, embedded) = (real_side(&keystone), embedded_side(&keystone));
    let ops = json!([{"op": "add", "path": "/owner", "value": t.other_id}]).to_string();
    let mut owners = Vec::new();
    for side in [&real, &embedded] {
        let id = uuid::Uuid::new_v4().to_string();
        fixture(side, &t, &id, Owner::Demo, "private", false).await;
        let url = format!("{}/v2/images/{id}", side.glance);
        let r = call("PATCH", &url, &t.member, PATCH, Some(ops.clone().into_bytes())).await;
        assert_eq!(r.status, 403, "{}", side.name);
        owners.push(snapshot(side, &t, &id).await["owner"].clone());
    }
    assert_eq!(
        owners[0],
        Value::from(t.other_id.as_str()),
        "real Glance changed the owner"
    );
    assert_eq!(owners[1], Value::from(t.demo_id.as_str()), "the embedded store did not");
}
