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
    let workers = if settings.server.workers == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        settings.server.workers
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nova-images-proxy: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result: std::io::Result<()> = rt.block_on(async move {
        let backends = nova_images_proxy::build_backend(&settings)
            .await
            .map_err(|e| std::io::Error::other(format!("image backend: {e}")))?;
        let authenticator = nova_images_proxy::authenticator(&settings).map_err(std::io::Error::other)?;
        let bind = settings.server.bind.clone();
        let image_bind = settings.image_listener();
        tracing::info!(
            compute = %bind,
            image = image_bind.as_deref().unwrap_or("(none)"),
            backend = %backends.backend.describe(),
            auth = %authenticator.strategy(),
            max_microversion = %settings.max_version(),
            "starting nova-images-proxy"
        );
        tracing::info!(
            auth = %authenticator.strategy(),
            www_authenticate_uri = %settings.auth.www_authenticate_uri,
            "authentication: {}",
            authenticator.describe()
        );
        let image_state = nova_images_proxy::image_state(&settings, &backends, authenticator.clone());
        let state = nova_images_proxy::nova_state(settings, backends.backend, authenticator);
        let compute = HttpServer::new(move || {
            App::new()
                .wrap(TracingLogger::<RootSpan>::new())
                .configure(nova_images_proxy::configure_compute(state.clone()))
        })
        .workers(workers)
        .bind(&bind)?
        .run();
        tracing::info!(compute = %bind, "compute listener (Nova images API) ready");
        match image_bind {
            Some(addr) => {
                let image = HttpServer::new(move || {
                    App::new()
                        .wrap(TracingLogger::<RootSpan>::new())
                        .configure(nova_images_proxy::configure_image(image_state.clone()))
                })
                .workers(workers)
                .bind(&addr)?
                .run();
                tracing::info!(
                    image = %addr,
                    glance_v1 = %format!("http://{addr}/v1/images"),
                    "image listener ready: Glance v1 image reads (HEAD/GET /v1/images/{{id}}, GET /v1/images[/detail]) served"
                );
                let (a, b) = futures_util::future::join(compute, image).await;
                a.and(b)
            }
            None => {
                tracing::info!("no image listener: Glance v1 image reads not served (set server.image_bind or --image-bind)");
                compute.await
            }
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nova-images-proxy: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
