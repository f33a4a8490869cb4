//! The service in front of a misbehaving Glance: a small fault-injecting proxy
//! sits between the service and the real Glance. Reads are retried on 503 and
//! broken connections; writes are never retried; the service recovers as soon
//! as Glance does.

mod support;

use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    /// Pass everything through.
    None,
    /// Answer 503 to the next `n` requests (counted down), then pass through.
    Unavailable,
    /// Close the connection without an answer for the next `n` requests.
    Reset,
    /// Answer 500 to every request.
    ServerError,
    /// Answer 503 to every PATCH; pass the rest through.
    FailPatches,
}

struct Proxy {
    url: String,
    fault: Arc<Mutex<(Fault, usize)>>,
    calls: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    fn set(&self, fault: Fault, n: usize) {
        *self.fault.lock().unwrap() = (fault, n);
        self.calls.lock().unwrap().clear();
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

/// A raw TCP proxy (one request per connection) in front of `glance`.
fn start_proxy(glance: &str) -> Proxy {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let fault = Arc::new(Mutex::new((Fault::None, 0)));
    let calls = Arc::new(Mutex::new(Vec::new()));
    let upstream = glance.trim_start_matches("http://").to_string();
    let (f, c) = (fault.clone(), calls.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (f, c, upstream) = (f.clone(), c.clone(), upstream.clone());
            std::thread::spawn(move || handle(stream, &upstream, &f, &c));
        }
    });
    Proxy { url, fault, calls }
}

fn handle(mut client: std::net::TcpStream, upstream: &str, fault: &Mutex<(Fault, usize)>, calls: &Mutex<Vec<String>>) {
    use std::io::{Read, Write};
    // Read one request (head + Content-Length body).
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = match client.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        match client.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let line = head.lines().next().unwrap_or("").to_string();
    calls
        .lock()
        .unwrap()
        .push(line.split(' ').take(2).collect::<Vec<_>>().join(" "));
    let action = {
        let mut f = fault.lock().unwrap();
        match *f {
            (Fault::ServerError, _) => Fault::ServerError,
            (Fault::FailPatches, _) if line.starts_with("PATCH") => Fault::Unavailable,
            (kind @ (Fault::Unavailable | Fault::Reset), n) if n > 0 => {
                f.1 -= 1;
                kind
            }
            _ => Fault::None,
        }
    };
    match action {
        Fault::Reset => drop(client),
        Fault::Unavailable => {
            let _ = client.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nConnection: close\r\n\r\nunavailable");
        }
        Fault::ServerError => {
            let _ = client.write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: 4\r\nConnection: close\r\n\r\nboom");
        }
        Fault::None | Fault::FailPatches => {
            // Forward with Connection: close and relay the answer until EOF.
            let mut up = match std::net::TcpStream::connect(upstream) {
                Ok(s) => s,
                Err(_) => return,
            };
            let mut req = head.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n").into_bytes();
            let fixed = String::from_utf8_lossy(&req)
                .lines()
                .filter(|l| !l.to_ascii_lowercase().starts_with("connection: keep-alive"))
                .collect::<Vec<_>>()
                .join("\r\n");
            req = format!("{fixed}\r\n\r\n").into_bytes();
            let _ = up.write_all(&req);
            let _ = up.write_all(&buf[head_end..]);
            let mut answer = Vec::new();
            let _ = up.read_to_end(&mut answer);
            let _ = client.write_all(&answer);
        }
    }
}

async fn get(client: &reqwest::Client, base: &str, path: &str) -> (u16, Value) {
    let r = client
        .get(format!("{base}{path}"))
        .header("X-Auth-Token", support::TOKEN)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (
        s,
        serde_json::from_slice(&r.bytes().await.unwrap()).unwrap_or(Value::Null),
    )
}

#[actix_web::test]
async fn reads_retry_writes_do_not_and_the_service_recovers() {
    let Some(glance) = support::glance_url("NIP_TEST_GLANCE_URL") else {
        return;
    };
    let client = support::client();
    let id = uuid::Uuid::new_v4().to_string();
    let body = json!({"id": id, "name": "fault-test", "disk_format": "raw", "container_format": "bare", "k": "v"});
    let r = client
        .post(format!("{glance}/v2/images"))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);

    let proxy = start_proxy(&glance);
    let service = support::start(support::settings(&[
        ("glance.url", proxy.url.as_str()),
        ("glance.num_retries", "3"),
    ]));
    let base = service.base.clone();
    let show = format!("/v2.1/images/{id}");
    // Warm-up (the image schema is read once).
    assert_eq!(get(&client, &base, &show).await.0, 200);

    // Two 503s, then Glance answers: the read succeeds after retries.
    proxy.set(Fault::Unavailable, 2);
    assert_eq!(get(&client, &base, &show).await.0, 200);
    assert_eq!(proxy.calls().len(), 3, "{:?}", proxy.calls());

    // Connections cut without an answer: retried too.
    proxy.set(Fault::Reset, 2);
    assert_eq!(get(&client, &base, &show).await.0, 200);
    assert_eq!(proxy.calls().len(), 3, "{:?}", proxy.calls());

    // Glance unavailable longer than the retries: a JSON 503, 1 + 3 attempts.
    proxy.set(Fault::Unavailable, 100);
    let (s, v) = get(&client, &base, &show).await;
    assert_eq!((s, v["serviceUnavailable"]["code"].clone()), (503, json!(503)));
    assert_eq!(proxy.calls().len(), 4);

    // A write is never retried, not even on 503: exactly one PATCH goes out.
    proxy.set(Fault::FailPatches, 0);
    let r = client
        .post(format!("{base}/v2.1/images/{id}/metadata"))
        .header("X-Auth-Token", support::TOKEN)
        .header("Content-Type", "application/json")
        .body(r#"{"metadata": {"n": "1"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    let calls = proxy.calls();
    assert_eq!(calls.iter().filter(|c| c.starts_with("PATCH")).count(), 1, "{calls:?}");

    // Glance failing with 500: Nova's fault, promptly.
    proxy.set(Fault::ServerError, 0);
    let (s, v) = get(&client, &base, &show).await;
    assert_eq!(s, 500);
    assert!(v["computeFault"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Unexpected API Error."));

    // Glance is back: the service answers without a restart.
    proxy.set(Fault::None, 0);
    let (s, v) = get(&client, &base, &format!("/v2.1/images/{id}/metadata")).await;
    assert_eq!(s, 200);
    assert_eq!(v["metadata"]["k"], "v");
}
