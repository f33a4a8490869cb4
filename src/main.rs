use actix_web::dev::ServerHandle;
use clap::Parser;
use nova_images_proxy::config::{Overrides, Settings};
use std::path::PathBuf;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::reload;
use tracing_subscriber::util::SubscriberInitExt;

/// Nova's deprecated images proxy API (and Glance v1 image reads) in front of Glance v2.
#[derive(Parser, Debug)]
#[command(name = "nova-images-proxy", version)]
struct Cli {
    /// TOML configuration file (see etc/nova-images-proxy.toml).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Compute listener address (server.bind).
    #[arg(long, value_name = "ADDR")]
    bind: Option<String>,
    /// Glance endpoint to front (glance.url); without one the embedded store is the backend.
    #[arg(long, value_name = "URL")]
    glance_url: Option<String>,
    /// Image listener address: Glance v2 API of the embedded store, Glance v1 calls (server.image_bind).
    #[arg(long, value_name = "ADDR")]
    image_bind: Option<String>,
    /// Directory of the embedded store (embedded.data_dir).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<String>,
    /// Do not load demo images into a new embedded store (embedded.demo_images = false).
    #[arg(long)]
    no_demo_images: bool,
    /// Highest microversion served (api.max_microversion).
    #[arg(long, value_name = "X.Y")]
    max_microversion: Option<String>,
    /// Log filter (log.level), e.g. `info` or `nova_images_proxy=debug`.
    #[arg(long, value_name = "FILTER")]
    log_level: Option<String>,
    /// HTTP worker threads; 0 = one per core (server.workers).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Who still calls the deprecated APIs: the `/usage` tables of the given
    /// replicas' metrics listeners, merged.
    Usage(nova_images_proxy::migration::cli::UsageArgs),
}

