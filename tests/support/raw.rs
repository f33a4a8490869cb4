//! A raw HTTP/1.1 exchange over a TCP socket, for requests no well-behaved
//! client would send (NUL or CR/LF in places, invalid UTF-8, broken framing,
//! slow bodies). The response is parsed with `httparse`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// `host:port` of a `http://host:port` base URL.
pub fn addr_of(base: &str) -> String {
    base.trim_start_matches("http://").trim_end_matches('/').to_string()
}

/// Send `parts` (with `pause` between them) on a new connection and read the
/// one response. `Err` when the server closed without a parsable answer.
pub fn exchange_in_parts(base: &str, parts: &[&[u8]], pause: Duration) -> Result<Response, String> {
    let mut s = TcpStream::connect(addr_of(base)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok();
    s.set_nodelay(true).ok();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(pause);
        }
        // The server may answer (and close) before it has read everything.
        if s.write_all(part).is_err() {
            break;
        }
    }
    let head_request = parts.first().is_some_and(|p| p.starts_with(b"HEAD "));
    read_response(&mut s, head_request)
}

/// Send `request` on a new connection and read the one response.
pub fn exchange(base: &str, request: &[u8]) -> Result<Response, String> {
    exchange_in_parts(base, &[request], Duration::ZERO)
}

/// Read one response from `s` (the body by `Content-Length`, chunked framing,
/// or to the end of the connection; none to a `HEAD`).
pub fn read_response(s: &mut TcpStream, head_request: bool) -> Result<Response, String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Response::new(&mut headers);
        match parsed.parse(&buf) {
            Ok(httparse::Status::Complete(head_len)) => {
                let status = parsed.code.ok_or("no status")?;
                let headers: Vec<(String, String)> = parsed
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                let mut resp = Response {
                    status,
                    headers,
                    body: buf[head_len..].to_vec(),
                };
                if !head_request {
                    read_body(s, &mut resp)?;
                }
                return Ok(resp);
            }
            Ok(httparse::Status::Partial) => {}
            Err(e) => {
                return Err(format!(
                    "unparsable response ({e}): {:?}",
                    String::from_utf8_lossy(&buf)
                ))
            }
        }
        let n = s.read(&mut chunk).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err(format!(
                "closed after {} bytes: {:?}",
                buf.len(),
                String::from_utf8_lossy(&buf)
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn read_body(s: &mut TcpStream, resp: &mut Response) -> Result<(), String> {
    let mut chunk = [0u8; 65536];
    let chunked = resp
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    if let Some(len) = resp
        .header("content-length")
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        while resp.body.len() < len {
            let n = s.read(&mut chunk).map_err(|e| format!("read body: {e}"))?;
            if n == 0 {
                return Err("closed inside the body".into());
            }
            resp.body.extend_from_slice(&chunk[..n]);
        }
        resp.body.truncate(len);
        return Ok(());
    }
    if chunked {
        let mut raw = std::mem::take(&mut resp.body);
        loop {
            if let Some(body) = dechunk(&raw)? {
                resp.body = body;
                return Ok(());
            }
            let n = s.read(&mut chunk).map_err(|e| format!("read chunks: {e}"))?;
            if n == 0 {
                return Err("closed inside a chunked body".into());
            }
            raw.extend_from_slice(&chunk[..n]);
        }
    }
    if matches!(resp.status, 204 | 304) || (100..200).contains(&resp.status) {
        return Ok(());
    }
    // No framing: the body runs to the end of the connection.
    loop {
        match s.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => resp.body.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("read to close: {e}")),
        }
    }
}

/// The body of a complete chunked encoding, or `None` when more is needed.
fn dechunk(raw: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut rest = raw;
    loop {
        match httparse::parse_chunk_size(rest) {
            Ok(httparse::Status::Complete((used, size))) => {
                let size = size as usize;
                if size == 0 {
                    return Ok(Some(out));
                }
                if rest.len() < used + size + 2 {
                    return Ok(None);
                }
                out.extend_from_slice(&rest[used..used + size]);
                rest = &rest[used + size + 2..];
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err("bad chunk size".into()),
        }
    }
}

/// A complete request: `method target`, headers, optional body (with its
/// `Content-Length`), `Connection: close`.
pub fn request(method: &str, target: &[u8], headers: &[(&str, &[u8])], body: Option<&[u8]>) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend_from_slice(method.as_bytes());
    r.push(b' ');
    r.extend_from_slice(target);
    r.extend_from_slice(b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (n, v) in headers {
        r.extend_from_slice(n.as_bytes());
        r.extend_from_slice(b": ");
        r.extend_from_slice(v);
        r.extend_from_slice(b"\r\n");
    }
    if let Some(b) = body {
        r.extend_from_slice(format!("Content-Length: {}\r\n\r\n", b.len()).as_bytes());
        r.extend_from_slice(b);
    } else {
        r.extend_from_slice(b"\r\n");
    }
    r
}
