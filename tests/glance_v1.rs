//! Glance v1 image reads on the image listener, fronting a real Glance
//! (`NIP_TEST_GLANCE_URL`): metadata headers, data download (whole, ranges,
//! a large image in constant memory), lists with filters and paging, their
//! errors, methods and auth; then python-glanceclient's v1 code against the
//! service (`NIP_GLANCECLIENT_V1`, see `scripts/glanceclient-v1.sh`).
//! Every test makes its own images (random names and ids) in the shared Glance
//! and only looks at those.

mod support;

use md5::{Digest, Md5};
use serde_json::{json, Value};
use std::collections::BTreeSet;

fn glance() -> Option<String> {
    support::glance_url("NIP_TEST_GLANCE_URL")
}

/// The service's image listener in front of `glance`, and Glance itself.
struct V1 {
    c: reqwest::Client,
    base: String,
    glance: String,
    _svc: support::Service,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl V1 {
    fn new(glance: &str) -> V1 {
        let svc = support::start_image_listener(support::settings(&[("glance.url", glance)]));
        V1 {
            c: support::client(),
            base: svc.base.clone(),
            glance: glance.to_string(),
            _svc: svc,
        }
    }

    async fn call(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut rb = self.c.request(
            reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
            format!("{}{path}", self.base),
        );
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        rb.send().await.expect("request")
    }

    /// With the test token.
    async fn req(&self, method: &str, path: &str) -> reqwest::Response {
        self.call(method, path, &[("X-Auth-Token", support::TOKEN)]).await
    }

    /// A v1 list as (status, JSON).
    async fn list(&self, path_and_query: &str, token: &str) -> (u16, Value) {
        let r = self.call("GET", path_and_query, &[("X-Auth-Token", token)]).await;
        let status = r.status().as_u16();
        let body = r.bytes().await.expect("body");
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// A new image in Glance (v2), with a random id.
    async fn create(&self, fields: Value) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let mut body = json!({"id": id, "disk_format": "raw", "container_format": "bare"});
        for (k, v) in fields.as_object().expect("fields") {
            body[k] = v.clone();
        }
        let r = self
            .c
            .post(format!("{}/v2/images", self.glance))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("create");
        assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap_or_default());
        id
    }

    async fn upload(&self, id: &str, data: Vec<u8>) {
        let r = self
            .c
            .put(format!("{}/v2/images/{id}/file", self.glance))
            .header("Content-Type", "application/octet-stream")
            .body(data)
            .send()
            .await
            .expect("upload");
        assert_eq!(r.status().as_u16(), 204, "{}", r.text().await.unwrap_or_default());
    }

    async fn deactivate(&self, id: &str) {
        let r = self
            .c
            .post(format!("{}/v2/images/{id}/actions/deactivate", self.glance))
            .send()
            .await
            .expect("deactivate");
        assert_eq!(r.status().as_u16(), 204);
    }

    async fn glance_image(&self, id: &str) -> Value {
        let r = self
            .c
            .get(format!("{}/v2/images/{id}", self.glance))
            .send()
            .await
            .expect("glance get");
        serde_json::from_slice(&r.bytes().await.expect("body")).expect("json")
    }
}

/// The test token, asking for webob's plain-text error pages (reqwest would
/// send `Accept: */*`, which gets HTML).
const PLAIN: [(&str, &str); 2] = [("X-Auth-Token", support::TOKEN), ("Accept", "text/plain")];

fn header<'a>(r: &'a reqwest::Response, name: &str) -> Option<&'a [u8]> {
    r.headers().get(name).map(|v| v.as_bytes())
}

fn header_str(r: &reqwest::Response, name: &str) -> Option<String> {
    header(r, name).map(|v| String::from_utf8_lossy(v).into_owned())
}

fn meta_names(r: &reqwest::Response) -> BTreeSet<String> {
    r.headers()
        .keys()
        .map(|k| k.as_str().to_string())
        .filter(|k| k.starts_with("x-image-meta-"))
        .collect()
}

fn is_v1_time(v: &str) -> bool {
    chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S%.6f").is_ok() && v.len() == 26
}

