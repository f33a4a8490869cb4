//! SIGHUP: the configuration and the listeners' certificates read again,
//! what can change without a restart applied (`log.level`, `[deprecation]`
//! by its caller), the rest named in the log and kept.

use crate::config::{Overrides, Settings};
use tracing_subscriber::reload;

pub type LogReload = reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>;

/// What SIGHUP needs to read the configuration again.
pub struct Reload {
    pub overrides: Overrides,
    pub log: LogReload,
    /// `glance.url` came from the Keystone catalog (it stays as found).
    pub discovered: bool,
}

/// SIGHUP: each TLS listener's certificate and key are read again; new
/// handshakes get them, open connections keep theirs. A file that does not
/// load leaves the served certificate as it was.
pub fn certificates(certs: &[crate::tls::listener::CertHandle]) {
    for cert in certs {
        match cert.reload() {
            Ok(()) => tracing::warn!(
                certfile = %cert.files.certfile, sha256 = %cert.fingerprint(),
                "SIGHUP: TLS certificate re-read; new connections get it"
            ),
            Err(e) => tracing::error!(error = %e, "SIGHUP: TLS certificate not re-read; the served one is kept"),
        }
    }
}

/// SIGHUP: the configuration read again; `log.level` applied, what needs a
/// restart named in the log and kept as it runs.
pub fn settings(reload: &Reload, current: Settings) -> Settings {
    let log_reload = &reload.log;
    let mut new = match Settings::load(&reload.overrides) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "SIGHUP: configuration not reloaded; the running one is kept");
            return current;
        }
    };
    if reload.discovered && new.glance_from_catalog() {
        new.glance.url = current.glance.url.clone();
    }
    if new.log.level != current.log.level {
        match tracing_subscriber::EnvFilter::try_new(&new.log.level) {
            Ok(f) => match log_reload.reload(f) {
                Ok(()) => {
                    tracing::warn!(log_level = %new.log.level, old = %current.log.level, "SIGHUP: log.level applied")
                }
                Err(e) => tracing::error!(error = %e, "SIGHUP: log.level not applied"),
            },
            Err(e) => {
                tracing::error!(log_level = %new.log.level, error = %e, "SIGHUP: log.level is not a valid filter; kept");
                return Settings {
                    log: current.log.clone(),
                    ..new
                };
            }
        }
    } else {
        tracing::info!("SIGHUP: configuration read again");
    }
    let changed = current.restart_needed(&new);
    if !changed.is_empty() {
        tracing::warn!(
            sections = %changed.join(", "),
            "SIGHUP: these settings changed and take effect at the next start; the running ones are kept"
        );
        // Keep reporting them until they are applied.
        return Settings {
            log: new.log,
            ..current
        };
    }
    new
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_glance_found_in_the_catalog_stays_across_sighup() {
        let pairs = [
            ("auth.strategy", "keystone"),
            ("auth.service_user", "nova"),
            ("auth.service_password", "secret"),
            ("auth.service_project", "service"),
            ("log.level", "info"),
        ];
        let overrides = Overrides {
            config_file: None,
            pairs: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        };
        let (_, log) = reload::Layer::new(tracing_subscriber::EnvFilter::new("info"));
        let mut current = Settings::load_with_env(&overrides, false).unwrap();
        current.glance.url = "http://glance.internal:9292".into();
        let reload = Reload {
            overrides,
            log,
            discovered: true,
        };
        let after = settings(&reload, current.clone());
        assert_eq!(after.glance.url, current.glance.url);
        assert!(current.restart_needed(&after).is_empty());
    }
}
