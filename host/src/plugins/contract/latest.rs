//! Bindings of the newest contract version, 0.2.0: the types the rest of the
//! host works in. Older versions adapt to these (`since_v0_1_0`).

wasmtime::component::bindgen!({
    path: "wit/v0.2.0",
    world: "provider-plugin",
    imports: {
        // A database failure while looking up an integration must not look like
        // "no such integration" to the plugin: it traps, and the host answers 503.
        "trackbridge:plugin/host.select-integration": async | trappable,
        "trackbridge:plugin/host.lookup-integration": async | trappable,
        // A secret handle the plugin does not hold is a bug in the guest: trap.
        "trackbridge:plugin/secrets.remember": async | trappable,
        "trackbridge:plugin/secrets.hmac-sha256-sign": async | trappable,
        "trackbridge:plugin/secrets.hmac-sha256-verify": async | trappable,
        "trackbridge:plugin/secrets.matches": async | trappable,
        "trackbridge:plugin/secrets.jwt-hs256-verify": async | trappable,
        "trackbridge:plugin/secrets.rsa-sign": async | trappable,
        "trackbridge:plugin/secrets.stand-in": async | trappable,
        default: async,
    },
    exports: { default: async },
    with: {
        "trackbridge:plugin/secrets.secret": crate::plugins::secrets_api::SecretHandle,
    },
});

pub use exports::trackbridge::plugin::provider as provider_exports;
pub use trackbridge::plugin::provider_types;
pub use trackbridge::plugin::secrets;
pub use trackbridge::plugin::types;

/// The notifier world. Interfaces it shares with the provider world map onto
/// the provider bindings, so the host implements `host` and `secrets` once.
pub mod notifier {
    wasmtime::component::bindgen!({
        path: "wit/v0.2.0",
        world: "notifier-plugin",
        imports: { default: async },
        exports: { default: async },
        with: {
            "trackbridge:plugin/types": super::trackbridge::plugin::types,
            "trackbridge:plugin/host": super::trackbridge::plugin::host,
            "trackbridge:plugin/secrets": super::trackbridge::plugin::secrets,
            "trackbridge:plugin/provider-types": super::trackbridge::plugin::provider_types,
        },
    });

    pub use self::trackbridge::plugin::notifier_types;
}
