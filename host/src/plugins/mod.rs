//! The plugin runtime: WebAssembly components behind the WIT contract in
//! `wit/v0.1.0`, each call in a fresh sandboxed instance.
//!
//! - [`engine`] configures wasmtime (pooling allocator, epoch interruption) once.
//! - [`provider`] loads a provider component and calls its exports.
//! - [`call`] is the per-call store: WASI, the outbound-HTTP gate, limits, and
//!   the integration the call acts for.
//! - [`host_api`] implements the contract's `host` interface.
//! - [`registry`] holds the loaded plugins by provider name.

pub mod bindings;
mod cache;
mod call;
pub mod engine;
mod error;
mod host_api;
pub(crate) mod http_gate;
pub mod provider;
pub mod registry;

pub use cache::TtlCache;
pub use call::CallContext;
pub use error::{CallFailure, PluginCallError};
pub use provider::ProviderPlugin;
pub use registry::Registry;

use crate::store::Store;

/// What host imports reach: shared by every call of every plugin.
pub struct Services {
    pub store: Store,
    pub cache: TtlCache,
    /// The base URL trackers use to reach this host, without a trailing `/`.
    pub public_url: String,
}
