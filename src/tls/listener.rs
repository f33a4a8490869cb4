//! TLS on a listener: a certificate and key (PEM files) per listener, served
//! through a resolver whose certificate can be replaced while the listener
//! runs (SIGHUP re-reads the files). Connections already open keep the
//! session they have; new handshakes get the new certificate.

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::sync::{Arc, RwLock};

/// The certificate a listener serves, replaceable.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

/// The files a listener's certificate comes from, with their option names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertFiles {
    pub cert_option: String,
    pub certfile: String,
    pub key_option: String,
    pub keyfile: String,
}

impl CertFiles {
    /// Read and check the files (certificate and key belong together).
    pub fn load(&self) -> Result<Arc<CertifiedKey>, String> {
        let (certs, key) =
            super::load_certified_key(&self.cert_option, &self.certfile, &self.key_option, &self.keyfile)?;
        let signing = super::provider()
            .key_provider
            .load_private_key(key)
            .map_err(|e| format!("{} = {:?}: an unusable key: {e}", self.key_option, self.keyfile))?;
        Ok(Arc::new(CertifiedKey::new(certs, signing)))
    }
}

/// A listener's TLS: the server configuration to listen with, and the handle
/// that replaces its certificate.
pub struct ListenerTls {
    pub config: rustls::ServerConfig,
    pub handle: CertHandle,
}

/// Replaces the certificate of a running listener.
#[derive(Clone, Debug)]
pub struct CertHandle {
    current: Arc<Current>,
    pub files: CertFiles,
}

impl CertHandle {
    /// Read the files again and serve what they hold from the next handshake
    /// on; on an error the certificate served stays as it was.
    pub fn reload(&self) -> Result<(), String> {
        let new = self.files.load()?;
        *self.current.0.write().unwrap_or_else(|p| p.into_inner()) = new;
        Ok(())
    }

    /// SHA-256 of the leaf certificate served (for the log).
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        let current = self.current.0.read().unwrap_or_else(|p| p.into_inner()).clone();
        current
            .cert
            .first()
            .map(|c| {
                sha2::Sha256::digest(c.as_ref())
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            })
            .unwrap_or_default()
    }
}

/// The TLS of a listener serving `files` (actix adds the `http/1.1` ALPN protocol).
pub fn listener(files: CertFiles) -> Result<ListenerTls, String> {
    let current = Arc::new(Current(RwLock::new(files.load()?)));
    let config = rustls::ServerConfig::builder_with_provider(super::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(current.clone());
    Ok(ListenerTls {
        config,
        handle: CertHandle { current, files },
    })
}
