//! # trackbridge plugin SDK
//!
//! Everything a trackbridge provider plugin needs besides its tracker logic:
//! the contract (`trackbridge:plugin@0.1.0`) as a Rust trait, a blocking HTTP
//! client over `wasi:http`, the host's log, clock, cache and integration
//! lookup, random bytes, and one error type.
//!
//! A provider implements [`Provider`] and exports it with [`export_provider!`].
//! Build it with `cargo build --release --target wasm32-wasip2`; the `.wasm`
//! is a component the host loads.
//!
//! ```
//! use trackbridge_plugin_sdk::http::{Method, Request};
//! use trackbridge_plugin_sdk::provider::*;
//! use trackbridge_plugin_sdk::{Error, Provider, Result, integration};
//!
//! struct Example;
//!
//! impl Provider for Example {
//!     fn describe() -> ProviderInfo {
//!         ProviderInfo {
//!             name: "example".into(),
//!             version: env!("CARGO_PKG_VERSION").into(),
//!             display_name: "Example".into(),
//!             routes: vec![],
//!             config_schema: r#"{"type":"object"}"#.into(),
//!             url_fields: vec!["base_url".into()],
//!             allowed_host_patterns: vec![],
//!         }
//!     }
//!
//!     fn sync_status(issue: ExternalIssue, resolve: bool, _: Vec<StatusMapping>) -> Result<SyncOutcome> {
//!         let current = integration::require_current()?;
//!         let base = current.metadata_str("base_url").ok_or_else(|| Error::internal("no base_url"))?;
//!         Request::new(Method::Post, format!("{base}/issues/{}/state", issue.key))
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
pub mod error;
pub mod http;
pub mod integration;
pub mod json;
pub mod log;
pub mod notifier;
pub mod provider;
pub mod random;
pub mod secret;
mod sys;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
pub mod url;
#[cfg(target_arch = "wasm32")]
mod wasi_http;

pub use error::{Error, Result};
pub use notifier::Notifier;
pub use provider::Provider;
pub use serde_json;

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
