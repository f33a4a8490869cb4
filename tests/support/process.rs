//! The real binary as a child process, on fresh loopback ports.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Proc {
    pub child: Child,
    pub compute: String,
    pub image: String,
    /// Where the process's log (stdout and stderr) goes.
    pub log: PathBuf,
}

/// Start the binary with `args` on a compute and an image port and wait until
/// the compute listener accepts connections. Its output goes to `log`.
pub fn spawn(args: &[&str], env: &[(&str, &str)], log: &Path) -> Proc {
    let (cp, ip) = (free_port(), free_port());
    let out = std::fs::File::create(log).expect("log file");
    let err = out.try_clone().expect("log file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nova-images-proxy"));
    cmd.args([
        "--bind",
        &format!("127.0.0.1:{cp}"),
        "--image-bind",
        &format!("127.0.0.1:{ip}"),
    ])
    .args(args)
    .env_remove("NOVA_IMAGES_PROXY__GLANCE__URL")
    .stdout(Stdio::from(out))
    .stderr(Stdio::from(err));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn the service");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", cp)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the service exited ({status}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the service did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Proc {
        child,
        compute: format!("http://127.0.0.1:{cp}"),
        image: format!("http://127.0.0.1:{ip}"),
        log: log.to_path_buf(),
    }
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{name} failed");
    }

    /// Resident memory of the process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("/proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait until the log has a line containing `needle`.
    pub fn wait_for_log(&self, needle: &str, within: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < within {
            if self.log_text().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Wait for the process to exit; its status, or `None` after `within`.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < within {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Kept for scripts/test, which checks every log the suite's services
        // wrote for the tokens the suite used.
        let kept = Path::new(env!("CARGO_TARGET_TMPDIR")).join("service-logs");
        if std::fs::create_dir_all(&kept).is_ok() {
            let _ = std::fs::copy(&self.log, kept.join(format!("{}.log", self.pid())));
        }
    }
}

/// What a start that should have been refused gave.
pub struct Refusal {
    pub code: Option<i32>,
    pub stderr: String,
    pub left_on_disk: Vec<String>,
}

/// Run the binary with `args`, `env` and, if given, a configuration file
/// holding `toml`, in a fresh empty directory.
pub fn refused(args: &[&str], env: &[(&str, &str)], toml: Option<&str>) -> Refusal {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nova-images-proxy"));
    cmd.current_dir(dir.path())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("NOVA_IMAGES_PROXY__") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    let config = dir.path().join("nip.toml");
    if let Some(toml) = toml {
        std::fs::write(&config, toml).unwrap();
        cmd.arg("--config").arg(&config);
    }
    let mut child = cmd.spawn().unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("the service started with {args:?} {env:?} {toml:?} instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let left_on_disk = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != "nip.toml")
        .collect();
    Refusal {
        code: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        left_on_disk,
    }
}

/// The refusal is one line that contains each of `needles`.
pub fn assert_refused(r: &Refusal, code: i32, needles: &[&str]) {
    assert_eq!(r.code, Some(code), "exit status; stderr: {}", r.stderr);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {:?}", r.stderr);
    assert!(lines[0].starts_with("nova-images-proxy: "), "{}", lines[0]);
    for n in needles {
        assert!(lines[0].contains(n), "{n:?} not in {:?}", lines[0]);
    }
    assert!(r.left_on_disk.is_empty(), "created on disk: {:?}", r.left_on_disk);
}