#[actix_web::test]
async fn head_shows_v1_metadata_for_queued_active_and_deactivated_images() {
    let Some(glance) = glance() else { return };
    let v1 = V1::new(&glance);
    let run = uuid::Uuid::new_v4().simple().to_string();
    let name = format!("образ café 镜像 {run}");
    let id = v1
        .create(json!({
            "name": name,
            "min_ram": 512,
            "owner": support::PROJECT,
            "OS_Distro": "ubuntu",
            "nip:key": "v",
            "description": "line1\nline2",
            "note": "ünïcode",
        }))
        .await;

    // Queued: no size, checksum, ETag.
    let r = v1.req("HEAD", &format!("/v1/images/{id}")).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(header(&r, "content-length"), Some(&b"0"[..]));
    assert_eq!(header(&r, "content-type"), Some(&b"text/html; charset=UTF-8"[..]));
    assert!(header_str(&r, "x-openstack-request-id").is_some_and(|v| v.starts_with("req-")));
    assert_eq!(header(&r, "x-image-meta-id"), Some(id.as_bytes()));
    assert_eq!(header(&r, "x-image-meta-name"), Some(name.as_bytes()), "raw UTF-8 name");
    assert_eq!(header(&r, "x-image-meta-status"), Some(&b"queued"[..]));
    assert_eq!(header(&r, "x-image-meta-disk_format"), Some(&b"raw"[..]));
    assert_eq!(header(&r, "x-image-meta-container_format"), Some(&b"bare"[..]));
    assert_eq!(header(&r, "x-image-meta-min_ram"), Some(&b"512"[..]));
    assert_eq!(header(&r, "x-image-meta-min_disk"), Some(&b"0"[..]));
    assert_eq!(header(&r, "x-image-meta-is_public"), Some(&b"False"[..]));
    assert_eq!(header(&r, "x-image-meta-protected"), Some(&b"False"[..]));
    assert_eq!(header(&r, "x-image-meta-deleted"), Some(&b"False"[..]));
    assert_eq!(header(&r, "x-image-meta-owner"), Some(support::PROJECT.as_bytes()));
    assert!(is_v1_time(&header_str(&r, "x-image-meta-created_at").unwrap()));
    assert!(is_v1_time(&header_str(&r, "x-image-meta-updated_at").unwrap()));
    for absent in [
        "x-image-meta-size",
        "x-image-meta-virtual_size",
        "x-image-meta-checksum",
        "x-image-meta-deleted_at",
        "x-image-meta-location",
        "location",
        "etag",
    ] {
        assert_eq!(header(&r, absent), None, "{absent}");
    }
    assert_eq!(header(&r, "x-image-meta-property-os_distro"), Some(&b"ubuntu"[..]));
    assert_eq!(header(&r, "x-image-meta-property-nip%3akey"), Some(&b"v"[..]));
    assert_eq!(
        header(&r, "x-image-meta-property-description"),
        Some(&b"line1%0Aline2"[..])
    );
    assert_eq!(header(&r, "x-image-meta-property-note"), Some("ünïcode".as_bytes()));
    assert_eq!(r.bytes().await.unwrap().len(), 0);

    // Active: size, checksum and ETag appear.
    v1.upload(&id, b"0123456789".to_vec()).await;
    let r = v1.req("HEAD", &format!("/v1/images/{id}")).await;
    let sum = "781e5e245d69b566979b86e28d23f2c7";
    assert_eq!(header(&r, "x-image-meta-status"), Some(&b"active"[..]));
    assert_eq!(header(&r, "x-image-meta-size"), Some(&b"10"[..]));
    assert_eq!(header(&r, "x-image-meta-checksum"), Some(sum.as_bytes()));
    assert_eq!(header(&r, "etag"), Some(sum.as_bytes()));
    let expected: BTreeSet<String> = [
        "id",
        "name",
        "status",
        "size",
        "virtual_size",
        "disk_format",
        "container_format",
        "checksum",
        "min_disk",
        "min_ram",
        "is_public",
        "owner",
        "protected",
        "created_at",
        "updated_at",
        "deleted",
        "property-os_distro",
        "property-nip%3akey",
        "property-description",
        "property-note",
    ]
    .iter()
    .map(|k| format!("x-image-meta-{k}"))
    .collect();
    let mut got = meta_names(&r);
    // virtual_size depends on Glance's format inspection; allow its absence.
    if !got.contains("x-image-meta-virtual_size") {
        got.insert("x-image-meta-virtual_size".into());
    }
    assert_eq!(got, expected);

    // Deactivated: HEAD still answers, with the status.
    v1.deactivate(&id).await;
    let r = v1.req("HEAD", &format!("/v1/images/{id}")).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(header(&r, "x-image-meta-status"), Some(&b"deactivated"[..]));

    // A public image without extra properties.
    let plain = v1
        .create(json!({"name": format!("plain-{run}"), "visibility": "public"}))
        .await;
    let r = v1.req("HEAD", &format!("/v1/images/{plain}")).await;
    assert_eq!(header(&r, "x-image-meta-is_public"), Some(&b"True"[..]));
    assert!(!meta_names(&r).iter().any(|k| k.starts_with("x-image-meta-property-")));
    assert_eq!(header(&r, "x-image-meta-owner"), None, "null owner: no header");

    // Unknown: 404, no body, the type Glance v1 raised it with.
    let r = v1.req("HEAD", &format!("/v1/images/{}", uuid::Uuid::new_v4())).await;
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(header(&r, "content-type"), Some(&b"text/plain; charset=UTF-8"[..]));
    assert_eq!(r.bytes().await.unwrap().len(), 0);
}

