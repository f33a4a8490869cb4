//! Settings, layered (lowest to highest): built-in defaults, a TOML file
//! (`--config`), environment (`NOVA_IMAGES_PROXY__SECTION__KEY`), command-line flags.

use crate::nova::microversion::{Version, NOVA_MAX};
use std::path::PathBuf;

pub mod deprecation;
mod sections;
pub mod validate;

pub use sections::*;

pub const ENV_PREFIX: &str = "NOVA_IMAGES_PROXY";

const DEFAULTS: &str = include_str!("config/defaults.toml");

/// Values given on the command line (highest precedence).
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub pairs: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration: {0}")]
    Invalid(String),
}

impl Settings {
    pub fn load(overrides: &Overrides) -> Result<Settings, ConfigError> {
        Self::load_with_env(overrides, true)
    }

    pub fn load_with_env(overrides: &Overrides, use_env: bool) -> Result<Settings, ConfigError> {
        let mut builder =
            config::Config::builder().add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(path) = &overrides.config_file {
            builder = builder.add_source(config::File::from(path.as_path()).format(config::FileFormat::Toml));
        }
        if use_env {
            builder = builder.add_source(
                config::Environment::with_prefix(ENV_PREFIX)
                    .prefix_separator("__")
                    .separator("__")
                    // Values stay strings as written (`3.0` is not turned
                    // into `3`); numbers and booleans are parsed by type.
                    .try_parsing(false),
            );
        }
        for (key, value) in &overrides.pairs {
            builder = builder.set_override(key.as_str(), value.as_str())?;
        }
        let mut settings: Settings = builder.build()?.try_deserialize()?;
        settings.validate()?;
        if settings.auth.www_authenticate_uri.trim().is_empty() {
            settings.auth.www_authenticate_uri = settings.auth.keystone_root_url();
        }
        Ok(settings)
    }

    /// Built-in defaults only (tests start from these).
    pub fn defaults() -> Settings {
        Self::load_with_env(&Overrides::default(), false).unwrap_or_else(|e| panic!("built-in defaults: {e}"))
    }

    /// Whether the embedded store is the backend (no Glance URL configured,
    /// and none to be found in the Keystone catalog).
    pub fn embedded(&self) -> bool {
        self.glance.url.trim().is_empty() && !self.glance_from_catalog()
    }

    /// Whether Glance is to be found in the Keystone catalog: Keystone auth,
    /// no `glance.url`, and the embedded store not asked for (as Nova looks
    /// Glance up when `[glance] api_servers` is unset).
    pub fn glance_from_catalog(&self) -> bool {
        self.glance.url.trim().is_empty() && self.auth.strategy == "keystone" && !self.embedded.enabled
    }

    /// The image listener's address, if there is one.
    pub fn image_listener(&self) -> Option<String> {
        match (self.server.image_bind.as_str(), self.embedded()) {
            ("", true) => Some("127.0.0.1:9292".to_string()),
            ("", false) => None,
            (addr, _) => Some(addr.to_string()),
        }
    }

