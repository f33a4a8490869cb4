//! systemd's readiness protocol (`sd_notify(3)`, `Type=notify`): `READY=1`
//! once both listeners answer, `STOPPING=1` when the service starts
//! draining, `RELOADING=1` … `READY=1` around a SIGHUP reload. Nothing is
//! sent when `NOTIFY_SOCKET` is unset or empty (not started by systemd).

use sd_notify::NotifyState;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn send(states: &[NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none_or(|s| s.is_empty()) {
        return;
    }
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify the service manager (NOTIFY_SOCKET)");
    }
}

/// Both listeners answer: the service is up.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Draining has begun.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("draining")]);
}

/// A SIGHUP reload begins (`MONOTONIC_USEC` as `Type=notify-reload` asks).
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// The reload is done.
pub fn reloaded() {
    send(&[NotifyState::Ready]);
}

/// Wait until each of `addrs` (address, `http` or `https`) answers an HTTP request (any status: the
/// listener accepts and serves), at most `within`. An unspecified address
/// (`0.0.0.0`, `::`) is probed on loopback.
pub async fn wait_until_serving(addrs: &[(SocketAddr, &str)], within: Duration) -> Result<(), String> {
    // The service probes itself: a TLS listener's certificate need not name loopback.
    let client = crate::tls::http_client(&crate::tls::ClientOptions {
        section: "readiness probe",
        cafile: "",
        certfile: "",
        keyfile: "",
        insecure: true,
    })?
    .no_proxy()
    .timeout(Duration::from_secs(2))
    .build()
    .map_err(|e| e.to_string())?;
    let started = Instant::now();
    for (addr, scheme) in addrs {
        let mut addr = *addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let url = format!("{scheme}://{addr}{}", crate::health::PATH);
        loop {
            match client.head(&url).send().await {
                Ok(_) => break,
                Err(e) if started.elapsed() >= within => return Err(format!("{addr}: {e}")),
                Err(e) => {
                    tracing::debug!(error = %e, %addr, "readiness probe: not yet");
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
            }
        }
    }
    Ok(())
}
