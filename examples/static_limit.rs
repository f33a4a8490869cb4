//! The static-response limit for `scripts/bench`: a bare actix-web server that
//! answers each of a few fixed requests with a body and headers captured from
//! the service, with the same worker count. What the service reaches against
//! it is the share of the machine its own work leaves.
//!
//!   static_limit --bind ADDR --workers N --responses FILE
//!
//! FILE is JSON: `[{"path": "/v2.1/images/ID", "status": 200, "headers":
//! [["content-type", "application/json"], ...], "body": "..."}, ...]`, `path`
//! with its query string as requested. Any other path answers 404.

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;

struct Canned {
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
}

type Table = Arc<HashMap<String, Canned>>;

fn load(path: &str) -> Result<HashMap<String, Canned>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let items: Vec<serde_json::Value> = serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
    let mut out = HashMap::new();
    for item in items {
        let key = item["path"].as_str().ok_or("an entry without a path")?.to_string();
        let status = StatusCode::from_u16(item["status"].as_u64().unwrap_or(200) as u16).map_err(|e| e.to_string())?;
        let mut headers = Vec::new();
        for h in item["headers"].as_array().map(Vec::as_slice).unwrap_or_default() {
            let (Some(n), Some(v)) = (h[0].as_str(), h[1].as_str()) else {
                return Err(format!("{key}: a header is not [name, value]"));
            };
            headers.push((
                HeaderName::from_bytes(n.as_bytes()).map_err(|e| e.to_string())?,
                HeaderValue::from_str(v).map_err(|e| e.to_string())?,
            ));
        }
        let body = Bytes::from(item["body"].as_str().unwrap_or_default().to_string());
        out.insert(key, Canned { status, headers, body });
    }
    Ok(out)
}

async fn answer(req: HttpRequest, table: web::Data<Table>) -> HttpResponse {
    let key = match req.query_string() {
        "" => req.path().to_string(),
        q => format!("{}?{q}", req.path()),
    };
    match table.get(&key) {
        Some(c) => {
            let mut b = HttpResponse::build(c.status);
            for (n, v) in &c.headers {
                b.insert_header((n.clone(), v.clone()));
            }
            b.body(c.body.clone())
        }
        None => HttpResponse::NotFound().finish(),
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(bind), Some(file)) = (arg(&args, "--bind"), arg(&args, "--responses")) else {
        eprintln!("usage: static_limit --bind ADDR --workers N --responses FILE");
        std::process::exit(2);
    };
    let workers: usize = arg(&args, "--workers").and_then(|w| w.parse().ok()).unwrap_or(2);
    let table: Table = Arc::new(load(&file).map_err(std::io::Error::other)?);
    let data = web::Data::new(table);
    HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(answer)))
        .workers(workers)
        .backlog(1024)
        .bind(bind)?
        .run()
        .await
}
