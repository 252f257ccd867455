//! Host-side bindings generated from the WIT contract.

wasmtime::component::bindgen!({
    path: "wit/v0.1.0",
    world: "provider-plugin",
    imports: {
        // A database failure while looking up an integration must not look like
        // "no such integration" to the plugin: it traps, and the host answers 503.
        "trackbridge:plugin/host.select-integration": async | trappable,
        "trackbridge:plugin/host.lookup-integration": async | trappable,
        default: async,
    },
    exports: { default: async },
});

pub use exports::trackbridge::plugin::provider as provider_exports;
pub use trackbridge::plugin::provider_types;
pub use trackbridge::plugin::types;

/// The contract versions this host implements.
pub const CONTRACT_VERSIONS: &[&str] = &["0.1.0"];

/// The notifier world. Interfaces it shares with the provider world map onto
/// the provider bindings, so the host implements `host` once.
pub mod notifier {
    wasmtime::component::bindgen!({
        path: "wit/v0.1.0",
        world: "notifier-plugin",
        imports: { default: async },
        exports: { default: async },
        with: {
            "trackbridge:plugin/types": super::trackbridge::plugin::types,
            "trackbridge:plugin/host": super::trackbridge::plugin::host,
            "trackbridge:plugin/provider-types": super::trackbridge::plugin::provider_types,
        },
    });

    pub use self::trackbridge::plugin::notifier_types;
}
