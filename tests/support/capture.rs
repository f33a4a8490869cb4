//! Captured answers of real Nova (`curl -i` output, e.g. `tests/fixtures/oracle`)
//! and the requests that produced them (`INDEX.tsv`: name, curl command), replayed
//! against the service and compared. Equal means: same status, same headers
//! (names case-insensitive; `Date`, `Connection`, `Server` and request-id values
//! ignored) and byte-equal bodies (timestamps masked).

pub const ORACLE_HOST: &str = "127.0.0.1:8774";

pub struct Request {
    pub name: String,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub url: String,
}

#[derive(Debug, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Read one `curl` command line of INDEX.tsv the way curl would send it.
pub fn parse_curl(name: &str, cmd: &str) -> Request {
    let args = shlex::split(cmd).unwrap_or_else(|| panic!("cannot parse the command of {name}"));
    let mut method = None;
    // curl's own headers, which a `-H` of the same name replaces; other `-H`
    // headers are sent as often as given.
    let mut headers: Vec<(String, String)> = vec![
        ("Accept".into(), "*/*".into()),
        ("User-Agent".into(), "curl/8.14.1".into()),
    ];
    let mut body = None;
    let mut url = None;
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "-sS" | "-i" | "-s" | "-S" | "--path-as-is" => {}
            "-I" => method = Some("HEAD".to_string()),
            "--noproxy" => {
                it.next();
            }
            "-X" => method = it.next().cloned(),
            "-H" => {
                let h = it.next().expect("header");
                let (k, v) = h.split_once(':').expect("header form");
                let replaces =
                    ["accept", "user-agent", "host", "content-type"].contains(&k.to_ascii_lowercase().as_str());
                if v.trim().is_empty() || replaces {
                    headers.retain(|(name, _)| !name.eq_ignore_ascii_case(k));
                }
                if !v.trim().is_empty() {
                    headers.push((k.to_string(), v.trim_start().to_string()));
                }
            }
            "--data-binary" => body = Some(it.next().expect("data").clone().into_bytes()),
            other if other.starts_with("http") => url = Some(other.to_string()),
            other => panic!("{name}: unexpected curl argument {other}"),
        }
    }
    let method = method.unwrap_or_else(|| if body.is_some() { "POST".into() } else { "GET".into() });
    Request {
        name: name.to_string(),
        method,
        headers,
        body,
        url: url.expect("url"),
    }
}

pub fn mask(s: &str) -> String {
    // Request ids and second-precision timestamps vary between runs.
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if s[i..].starts_with("req-") && s.len() >= i + 40 {
            out.push_str("req-<id>");
            i += 40;
            continue;
        }
        let is_ts = b.len() >= i + 20 && {
            let t = &b[i..i + 20];
            t[4] == b'-'
                && t[7] == b'-'
                && t[10] == b'T'
                && t[13] == b':'
                && t[16] == b':'
                && t[19] == b'Z'
                && [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
                    .iter()
                    .all(|&j| t[j].is_ascii_digit())
        };
        if is_ts {
            out.push_str("<timestamp>");
            i += 20;
            continue;
        }
        let ch = s[i..].chars().next().expect("char");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

pub fn normalize_headers(headers: Vec<(String, String)>, status: u16) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = headers
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .filter(|(k, _)| !matches!(k.as_str(), "date" | "connection" | "server"))
        // RFC 9110 forbids Content-Length on 204; Nova sends `Content-Length: 0`
        // there, this service does not (a listed deviation).
        .filter(|(k, _)| !(status == 204 && k == "content-length"))
        .map(|(k, v)| (k, mask(&v)))
        .collect();
    out.sort();
    out
}

pub fn parse_capture(raw: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("capture has a head");
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect();
    Answer {
        status,
        headers: normalize_headers(headers, status),
        body: mask(body),
    }
}

/// Send `req` over a plain socket, byte for byte as curl would (no client
/// library adding or normalising headers), and read the whole answer.
pub async fn send(base: &str, req: &Request) -> Answer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let url = req.url.replacen(&format!("http://{ORACLE_HOST}"), base, 1);
    let rest = url.strip_prefix("http://").expect("http url");
    let (addr, target) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut head = format!(
        "{} {} HTTP/1.1\r\n",
        req.method,
        if target.is_empty() { "/" } else { target }
    );
    if !req.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {ORACLE_HOST}\r\n"));
    }
    for (k, v) in &req.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(body) = &req.body {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", req.name));
    stream.write_all(head.as_bytes()).await.expect("write");
    if let Some(body) = &req.body {
        stream.write_all(body).await.expect("write body");
    }
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    parse_capture(&raw)
}
