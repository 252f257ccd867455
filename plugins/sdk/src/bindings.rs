//! Raw bindings generated from the plugin contract. Authors use the re-exports in
//! [`crate::provider`] and friends instead; this module is public only so the
//! `export_provider!` macro can reach it from a provider crate.
//!
//! The contract is read from the crate's own `wit/` folder (in the
//! repository a link to the repository's `wit/`; `cargo package` copies the
//! files it points to), so the crate also builds once published.

wit_bindgen::generate!({
    world: "provider-plugin",
    path: "wit/v0.2.0",
    pub_export_macro: true,
    export_macro_name: "__export_provider_world",
    // Plugin tests compare what their exports return.
    additional_derives: [PartialEq],
    // The export macro expands inside the provider crate, which need not depend
    // on wit-bindgen itself.
    runtime_path: "trackbridge_plugin_sdk::__wit_bindgen::rt",
    default_bindings_module: "trackbridge_plugin_sdk::__bindings",
});

/// The notifier world. The interfaces it shares with the provider world map
/// onto the bindings above, so `types`, `host`, `secrets` and `provider-types` exist once
/// and the SDK's helpers (HTTP, errors, integration) serve both worlds.
pub mod notifier_world {
    wit_bindgen::generate!({
        world: "notifier-plugin",
        path: "wit/v0.2.0",
        pub_export_macro: true,
        export_macro_name: "__export_notifier_world",
        additional_derives: [PartialEq],
        runtime_path: "trackbridge_plugin_sdk::__wit_bindgen::rt",
        default_bindings_module: "trackbridge_plugin_sdk::__bindings::notifier_world",
        // Paths through the crate name: the export macro expands in the plugin crate.
        with: {
            "trackbridge:plugin/types@0.2.0": trackbridge_plugin_sdk::__bindings::trackbridge::plugin::types,
            "trackbridge:plugin/host@0.2.0": trackbridge_plugin_sdk::__bindings::trackbridge::plugin::host,
            "trackbridge:plugin/secrets@0.2.0": trackbridge_plugin_sdk::__bindings::trackbridge::plugin::secrets,
            "trackbridge:plugin/provider-types@0.2.0": trackbridge_plugin_sdk::__bindings::trackbridge::plugin::provider_types,
        },
    });
}
