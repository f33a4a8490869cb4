//! The whole configuration checked before anything happens (no directory
//! created, no port bound, no backend called): addresses, URLs and their
//! schemes, files named by options, numbers and their ranges, and the choices
//! that are unsafe or ambiguous (`noauth2` on a network address, Keystone with
//! no Glance). Each refusal is one line naming the option and quoting what the
//! operator wrote: `option = "value": reason`.

use super::{ConfigError, Settings};
use crate::nova::microversion::{Version, MIN, NOVA_MAX};
use std::net::ToSocketAddrs;

/// Endpoint interfaces of a Keystone catalog.
pub const INTERFACES: &[&str] = &["internal", "public", "admin"];

/// URL schemes accepted for Glance and Keystone.
pub const URL_SCHEMES: &[&str] = &["http", "https"];

/// One refusal: `name = "value": reason`.
pub fn refuse(name: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid(format!("{name} = {value:?}: {reason}"))
}

/// The refusal for a number outside its range.
fn refuse_number(name: &str, value: impl std::fmt::Display, reason: &str) -> ConfigError {
    ConfigError::Invalid(format!("{name} = {value}: {reason}"))
}

pub fn settings(s: &Settings) -> Result<(), ConfigError> {
    server(s)?;
    api(s)?;
    auth(s)?;
    glance(s)?;
    backend_choice(s)?;
    super::deprecation::validate_usage(&s.usage)?;
    super::deprecation::validate(&s.deprecation)?;
    if tracing_subscriber::EnvFilter::try_new(&s.log.level).is_err() {
        return Err(refuse(
            "log.level",
            &s.log.level,
            "not a log filter (e.g. \"info\", \"nova_images_proxy=debug\")",
        ));
    }
    if !matches!(s.log.format.as_str(), "text" | "json") {
        return Err(refuse(
            "log.format",
            &s.log.format,
            "not a log format (\"text\" or \"json\")",
        ));
    }
    Ok(())
}

/// `addr` as the socket addresses it names (no DNS lookup for a literal
/// address; a host name is resolved, which creates nothing).
pub fn socket_addrs(name: &str, addr: &str) -> Result<Vec<std::net::SocketAddr>, ConfigError> {
    let shape = "not an address to listen on (HOST:PORT, e.g. \"127.0.0.1:8774\" or \"[::1]:8774\")";
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err(refuse(name, addr, shape));
    };
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(refuse(name, addr, shape));
    }
    match addr.to_socket_addrs() {
        Ok(found) => {
            let found: Vec<_> = found.collect();
            if found.is_empty() {
                Err(refuse(name, addr, "the host name resolves to no address"))
            } else {
                Ok(found)
            }
        }
        Err(e) => Err(refuse(name, addr, &format!("{shape}: {e}"))),
    }
}

fn seconds(name: &str, v: f64, zero_ok: bool) -> Result<(), ConfigError> {
    if v.is_finite() && v < 1e6 && (v > 0.0 || (zero_ok && v == 0.0)) {
        Ok(())
    } else {
        Err(refuse_number(
            name,
            v,
            "not a positive number of seconds (below 1000000)",
        ))
    }
}

fn server(s: &Settings) -> Result<(), ConfigError> {
    let srv = &s.server;
    socket_addrs("server.bind", &srv.bind)?;
    if !srv.metrics_bind.is_empty() {
        socket_addrs("server.metrics_bind", &srv.metrics_bind)?;
    }
    if !srv.image_bind.is_empty() {
        socket_addrs("server.image_bind", &srv.image_bind)?;
    }
    for image in [false, true] {
        if let Some(files) = srv.tls_files(image) {
            files.load().map_err(ConfigError::Invalid)?;
        }
    }
    seconds("server.header_timeout_secs", srv.header_timeout_secs, false)?;
    seconds("server.body_timeout_secs", srv.body_timeout_secs, false)?;
    seconds("server.keep_alive_secs", srv.keep_alive_secs, true)?;
    if srv.max_connections == 0 {
        return Err(refuse_number("server.max_connections", 0, "must be at least 1"));
    }
    if !(1024..=crate::server::HEAD_CEILING).contains(&srv.max_header_bytes) {
        return Err(refuse_number(
            "server.max_header_bytes",
            srv.max_header_bytes,
            "must be between 1024 and 131072",
        ));
    }
    Ok(())
}

