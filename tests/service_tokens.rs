//! Service tokens both ways, against the real Keystone of the test run and
//! the real Glance behind it: an `X-Service-Token` a client sends is checked
//! as keystonemiddleware checks it, and the service's own token that Glance
//! refuses (401) is renewed and the call made once more, as keystoneauth does.

mod support;

use support::fault_proxy;

#[actix_web::test]
async fn service_tokens_clients_send_are_checked_as_keystonemiddleware_checks_them() {
    let Some(ks) = support::keystone_url() else { return };
    let member = support::member_token(&ks).await;
    let (service, _) = support::password_token(
        &ks,
        "Default",
        &support::keystone_var("SERVICE_USER"),
        &support::keystone_var("SERVICE_PASSWORD"),
        &support::keystone_var("SERVICE_PROJECT"),
    )
    .await;
    let start = |more: &[(&str, &str)]| {
        let mut pairs = vec![("auth.strategy", "keystone"), ("auth.keystone_url", ks.as_str())];
        pairs.extend_from_slice(more);
        support::start_on(&support::Backend::Embedded, &pairs)
    };
    let answer = |svc: &support::Service, service_token: &str| {
        let url = format!("{}/v2.1/images", svc.base);
        let (member, service_token) = (member.clone(), service_token.to_string());
        async move {
            let r = support::client()
                .get(url)
                .header("X-Auth-Token", member)
                .header("X-Service-Token", service_token)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.headers().contains_key("www-authenticate"))
        }
    };
    let svc = start(&[]);
    // A service token with the service role; an empty header is no token.
    assert_eq!(answer(&svc, &service).await, (200, false));
    assert_eq!(answer(&svc, "").await, (200, false));
    // Not a token, or a token without a service role: keystonemiddleware's 401.
    assert_eq!(answer(&svc, "garbage").await, (401, true));
    assert_eq!(answer(&svc, &member).await, (401, true));
    // The role check is off, or names the member's role.
    let svc = start(&[("auth.service_token_roles_required", "false")]);
    assert_eq!(answer(&svc, &member).await, (200, false));
    assert_eq!(answer(&svc, "garbage").await, (401, true));
    let svc = start(&[("auth.service_token_roles", "admin, member")]);
    assert_eq!(answer(&svc, &member).await, (200, false));
    // noauth2 has no auth_token filter: nothing is checked.
    let svc = support::start_on(&support::Backend::Embedded, &[]);
    let r = support::client()
        .get(format!("{}/v2.1/images", svc.base))
        .header("X-Auth-Token", support::TOKEN)
        .header("X-Service-Token", "garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[actix_web::test]
async fn a_service_token_glance_refuses_is_renewed_and_the_call_made_again() {
    let Some(ks) = support::keystone_url() else { return };
    let Some(glance) = support::glance_url("NIP_KEYSTONE_GLANCE_URL") else {
        return;
    };
    // Recorders in front of Keystone (the service's logins) and of the real
    // Glance behind Keystone (which refuses once, as its auth_token filter
    // refuses a service token that is no longer valid).
    let keystone = fault_proxy::start(ks.strip_suffix("/v3").unwrap());
    let front = fault_proxy::start(&glance);
    let via = format!("{}/v3", keystone.url);
    let mut pairs: Vec<(&str, String)> = support::keystone_pairs(&via);
    pairs.push(("auth.send_service_user_token", "true".into()));
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let svc = support::start_on(&support::Backend::Glance(front.url.clone()), &pairs);
    let member = support::member_token(&ks).await;
    let detail = format!("{}/v2.1/images/detail", svc.base);
    let (status, body) = support::get_as(&detail, &member).await;
    assert_eq!(status, 200, "{body}");
    let logins = |p: &fault_proxy::Proxy| {
        p.seen()
            .iter()
            .filter(|s| s.method == "POST" && s.path() == "/v3/auth/tokens")
            .count()
    };
    assert_eq!(logins(&keystone), 1);
    let first = front.seen()[0]
        .header("x-service-token")
        .expect("X-Service-Token")
        .to_string();

    front.set(fault_proxy::Fault::Unauthorized, 1);
    keystone.clear();
    let (status, body) = support::get_as(&detail, &member).await;
    assert_eq!(status, 200, "{body}");
    let seen = front.seen();
    assert_eq!(seen.len(), 2, "refused, then made again: {:?}", front.calls());
    assert_eq!(seen[0].header("x-service-token"), Some(first.as_str()));
    let second = seen[1].header("x-service-token").expect("X-Service-Token");
    assert_ne!(second, first, "a new service token");
    assert!(seen.iter().all(|s| s.header("x-auth-token") == Some(member.as_str())));
    assert_eq!(logins(&keystone), 1, "one new login");
    // The new token is kept: the next call logs in no more.
    keystone.clear();
    assert_eq!(support::get_as(&detail, &member).await.0, 200);
    assert_eq!(logins(&keystone), 0);
}
