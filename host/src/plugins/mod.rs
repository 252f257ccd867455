//! The plugin runtime: WebAssembly components behind the WIT contract in
//! `wit/v0.1.0`, each call in a fresh sandboxed instance.
//!
//! - [`engine`] configures wasmtime (pooling allocator, epoch interruption) once.
//! - [`registry`] loads components, finds the world each implements, and holds
//!   them by name; [`provider`] and [`notifier`] call their exports.
//! - [`runtime`] sets up each call and turns traps and timeouts into errors.
//! - [`call`] is the per-call store: WASI, the outbound-HTTP gate, limits, and
//!   the integration the call acts for.
//! - [`host_api`] implements the contract's `host` interface.

pub mod bindings;
mod cache;
mod call;
pub mod engine;
mod error;
mod host_api;
pub(crate) mod http_gate;
pub mod inspect;
pub mod notifier;
pub mod provider;
pub mod registry;
pub mod runtime;

pub use cache::TtlCache;
pub use call::CallContext;
pub use error::{CallFailure, PluginCallError};
pub use inspect::{Inspection, inspect};
pub use notifier::NotifierPlugin;
pub use provider::ProviderPlugin;
pub use registry::{Plugin, Registry};
pub use runtime::{CallLimits, Runtime};

use crate::store::Store;

/// What host imports reach: shared by every call of every plugin.
pub struct Services {
    pub store: Store,
    pub cache: TtlCache,
    /// The base URL trackers use to reach this host, without a trailing `/`.
    pub public_url: String,
}
