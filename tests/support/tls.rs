//! TLS for the tests: a test CA and certificates made here (rcgen), and a real
//! TLS terminator (Debian's stunnel4, installed by `scripts/stunnel.sh`) in
//! front of a real Glance or Keystone.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A certificate authority made for one test run.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    /// The CA certificate (PEM file).
    pub cafile: PathBuf,
    dir: PathBuf,
}

/// A certificate and its key, as PEM files.
#[derive(Clone, Debug)]
pub struct CertFiles {
    pub certfile: PathBuf,
    pub keyfile: PathBuf,
}

impl CertFiles {
    pub fn cert(&self) -> String {
        self.certfile.to_string_lossy().into_owned()
    }
    pub fn key(&self) -> String {
        self.keyfile.to_string_lossy().into_owned()
    }
}

impl TestCa {
    /// A new CA named `name`, its files in `dir`.
    pub fn new(dir: &Path, name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let cafile = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&cafile, issuer.pem()).unwrap();
        TestCa {
            issuer,
            cafile,
            dir: dir.to_path_buf(),
        }
    }

    pub fn cafile(&self) -> String {
        self.cafile.to_string_lossy().into_owned()
    }

    /// A leaf certificate for `127.0.0.1` and `localhost` (server and client
    /// use), written as `<file>.pem` and `<file>-key.pem`.
    pub fn issue(&self, file: &str, common_name: &str) -> CertFiles {
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let files = CertFiles {
            certfile: self.dir.join(format!("{file}.pem")),
            keyfile: self.dir.join(format!("{file}-key.pem")),
        };
        std::fs::write(&files.certfile, cert.pem()).unwrap();
        std::fs::write(&files.keyfile, key.serialize_pem()).unwrap();
        files
    }
}

/// The stunnel binary: `NIP_STUNNEL` or `stunnel4` on PATH. Without one the
/// test fails (CI sets NIP_REQUIRE_STUNNEL=1) unless NIP_SKIP_GLANCE=1.
pub fn stunnel_binary() -> Option<String> {
    if let Ok(b) = std::env::var("NIP_STUNNEL") {
        return Some(b);
    }
    for name in ["stunnel4", "stunnel"] {
        for dir in std::env::var("PATH").unwrap_or_default().split(':') {
            let p = Path::new(dir).join(name);
            if p.is_file() {
                return Some(p.to_string_lossy().into_owned());
            }
        }
    }
    if std::env::var("NIP_SKIP_GLANCE").as_deref() == Ok("1") && std::env::var("NIP_REQUIRE_STUNNEL").is_err() {
        eprintln!("no stunnel4 and NIP_SKIP_GLANCE=1: skipping a TLS test");
        return None;
    }
    panic!("stunnel4 is not installed: scripts/stunnel.sh install (run by scripts/test) installs it")
}

/// A running stunnel: TLS on `127.0.0.1:<port>`, plain TCP to the target.
pub struct Terminator {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Terminator {
    /// TLS with `cert` on a free port, forwarding to `127.0.0.1:target`;
    /// with `client_ca`, a client certificate issued by it is required.
    pub fn start(
        binary: &str,
        dir: &Path,
        name: &str,
        cert: &CertFiles,
        target: u16,
        client_ca: Option<&Path>,
    ) -> Terminator {
        let port = super::process::free_port();
        let log = dir.join(format!("stunnel-{name}.log"));
        let mut conf = format!(
            "foreground = yes\npid =\noutput = {}\ndebug = 5\n\n[{name}]\naccept = 127.0.0.1:{port}\n\
             connect = 127.0.0.1:{target}\ncert = {}\nkey = {}\n",
            log.display(),
            cert.certfile.display(),
            cert.keyfile.display()
        );
        if let Some(ca) = client_ca {
            conf.push_str(&format!(
                "verifyChain = yes\nrequireCert = yes\nCAfile = {}\n",
                ca.display()
            ));
        }
        let conf_path = dir.join(format!("stunnel-{name}.conf"));
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(binary)
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start stunnel");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "stunnel did not listen: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Terminator { child, port, log }
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

impl Drop for Terminator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
