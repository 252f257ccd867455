//! # trackbridge plugin SDK
//!
//! Everything a trackbridge provider plugin needs besides its tracker logic:
//! the contract (`trackbridge:plugin@0.2.0`) as a Rust trait, a blocking HTTP
//! client over `wasi:http`, the host's log, clock, cache and integration
//! lookup, the integration's secrets by handle ([`secrets`]), JWTs the host
//! signs ([`jwt`]), random bytes, timestamp parsing ([`time`]), HMAC-SHA256
//! and constant-time comparison ([`crypto`]), and one error type.
//!
//! ## Contract version
//!
//! This SDK targets exactly one version of the plugin contract,
//! **`trackbridge:plugin@0.2.0`** ([`CONTRACT`]): the `provider-plugin` and
//! `notifier-plugin` worlds. A plugin built with it loads in any host that
//! accepts that contract version, whatever the plugin's own version. (Hosts
//! serve 0.1.0 components too; SDK 0.1 builds those.) The
//! contract's WIT ships inside this crate (`wit/v0.2.0/plugin.wit`; in the
//! trackbridge repository `wit/` is a link to the repository's own `wit/`,
//! which `cargo package` follows).
//!
//! A provider implements [`Provider`] and exports it with [`export_provider!`].
//! Build it with `cargo build --release --target wasm32-wasip2`; the `.wasm`
//! is a component the host loads.
//!
//! ```
//! use trackbridge_plugin_sdk::http::{Method, Request};
//! use trackbridge_plugin_sdk::provider::*;
//! use trackbridge_plugin_sdk::secrets::{self, HeaderFormat};
//! use trackbridge_plugin_sdk::{Error, Provider, Result, integration};
//!
//! struct Example;
//!
//! impl Provider for Example {
//!     fn describe() -> ProviderInfo {
//!         ProviderInfo {
//!             url_fields: vec!["base_url".into()],
//!             status_model: StatusModel::OpenClosed,
//!             ..ProviderInfo::new("example", env!("CARGO_PKG_VERSION"), "Example")
//!         }
//!     }
//!
//!     fn sync_status(issue: ExternalIssue, resolve: bool, _: Vec<StatusMapping>) -> Result<SyncOutcome> {
//!         let current = integration::require_current()?;
//!         let base = current.metadata_str("base_url").ok_or_else(|| Error::internal("no base_url"))?;
//!         let token = secrets::require("api_token")?;
//!         Request::new(Method::Post, format!("{base}/issues/{}/state", issue.key))
//!             .header("authorization", token.stand_in(&HeaderFormat::Prefixed("Bearer ".into())))
//!             .json(&serde_json::json!({ "closed": resolve }))?
//!             .send()?
//!             .error_for_status()?;
//!         Ok(SyncOutcome::changed())
//!     }
//! }
//!
//! trackbridge_plugin_sdk::export_provider!(Example);
//! ```
//!
//! Natively (for unit tests) the host imports are served by [`testing`], a
//! thread-local fake host with a scriptable HTTP handler.
//!
//! The trackbridge repository's `docs/writing-a-plugin.md` walks through a
//! plugin from an empty directory to one installed in a running host.
//!
//! A chat notifier (the `notifier-plugin` world) implements
//! [`Notifier`](notifier::Notifier) and exports it with [`export_notifier!`];
//! see [`notifier`]. Both worlds share the HTTP client, errors, logging and the
//! integration helpers.

// Lets the generated glue name this crate the same way from inside and outside.
extern crate self as trackbridge_plugin_sdk;

#[doc(hidden)]
pub mod bindings;
pub mod cache;
pub mod clock;
pub mod crypto;
pub mod error;
pub mod http;
pub mod integration;
pub mod json;
pub mod jwt;
pub mod log;
pub mod notifier;
pub mod provider;
pub mod random;
pub mod secrets;
mod sys;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
pub mod time;
pub mod url;
#[cfg(target_arch = "wasm32")]
mod wasi_http;

pub use error::{Error, Result};
pub use notifier::Notifier;
pub use provider::Provider;
pub use serde_json;

/// The plugin contract this SDK implements: the WIT package and version a
/// plugin built with it declares, and the one a host must accept to load it.
pub const CONTRACT: &str = "trackbridge:plugin@0.2.0";

#[doc(hidden)]
pub use bindings as __bindings;
#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

/// Export a [`Provider`] implementation as the component's `provider` interface.
/// Call it once, at the root of the provider crate.
///
/// Natively it only checks that the type implements [`Provider`]: there is no
/// component to export to.
#[macro_export]
macro_rules! export_provider {
    ($provider:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type __TrackbridgeProviderExport = $crate::provider::Adapter<$provider>;
            $crate::__bindings::__export_provider_world!(
                __TrackbridgeProviderExport with_types_in $crate::__bindings
            );
        };
        const _: fn() = || {
            fn assert_provider<P: $crate::Provider>() {}
            assert_provider::<$provider>();
        };
    };
}

/// Export a [`Notifier`] implementation as the component's `notifier`
/// interface (world `notifier-plugin`). Call it once, at the root of the
/// notifier crate.
///
/// Natively it only checks that the type implements [`Notifier`].
#[macro_export]
macro_rules! export_notifier {
    ($notifier:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type __TrackbridgeNotifierExport = $crate::notifier::NotifierAdapter<$notifier>;
            $crate::__bindings::notifier_world::__export_notifier_world!(
                __TrackbridgeNotifierExport with_types_in $crate::__bindings::notifier_world
            );
        };
        const _: fn() = || {
            fn assert_notifier<N: $crate::Notifier>() {}
            assert_notifier::<$notifier>();
        };
    };
}

#[cfg(test)]
mod contract_tests {
    #[test]
    fn contract_constant_names_the_bundled_package() {
        let wit = include_str!("../wit/v0.2.0/plugin.wit");
        let package = wit
            .lines()
            .find_map(|l| l.trim().strip_prefix("package "))
            .and_then(|l| l.strip_suffix(';'));
        assert_eq!(package, Some(super::CONTRACT));
        let described = env!("CARGO_PKG_DESCRIPTION");
        assert!(described.contains(super::CONTRACT), "{described}");
    }
}
