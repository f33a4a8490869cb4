use actix_web::{App, HttpServer};
use clap::Parser;
use nova_images_proxy::config::{Overrides, Settings};
use nova_images_proxy::request_id::RootSpan;
use std::path::PathBuf;
use tracing_actix_web::TracingLogger;

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
    /// Glance endpoint to front (glance.url).
    #[arg(long, value_name = "URL")]
    glance_url: Option<String>,
    /// Highest microversion served (api.max_microversion).
    #[arg(long, value_name = "X.Y")]
    max_microversion: Option<String>,
    /// Log filter (log.level), e.g. `info` or `nova_images_proxy=debug`.
    #[arg(long, value_name = "FILTER")]
    log_level: Option<String>,
    /// HTTP worker threads; 0 = one per core (server.workers).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
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
    let cli = Cli::parse();
    let settings = match Settings::load(&cli.overrides()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("nova-images-proxy: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
    let backend = match nova_images_proxy::build_backend(&settings) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("nova-images-proxy: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let workers = if settings.server.workers == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        settings.server.workers
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nova-images-proxy: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result: std::io::Result<()> = rt.block_on(async move {
        let bind = settings.server.bind.clone();
        tracing::info!(
            compute = %bind,
            backend = %backend.describe(),
            auth = %settings.auth.strategy,
            max_microversion = %settings.max_version(),
            "starting nova-images-proxy"
        );
        let state = nova_images_proxy::nova_state(settings, backend);
        let server = HttpServer::new(move || {
            App::new()
                .wrap(TracingLogger::<RootSpan>::new())
                .configure(nova_images_proxy::configure_compute(state.clone()))
        })
        .workers(workers)
        .bind(&bind)?;
        tracing::info!(compute = %bind, "listening");
        server.run().await
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nova-images-proxy: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
