//! Raw bindings generated from the plugin contract. Authors use the re-exports in
//! [`crate::provider`] and friends instead; this module is public only so the
//! `export_provider!` macro can reach it from a provider crate.

wit_bindgen::generate!({
    world: "provider-plugin",
    path: "../../wit/v0.1.0",
    pub_export_macro: true,
    export_macro_name: "__export_provider_world",
    // The export macro expands inside the provider crate, which need not depend
    // on wit-bindgen itself.
    runtime_path: "trackbridge_plugin_sdk::__wit_bindgen::rt",
    default_bindings_module: "trackbridge_plugin_sdk::__bindings",
});
