//! The sections of the configuration file, as they are deserialised. Every
//! option's default is in `defaults.toml`; `etc/nova-images-proxy.toml`
//! documents them.

use serde::{Deserialize, Deserializer};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub glance: GlanceSection,
    pub api: ApiSettings,
    pub auth: AuthSettings,
    pub embedded: EmbeddedSettings,
    pub log: LogSettings,
    pub oslo_middleware: OsloMiddlewareSettings,
    pub usage: super::deprecation::UsageSettings,
    pub deprecation: super::deprecation::DeprecationSettings,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Compute listener (Nova's API).
    pub bind: String,
    /// Image listener (`--image-bind`): Glance v1's image reads over the
    /// configured backend (`HEAD`/`GET /v1/images/{id}`, `GET /v1/images`,
    /// `GET /v1/images/detail`, same `noauth2` tokens as the compute listener)
    /// and, in embedded mode, the Glance v2 API of the embedded store.
    /// Empty: `127.0.0.1:9292` in embedded mode, no image listener (so no
    /// Glance v1) in proxy mode.
    pub image_bind: String,
    /// Prometheus metrics listener (`GET /metrics`). Empty: no metrics.
    pub metrics_bind: String,
    /// HTTP worker threads; 0 = one per core.
    pub workers: usize,
    /// Largest request body accepted (oslo.middleware `max_request_body_size`).
    pub max_request_body: usize,
    /// `GET /healthcheck` also checks that the image backend answers (503 if not).
    pub healthcheck_backend: bool,
    /// While this file exists, `/healthcheck` answers `503 DISABLED BY FILE`
    /// (oslo.middleware's `disable_by_file_path`): a node leaves its load
    /// balancer's rotation before maintenance. Empty: no such check.
    pub healthcheck_disable_by_file_path: String,
    /// Most open client connections per listener; more wait in the listen
    /// backlog until one closes.
    pub max_connections: usize,
    /// Seconds a client has to send a request's line and headers (408 after).
    pub header_timeout_secs: f64,
    /// Seconds a client has to send a request body (Nova API, Glance v2 JSON
    /// bodies), and the longest pause between two chunks of an image upload;
    /// Nova-style 408 fault after.
    pub body_timeout_secs: f64,
    /// Seconds an idle keep-alive connection stays open; 0 = no keep-alive.
    pub keep_alive_secs: f64,
    /// Largest request head (request line and headers), in bytes; larger heads
    /// get 431. At most 131072 (the HTTP layer's own ceiling).
    pub max_header_bytes: usize,
    /// On SIGTERM or SIGINT: seconds in-flight requests are given to finish.
    pub shutdown_timeout_secs: u64,
    /// TLS on the compute listener: certificate chain and key (PEM). Empty:
    /// plain HTTP. SIGHUP re-reads the files.
    pub tls_certfile: String,
    pub tls_keyfile: String,
    /// TLS on the image listener, the same way.
    pub image_tls_certfile: String,
    pub image_tls_keyfile: String,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlanceSection {
    /// Glance endpoint (e.g. `http://127.0.0.1:9292`). Empty: no Glance.
    pub url: String,
    pub timeout_secs: f64,
    pub connect_timeout_secs: f64,
    pub num_retries: u32,
    /// TLS to Glance (`https://` URLs), as Nova's `[glance]` names it: a CA
    /// bundle (empty: the system's roots), a client certificate and key, or
    /// no certificate check at all (`insecure`).
    pub cafile: String,
    pub certfile: String,
    pub keyfile: String,
    pub insecure: bool,
    /// Glance from the Keystone catalog (with `auth.strategy = "keystone"`
    /// and no `url`), as Nova's `[glance] valid_interfaces` and
    /// `region_name`: the `image` endpoint of the first of these interfaces
    /// (comma-separated) that has one, in this region (empty: any).
    pub valid_interfaces: String,
    pub region_name: String,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    /// Nova's `[api] compute_link_prefix`: replaces scheme and host of self and
    /// bookmark links. Empty: the request's own.
    pub compute_link_prefix: String,
    /// Nova's `[api] glance_link_prefix`, for `alternate` links. Empty: the Glance URL.
    pub glance_link_prefix: String,
    /// Highest microversion served (`latest`); e.g. 2.38 to mimic an older Nova.
    /// A string: a TOML number (`2.10`) would lose what was written.
    #[serde(deserialize_with = "string_as_written")]
    pub max_microversion: String,
    /// Nova's `[api] max_limit`.
    pub max_limit: u64,
    /// Nova's `[quota] metadata_items`; -1 = unlimited.
    pub metadata_items: i64,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// `noauth2`: `X-Auth-Token: <user>:<project>` tokens. `keystone`: tokens
    /// validated by Keystone, as keystonemiddleware's `auth_token` does.
    pub strategy: String,
    /// Named in `WWW-Authenticate: Keystone uri="…"` on 401s. Empty (the
    /// default): `keystone_url` without its `/v3`; filled in when loading.
    pub www_authenticate_uri: String,
    /// Keystone's identity API, `http://` or `https://` (`…/v3`; a URL without `/v3` gets it appended).
    pub keystone_url: String,
    /// Seconds a token validation is cached (keystonemiddleware's
    /// `token_cache_time`); never beyond the token's expiry; 0 = no cache.
    pub cache_secs: u64,
    /// Most token validations kept in the cache.
    pub cache_entries: usize,
    /// Seconds one call to Keystone may take before the request gets a 503.
    pub timeout_secs: f64,
    /// Service credentials (password auth, project-scoped): when `service_user`
    /// is set, user tokens are validated with the service's own token;
    /// otherwise each user token validates itself.
    pub service_user: String,
    pub service_password: Secret,
    pub service_project: String,
    /// Domain name of the service user and project, unless one of the four
    /// below names it (keystoneauth's `default_domain_name`).
    pub service_domain: String,
    /// The service user's domain and its project's domain, by id or by name,
    /// as keystonemiddleware's `[keystone_authtoken]` names them (an id wins
    /// over a name, as in keystoneauth).
    pub user_domain_id: String,
    pub user_domain_name: String,
    pub project_domain_id: String,
    pub project_domain_name: String,
    /// The identity endpoint token validations go to: this interface
    /// (`internal`, `public`, `admin`) in this region (empty: any) of the
    /// service user's catalog; `keystone_url` when the catalog has none.
    pub interface: String,
    pub region_name: String,
    /// Nova's `[service_user] send_service_user_token`: the service's own
    /// token goes to Glance as `X-Service-Token` beside the user's.
    pub send_service_user_token: bool,
    /// An `X-Service-Token` a client sends is validated as keystonemiddleware
    /// validates it (an invalid one: 401); with `service_token_roles_required`
    /// it must also carry one of these roles (comma-separated).
    pub service_token_roles: String,
    pub service_token_roles_required: bool,
    /// Let `noauth2` (anyone may claim any project) listen on a non-loopback address.
    pub allow_noauth_on_network: bool,
    /// TLS to Keystone, as keystonemiddleware names it (`cafile`, `certfile`,
    /// `keyfile`, `insecure`).
    pub cafile: String,
    pub certfile: String,
    pub keyfile: String,
    pub insecure: bool,
}

/// A value never shown by `Debug`.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

impl ServerSettings {
    /// The certificate files of the compute listener (`image`: false) or the
    /// image listener, when it serves TLS.
    pub fn tls_files(&self, image: bool) -> Option<crate::tls::listener::CertFiles> {
        let (prefix, cert, key) = if image {
            ("server.image_tls_", &self.image_tls_certfile, &self.image_tls_keyfile)
        } else {
            ("server.tls_", &self.tls_certfile, &self.tls_keyfile)
        };
        (!cert.is_empty() || !key.is_empty()).then(|| crate::tls::listener::CertFiles {
            cert_option: format!("{prefix}certfile"),
            certfile: cert.clone(),
            key_option: format!("{prefix}keyfile"),
            keyfile: key.clone(),
        })
    }
}

impl GlanceSection {
    pub fn tls(&self) -> crate::tls::ClientOptions<'_> {
        crate::tls::ClientOptions {
            section: "glance",
            cafile: &self.cafile,
            certfile: &self.certfile,
            keyfile: &self.keyfile,
            insecure: self.insecure,
        }
    }
}

