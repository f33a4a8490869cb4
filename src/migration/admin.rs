//! `GET /usage` on the metrics listener: the usage table in JSON, or with
//! `Accept: text/html` the page of [`super::page`]. With `auth.strategy =
//! "keystone"` only a token with the `admin` role may read it (the table names
//! projects and users); with `noauth2` the listener's address is the guard.

use super::Migration;
use crate::auth::{AuthError, Authenticator};
use actix_web::{web, HttpRequest, HttpResponse};

pub const PATH: &str = "/usage";

/// What `/usage` needs.
#[derive(Clone)]
pub struct Admin {
    pub migration: Migration,
    pub auth: Authenticator,
    /// Keystone tokens: admin role required.
    pub keystone: bool,
}

fn refusal(status: u16, message: &str) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::FORBIDDEN);
    HttpResponse::build(status).json(serde_json::json!({"error": {"code": status.as_u16(), "message": message}}))
}

async fn allowed(admin: &Admin, req: &HttpRequest) -> Result<(), HttpResponse> {
    if !admin.keystone {
        return Ok(());
    }
    let token = req.headers().get("x-auth-token").and_then(|v| v.to_str().ok());
    let rid = crate::edge::request_id::mint();
    match admin.auth.authenticate(token, &rid).await {
        Ok(ctx) if ctx.roles.iter().any(|r| r == "admin") => Ok(()),
        Ok(_) => Err(refusal(403, "The usage table needs the admin role.")),
        Err(AuthError::Unauthenticated) => Err(refusal(401, "The request you have made requires authentication.")),
        Err(AuthError::Unavailable(_)) => Err(refusal(503, crate::edge::IDENTITY_UNAVAILABLE)),
    }
}

fn wants_html(req: &HttpRequest) -> bool {
    let accept = req.headers().get("accept").and_then(|v| v.to_str().ok()).unwrap_or("");
    crate::edge::accept::best_offer(accept, &["application/json", "text/html"]) == Some(1)
}

async fn usage(req: HttpRequest, admin: web::Data<Admin>) -> HttpResponse {
    if let Err(refused) = allowed(&admin, &req).await {
        return refused;
    }
    let Some(report) = admin.migration.report() else {
        return refusal(404, "Usage accounting is off (usage.enabled = false).");
    };
    if wants_html(&req) {
        let policy = admin.migration.policy();
        let page = super::page::render(&report, &policy, super::now_secs());
        return HttpResponse::Ok().content_type("text/html; charset=utf-8").body(page);
    }
    HttpResponse::Ok().json(report)
}

/// Register `/usage`.
pub fn configure(cfg: &mut web::ServiceConfig, admin: Admin) {
    cfg.app_data(web::Data::new(admin)).route(PATH, web::get().to(usage));
}