fn api(s: &Settings) -> Result<(), ConfigError> {
    let written = &s.api.max_microversion;
    let v = Version::parse(written).ok_or_else(|| {
        refuse(
            "api.max_microversion",
            written,
            "not a microversion (X.Y, e.g. \"2.38\")",
        )
    })?;
    if v < MIN || v > NOVA_MAX {
        return Err(refuse(
            "api.max_microversion",
            written,
            &format!("must be between {MIN} and {NOVA_MAX}"),
        ));
    }
    if s.api.max_limit == 0 {
        return Err(refuse_number("api.max_limit", 0, "must be at least 1"));
    }
    for (name, value) in [
        ("api.compute_link_prefix", &s.api.compute_link_prefix),
        ("api.glance_link_prefix", &s.api.glance_link_prefix),
    ] {
        if !value.is_empty() {
            web_url(name, value, &["http", "https"])?;
        }
    }
    Ok(())
}

/// `value` as a URL with a host and one of `schemes`.
pub fn web_url(name: &str, value: &str, schemes: &[&str]) -> Result<url::Url, ConfigError> {
    let wanted = schemes
        .iter()
        .map(|s| format!("{s}://"))
        .collect::<Vec<_>>()
        .join(" or ");
    match url::Url::parse(value.trim()) {
        Ok(u) if !schemes.contains(&u.scheme()) => Err(refuse(
            name,
            value,
            &format!("the scheme {:?} is not supported (use {wanted})", u.scheme()),
        )),
        Ok(u) if u.host_str().is_none_or(str::is_empty) => Err(refuse(name, value, "the URL has no host")),
        Ok(u) => Ok(u),
        Err(e) => Err(refuse(
            name,
            value,
            &format!("not a URL ({e}; expected {wanted}HOST[:PORT][/PATH])"),
        )),
    }
}

fn auth(s: &Settings) -> Result<(), ConfigError> {
    let a = &s.auth;
    if !matches!(a.strategy.as_str(), "noauth2" | "keystone") {
        return Err(refuse(
            "auth.strategy",
            &a.strategy,
            "not supported (supported: noauth2, keystone)",
        ));
    }
    web_url("auth.keystone_url", &a.keystone_url, URL_SCHEMES)?;
    if !a.www_authenticate_uri.trim().is_empty() {
        web_url("auth.www_authenticate_uri", &a.www_authenticate_uri, &["http", "https"])?;
    }
    if a.cache_entries == 0 {
        return Err(refuse_number("auth.cache_entries", 0, "must be at least 1"));
    }
    seconds("auth.timeout_secs", a.timeout_secs, false)?;
    tls_files(&a.tls())?;
    let set = [
        ("auth.service_user", a.service_user.as_str()),
        ("auth.service_password", a.service_password.expose()),
        ("auth.service_project", a.service_project.as_str()),
    ];
    if set.iter().any(|(_, v)| !v.is_empty()) {
        if let Some((missing, _)) = set.iter().find(|(_, v)| v.is_empty()) {
            return Err(refuse(
                missing,
                "",
                "auth.service_user, auth.service_password and auth.service_project go together",
            ));
        }
    }
    if a.interface.trim().is_empty() || !INTERFACES.contains(&a.interface.trim()) {
        return Err(refuse(
            "auth.interface",
            &a.interface,
            "not an endpoint interface (\"internal\", \"public\" or \"admin\")",
        ));
    }
    if a.send_service_user_token && (a.strategy != "keystone" || !a.has_service_credentials()) {
        return Err(refuse(
            "auth.send_service_user_token",
            "true",
            "needs auth.strategy = \"keystone\" and the service credentials (auth.service_user, \
             auth.service_password, auth.service_project) whose token is sent",
        ));
    }
    if a.strategy == "noauth2" && !a.allow_noauth_on_network {
        for name in ["server.bind", "server.image_bind"] {
            let addr = if name == "server.bind" {
                &s.server.bind
            } else {
                &s.server.image_bind
            };
            if addr.is_empty() {
                continue;
            }
            if socket_addrs(name, addr)?.iter().any(|a| !a.ip().is_loopback()) {
                return Err(refuse(
                    name,
                    addr,
                    "auth.strategy = \"noauth2\" (anyone may claim any project) is only served on loopback; \
                     set auth.strategy = \"keystone\", or auth.allow_noauth_on_network = true to accept it",
                ));
            }
        }
    }
    Ok(())
}