impl AuthSettings {
    pub fn tls(&self) -> crate::tls::ClientOptions<'_> {
        crate::tls::ClientOptions {
            section: "auth",
            cafile: &self.cafile,
            certfile: &self.certfile,
            keyfile: &self.keyfile,
            insecure: self.insecure,
        }
    }

    /// `keystone_url` as the identity v3 endpoint, without a trailing `/`.
    pub fn keystone_v3_url(&self) -> String {
        v3_url(&self.keystone_url)
    }

    /// `keystone_url` without the version: what `www_authenticate_uri` defaults to.
    pub fn keystone_root_url(&self) -> String {
        let v3 = self.keystone_v3_url();
        v3.strip_suffix("/v3").unwrap_or(&v3).to_string()
    }

    /// Whether service credentials are configured.
    pub fn has_service_credentials(&self) -> bool {
        !self.service_user.is_empty()
    }

    /// The service user's domain in a Keystone auth request: `{"id": …}` or `{"name": …}`.
    pub fn user_domain(&self) -> Scope {
        Scope::of(&self.user_domain_id, &self.user_domain_name, &self.service_domain)
    }

    /// The domain of the service user's project.
    pub fn project_domain(&self) -> Scope {
        Scope::of(&self.project_domain_id, &self.project_domain_name, &self.service_domain)
    }
}

