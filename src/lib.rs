//! nova-images-proxy: Nova's deprecated images proxy API (and Glance v1 image
//! reads) served in front of Glance v2 or an embedded store.
#![forbid(unsafe_code)]

pub mod auth;
pub mod backend;
pub mod config;
pub mod nova;
pub mod pyjson;
pub mod request_id;

use actix_web::web;
use std::sync::Arc;

/// Everything the compute listener needs.
pub fn nova_state(
    settings: config::Settings,
    backend: Arc<dyn backend::ImageBackend>,
) -> web::Data<nova::NovaState> {
    web::Data::new(nova::NovaState::new(settings, backend))
}

/// Configure the compute listener's app: every request goes to Nova's router.
pub fn configure_compute(
    state: web::Data<nova::NovaState>,
) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(state)
            .app_data(web::PayloadConfig::new(usize::MAX))
            .default_service(web::to(nova::entry));
    }
}

/// The backend named by the settings.
pub fn build_backend(
    settings: &config::Settings,
) -> Result<Arc<dyn backend::ImageBackend>, String> {
    if settings.glance.url.is_empty() {
        return Err(
            "no image backend: set --glance-url (or glance.url in the configuration file, or \
             NOVA_IMAGES_PROXY__GLANCE__URL)"
                .to_string(),
        );
    }
    let glance = backend::glance::GlanceBackend::new(backend::glance::GlanceSettings {
        url: settings.glance.url.clone(),
        timeout: std::time::Duration::from_secs_f64(settings.glance.timeout_secs),
        connect_timeout: std::time::Duration::from_secs_f64(settings.glance.connect_timeout_secs),
        num_retries: settings.glance.num_retries,
    })
    .map_err(|e| e.to_string())?;
    Ok(Arc::new(glance))
}