fn glance(s: &Settings) -> Result<(), ConfigError> {
    let g = &s.glance;
    // One URL, or several separated by commas (Nova's `api_servers` list).
    for url in g.url.split(',').filter(|u| !u.trim().is_empty()) {
        web_url("glance.url", url.trim(), URL_SCHEMES)?;
    }
    tls_files(&g.tls())?;
    seconds("glance.timeout_secs", g.timeout_secs, false)?;
    seconds("glance.connect_timeout_secs", g.connect_timeout_secs, false)?;
    let interfaces: Vec<&str> = g.valid_interfaces.split(',').map(str::trim).collect();
    if interfaces.iter().any(|i| !INTERFACES.contains(i)) {
        return Err(refuse(
            "glance.valid_interfaces",
            &g.valid_interfaces,
            "not a list of endpoint interfaces (comma-separated \"internal\", \"public\", \"admin\")",
        ));
    }
    if g.num_retries > 100 {
        return Err(refuse_number("glance.num_retries", g.num_retries, "at most 100"));
    }
    Ok(())
}

/// The backend is chosen explicitly or unambiguously: the embedded store
/// when nothing names another (development: `noauth2`, no Glance), or when
/// `embedded.enabled` says so; never silently under Keystone.
fn backend_choice(s: &Settings) -> Result<(), ConfigError> {
    let has_glance = !s.glance.url.trim().is_empty();
    if has_glance && s.embedded.enabled {
        return Err(refuse(
            "glance.url",
            &s.glance.url,
            "embedded.enabled = true as well: choose one backend (empty glance.url, or embedded.enabled = false)",
        ));
    }
    if s.glance_from_catalog() && !s.auth.has_service_credentials() {
        return Err(refuse(
            "glance.url",
            &s.glance.url,
            "auth.strategy = \"keystone\" needs an image backend: set glance.url to the Glance to front, \
             the service credentials (auth.service_user, auth.service_password, auth.service_project) to find \
             it in the Keystone catalog, or embedded.enabled = true for the embedded store",
        ));
    }
    if s.embedded() {
        let dir = std::path::Path::new(&s.embedded.data_dir);
        if s.embedded.data_dir.trim().is_empty() {
            return Err(refuse("embedded.data_dir", &s.embedded.data_dir, "empty"));
        }
        if dir.exists() && !dir.is_dir() {
            return Err(refuse(
                "embedded.data_dir",
                &s.embedded.data_dir,
                "exists and is not a directory",
            ));
        }
    }
    Ok(())
}

/// The CA bundle and client certificate named, read and checked now (the
/// same reading the clients do when they are built).
fn tls_files(o: &crate::tls::ClientOptions) -> Result<(), ConfigError> {
    if o.names_files() {
        crate::tls::client_config(o).map_err(ConfigError::Invalid)?;
    }
    Ok(())
}
