//! The real binary refuses a configuration it cannot honour before anything
//! happens: exit status 2 (1 for a port that cannot be had), one line on
//! stderr naming the option and quoting the value as written, and nothing
//! created on disk (it runs in an empty directory, where the embedded store
//! would create `./data`).

mod support;

use support::process::{assert_refused, refused as run};

#[test]
fn a_bad_address_is_refused_before_the_store_is_created() {
    assert_refused(
        &run(&["--bind", "nonsense"], &[], None),
        2,
        &["server.bind = \"nonsense\"", "HOST:PORT"],
    );
    assert_refused(
        &run(&["--image-bind", "127.0.0.1:99999"], &[], None),
        2,
        &["server.image_bind = \"127.0.0.1:99999\""],
    );
}

#[test]
fn a_port_that_cannot_be_had_creates_nothing() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let r = run(&["--bind", &addr, "--image-bind", "127.0.0.1:0"], &[], None);
    assert_refused(&r, 1, &[&format!("cannot listen on {addr}")]);
}

#[test]
fn urls_must_be_http_or_https() {
    assert_refused(
        &run(&["--glance-url", "ftp://x"], &[], None),
        2,
        &["glance.url = \"ftp://x\"", "scheme \"ftp\""],
    );
    assert_refused(
        &run(&["--glance-url", "127.0.0.1:9292"], &[], None),
        2,
        &["glance.url = \"127.0.0.1:9292\""],
    );
    assert_refused(
        &run(
            &[],
            &[("NOVA_IMAGES_PROXY__AUTH__KEYSTONE_URL", "gopher://ks/v3")],
            None,
        ),
        2,
        &["auth.keystone_url = \"gopher://ks/v3\""],
    );
    assert_refused(
        &run(&[], &[], Some("[api]\ncompute_link_prefix = \"nova.example\"\n")),
        2,
        &["api.compute_link_prefix = \"nova.example\""],
    );
}

#[test]
fn values_are_quoted_as_written() {
    // From the environment, a value stays the string it was: "3.0", not 3.
    assert_refused(
        &run(&[], &[("NOVA_IMAGES_PROXY__API__MAX_MICROVERSION", "3.0")], None),
        2,
        &["api.max_microversion = \"3.0\"", "between 2.1 and 2.104"],
    );
    assert_refused(
        &run(&["--max-microversion", "2.x"], &[], None),
        2,
        &["api.max_microversion = \"2.x\"", "X.Y"],
    );
    // An unquoted TOML number has already lost its digits (2.10 is 2.1): refused, saying so.
    assert_refused(
        &run(&[], &[], Some("[api]\nmax_microversion = 2.10\n")),
        2,
        &["api.max_microversion", "quote it"],
    );
    assert_refused(
        &run(&[], &[("NOVA_IMAGES_PROXY__SERVER__WORKERS", "many")], None),
        2,
        &["\"many\"", "server.workers"],
    );
    assert_refused(
        &run(&[], &[("NOVA_IMAGES_PROXY__AUTH__STRATEGY", "noauth")], None),
        2,
        &["auth.strategy = \"noauth\""],
    );
    assert_refused(
        &run(&["--log-level", "info,=="], &[], None),
        2,
        &["log.level = \"info,==\""],
    );
}

#[test]
fn keystone_without_a_glance_is_not_a_silent_demo() {
    assert_refused(
        &run(&[], &[("NOVA_IMAGES_PROXY__AUTH__STRATEGY", "keystone")], None),
        2,
        &["glance.url = \"\"", "auth.strategy = \"keystone\"", "embedded.enabled"],
    );
    assert_refused(
        &run(
            &["--glance-url", "http://127.0.0.1:9"],
            &[("NOVA_IMAGES_PROXY__EMBEDDED__ENABLED", "true")],
            None,
        ),
        2,
        &["glance.url = \"http://127.0.0.1:9\"", "embedded.enabled"],
    );
}

#[test]
fn noauth2_stays_on_loopback_unless_told() {
    for addr in ["0.0.0.0:8774", "[::]:8774"] {
        assert_refused(
            &run(&["--bind", addr], &[], None),
            2,
            &[&format!("server.bind = \"{addr}\""), "auth.allow_noauth_on_network"],
        );
    }
    assert_refused(
        &run(&["--image-bind", "0.0.0.0:9292"], &[], None),
        2,
        &["server.image_bind = \"0.0.0.0:9292\"", "noauth2"],
    );
    // The opt-in is accepted by the validation (not started here: it would
    // listen on every interface).
    let s = nova_images_proxy::config::Settings::load_with_env(
        &nova_images_proxy::config::Overrides {
            config_file: None,
            pairs: vec![
                ("server.bind".into(), "0.0.0.0:8774".into()),
                ("auth.allow_noauth_on_network".into(), "true".into()),
            ],
        },
        false,
    );
    assert!(s.is_ok(), "{s:?}");
}

#[test]
fn tls_files_are_read_and_checked_first() {
    assert_refused(
        &run(
            &[],
            &[("NOVA_IMAGES_PROXY__GLANCE__CAFILE", "/nonexistent/ca.pem")],
            None,
        ),
        2,
        &["glance.cafile = \"/nonexistent/ca.pem\"", "cannot read it"],
    );
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let empty = empty.to_string_lossy().into_owned();
    assert_refused(
        &run(&[], &[("NOVA_IMAGES_PROXY__AUTH__CAFILE", &empty)], None),
        2,
        &[&format!("auth.cafile = {empty:?}"), "no PEM certificate"],
    );
    assert_refused(
        &run(&[], &[("NOVA_IMAGES_PROXY__GLANCE__CERTFILE", &empty)], None),
        2,
        &["glance.certfile", "glance.keyfile is empty"],
    );
}

#[test]
fn a_sunset_before_the_deprecation_is_refused() {
    assert_refused(
        &run(
            &[],
            &[],
            Some("[deprecation]\nsince = \"2027-01-01T00:00:00Z\"\nsunset = \"2026-06-30T00:00:00Z\"\n"),
        ),
        2,
        &[
            "deprecation.sunset = \"2026-06-30T00:00:00Z\"",
            "earlier than deprecation.since = \"2027-01-01T00:00:00Z\"",
        ],
    );
    assert_refused(
        &run(&[], &[("NOVA_IMAGES_PROXY__DEPRECATION__SINCE", "next week")], None),
        2,
        &["deprecation.since = \"next week\"", "RFC 3339"],
    );
    assert_refused(
        &run(
            &[],
            &[],
            Some("[[deprecation.brownout]]\nstart = \"2027-01-02T10:00:00Z\"\nend = \"2027-01-02T09:00:00Z\"\n"),
        ),
        2,
        &[
            "deprecation.brownout[0].end = \"2027-01-02T09:00:00Z\"",
            "not later than its start",
        ],
    );
}
