//! Real Nova 34 and real Glance 33 started by the project's scripts
//! (`scripts/nova.sh`, `scripts/glance.sh`) on loopback, stopped on drop.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where the project's scripts keep a venv named `name`.
pub fn home_cache(name: &str) -> PathBuf {
    Path::new(&std::env::var("HOME").unwrap_or_default())
        .join(".cache/nova-images-proxy")
        .join(name)
}

/// Whether Nova is installed (`scripts/nova.sh install`).
pub fn nova_installed() -> bool {
    let venv = std::env::var("NIP_NOVA_VENV").map_or_else(|_| home_cache("nova-venv"), PathBuf::from);
    venv.join("bin/uwsgi").exists()
}

/// A process a script started, stopped by the same script on drop.
pub struct Started {
    script: &'static str,
    pub state: PathBuf,
    pub url: String,
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = Command::new(root().join(self.script))
            .args(["stop", "--state"])
            .arg(&self.state)
            .output();
    }
}

fn run(script: &'static str, args: &[&str], state: &Path, port: u16) -> Started {
    let out = Command::new(root().join(script))
        .arg("start")
        .args(args)
        .arg("--state")
        .arg(state)
        .output()
        .unwrap_or_else(|e| panic!("{script}: {e}"));
    let started = Started {
        script,
        state: state.to_path_buf(),
        url: format!("http://127.0.0.1:{port}"),
    };
    assert!(
        out.status.success(),
        "{script} start: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    started
}

/// Real Nova 34 on `port`, its state in `state`, in front of `glance`.
pub fn nova(port: u16, state: &Path, glance: &str) -> Started {
    run(
        "scripts/nova.sh",
        &["--port", &port.to_string(), "--glance", glance],
        state,
        port,
    )
}

/// A fresh real Glance 33 (no Keystone, one worker) on `port`, its state in `state`.
pub fn glance(port: u16, state: &Path) -> Started {
    run(
        "scripts/glance.sh",
        &["--port", &port.to_string(), "--fresh", "--workers", "1"],
        state,
        port,
    )
}