#[actix_web::test]
async fn get_streams_the_data_with_its_metadata() {
    let Some(glance) = glance() else { return };
    let v1 = V1::new(&glance);
    let data: Vec<u8> = (0..(3 << 20) + 7)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let id = v1
        .create(json!({"name": format!("data-{}", uuid::Uuid::new_v4()), "k": "v"}))
        .await;
    v1.upload(&id, data.clone()).await;
    // python-glanceclient sends Content-Type: application/octet-stream on GET.
    let r = v1
        .call(
            "GET",
            &format!("/v1/images/{id}"),
            &[
                ("X-Auth-Token", support::TOKEN),
                ("Content-Type", "application/octet-stream"),
            ],
        )
        .await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(header(&r, "content-type"), Some(&b"application/octet-stream"[..]));
    assert_eq!(header_str(&r, "content-length"), Some(data.len().to_string()));
    assert_eq!(header_str(&r, "x-image-meta-size"), Some(data.len().to_string()));
    assert_eq!(header(&r, "x-image-meta-property-k"), Some(&b"v"[..]));
    let etag = header_str(&r, "etag").expect("etag");
    assert_eq!(header_str(&r, "x-image-meta-checksum").as_deref(), Some(etag.as_str()));
    let body = r.bytes().await.expect("body");
    assert!(body[..] == data[..], "byte-equal");
    assert_eq!(hex(&Md5::digest(&body)), etag);

    // An active image without data.
    let empty = v1.create(json!({"name": "empty"})).await;
    v1.upload(&empty, Vec::new()).await;
    let r = v1.req("GET", &format!("/v1/images/{empty}")).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(header(&r, "content-length"), Some(&b"0"[..]));
    assert_eq!(header(&r, "etag"), Some(&b"d41d8cd98f00b204e9800998ecf8427e"[..]));
}

#[actix_web::test]
async fn get_honours_one_byte_range() {
    let Some(glance) = glance() else { return };
    let v1 = V1::new(&glance);
    let id = v1
        .create(json!({"name": format!("range-{}", uuid::Uuid::new_v4())}))
        .await;
    v1.upload(&id, b"0123456789".to_vec()).await;
    let path = format!("/v1/images/{id}");
    let get = |range: &'static str| {
        let v1 = &v1;
        let path = path.clone();
        async move {
            let r = v1
                .call("GET", &path, &[("X-Auth-Token", support::TOKEN), ("Range", range)])
                .await;
            let status = r.status().as_u16();
            let cr = header_str(&r, "content-range");
            let etag = header_str(&r, "etag");
            (status, cr, etag, r.bytes().await.expect("body").to_vec())
        }
    };
    let (s, cr, etag, body) = get("bytes=2-4").await;
    assert_eq!((s, cr.as_deref(), &body[..]), (206, Some("bytes 2-4/10"), &b"234"[..]));
    assert_eq!(etag.as_deref(), Some("781e5e245d69b566979b86e28d23f2c7"));
    let (s, cr, _, body) = get("bytes=7-").await;
    assert_eq!((s, cr.as_deref(), &body[..]), (206, Some("bytes 7-9/10"), &b"789"[..]));
    let (s, cr, _, body) = get("bytes=-3").await;
    assert_eq!((s, cr.as_deref(), &body[..]), (206, Some("bytes 7-9/10"), &b"789"[..]));
    let (s, cr, _, body) = get("bytes=8-100").await;
    assert_eq!((s, cr.as_deref(), &body[..]), (206, Some("bytes 8-9/10"), &b"89"[..]));
    let (s, cr, _, _) = get("bytes=10-").await;
    assert_eq!((s, cr.as_deref()), (416, Some("bytes */10")));
    // Several ranges or nonsense: ignored, the whole image.
    for ignored in ["bytes=0-1,4-5", "bytes=5-2", "pages=1"] {
        let (s, cr, _, body) = get(ignored).await;
        assert_eq!((s, cr, &body[..]), (200, None, &b"0123456789"[..]), "{ignored}");
    }
}

#[actix_web::test]
async fn get_refuses_images_that_are_not_active() {
    let Some(glance) = glance() else { return };
    let v1 = V1::new(&glance);
    let queued = v1.create(json!({"name": "queued"})).await;
    // No HTML or JSON acceptable: webob's plain text.
    let r = v1.call("GET", &format!("/v1/images/{queued}"), &PLAIN).await;
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(header(&r, "content-type"), Some(&b"text/plain; charset=UTF-8"[..]));
    assert_eq!(
        r.text().await.unwrap(),
        format!("404 Not Found\n\nThe resource could not be found.\n\n Image {queued} is not active  ")
    );

    let deact = v1.create(json!({"name": "deactivated"})).await;
    v1.upload(&deact, b"abc".to_vec()).await;
    v1.deactivate(&deact).await;
    // As python-glanceclient asks (Accept: */*): the HTML page.
    let r = v1
        .call(
            "GET",
            &format!("/v1/images/{deact}"),
            &[("X-Auth-Token", support::TOKEN), ("Accept", "*/*")],
        )
        .await;
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(header(&r, "content-type"), Some(&b"text/html; charset=UTF-8"[..]));
    assert_eq!(
        r.text().await.unwrap(),
        format!("<html>\n <head>\n  <title>403 Forbidden</title>\n </head>\n <body>\n  <h1>403 Forbidden</h1>\n  Access was denied to this resource.<br /><br />\nImage {deact} is deactivated\n\n\n </body>\n</html>")
    );

    let unknown = uuid::Uuid::new_v4();
    let r = v1
        .call(
            "GET",
            &format!("/v1/images/{unknown}"),
            &[("X-Auth-Token", support::TOKEN), ("Accept", "application/json")],
        )
        .await;
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(
        r.text().await.unwrap(),
        format!(
            r#"{{"message": "The resource could not be found.<br /><br />\nImage with identifier {unknown} not found\n\n", "code": "404 Not Found", "title": "Not Found"}}"#
        )
    );
}