    /// The sections of `new` that differ from these settings and take effect
    /// only at the next start (everything but `log`).
    pub fn restart_needed(&self, new: &Settings) -> Vec<&'static str> {
        [
            ("server", self.server != new.server),
            ("glance", self.glance != new.glance),
            ("api", self.api != new.api),
            ("auth", self.auth != new.auth),
            ("oslo_middleware", self.oslo_middleware != new.oslo_middleware),
            ("embedded", self.embedded != new.embedded),
            ("usage", self.usage != new.usage),
        ]
        .into_iter()
        .filter_map(|(name, differs)| differs.then_some(name))
        .collect()
    }

    pub fn max_version(&self) -> Version {
        Version::parse(&self.api.max_microversion).unwrap_or(NOVA_MAX)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        validate::settings(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_secret_is_a_change() {
        let a = Settings::defaults();
        let mut b = a.clone();
        assert!(a.restart_needed(&b).is_empty());
        b.auth.service_password = Secret("new".into());
        let mut c = b.clone();
        c.auth.service_password = Secret("newer".into());
        // Both print `***`: compared by value, not by their Debug text.
        assert_eq!(b.restart_needed(&c), ["auth"]);
        b.log.level = "debug".into();
        assert_eq!(b.restart_needed(&c), ["auth"]);
    }

    #[test]
    fn flags_override_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[api]\nmax_microversion = \"2.38\"\nmetadata_items = 5\n").unwrap();
        let s = Settings::load_with_env(
            &Overrides {
                config_file: Some(path),
                pairs: vec![("api.metadata_items".into(), "7".into())],
            },
            false,
        )
        .unwrap();
        assert_eq!(s.api.max_microversion, "2.38");
        assert_eq!(s.api.metadata_items, 7);
        assert_eq!(s.server.max_request_body, 114688);
    }

    #[test]
    fn keystone_urls_and_the_www_authenticate_default() {
        let s = Settings::defaults();
        assert_eq!(s.auth.strategy, "noauth2");
        assert_eq!(s.auth.www_authenticate_uri, "http://127.0.0.1:5000");
        let s = load(&[
            ("auth.strategy", "keystone"),
            ("auth.keystone_url", "http://ks/identity/"),
            ("glance.url", "http://glance:9292"),
        ])
        .unwrap();
        assert_eq!(s.auth.keystone_v3_url(), "http://ks/identity/v3");
        assert_eq!(s.auth.www_authenticate_uri, "http://ks/identity");
        let s = load(&[
            ("auth.keystone_url", "http://ks:5000/v3"),
            ("auth.www_authenticate_uri", "https://public:5000"),
        ])
        .unwrap();
        assert_eq!(s.auth.keystone_v3_url(), "http://ks:5000/v3");
        assert_eq!(s.auth.www_authenticate_uri, "https://public:5000");
        assert!(load(&[("auth.strategy", "ldap")]).is_err());
        assert!(load(&[("auth.keystone_url", "ks:5000")]).is_err());
        assert!(load(&[("auth.keystone_url", "https://ks:5000/v3")]).is_ok());
        assert!(load(&[("auth.cache_entries", "0")]).is_err());
        assert!(load(&[("auth.service_user", "nova")]).is_err());
        let s = load(&[
            ("auth.service_user", "nova"),
            ("auth.service_password", "secret"),
            ("auth.service_project", "service"),
        ])
        .unwrap();
        assert!(s.auth.has_service_credentials());
        assert!(!format!("{s:?}").contains("secret"));
    }

    /// The built-in defaults with `pairs` on top.
    fn load(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::load_with_env(
            &Overrides {
                config_file: None,
                pairs: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            },
            false,
        )
    }

    #[test]
    fn glance_from_the_catalog_and_the_service_users_domains() {
        let creds = [
            ("auth.strategy", "keystone"),
            ("auth.service_user", "nova"),
            ("auth.service_password", "secret"),
            ("auth.service_project", "service"),
        ];
        let s = load(&creds).unwrap();
        assert!(s.glance_from_catalog() && !s.embedded());
        assert_eq!(s.auth.user_domain(), Scope::Name("Default".into()));
        assert_eq!(s.auth.user_domain().json(), serde_json::json!({"name": "Default"}));
        let with = |more: &[(&'static str, &'static str)]| {
            let mut all = creds.to_vec();
            all.extend_from_slice(more);
            load(&all)
        };
        let s = with(&[
            ("auth.user_domain_name", "users"),
            ("auth.user_domain_id", "a1"),
            ("auth.project_domain_name", "projects"),
        ])
        .unwrap();
        assert_eq!(s.auth.user_domain(), Scope::Id("a1".into()));
        assert_eq!(s.auth.project_domain(), Scope::Name("projects".into()));
        assert!(!with(&[("embedded.enabled", "true")]).unwrap().glance_from_catalog());
        assert!(with(&[("auth.send_service_user_token", "true")]).is_ok());
        for bad in [
            ("auth.interface", "internalURL"),
            ("glance.valid_interfaces", "internal,private"),
            ("glance.valid_interfaces", ""),
        ] {
            let e = with(&[bad]).unwrap_err().to_string();
            assert!(e.contains(bad.0), "{e}");
        }
        // Without service credentials there is no catalog to read, and no
        // token to send.
        let e = load(&[("auth.strategy", "keystone")]).unwrap_err().to_string();
        assert!(e.contains("glance.url") && e.contains("auth.service_user"), "{e}");
        let e = load(&[("auth.send_service_user_token", "true"), ("glance.url", "http://g")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("auth.send_service_user_token"), "{e}");
    }

    #[test]
    fn invalid_values_are_refused() {
        let bad = Overrides {
            config_file: None,
            pairs: vec![("api.max_microversion".into(), "3.0".into())],
        };
        assert!(Settings::load_with_env(&bad, false).is_err());
    }
}
