//! Authentication for the `noauth2` strategy: `X-Auth-Token: <user>:<project>`
//! (Nova's historic development form). Identity comes from the token only;
//! identity headers a client sends (`X-Project-Id`, `X-Roles`, …) are ignored.

use crate::backend::RequestContext;

/// The identity a token stands for, or `None` when no token was sent.
pub fn noauth2_context(token: Option<&str>, request_id: &str) -> Option<RequestContext> {
    let token = token?.trim();
    if token.is_empty() {
        return None;
    }
    let (user, project) = match token.split_once(':') {
        Some((u, p)) => (u.to_string(), p.to_string()),
        None => (token.to_string(), token.to_string()),
    };
    let roles = if user == "admin" {
        vec!["admin".to_string(), "member".to_string(), "reader".to_string()]
    } else {
        vec!["member".to_string(), "reader".to_string()]
    };
    Some(RequestContext {
        token: token.to_string(),
        user_id: user,
        project_id: project,
        roles,
        request_id: request_id.to_string(),
    })
}

/// keystonemiddleware's answer to a request without a valid token.
pub fn unauthorized_body() -> &'static [u8] {
    br#"{"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}"#
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_user_and_project() {
        let c = noauth2_context(Some("demo:6f70"), "req-1").unwrap();
        assert_eq!((c.user_id.as_str(), c.project_id.as_str()), ("demo", "6f70"));
        assert!(!c.is_admin());
        let c = noauth2_context(Some("admin"), "req-1").unwrap();
        assert_eq!(c.project_id, "admin");
        assert!(c.is_admin());
        assert!(noauth2_context(Some("  "), "r").is_none());
        assert!(noauth2_context(None, "r").is_none());
    }
}