/// Ids of a v1 list answer.
fn ids(v: &Value) -> Vec<String> {
    v["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_string())
        .collect()
}

fn set(ids: &[&String]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

#[actix_web::test]
async fn lists_filter_sort_and_page() {
    let Some(glance) = glance() else { return };
    let v1 = V1::new(&glance);
    let run = uuid::Uuid::new_v4().simple().to_string();
    let tagged = |v: Value| {
        let mut v = v;
        v["nip_run"] = json!(run);
        v
    };
    let a = v1
        .create(tagged(
            json!({"name": format!("{run}-a"), "min_ram": 512, "min_disk": 1, "visibility": "public"}),
        ))
        .await;
    v1.upload(&a, vec![b'a'; 10]).await;
    // `ami`: a format Glance does not inspect, so any bytes do.
    let b = v1
        .create(tagged(
            json!({"name": format!("{run}-b"), "disk_format": "ami", "container_format": "ami", "protected": true}),
        ))
        .await;
    v1.upload(&b, vec![b'b'; 20]).await;
    let c = v1
        .create(tagged(json!({"name": format!("{run}-c"), "container_format": "ovf"})))
        .await;
    let d = v1
        .create(tagged(
            json!({"name": format!("{run}-d"), "owner": support::PROJECT, "flavor": "x", "tag": "nip"}),
        ))
        .await;
    v1.upload(&d, vec![b'd'; 30]).await;
    let e = v1.create(tagged(json!({"name": format!("{run}-e")}))).await;
    v1.upload(&e, vec![b'e'; 40]).await;
    v1.deactivate(&e).await;
    let all = set(&[&a, &b, &c, &d, &e]);
    let q = |extra: &str| format!("/v1/images/detail?property-nip_run={run}{extra}");
    let user = support::TOKEN;

    // Index items have exactly the index fields; detail items all v1 fields.
    let (s, v) = v1.list(&format!("/v1/images?property-nip_run={run}"), user).await;
    assert_eq!(s, 200);
    assert_eq!(ids(&v).iter().collect::<BTreeSet<_>>().len(), 5);
    for item in v["images"].as_array().unwrap() {
        let keys: Vec<&str> = item.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["id", "name", "size", "disk_format", "container_format", "checksum"]
        );
    }
    let (_, v) = v1.list(&q(&format!("&name={run}-a")), user).await;
    let item = &v["images"][0];
    let keys: BTreeSet<&str> = item.as_object().unwrap().keys().map(String::as_str).collect();
    let want: BTreeSet<&str> = [
        "id",
        "name",
        "size",
        "virtual_size",
        "disk_format",
        "container_format",
        "checksum",
        "min_disk",
        "min_ram",
        "status",
        "is_public",
        "owner",
        "protected",
        "created_at",
        "updated_at",
        "deleted_at",
        "deleted",
        "properties",
    ]
    .into_iter()
    .collect();
    assert_eq!(keys, want);
    assert_eq!(ids(&v), std::slice::from_ref(&a));
    assert_eq!(item["is_public"], json!(true));
    assert_eq!(item["deleted"], json!(false));
    assert_eq!(item["deleted_at"], json!(null));
    assert_eq!(item["size"], json!(10));
    assert_eq!(item["properties"], json!({"nip_run": run}));
    assert!(is_v1_time(item["created_at"].as_str().unwrap()));

    let cases: Vec<(&str, BTreeSet<String>)> = vec![
        ("", all.clone()),
        ("&status=queued", set(&[&c])),
        ("&status=deactivated", set(&[&e])),
        ("&disk_format=ami", set(&[&b])),
        ("&container_format=ovf", set(&[&c])),
        ("&min_ram=512", set(&[&a])),
        ("&min_disk=1", set(&[&a])),
        ("&size_min=15", set(&[&b, &d, &e])),
        ("&size_max=35", set(&[&a, &b, &d])),
        ("&protected=True", set(&[&b])),
        ("&protected=0", set(&[&a, &c, &d, &e])),
        ("&property-flavor=x", set(&[&d])),
        // `tag` means something else to Glance v2: filtered here.
        ("&property-tag=nip", set(&[&d])),
        ("&property-flavor=y", BTreeSet::new()),
        ("&foo=bar", all.clone()),
        ("&is_public=false", all.clone()),
    ];
    for (extra, want) in cases {
        let (s, v) = v1.list(&q(extra), user).await;
        assert_eq!(s, 200, "{extra}: {v}");
        assert_eq!(ids(&v).into_iter().collect::<BTreeSet<_>>(), want, "{extra}");
    }
    let past = (chrono::Utc::now() - chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ");
    let future = (chrono::Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%d");
    let (_, v) = v1.list(&q(&format!("&changes-since={past}")), user).await;
    assert_eq!(ids(&v).into_iter().collect::<BTreeSet<_>>(), all);
    let (_, v) = v1.list(&q(&format!("&changes-since={future}")), user).await;
    assert_eq!(ids(&v), Vec::<String>::new());
    assert_eq!(v, json!({"images": []}));

    // Admins: `is_public` absent = public plus their project's; none = all; false = not public.
    let admin = format!("admin:{}", support::PROJECT);
    for (extra, want) in [
        ("", set(&[&a, &d])),
        ("&is_public=true", set(&[&a, &d])),
        ("&is_public=None", all.clone()),
        ("&is_public=0", set(&[&b, &c, &d, &e])),
    ] {
        let (s, v) = v1.list(&q(extra), &admin).await;
        assert_eq!(s, 200);
        assert_eq!(ids(&v).into_iter().collect::<BTreeSet<_>>(), want, "admin {extra}");
    }

    // Sorting and paging by marker, as python-glanceclient pages.
    let by_name = [a.clone(), b.clone(), c.clone(), d.clone(), e.clone()];
    let (_, v) = v1.list(&q("&sort_key=name&sort_dir=asc"), user).await;
    assert_eq!(ids(&v), by_name);
    let (_, v) = v1.list(&q("&sort_key=name&sort_dir=desc"), user).await;
    assert_eq!(ids(&v), by_name.iter().rev().cloned().collect::<Vec<_>>());
    let mut paged = Vec::new();
    let mut marker = String::new();
    loop {
        let (s, v) = v1
            .list(
                &q(&format!("&sort_key=name&sort_dir=asc&limit=2&marker={marker}")),
                user,
            )
            .await;
        assert_eq!(s, 200);
        let page = ids(&v);
        assert!(page.len() <= 2);
        paged.extend(page.iter().cloned());
        if page.len() < 2 {
            break;
        }
        marker = page.last().unwrap().clone();
    }
    assert_eq!(paged, by_name);
    // Paging with a filter applied here (admin, not public), limit 1.
    let mut paged = Vec::new();
    let mut marker = String::new();
    loop {
        let (_, v) = v1
            .list(
                &q(&format!(
                    "&is_public=false&sort_key=name&sort_dir=asc&limit=1&marker={marker}"
                )),
                &admin,
            )
            .await;
        let page = ids(&v);
        paged.extend(page.iter().cloned());
        match page.last() {
            Some(last) => marker = last.clone(),
            None => break,
        }
    }
    assert_eq!(paged, [b.clone(), c.clone(), d.clone(), e.clone()]);
    let (_, v) = v1.list(&q("&limit=0"), user).await;
    assert_eq!(v, json!({"images": []}));
}

#[actix_web::test]
async fn list_parameters_are_checked_as_glance_v1_did() {
    let Some(glance) = glance() else { return };
    let v1 = V1::new(&glance);
    let unknown = uuid::Uuid::new_v4();
    let cases = [
        ("limit=abc", "limit param must be an integer"),
        ("limit=-1", "limit param must be positive"),
        (
            "sort_key=owner",
            "Unsupported sort_key. Acceptable values: name, status, container_format, disk_format, size, id, created_at, updated_at",
        ),
        ("sort_dir=up", "Unsupported sort_dir. Acceptable values: asc, desc"),
        ("marker=abc", "Invalid marker format"),
        (&format!("marker={unknown}") as &str, "Invalid marker. Image could not be found."),
        ("size_min=-1", "Bad value passed to filter size_min got -1"),
        ("min_ram=x", "Bad value passed to filter min_ram got x"),
        ("is_public=maybe", "Bad value passed to filter is_public got maybe"),
        ("protected=none", "protected must be True, or False"),
        ("changes-since=yesterday", "Unrecognized changes-since value"),
    ];
    for (query, message) in cases {
        for path in ["/v1/images", "/v1/images/detail"] {
            let r = v1.call("GET", &format!("{path}?{query}"), &PLAIN).await;
            assert_eq!(r.status().as_u16(), 400, "{query}");
            assert_eq!(header(&r, "content-type"), Some(&b"text/plain; charset=UTF-8"[..]));
            let body = r.text().await.unwrap();
            assert!(body.starts_with("400 Bad Request\n\n"), "{query}: {body:?}");
            assert!(body.contains(message), "{query}: {body:?}");
        }
    }
    // A registry message arrives inside the API server's page.
    let r = v1.call("GET", "/v1/images?marker=abc", &PLAIN).await;
    assert_eq!(
        r.text().await.unwrap(),
        "400 Bad Request\n\n400 Bad Request  Invalid marker format     \n\n   "
    );
}

#[actix_web::test]
async fn other_methods_are_refused_and_a_token_is_needed() {
    let Some(glance) = glance() else { return };
    let v1 = V1::new(&glance);
    let id = v1.create(json!({"name": "methods"})).await;
    let image = format!("/v1/images/{id}");
    let members = format!("{image}/members");
    let member = format!("{members}/p");
    for (method, path, allow) in [
        ("PUT", "/v1/images", "GET, POST"),
        ("DELETE", "/v1/images", "GET, POST"),
        ("HEAD", "/v1/images", "GET, POST"),
        ("POST", "/v1/", "GET, HEAD"),
        ("POST", "/v1/images/detail", "GET, HEAD"),
        ("DELETE", "/v1/images/detail", "GET, HEAD"),
        ("HEAD", "/v1/images/detail", "GET"),
        ("POST", image.as_str(), "GET, HEAD, PUT, DELETE"),
        ("PATCH", image.as_str(), "GET, HEAD, PUT, DELETE"),
        ("POST", members.as_str(), "GET, PUT"),
        ("DELETE", members.as_str(), "GET, PUT"),
        ("POST", member.as_str(), "GET, PUT, DELETE"),
    ] {
        let r = v1.req(method, path).await;
        assert_eq!(r.status().as_u16(), 405, "{method} {path}");
        assert_eq!(header_str(&r, "allow").as_deref(), Some(allow), "{method} {path}");
        assert!(header(&r, "x-openstack-request-id").is_some());
    }
    let r = v1.call("PUT", "/v1/images", &PLAIN).await;
    assert_eq!(
        r.text().await.unwrap(),
        "405 Method Not Allowed\n\nThe method PUT is not allowed for this resource. \n\n "
    );
    // The image is still there (the refused calls did nothing).
    assert_eq!(v1.glance_image(&id).await["status"], json!("queued"));

    for (method, path) in [
        ("GET", "/v1/images"),
        ("GET", "/v1/images/detail"),
        ("HEAD", image.as_str()),
        ("GET", image.as_str()),
    ] {
        let r = v1.call(method, path, &[]).await;
        assert_eq!(r.status().as_u16(), 401, "{method} {path}");
        assert!(header_str(&r, "www-authenticate").is_some_and(|v| v.starts_with("Keystone uri=")));
        if method == "GET" {
            assert_eq!(
                r.text().await.unwrap(),
                r#"{"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}"#
            );
        }
    }
    // python-glanceclient percent-quotes the token (safe characters `=+/`).
    let quoted = support::TOKEN.replace(':', "%3A");
    let r = v1
        .call(
            "HEAD",
            &image,
            &[
                ("X-Auth-Token", quoted.as_str()),
                ("Content-Type", "application/octet-stream"),
            ],
        )
        .await;
    assert_eq!(r.status().as_u16(), 200);
    // Paths Glance v1 did not serve.
    let r = v1.req("GET", &format!("{image}/members/p/x")).await;
    assert_eq!(r.status().as_u16(), 404);
    let r = v1.req("GET", "/v1/shared-images/").await;
    assert_eq!(r.status().as_u16(), 404);
}

/// VmRSS of this process (the service runs in it), in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
    let kb: u64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("kB");
    kb * 1024
}

/// Deterministic test data: `n` chunks of 1 MiB.
fn chunk(i: u64) -> bytes::Bytes {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(1 << 20);
    for _ in 0..(1 << 17) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    bytes::Bytes::from(v)
}

#[actix_web::test]
async fn a_large_image_streams_through_in_constant_memory() {
    let Some(glance) = glance() else { return };
    let mib: u64 = std::env::var("NIP_V1_LARGE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let size = mib << 20;
    let v1 = V1::new(&glance);
    let id = v1
        .create(json!({"name": format!("large-{}", uuid::Uuid::new_v4())}))
        .await;
    // Upload without holding the image: 1 MiB chunks made as they are sent.
    let body = futures_util::stream::iter((0..mib).map(|i| Ok::<_, std::io::Error>(chunk(i))));
    let r =
        v1.c.put(format!("{}/v2/images/{id}/file", v1.glance))
            .header("Content-Type", "application/octet-stream")
            .header("Content-Length", size.to_string())
            .body(reqwest::Body::wrap_stream(body))
            .send()
            .await
            .expect("upload");
    assert_eq!(r.status().as_u16(), 204, "{}", r.text().await.unwrap_or_default());

    let before = rss();
    let mut r = v1.req("GET", &format!("/v1/images/{id}")).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(header_str(&r, "content-length"), Some(size.to_string()));
    let etag = header_str(&r, "etag").expect("etag");
    let mut md5 = Md5::new();
    let (mut got, mut peak, mut next_sample) = (0u64, before, 0u64);
    let mut paused = false;
    while let Some(c) = r.chunk().await.expect("chunk") {
        md5.update(&c);
        got += c.len() as u64;
        if !paused && got >= 1 << 20 {
            // A service that buffered would now pull the whole image from Glance.
            paused = true;
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        }
        if got >= next_sample {
            peak = peak.max(rss());
            next_sample += 8 << 20;
        }
    }
    peak = peak.max(rss());
    assert_eq!(got, size);
    assert_eq!(hex(&md5.finalize()), etag, "MD5 of the download = ETag");
    let growth = peak.saturating_sub(before);
    eprintln!(
        "glance v1 large image: {mib} MiB through the service, RSS growth {:.1} MiB",
        growth as f64 / (1 << 20) as f64
    );
    assert!(growth < 48 << 20, "RSS grew by {growth} bytes for a {size}-byte image");
    // Leave no large file in the shared Glance.
    let r =
        v1.c.delete(format!("{}/v2/images/{id}", v1.glance))
            .send()
            .await
            .expect("delete");
    assert_eq!(r.status().as_u16(), 204);
}

/// A backend whose image data breaks off.
struct Breaking {
    /// true: the stream fails after some bytes; false: it just ends short.
    error: bool,
}

#[async_trait::async_trait]
impl nova_images_proxy::backend::ImageBackend for Breaking {
    fn describe(&self) -> String {
        "breaking".into()
    }
    async fn ping(&self) -> nova_images_proxy::backend::BackendResult<()> {
        Ok(())
    }
    fn public_image_url(&self) -> String {
        String::new()
    }
    async fn list(
        &self,
        _: &nova_images_proxy::backend::RequestContext,
        _: &nova_images_proxy::backend::ListQuery,
    ) -> nova_images_proxy::backend::BackendResult<Vec<nova_images_proxy::backend::Image>> {
        Ok(Vec::new())
    }
    async fn get(
        &self,
        _: &nova_images_proxy::backend::RequestContext,
        id: &str,
    ) -> nova_images_proxy::backend::BackendResult<nova_images_proxy::backend::Image> {
        Ok(nova_images_proxy::backend::Image {
            id: id.to_string(),
            status: "active".into(),
            visibility: "private".into(),
            size: Some(1 << 20),
            checksum: Some("0".repeat(32)),
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
            ..Default::default()
        })
    }
    async fn delete(
        &self,
        _: &nova_images_proxy::backend::RequestContext,
        _: &str,
    ) -> nova_images_proxy::backend::BackendResult<()> {
        Ok(())
    }
    async fn update_properties(
        &self,
        _: &nova_images_proxy::backend::RequestContext,
        _: &str,
        _: nova_images_proxy::backend::PropertyChange,
        _: Option<usize>,
    ) -> nova_images_proxy::backend::BackendResult<nova_images_proxy::backend::Image> {
        Err(nova_images_proxy::backend::BackendError::Internal("read-only".into()))
    }
    async fn data(
        &self,
        _: &nova_images_proxy::backend::RequestContext,
        _: &str,
        _: Option<nova_images_proxy::backend::ByteRange>,
    ) -> nova_images_proxy::backend::BackendResult<nova_images_proxy::backend::ImageData> {
        use nova_images_proxy::backend::BackendError;
        let mut parts: Vec<Result<bytes::Bytes, BackendError>> = vec![Ok(bytes::Bytes::from(vec![7u8; 64 << 10]))];
        if self.error {
            parts.push(Err(BackendError::Unreachable("connection reset".into())));
        }
        Ok(nova_images_proxy::backend::ImageData {
            stream: Box::pin(futures_util::stream::iter(parts)),
            length: None,
            range: None,
        })
    }
}

#[actix_web::test]
async fn a_download_that_breaks_off_is_aborted_not_truncated() {
    for error in [true, false] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let settings = support::settings(&[]);
        let state = nova_images_proxy::ImageState {
            migration: nova_images_proxy::migration::Migration::new(&settings, None).expect("migration"),
            settings: std::sync::Arc::new(settings),
            backend: std::sync::Arc::new(Breaking { error }),
            embedded: None,
            auth: nova_images_proxy::auth::Authenticator::NoAuth2,
        };
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new().configure(nova_images_proxy::configure_image(state.clone()))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        let r = support::client()
            .get(format!("http://{addr}/v1/images/{}", uuid::Uuid::new_v4()))
            .header("X-Auth-Token", support::TOKEN)
            .send()
            .await
            .expect("headers arrive");
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(header_str(&r, "content-length"), Some((1u64 << 20).to_string()));
        // The client must see a failure, never a complete-looking short body.
        assert!(r.bytes().await.is_err(), "error={error}: the body must not end cleanly");
        handle.stop(false).await;
    }
}

#[actix_web::test]
async fn python_glanceclient_v1_reads_through_the_service() {
    let Some(glance) = glance() else { return };
    let python = match std::env::var("NIP_GLANCECLIENT_V1") {
        Ok(p) if !p.is_empty() => p,
        _ => {
            support::skip(
                "NIP_GLANCECLIENT_V1 is not set (scripts/glanceclient-v1.sh install prints the python to use; \
                 scripts/test sets it)",
            );
            return;
        }
    };
    let v1 = V1::new(&glance);
    let run = uuid::Uuid::new_v4().simple().to_string();
    let name = format!("glanceclient café {run}");
    let data: Vec<u8> = (0..(2 << 20) + 3).map(|i: u32| (i % 251) as u8).collect();
    let id = v1
        .create(json!({"name": name, "nip_run": run, "os_distro": "cirros", "min_ram": 64, "visibility": "public"}))
        .await;
    v1.upload(&id, data.clone()).await;
    let mut others = Vec::new();
    for i in 0..4 {
        others.push(
            v1.create(json!({"name": format!("gc-{run}-{i}"), "nip_run": run}))
                .await,
        );
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/glanceclient_v1/check.py");
    let mut cmd = std::process::Command::new(&python);
    cmd.arg(&script)
        .args(["--url", &v1.base, "--token", support::TOKEN, "--image", &id])
        .args([
            "--name",
            &name,
            "--md5",
            &hex(&Md5::digest(&data)),
            "--size",
            &data.len().to_string(),
        ])
        .args(["--run", &run, "--expect-count", "5"])
        .env("NO_PROXY", "*")
        .env("no_proxy", "*");
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run python-glanceclient");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}{stderr}");
    assert!(out.status.success(), "python-glanceclient v1 checks failed");
    assert!(stdout.contains("glanceclient v1: all checks passed"));
}

#[actix_web::test]
async fn lists_and_metadata_on_the_embedded_store() {
    // The image listener serves Glance v1 on the embedded store too (its data
    // download is the store's to provide; lists and metadata are shown here).
    let dir = tempfile::tempdir().expect("tempdir");
    let dir_str = dir.path().to_string_lossy().into_owned();
    let svc = support::start_image_listener(support::settings(&[
        ("embedded.data_dir", dir_str.as_str()),
        ("embedded.demo_images", "false"),
    ]));
    let store = nova_images_proxy::backend::embedded::EmbeddedStore::open(dir.path()).expect("store");
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut ids = Vec::new();
    for n in ["b", "c", "a"] {
        let body =
            json!({"name": format!("{run}-{n}"), "disk_format": "raw", "container_format": "bare", "nip_run": run});
        let img = store
            .create(
                &support::seed_context(),
                support::seed::new_image(body.as_object().unwrap()),
            )
            .await
            .expect("create");
        ids.push((n, img.id));
    }
    let id = |n: &str| ids.iter().find(|(k, _)| *k == n).unwrap().1.clone();
    let c = support::client();
    let get = |q: String| {
        let c = c.clone();
        let base = svc.base.clone();
        let run = run.clone();
        async move {
            let r = c
                .get(format!(
                    "{base}/v1/images/detail?property-nip_run={run}&sort_key=name&sort_dir=asc{q}"
                ))
                .header("X-Auth-Token", support::TOKEN)
                .send()
                .await
                .expect("list");
            assert_eq!(r.status().as_u16(), 200);
            let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
            self::ids(&v)
        }
    };
    assert_eq!(get(String::new()).await, [id("a"), id("b"), id("c")]);
    assert_eq!(get("&limit=2".into()).await, [id("a"), id("b")]);
    assert_eq!(get(format!("&limit=2&marker={}", id("b"))).await, [id("c")]);
    let r = c
        .head(format!("{}/v1/images/{}", svc.base, id("a")))
        .header("X-Auth-Token", support::TOKEN)
        .send()
        .await
        .expect("head");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(header_str(&r, "x-image-meta-name"), Some(format!("{run}-a")));
    assert_eq!(header(&r, "x-image-meta-status"), Some(&b"queued"[..]));
    assert_eq!(header_str(&r, "x-image-meta-property-nip_run"), Some(run.clone()));

    // Data: uploaded to the store, streamed back whole and by range, MD5 = ETag.
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = data
        .chunks(7000)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    store
        .upload(&support::seed_context(), &id("b"), futures_util::stream::iter(chunks))
        .await
        .expect("upload");
    let r = c
        .get(format!("{}/v1/images/{}", svc.base, id("b")))
        .header("X-Auth-Token", support::TOKEN)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 200);
    let etag = header_str(&r, "etag").expect("etag");
    assert_eq!(header_str(&r, "content-length"), Some(data.len().to_string()));
    let body = r.bytes().await.expect("body");
    assert_eq!(&body[..], &data[..]);
    let digest: String = md5_hex(&body);
    assert_eq!(etag.trim_matches('"'), digest);
    let r = c
        .get(format!("{}/v1/images/{}", svc.base, id("b")))
        .header("X-Auth-Token", support::TOKEN)
        .header("Range", "bytes=1000-1999")
        .send()
        .await
        .expect("range");
    assert_eq!(r.status().as_u16(), 206);
    assert_eq!(&r.bytes().await.unwrap()[..], &data[1000..2000]);
    // A queued image has no data to give.
    let r = c
        .get(format!("{}/v1/images/{}", svc.base, id("a")))
        .header("X-Auth-Token", support::TOKEN)
        .send()
        .await
        .expect("get queued");
    assert_eq!(r.status().as_u16(), 404);
}

fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    md5::Md5::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}
