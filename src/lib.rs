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
pub mod reload;
pub mod server;
pub mod tls;

use actix_web::{web, HttpRequest};
use std::sync::Arc;

/// The authenticator `auth.strategy` names. Build it once and give it to both
/// listeners: they then share one Keystone client and validation cache.
pub fn authenticator(settings: &config::Settings) -> Result<auth::Authenticator, String> {
    auth::Authenticator::from_settings(&settings.auth)
}

/// The service's Keystone login (`auth.service_*` with `auth.strategy =
/// "keystone"`), to share between the authenticator and the Glance client.
pub fn service_auth(settings: &config::Settings) -> Result<Option<Arc<auth::service::ServiceAuth>>, String> {
    auth::service::ServiceAuth::from_settings(&settings.auth)
}

/// Why Glance could not be found in the Keystone catalog.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// Keystone answered, and its catalog has no such endpoint: a
    /// configuration to correct.
    #[error("configuration: {0}")]
    NotInCatalog(String),
    /// Keystone could not be asked (down, refusing the service credentials).
    #[error("{0}")]
    Keystone(String),
}

/// Glance's URL from the service user's Keystone catalog, as Nova finds it
/// when `[glance] api_servers` is unset: the `image` endpoint of the first of
/// `glance.valid_interfaces` that has one in `glance.region_name` (any region
/// when empty), with a trailing `/vN` removed. The choice is logged.
pub async fn glance_from_catalog(
    settings: &config::Settings,
    service: &auth::service::ServiceAuth,
) -> Result<String, DiscoveryError> {
    let g = &settings.glance;
    let login = service.login().await.map_err(|e| {
        DiscoveryError::Keystone(format!(
            "glance.url is empty and the Keystone catalog cannot be read at {}: {e}",
            settings.auth.keystone_v3_url()
        ))
    })?;
    let interfaces: Vec<&str> = g.valid_interfaces.split(',').map(str::trim).collect();
    let region = g.region_name.trim();
    let Some(found) = login.catalog.find("image", &interfaces, region) else {
        let region = if region.is_empty() { "any region" } else { region };
        return Err(DiscoveryError::NotInCatalog(format!(
            "glance.url = \"\": no image endpoint in the Keystone catalog for glance.valid_interfaces = {:?} in \
             glance.region_name = {:?} ({region}); set glance.url, or register Glance's endpoint in that region",
            g.valid_interfaces, g.region_name
        )));
    };
    let url = auth::catalog::unversioned(&found.url);
    if let Err(e) = config::validate::web_url("glance.url", &url, config::validate::URL_SCHEMES) {
        return Err(DiscoveryError::NotInCatalog(format!(
            "the image endpoint of the Keystone catalog ({} {}) is not usable: {e}",
            found.interface, found.region
        )));
    }
    tracing::info!(
        url = %url, catalog_url = %found.url, interface = %found.interface, region = %found.region,
        "image service found in the Keystone catalog"
    );
    Ok(url)
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
    /// The service's Keystone login the backend was built with: give it to
    /// the authenticator ([`authenticator_with`]) so that one login serves both.
    pub service_auth: Option<Arc<auth::service::ServiceAuth>>,
}

/// The authenticator of `settings`, sharing `backends`' service login.
pub fn authenticator_with(settings: &config::Settings, backends: &Backends) -> Result<auth::Authenticator, String> {
    auth::Authenticator::with_service(&settings.auth, backends.service_auth.clone())
}

/// The backend named by the settings: a Glance at `glance.url`, else the
/// embedded store in `embedded.data_dir` (with demo images on first start).
pub async fn build_backend(settings: &config::Settings) -> Result<Backends, String> {
    build_backend_with(settings, service_auth(settings)?).await
}

/// The same, with the service's Keystone login `service` (its token goes to
/// Glance as `X-Service-Token` with `auth.send_service_user_token`; its
/// catalog names Glance when `glance.url` is empty under Keystone auth).
pub async fn build_backend_with(
    settings: &config::Settings,
    service: Option<Arc<auth::service::ServiceAuth>>,
) -> Result<Backends, String> {
    if settings.embedded() {
        let dir = std::path::PathBuf::from(&settings.embedded.data_dir);
        let cache = settings.embedded.response_cache_mib.saturating_mul(1 << 20);
        let store = backend::embedded::EmbeddedStore::open_with(&dir, cache).map_err(|e| e.to_string())?;
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
            service_auth: service,
        });
    }
    let url = match (&service, settings.glance_from_catalog()) {
        (Some(service), true) => glance_from_catalog(settings, service)
            .await
            .map_err(|e| e.to_string())?,
        _ => settings.glance.url.clone(),
    };
    let service_token = service
        .clone()
        .filter(|_| settings.auth.send_service_user_token)
        .map(|s| s as Arc<dyn backend::glance::ServiceToken>);
    let glance = backend::glance::GlanceBackend::new(backend::glance::GlanceSettings {
        url,
        service_token,
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
        service_auth: service,
    })
}
