//! Several Glance API servers in `glance.url` (Nova's `[glance] api_servers`):
//! calls take turns between them, a server that refuses connections costs an
//! attempt (reads and writes alike go on to the next one) and no request fails
//! while one server answers. Two counting proxies in front of the same real
//! Glance tell which server was called; a port nothing listens on is the dead one.

mod support;

use support::fault_proxy;
use support::process::free_port;

async fn status(client: &reqwest::Client, method: reqwest::Method, url: &str, body: Option<&str>) -> u16 {
    let mut rb = client.request(method, url).header("X-Auth-Token", support::TOKEN);
    if let Some(b) = body {
        rb = rb.header("Content-Type", "application/json").body(b.to_string());
    }
    rb.send().await.expect("service").status().as_u16()
}

#[actix_web::test]
async fn calls_take_turns_and_a_dead_server_costs_an_attempt_not_the_request() {
    let Some(glance) = support::glance_url("NIP_TEST_GLANCE_URL") else {
        return;
    };
    let client = support::client();
    let id = uuid::Uuid::new_v4().to_string();
    support::glance_create(
        &client,
        &glance,
        &serde_json::json!({"id": id, "name": "api-servers", "visibility": "public", "disk_format": "raw", "container_format": "bare"}),
    )
    .await;

    // Two live servers: the calls are spread over both.
    let (a, b) = (fault_proxy::start(&glance), fault_proxy::start(&glance));
    let both = format!("{},{}", a.url, b.url);
    let service = support::start_on(&support::Backend::Glance(both), &[]);
    let show = format!("{}/v2.1/images/{id}", service.base);
    for _ in 0..6 {
        assert_eq!(status(&client, reqwest::Method::GET, &show, None).await, 200);
    }
    let (on_a, on_b) = (a.calls().len(), b.calls().len());
    assert!(on_a >= 3 && on_b >= 3, "calls to the two servers: {on_a} and {on_b}");

    // A dead server first, then second: every read and write still answered.
    let dead = format!("http://127.0.0.1:{}", free_port());
    for urls in [format!("{dead},{glance}"), format!("{glance},{dead}")] {
        let service = support::start_on(&support::Backend::Glance(urls.clone()), &[("glance.num_retries", "1")]);
        let show = format!("{}/v2.1/images/{id}", service.base);
        let meta = format!("{}/v2.1/images/{id}/metadata", service.base);
        for round in 0..4 {
            assert_eq!(
                status(&client, reqwest::Method::GET, &show, None).await,
                200,
                "{urls}: read {round}"
            );
            let body = format!(r#"{{"metadata": {{"round": "{round}"}}}}"#);
            assert_eq!(
                status(&client, reqwest::Method::POST, &meta, Some(&body)).await,
                200,
                "{urls}: write {round}"
            );
        }
    }

    // No server answering: Nova's fault, not a hang.
    let other_dead = format!("http://127.0.0.1:{}", free_port());
    let service = support::start_on(&support::Backend::Glance(format!("{dead},{other_dead}")), &[]);
    let got = status(
        &client,
        reqwest::Method::GET,
        &format!("{}/v2.1/images/{id}", service.base),
        None,
    )
    .await;
    assert_eq!(got, 503);
}