/// `nova-images-proxy usage …`: print the merged table; exit 1 when a replica fails.
fn usage_command(args: &nova_images_proxy::migration::cli::UsageArgs) -> std::process::ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nova-images-proxy usage: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(nova_images_proxy::migration::cli::run(args)) {
        Ok(out) => {
            println!("{}", out.trim_end());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nova-images-proxy usage: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

impl Cli {
    fn overrides(&self) -> Overrides {
        let mut pairs = Vec::new();
        let mut set = |key: &str, v: &Option<String>| {
            if let Some(v) = v {
                pairs.push((key.to_string(), v.clone()));
            }
        };
        set("server.bind", &self.bind);
        set("glance.url", &self.glance_url);
        set("server.image_bind", &self.image_bind);
        set("embedded.data_dir", &self.data_dir);
        set(
            "embedded.demo_images",
            &self.no_demo_images.then(|| "false".to_string()),
        );
        set("api.max_microversion", &self.max_microversion);
        set("log.level", &self.log_level);
        set("server.workers", &self.workers.map(|w| w.to_string()));
        Overrides {
            config_file: self.config.clone(),
            pairs,
        }
    }
}

fn main() -> std::process::ExitCode {
    nova_images_proxy::tls::install_default_provider();
    let cli = Cli::parse();
    if let Some(Command::Usage(args)) = &cli.command {
        return usage_command(args);
    }
    let overrides = cli.overrides();
    let settings = match Settings::load(&overrides) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("nova-images-proxy: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let log_filter = match tracing_subscriber::EnvFilter::try_new(&settings.log.level) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("nova-images-proxy: log.level {:?}: {e}", settings.log.level);
            return std::process::ExitCode::from(2);
        }
    };
    let (filter_layer, log_reload) = reload::Layer::new(log_filter);
    tracing_subscriber::registry()
        .with(filter_layer)
        .with(
            tracing_subscriber::fmt::layer()
                .event_format(nova_images_proxy::logfmt::Format::new(&settings.log.format))
                .fmt_fields(nova_images_proxy::logfmt::PlainFields)
                .with_ansi(false),
        )
        .init();
    // Every client connection is a descriptor: take what the hard limit allows.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) if n < 2 * settings.server.max_connections as u64 + 64 => tracing::warn!(
            nofile = n,
            max_connections = settings.server.max_connections,
            "the open-files limit is low for server.max_connections on two listeners"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-files limit"),
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nova-images-proxy: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // The service's Keystone login, shared by the token validation and the
    // Glance client; its catalog names Glance when glance.url is empty.
    let mut settings = settings;
    let service_auth = match nova_images_proxy::service_auth(&settings) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("nova-images-proxy: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let discovered = settings.glance_from_catalog();
    if let (true, Some(service)) = (discovered, &service_auth) {
        match rt.block_on(nova_images_proxy::glance_from_catalog(&settings, service)) {
            Ok(url) => settings.glance.url = url,
            Err(e) => {
                eprintln!("nova-images-proxy: {e}");
                return match e {
                    nova_images_proxy::DiscoveryError::NotInCatalog(_) => std::process::ExitCode::from(2),
                    nova_images_proxy::DiscoveryError::Keystone(_) => std::process::ExitCode::FAILURE,
                };
            }
        }
    }
    let result: std::io::Result<()> = rt.block_on(async move {
        // Listen first: a port that cannot be had stops the start before the
        // backend exists (no embedded store created for nothing).
        let bind = settings.server.bind.clone();
        let image_bind = settings.image_listener();
        let compute_listener = bind_listener(&bind)?;
        let image_listener = image_bind.as_deref().map(bind_listener).transpose()?;
        let metrics_bind = settings.server.metrics_bind.clone();
        let metrics_listener = (!metrics_bind.is_empty())
            .then(|| bind_listener(&metrics_bind))
            .transpose()?;
        let backends = nova_images_proxy::build_backend_with(&settings, service_auth.clone())
            .await
            .map_err(|e| std::io::Error::other(format!("image backend: {e}")))?;
        let authenticator =
            nova_images_proxy::authenticator_with(&settings, &backends).map_err(std::io::Error::other)?;
        tracing::info!(
            compute = %bind,
            image = image_bind.as_deref().unwrap_or("(none)"),
            backend = %backends.backend.describe(),
            auth = %authenticator.strategy(),
            max_microversion = %settings.max_version(),
            workers = nova_images_proxy::server::workers(&settings),
            "starting nova-images-proxy"
        );
        tracing::info!(
            auth = %authenticator.strategy(),
            www_authenticate_uri = %settings.auth.www_authenticate_uri,
            "authentication: {}",
            authenticator.describe()
        );
        // TLS on the listeners (files already checked by the validation).
        let listener_tls = |image: bool| {
            settings
                .server
                .tls_files(image)
                .map(nova_images_proxy::tls::listener::listener)
                .transpose()
                .map_err(std::io::Error::other)
        };
        let (compute_tls, image_tls) = (listener_tls(false)?, listener_tls(true)?);
        let mut certs = Vec::new();
        let mut with_tls = |tls: Option<nova_images_proxy::tls::listener::ListenerTls>| {
            tls.map(|t| {
                tracing::info!(certfile = %t.handle.files.certfile, sha256 = %t.handle.fingerprint(), "TLS certificate loaded");
                certs.push(t.handle);
                t.config
            })
        };
        let compute_scheme = if compute_tls.is_some() { "https" } else { "http" };
        let image_scheme = if image_tls.is_some() { "https" } else { "http" };
        let (compute_tls, image_tls) = (with_tls(compute_tls), with_tls(image_tls));
        let image_state = nova_images_proxy::image_state(&settings, &backends, authenticator.clone());
        let migration = backends.migration.clone();
        migration.spawn_flusher(std::time::Duration::from_secs_f64(settings.usage.flush_secs));
        let admin = nova_images_proxy::migration::admin::Admin {
            migration: migration.clone(),
            auth: authenticator.clone(),
            keystone: settings.auth.strategy == "keystone",
        };
        let state = nova_images_proxy::nova_state(settings.clone(), &backends, authenticator);
        let mut addrs = vec![(compute_listener.local_addr()?, compute_scheme)];
        let compute = nova_images_proxy::server::compute_on(&settings, state, compute_listener, compute_tls)?;
        tracing::info!(compute = %bind, scheme = compute_scheme, "compute listener (Nova images API) ready");
        let mut handles = vec![compute.handle()];
        let image = match (&image_bind, image_listener) {
            (Some(addr), Some(image_listener)) => {
                addrs.push((image_listener.local_addr()?, image_scheme));
                let image = nova_images_proxy::server::image_on(&settings, image_state, image_listener, image_tls)?;
                handles.push(image.handle());
                tracing::info!(
                    image = %addr,
                    glance_v1 = %format!("{image_scheme}://{addr}/v1/images"),
                    "image listener ready: Glance v1 image reads (HEAD/GET /v1/images/{{id}}, GET /v1/images[/detail]) served"
                );
                Some(image)
            }
            _ => {
                tracing::info!("no image listener: Glance v1 image reads not served (set server.image_bind or --image-bind)");
                None
            }
        };
        let metrics = match metrics_listener {
            Some(listener) => {
                let server = nova_images_proxy::metrics::server(listener, Some(admin))?;
                handles.push(server.handle());
                tracing::info!(
                    metrics = %metrics_bind,
                    "metrics listener ready: GET /metrics (Prometheus text format), GET /usage (deprecated API usage)"
                );
                Some(server)
            }
            None => None,
        };
        let reload = nova_images_proxy::reload::Reload {
            overrides,
            log: log_reload,
            discovered,
        };
        tokio::spawn(signals(handles, certs, reload, settings, migration.clone()));
        // Apart from the listeners: a stop before readiness must not wait for it.
        let ready = tokio::spawn(async move {
            match nova_images_proxy::notify::wait_until_serving(&addrs, std::time::Duration::from_secs(30)).await {
                Ok(()) => nova_images_proxy::notify::ready("serving"),
                Err(e) => tracing::error!(error = %e, "a listener does not answer; readiness not reported"),
            }
        });
        let optional = |server: Option<actix_web::dev::Server>| async move {
            match server {
                Some(server) => server.await,
                None => Ok(()),
            }
        };
        let (a, b, c) = futures_util::future::join3(compute, optional(image), optional(metrics)).await;
        ready.abort();
        migration.flush().await;
        tracing::info!("stopped");
        a.and(b).and(c)
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nova-images-proxy: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn bind_listener(addr: &str) -> std::io::Result<std::net::TcpListener> {
    std::net::TcpListener::bind(addr)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

/// SIGTERM/SIGINT: stop accepting, let in-flight requests finish (at most
/// `server.shutdown_timeout_secs`), exit; a second one, or SIGQUIT, exits at
/// once. SIGHUP: read the configuration again and apply what can change
/// without a restart (`log.level`).
async fn signals(
    handles: Vec<ServerHandle>,
    certs: Vec<nova_images_proxy::tls::listener::CertHandle>,
    reload: nova_images_proxy::reload::Reload,
    mut current: Settings,
    migration: nova_images_proxy::migration::Migration,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut quit), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::quit()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    let stop = |graceful: bool| {
        let handles = handles.clone();
        async move {
            futures_util::future::join_all(handles.iter().map(|h| h.stop(graceful))).await;
        }
    };
    let mut draining: Option<tokio::task::JoinHandle<()>> = None;

    loop {
        let graceful = tokio::select! {
            _ = term.recv() => Some(("SIGTERM", true)),
            _ = int.recv() => Some(("SIGINT", true)),
            _ = quit.recv() => Some(("SIGQUIT", false)),
            _ = hup.recv() => None,
        };
        match graceful {
            Some((name, true)) if draining.is_none() => {
                tracing::info!(
                    signal = name,
                    timeout_secs = current.server.shutdown_timeout_secs,
                    "draining: no new connections; in-flight requests finish, then exit"
                );
                nova_images_proxy::notify::stopping();
                draining = Some(tokio::spawn(stop(true)));
            }
            Some((name, _)) if draining.is_some() => {
                // The listeners are busy draining and would not take another
                // command: leave now. The embedded store is safe against
                // this (every write is atomic), like against SIGKILL.
                tracing::warn!(signal = name, "stopping now, in-flight requests abandoned");
                std::process::exit(1);
            }
            Some((name, _)) => {
                nova_images_proxy::notify::stopping();
                tracing::warn!(signal = name, "stopping now: open connections are closed");
                stop(false).await;
            }
            None => {
                nova_images_proxy::notify::reloading();
                current = nova_images_proxy::reload::settings(&reload, current);
                migration.reload(&current.deprecation);
                nova_images_proxy::reload::certificates(&certs);
                nova_images_proxy::notify::reloaded();
            }
        }
    }
}
