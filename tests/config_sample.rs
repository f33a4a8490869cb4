//! The sample configuration in etc/ loads and equals the built-in defaults.

use nova_images_proxy::config::{Overrides, Settings};

#[test]
fn sample_configuration_is_the_defaults() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("etc/nova-images-proxy.toml");
    let loaded = Settings::load_with_env(
        &Overrides {
            config_file: Some(path),
            pairs: vec![],
        },
        false,
    )
    .expect("sample loads");
    assert_eq!(format!("{loaded:?}"), format!("{:?}", Settings::defaults()));
}
