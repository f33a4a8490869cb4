//! A small fault-injecting proxy (one request per connection) between the
//! service and a real Glance: it passes requests through, or answers 503/500,
//! cuts connections, hangs, or lets a PATCH reach Glance and then loses its
//! answer. Glance itself is never imitated: whatever is forwarded is answered
//! by the real one. With no fault set it is the suite's one forwarding proxy:
//! it records each request (method, target, headers) it passes on, so tests
//! count backend calls and see the tokens sent (in front of Keystone too).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What happens to the answer of a PATCH.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Lost {
    /// The connection is closed halfway through the answer's body (or before
    /// any answer when the PATCH was not forwarded).
    Cut,
    /// The answer is replaced by this status (as a proxy in front of Glance
    /// would answer it).
    Status(u16),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fault {
    /// Pass everything through.
    None,
    /// Answer 503 to the next `n` requests (counted down), then pass through.
    Unavailable,
    /// Close the connection without an answer for the next `n` requests.
    Reset,
    /// Answer 401 to the next `n` requests (counted down), as Glance's
    /// auth_token filter answers a token it refuses, then pass through.
    Unauthorized,
    /// Answer 500 to every request.
    ServerError,
    /// Accept every connection and read the request, never answer (until the
    /// fault is changed).
    Hang,
    /// PATCH requests reach Glance (`applied`) or not, and their answer is
    /// lost as `answer` says; `then_gone`: every later request is answered
    /// 503 until the fault is changed. Other requests pass through.
    Patch {
        applied: bool,
        answer: Lost,
        then_gone: bool,
    },
}

/// One request the proxy received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// The request target as sent: path and query.
    pub target: String,
    /// Header names in lower case, values as sent.
    pub headers: Vec<(String, String)>,
}

impl Seen {
    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

pub struct Proxy {
    pub url: String,
    fault: Arc<Mutex<(Fault, usize)>>,
    calls: Arc<Mutex<Vec<Seen>>>,
}

impl Proxy {
    /// Set the fault (and its count) and forget the calls seen so far.
    pub fn set(&self, fault: Fault, n: usize) {
        *self.fault.lock().unwrap() = (fault, n);
        self.calls.lock().unwrap().clear();
    }

    /// `METHOD target` of each request seen since the last `set`.
    pub fn calls(&self) -> Vec<String> {
        self.seen()
            .iter()
            .map(|s| format!("{} {}", s.method, s.target))
            .collect()
    }

    /// Each request seen since the last `set` (or `clear`).
    pub fn seen(&self) -> Vec<Seen> {
        self.calls.lock().unwrap().clone()
    }

    /// The number of requests seen since the last `set` (or `clear`).
    pub fn count(&self) -> usize {
        self.calls.lock().unwrap().len()
    }

    /// Forget the requests seen so far.
    pub fn clear(&self) {
        self.calls.lock().unwrap().clear();
    }
}

/// Start the proxy in front of `glance` (a `http://host:port` URL).
pub fn start(glance: &str) -> Proxy {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let fault = Arc::new(Mutex::new((Fault::None, 0)));
    let calls = Arc::new(Mutex::new(Vec::new()));
    let upstream = glance.trim_start_matches("http://").trim_end_matches('/').to_string();
    let (f, c) = (fault.clone(), calls.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (f, c, upstream) = (f.clone(), c.clone(), upstream.clone());
            std::thread::spawn(move || handle(stream, &upstream, &f, &c));
        }
    });
    Proxy { url, fault, calls }
}

/// One request (head + Content-Length body): the head and all the bytes.
fn read_request(client: &mut TcpStream) -> Option<(String, Vec<u8>, usize)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = match client.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
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
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Some((head, buf, head_end))
}

/// Forward the request to Glance with `Connection: close`; its whole answer.
fn forward(upstream: &str, head: &str, body: &[u8]) -> Option<Vec<u8>> {
    let mut up = TcpStream::connect(upstream).ok()?;
    let fixed = head
        .lines()
        .filter(|l| !l.is_empty() && !l.to_ascii_lowercase().starts_with("connection:"))
        .collect::<Vec<_>>()
        .join("\r\n");
    up.write_all(format!("{fixed}\r\nConnection: close\r\n\r\n").as_bytes())
        .ok()?;
    up.write_all(body).ok()?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer).ok()?;
    Some(answer)
}

fn status_answer(status: u16) -> Vec<u8> {
    let body = format!("{status} fault injected");
    format!(
        "HTTP/1.1 {status} Fault\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn handle(mut client: TcpStream, upstream: &str, fault: &Mutex<(Fault, usize)>, calls: &Mutex<Vec<Seen>>) {
    let Some((head, buf, head_end)) = read_request(&mut client) else {
        return;
    };
    let line = head.lines().next().unwrap_or("").to_string();
    let mut words = line.split(' ');
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    calls.lock().unwrap().push(Seen {
        method: words.next().unwrap_or("").to_string(),
        target: words.next().unwrap_or("").to_string(),
        headers,
    });
    let is_patch = line.starts_with("PATCH");
    let action = {
        let mut f = fault.lock().unwrap();
        match *f {
            (kind @ (Fault::ServerError | Fault::Hang), _) => kind,
            (kind @ Fault::Patch { then_gone, .. }, _) if is_patch => {
                if then_gone {
                    *f = (Fault::Unavailable, usize::MAX);
                }
                kind
            }
            (kind @ (Fault::Unavailable | Fault::Reset | Fault::Unauthorized), n) if n > 0 => {
                f.1 -= 1;
                kind
            }
            _ => Fault::None,
        }
    };
    let body = &buf[head_end..];
    match action {
        Fault::Reset => drop(client),
        Fault::Unavailable => {
            let _ = client.write_all(&status_answer(503));
        }
        Fault::ServerError => {
            let _ = client.write_all(&status_answer(500));
        }
        Fault::Unauthorized => {
            let _ = client.write_all(&status_answer(401));
        }
        Fault::Hang => {
            let since = Instant::now();
            while fault.lock().unwrap().0 == Fault::Hang && since.elapsed() < Duration::from_secs(60) {
                std::thread::sleep(Duration::from_millis(20));
            }
            drop(client);
        }
        Fault::Patch { applied, answer, .. } => {
            let got = if applied { forward(upstream, &head, body) } else { None };
            match (answer, got) {
                (Lost::Status(s), _) => {
                    let _ = client.write_all(&status_answer(s));
                }
                // Half of Glance's answer (its head promises the whole body).
                (Lost::Cut, Some(full)) => {
                    let head_end = full.windows(4).position(|w| w == b"\r\n\r\n").map_or(0, |p| p + 4);
                    let _ = client.write_all(&full[..head_end + (full.len() - head_end) / 2]);
                }
                (Lost::Cut, None) => drop(client),
            }
        }
        Fault::None => {
            if let Some(answer) = forward(upstream, &head, body) {
                let _ = client.write_all(&answer);
            }
        }
    }
}
