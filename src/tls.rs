//! TLS with rustls (ring provider; no system OpenSSL at run time).
//!
//! * Client side, for Glance (`[glance]`) and Keystone (`[auth]`), with the
//!   options keystoneauth and Nova name: `cafile` (CA bundle; empty: the
//!   system's roots), `certfile` + `keyfile` (a client certificate), `insecure`
//!   (no certificate check). [`failure`] finds the TLS error in a failed call,
//!   so it can be logged and answered as such.
//! * Server side, per listener: see [`listener`].

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;

pub mod listener;

/// The TLS options of one outgoing connection kind (`glance` or `auth`).
#[derive(Clone, Copy, Debug)]
pub struct ClientOptions<'a> {
    /// The configuration section, for messages: `glance`, `auth`.
    pub section: &'a str,
    pub cafile: &'a str,
    pub certfile: &'a str,
    pub keyfile: &'a str,
    pub insecure: bool,
}

pub fn provider() -> Arc<CryptoProvider> {
    install_default_provider();
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Make ring the process's default provider, for HTTP clients built without
/// a configuration of ours (`reqwest` has none of its own in this build).
pub fn install_default_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// `option = "path": reason`, as the configuration's refusals read.
fn refuse(option: &str, path: &str, reason: impl std::fmt::Display) -> String {
    format!("{option} = {path:?}: {reason}")
}

/// The certificates of the PEM file `path` (named by `option`).
pub fn load_certs(option: &str, path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    std::fs::metadata(path).map_err(|e| refuse(option, path, format!("cannot read it: {e}")))?;
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| refuse(option, path, format!("cannot read it: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| refuse(option, path, format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(refuse(
            option,
            path,
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
        ));
    }
    Ok(certs)
}

/// The private key of the PEM file `path` (named by `option`).
pub fn load_key(option: &str, path: &str) -> Result<PrivateKeyDer<'static>, String> {
    std::fs::metadata(path).map_err(|e| refuse(option, path, format!("cannot read it: {e}")))?;
    PrivateKeyDer::from_pem_file(path).map_err(|e| refuse(option, path, format!("holds no PEM private key: {e}")))
}

/// A certificate chain and its key, checked to belong together.
pub fn load_certified_key(
    cert_option: &str,
    certfile: &str,
    key_option: &str,
    keyfile: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let certs = load_certs(cert_option, certfile)?;
    let key = load_key(key_option, keyfile)?;
    let signing = provider()
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| refuse(key_option, keyfile, format!("an unusable key: {e}")))?;
    rustls::sign::CertifiedKey::new(certs.clone(), signing)
        .keys_match()
        .map_err(|e| {
            refuse(
                key_option,
                keyfile,
                format!("does not match {cert_option} = {certfile:?}: {e}"),
            )
        })?;
    Ok((certs, key))
}

/// The rustls client configuration for `o`; errors name the option and file.
pub fn client_config(o: &ClientOptions) -> Result<rustls::ClientConfig, String> {
    let s = o.section;
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = if o.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider())))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        if o.cafile.is_empty() {
            // The system's store; unreadable entries are skipped.
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        } else {
            let option = format!("{s}.cafile");
            for cert in load_certs(&option, o.cafile)? {
                roots
                    .add(cert)
                    .map_err(|e| refuse(&option, o.cafile, format!("not a CA certificate: {e}")))?;
            }
        }
        builder.with_root_certificates(roots)
    };
    match (o.certfile.is_empty(), o.keyfile.is_empty()) {
        (true, true) => Ok(builder.with_no_client_auth()),
        (false, false) => {
            let (certs, key) =
                load_certified_key(&format!("{s}.certfile"), o.certfile, &format!("{s}.keyfile"), o.keyfile)?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| refuse(&format!("{s}.keyfile"), o.keyfile, e))
        }
        (false, true) => Err(refuse(
            &format!("{s}.certfile"),
            o.certfile,
            format!("{s}.keyfile is empty: a client certificate needs its key"),
        )),
        (true, false) => Err(refuse(
            &format!("{s}.keyfile"),
            o.keyfile,
            format!("{s}.certfile is empty: a client key needs its certificate"),
        )),
    }
}

/// A `reqwest` client builder that speaks TLS as `o` says.
pub fn http_client(o: &ClientOptions) -> Result<reqwest::ClientBuilder, String> {
    Ok(reqwest::Client::builder().tls_backend_preconfigured(client_config(o)?))
}

impl ClientOptions<'_> {
    /// Whether any file is named (then the files are read and checked at start).
    pub fn names_files(&self) -> bool {
        !(self.cafile.is_empty() && self.certfile.is_empty() && self.keyfile.is_empty())
    }
}

/// The TLS failure behind a failed call, worded by rustls (`invalid peer
/// certificate: UnknownIssuer`, `received fatal alert: CertificateRequired`),
/// if TLS is what failed.
pub fn failure(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<rustls::Error>() {
            return Some(t.to_string());
        }
        // io::Error hides its inner error from `source()` (and may hold another io::Error).
        cur = match err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

/// Whether a failure is the first of its kind in the last second: a burst of
/// identical TLS failures is logged once at `error`, the rest at `debug`.
#[derive(Default)]
pub struct LogOnce(std::sync::Mutex<Option<(std::time::Instant, String)>>);

impl LogOnce {
    pub fn first_in_a_while(&self, what: &str) -> bool {
        let mut last = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        let repeated = last
            .as_ref()
            .is_some_and(|(at, seen)| seen == what && now.duration_since(*at) < std::time::Duration::from_secs(1));
        if !repeated {
            *last = Some((now, what.to_string()));
        }
        !repeated
    }
}

/// `insecure = true`: any certificate is accepted (the handshake's
/// signatures are still checked, so the connection is encrypted to whoever
/// holds the presented key).
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
