//! nova-images-proxy: Nova's deprecated images proxy API (and Glance v1 image
//! reads) served in front of Glance v2 or an embedded store.
#![forbid(unsafe_code)]

pub mod access_log;
pub mod auth;
pub mod backend;
pub mod config;
pub mod edge;
pub mod glance_v1;
pub mod glance_v2;
pub mod health;
pub mod logfmt;
pub mod metrics;
pub mod migration;
pub mod notify;
pub mod nova;
pub mod server;
pub mod tls;

use actix_web::{web, HttpRequest};
use std::sync::Arc;

/// The authenticator `auth.strategy` names. Build it once and give it to both
/// listeners: they then share one Keystone client and validation cache.
pub fn authenticator(settings: &config::Settings) -> Result<auth::Authenticator, String> {
    auth::Authenticator::from_settings(&settings.auth)
}

/// Everything the compute listener needs.
pub fn nova_state(
    settings: config::Settings,
    backends: &Backends,
    auth: auth::Authenticator,
) -> web::Data<nova::NovaState> {
    web::Data::new(nova::NovaState::new(
        settings,
        backends.backend.clone(),
        auth,
        backends.migration.clone(),
    ))
}

/// Configure the compute listener's app: every request goes to Nova's router.
pub fn configure_compute(state: web::Data<nova::NovaState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        let health = health::Health::new(&state.settings, state.backend.clone());
        cfg.app_data(state.migration.clone());
        cfg.app_data(state).app_data(web::PayloadConfig::new(usize::MAX));
        healthcheck(cfg, health);
        cfg.default_service(web::to(nova::entry));
    }
}

/// `/healthcheck` (any method, as oslo.middleware's filter answers it), ahead
/// of every other route of a listener.
fn healthcheck(cfg: &mut web::ServiceConfig, health: health::Health) {
    let health = web::Data::new(health);
    cfg.service(
        web::resource(health::PATH)
            .app_data(health)
            .to(|req: HttpRequest, health: web::Data<health::Health>| async move { health.respond(&req).await }),
    );
}

/// Everything the image listener needs.
#[derive(Clone)]
pub struct ImageState {
    pub settings: Arc<config::Settings>,
    pub backend: Arc<dyn backend::ImageBackend>,
    /// The embedded store, whose Glance v2 API the image listener serves.
    pub embedded: Option<backend::embedded::EmbeddedStore>,
    /// Who a token stands for (shared with the compute listener).
    pub auth: auth::Authenticator,
    /// Usage accounting and brownouts of the deprecated surfaces (shared with the compute listener).
    pub migration: migration::Migration,
}

pub fn image_state(settings: &config::Settings, backends: &Backends, auth: auth::Authenticator) -> ImageState {
    ImageState {
        settings: Arc::new(settings.clone()),
        backend: backends.backend.clone(),
        embedded: backends.embedded.clone(),
        auth,
        migration: backends.migration.clone(),
    }
}

/// Configure the image listener's app: Glance v1's image reads (`/v1/images…`,
/// over the configured backend), the Glance v2 image API of the embedded store
/// (embedded mode only; it authenticates with the shared [`auth::Authenticator`]
/// as the other surfaces do); anything else is Glance's plain 404.
pub fn configure_image(state: ImageState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        healthcheck(cfg, health::Health::new(&state.settings, state.backend.clone()));
        cfg.app_data(state.migration.clone());
        glance_v1::configure(
            cfg,
            state.backend.clone(),
            state.settings.clone(),
            state.auth.clone(),
            state.migration.clone(),
        );
        if let Some(store) = state.embedded.clone() {
            glance_v2::configure(cfg, store, state.settings.clone(), state.auth.clone());
        }
        cfg.default_service(web::to(glance_v2::not_found));
    }
}

/// The configured backend, and the embedded store when that is the backend.
pub struct Backends {
    pub backend: Arc<dyn backend::ImageBackend>,
    pub embedded: Option<backend::embedded::EmbeddedStore>,
    /// Usage accounting and brownouts of the deprecated surfaces; the counts
    /// are kept in the embedded store's database.
    pub migration: migration::Migration,
}

/// The backend named by the settings: a Glance at `glance.url`, else the
/// embedded store in `embedded.data_dir` (with demo images on first start).
pub async fn build_backend(settings: &config::Settings) -> Result<Backends, String> {
    if settings.embedded() {
        let dir = std::path::PathBuf::from(&settings.embedded.data_dir);
        let store = backend::embedded::EmbeddedStore::open(&dir).map_err(|e| e.to_string())?;
        if settings.embedded.demo_images && store.record_count().await.map_err(|e| e.to_string())? == 0 {
            let n = backend::embedded::demo::load(&store).await.map_err(|e| e.to_string())?;
            tracing::info!(images = n, "loaded demo images into the new store");
        }
        // A database of its own beside the images': usage writes then never
        // contend with the store's write transactions.
        let migration = migration::Migration::new(settings, Some(&dir.join("usage.sqlite")))?;
        metrics::on_scrape(store.metrics_hook());
        return Ok(Backends {
            backend: Arc::new(store.clone()),
            embedded: Some(store),
            migration,
        });
    }
    let glance = backend::glance::GlanceBackend::new(backend::glance::GlanceSettings {
        url: settings.glance.url.clone(),
        timeout: std::time::Duration::from_secs_f64(settings.glance.timeout_secs),
        connect_timeout: std::time::Duration::from_secs_f64(settings.glance.connect_timeout_secs),
        num_retries: settings.glance.num_retries,
        tls: tls::client_config(&settings.glance.tls())?,
    })
    .map_err(|e| e.to_string())?;
    Ok(Backends {
        backend: Arc::new(glance),
        embedded: None,
        migration: migration::Migration::new(settings, None)?,
    })
}
