//! What Nova's router and its image-service client make of what a metadata
//! call names, where it depends on the image (found by the differential
//! fuzzer, `tests/fuzz_diff.rs`, against real Nova 34; the state-independent
//! answers are captured in `tests/fixtures/fuzz`): ids and keys in the path are
//! read as Latin-1, and a `kernel_id` or `ramdisk_id` of `""` or `none` is never
//! written. Each case runs on a real Glance and on the embedded store.

#[macro_use]
mod support;

use serde_json::json;
use support::{api::Api, Backend};

/// `ключ` as UTF-8 in a path; Nova's router reads it as `Ð\u{ba}Ð»Ñ\u{8e}Ñ\u{87}`.
const KEY: &str = "%D0%BA%D0%BB%D1%8E%D1%87";

async fn keys_in_the_path_are_read_as_latin_1(b: Backend) {
    let api = Api::new(&b, &[]);
    let id = api.image(json!({"ключ": "v"})).await;
    for prefix in ["/v2.1", "/v2"] {
        let path = format!("{prefix}/images/{id}/metadata/{KEY}");
        assert_eq!(api.get(&path).await.0, 404, "GET {path}");
        assert_eq!(api.req("DELETE", &path, &[], None).await.0, 404, "DELETE {path}");
    }
    // Legacy `/v2` lets the non-ASCII body key through to the comparison with
    // the URL's key.
    let path = format!("/v2/images/{id}/metadata/{KEY}");
    let got = api.req("PUT", &path, &[], Some(r#"{"meta": {"ключ": "w"}}"#)).await;
    assert_eq!(
        got,
        (
            400,
            json!({"badRequest": {"code": 400, "message": "Request body and URI mismatch"}})
        )
    );
    assert_eq!(api.glance_props(&id).await["ключ"], "v", "nothing written");
    let (status, all) = api.get(&format!("/v2.1/images/{id}/metadata")).await;
    assert_eq!((status, all), (200, json!({"metadata": {"ключ": "v"}})));
}

async fn kernel_and_ramdisk_ids_of_none_are_never_written(b: Backend) {
    let api = Api::new(&b, &[]);
    let kernel = "a6d1c1d4-8f3e-4a43-9a0e-6d0d2a3c4b5f";
    let id = api.image(json!({ "kernel_id": kernel })).await;
    let meta = format!("/v2.1/images/{id}/metadata");
    // A merge: not sent, the image keeps what it had.
    let body = r#"{"metadata": {"kernel_id": "", "ramdisk_id": " None ", "a": "1"}}"#;
    let got = api.req("POST", &meta, &[], Some(body)).await;
    assert_eq!(got, (200, json!({"metadata": {"kernel_id": kernel, "a": "1"}})));
    // The collection: echoed; the key is neither written nor removed.
    let body = r#"{"metadata": {"kernel_id": "none", "b": "2"}}"#;
    let got = api.req("PUT", &meta, &[], Some(body)).await;
    assert_eq!(got, (200, json!({"metadata": {"kernel_id": "none", "b": "2"}})));
    assert_eq!(
        api.get(&meta).await,
        (200, json!({"metadata": {"kernel_id": kernel, "b": "2"}}))
    );
    // One key: echoed, not written.
    let got = api
        .req(
            "PUT",
            &format!("{meta}/ramdisk_id"),
            &[],
            Some(r#"{"meta": {"ramdisk_id": "NONE"}}"#),
        )
        .await;
    assert_eq!(got, (200, json!({"meta": {"ramdisk_id": "NONE"}})));
    let props = api.glance_props(&id).await;
    assert_eq!(
        (props["kernel_id"].as_str(), props.get("ramdisk_id")),
        (Some(kernel), None)
    );
    // An image that is not there is still a 404.
    let gone = "/v2.1/images/00000000-0000-4000-8000-000000000000/metadata/kernel_id";
    let got = api.req("PUT", gone, &[], Some(r#"{"meta": {"kernel_id": ""}}"#)).await;
    assert_eq!(got.0, 404);
}

fn glance() -> Option<String> {
    support::glance_url("NIP_TEST_GLANCE_URL")
}

on_both_backends!(
    keys_in_the_path_are_read_as_latin_1,
    kernel_and_ramdisk_ids_of_none_are_never_written
);