/// An identity endpoint as the v3 API's base: `…/v3` (appended when
/// missing), no trailing `/`.
pub fn v3_url(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    if url.ends_with("/v3") {
        url.to_string()
    } else {
        format!("{url}/v3")
    }
}

/// A domain named by id or by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    Id(String),
    Name(String),
}

impl Scope {
    fn of(id: &str, name: &str, default_name: &str) -> Scope {
        match (id.trim(), name.trim()) {
            ("", "") => Scope::Name(default_name.trim().to_string()),
            ("", name) => Scope::Name(name.to_string()),
            (id, _) => Scope::Id(id.to_string()),
        }
    }

    /// As Keystone's auth request spells it.
    pub fn json(&self) -> serde_json::Value {
        match self {
            Scope::Id(id) => serde_json::json!({ "id": id }),
            Scope::Name(name) => serde_json::json!({ "name": name }),
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Id(id) => write!(f, "domain id {id}"),
            Scope::Name(name) => write!(f, "domain {name}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedSettings {
    /// Where the embedded store keeps its database and image files.
    pub data_dir: String,
    /// Load a few demo images when the store is created.
    pub demo_images: bool,
    /// Use the embedded store even with `auth.strategy = "keystone"` (with
    /// `noauth2` and no `glance.url` it is the backend anyway).
    pub enabled: bool,
    /// MiB of response bodies (an image's Nova views, its metadata) kept drawn
    /// while the image is unchanged; 0: every read draws its body.
    pub response_cache_mib: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// A tracing filter (`info`, `nova_images_proxy=debug`, …).
    pub level: String,
    /// `text` (one readable line per event) or `json` (one object per line,
    /// oslo.log's JSONFormatter field names).
    pub format: String,
}

/// Nova's `[oslo_middleware]` options.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OsloMiddlewareSettings {
    /// Trust `Forwarded` / `X-Forwarded-*` headers set by a proxy in front:
    /// links take scheme, host and prefix from them, request logs the client
    /// address (`edge::forwarded`). Off: ignored.
    pub enable_proxy_headers_parsing: bool,
}

/// A string option that must be written as a string: a number would already
/// have lost its digits (`2.10` read as the float 2.1).
fn string_as_written<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = String;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a quoted string such as \"2.38\"")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<String, E> {
            Err(E::custom(format!(
                "the number {v} is not taken as a microversion (its digits may be lost: 2.10 is read as 2.1); \
                 quote it, e.g. \"2.38\""
            )))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<String, E> {
            self.visit_f64(v as f64)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<String, E> {
            self.visit_f64(v as f64)
        }
    }
    d.deserialize_any(V)
}
