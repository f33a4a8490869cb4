//! TLS on the service's own listeners (`server.tls_certfile`/`tls_keyfile`,
//! `server.image_tls_*`): the real binary with a certificate of a test CA
//! (rcgen), driven by a real client (openstacksdk with the CA bundle); the
//! certificate replaced on disk + SIGHUP → new handshakes get the new one,
//! while a keep-alive connection opened before is still answered.

mod support;

use rustls::pki_types::ServerName;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;
use support::tls::TestCa;

fn python() -> Option<String> {
    let python = std::env::var("NIP_GLANCE_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/.cache/nova-images-proxy/glance-venv/bin/python",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    if std::path::Path::new(&python).exists() {
        return Some(python);
    }
    if std::env::var("NIP_SKIP_GLANCE").as_deref() == Ok("1") {
        eprintln!("no python with openstacksdk at {python}: skipping");
        return None;
    }
    panic!("no python with openstacksdk at {python} (scripts/glance.sh install makes it)")
}

/// openstacksdk through the TLS listener; its one-line answer.
fn sdk_lists_images(python: &str, url: &str, cafile: &str) -> String {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/nova_tls_client.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .args([&format!("{url}/v2.1"), support::TOKEN, cafile])
        .env("NO_PROXY", "*")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string() + &String::from_utf8_lossy(&out.stderr)
}

/// A TLS connection to `port` that trusts `ca` and stays open.
struct KeepAlive {
    tls: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
}

impl KeepAlive {
    fn open(port: u16, cafile: &str) -> KeepAlive {
        let mut roots = rustls::RootCertStore::empty();
        for c in nova_images_proxy::tls::load_certs("test", cafile).unwrap() {
            roots.add(c).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(nova_images_proxy::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let conn =
            rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("127.0.0.1").unwrap().to_owned())
                .unwrap();
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        KeepAlive {
            tls: rustls::StreamOwned::new(conn, tcp),
        }
    }

    /// `GET path` on this connection: status and body.
    fn get(&mut self, path: &str) -> (u16, String) {
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Auth-Token: {}\r\n\r\n",
            support::TOKEN
        );
        self.tls.write_all(req.as_bytes()).unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = self.tls.read(&mut chunk).unwrap();
            assert!(n > 0, "connection closed");
            buf.extend_from_slice(&chunk[..n]);
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut resp = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(head) = resp.parse(&buf).unwrap() {
                let len: usize = resp
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .map(|h| std::str::from_utf8(h.value).unwrap().parse().unwrap())
                    .unwrap_or(0);
                if buf.len() >= head + len {
                    return (
                        resp.code.unwrap(),
                        String::from_utf8_lossy(&buf[head..head + len]).into_owned(),
                    );
                }
            }
        }
    }

    /// The leaf certificate the server presented on this connection.
    fn peer_certificate(&self) -> Vec<u8> {
        self.tls.conn.peer_certificates().unwrap()[0].as_ref().to_vec()
    }
}

fn der_of(pem_file: &std::path::Path) -> Vec<u8> {
    nova_images_proxy::tls::load_certs("test", &pem_file.to_string_lossy()).unwrap()[0]
        .as_ref()
        .to_vec()
}

#[test]
fn tls_listeners_serve_a_real_client_and_rotate_their_certificate_on_sighup() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "listener");
    let first = ca.issue("first", "nova-images-proxy");
    let (certfile, keyfile) = (dir.path().join("served.pem"), dir.path().join("served-key.pem"));
    std::fs::copy(&first.certfile, &certfile).unwrap();
    std::fs::copy(&first.keyfile, &keyfile).unwrap();
    let data = dir.path().join("data");
    let (cert_s, key_s, data_s) = (
        certfile.to_string_lossy().into_owned(),
        keyfile.to_string_lossy().into_owned(),
        data.to_string_lossy().into_owned(),
    );
    let p = support::process::spawn(
        &["--data-dir", &data_s],
        &[
            ("NOVA_IMAGES_PROXY__SERVER__TLS_CERTFILE", &cert_s),
            ("NOVA_IMAGES_PROXY__SERVER__TLS_KEYFILE", &key_s),
            ("NOVA_IMAGES_PROXY__SERVER__IMAGE_TLS_CERTFILE", &cert_s),
            ("NOVA_IMAGES_PROXY__SERVER__IMAGE_TLS_KEYFILE", &key_s),
        ],
        &dir.path().join("service.log"),
    );
    let https = p.compute.replace("http://", "https://");
    let port: u16 = p.compute.rsplit(':').next().unwrap().parse().unwrap();
    let image_port: u16 = p.image.rsplit(':').next().unwrap().parse().unwrap();
    assert!(p.wait_for_log("compute listener (Nova images API) ready", Duration::from_secs(10)));

    let answer = sdk_lists_images(&python, &https, &ca.cafile());
    // The demo images belong to project `demo`: the test token sees the two public ones.
    assert!(answer.starts_with("ok 2 images"), "{answer}");
    // Plain HTTP to a TLS listener gets no answer.
    let plain = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
            &format!("{}/", p.compute),
        ])
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&plain.stdout), "200");

    let mut open = KeepAlive::open(port, &ca.cafile());
    assert_eq!(open.get("/v2.1/images").0, 200);
    assert_eq!(open.peer_certificate(), der_of(&first.certfile));
    let mut image = KeepAlive::open(image_port, &ca.cafile());
    assert_eq!(image.get("/v1/images").0, 200);

    // Rotate: a new certificate of the same CA, written over the files.
    let second = ca.issue("second", "nova-images-proxy rotated");
    std::fs::copy(&second.certfile, &certfile).unwrap();
    std::fs::copy(&second.keyfile, &keyfile).unwrap();
    p.signal("HUP");
    assert!(
        p.wait_for_log("SIGHUP: TLS certificate re-read", Duration::from_secs(10)),
        "{}",
        p.log_text()
    );
    // The connection opened before still answers, on its session.
    let (status, body) = open.get("/v2.1/images/detail");
    assert_eq!(status, 200, "{body}");
    assert_eq!(open.peer_certificate(), der_of(&first.certfile));
    // New connections get the new certificate, on both listeners.
    let mut fresh = KeepAlive::open(port, &ca.cafile());
    assert_eq!(fresh.get("/v2.1/images").0, 200);
    assert_eq!(fresh.peer_certificate(), der_of(&second.certfile));
    let mut fresh_image = KeepAlive::open(image_port, &ca.cafile());
    assert_eq!(fresh_image.get("/v1/images").0, 200);
    assert_eq!(fresh_image.peer_certificate(), der_of(&second.certfile));
    let answer = sdk_lists_images(&python, &https, &ca.cafile());
    assert!(answer.starts_with("ok 2 images"), "{answer}");

    // A broken file on SIGHUP: refused, the served certificate kept.
    std::fs::write(&keyfile, "not a key\n").unwrap();
    p.signal("HUP");
    assert!(p.wait_for_log("SIGHUP: TLS certificate not re-read", Duration::from_secs(10)));
    let mut after = KeepAlive::open(port, &ca.cafile());
    assert_eq!(after.get("/v2.1/images").0, 200);
    assert_eq!(after.peer_certificate(), der_of(&second.certfile));
    // Another CA's client refuses the certificate.
    let other = TestCa::new(dir.path(), "other");
    let answer = sdk_lists_images(&python, &https, &other.cafile());
    assert!(answer.starts_with("FAIL"), "{answer}");
}
