//! The plugin runtime: WebAssembly components behind the WIT contract in
//! `wit/` (versions 0.1.0 and 0.2.0, see [`contract`]), each call in a fresh
//! sandboxed instance.
//!
//! - [`engine`] configures wasmtime (pooling allocator, epoch interruption) once.
//! - [`loader`] turns module bytes into a plugin: compiled (or taken from the
//!   [`artifacts`] cache), checked against the contract's worlds, described.
//! - [`registry`] holds the version of each plugin that serves, switched
//!   atomically; [`swap`] installs, rolls back and converges versions across
//!   processes, with [`health`] watching each new version's first calls.
//! - [`provider`] and [`notifier`] call the exports of the two worlds.
//! - [`runtime`] sets up each call and turns traps and timeouts into errors.
//! - [`call`] is the per-call store: WASI, the outbound-HTTP gate, limits, and
//!   the integration the call acts for.
//! - [`host_api`] implements the contract's `host` interface, [`secrets_api`]
//!   its `secrets` (0.2.0), with [`stand_in`] for secrets in outbound requests.

pub mod artifacts;
mod cache;
mod call;
pub mod call_metrics;
pub mod config_schema;
pub mod conformance;
pub mod contract;
pub mod describe_check;
pub mod engine;
mod error;
pub mod guest;
pub mod health;
mod host_api;
pub mod http_gate;
pub mod inspect;
pub mod loader;
mod log_limit;
mod module_info;
pub mod notifier;
pub mod outbound;
pub mod provider;
pub mod registry;
pub mod runtime;
pub mod scope;
pub mod secret_ops;
mod secrets_api;
mod stand_in;
pub mod swap;

pub use cache::TtlCache;
pub use call::CallContext;
pub use error::{CallFailure, PluginCallError};
pub use inspect::{Inspection, inspect};
pub use loader::LoadError;
pub use log_limit::LogLimiter;
pub use module_info::ModuleInfo;
pub use notifier::NotifierPlugin;
pub use provider::ProviderPlugin;
pub use registry::{Plugin, Registry};
pub use runtime::{CallLimits, Runtime};
pub use swap::{PluginManager, SwapError, SwapSettings};

use std::sync::Arc;

use crate::metrics::Metrics;
use crate::store::Store;

/// What host imports reach: shared by every call of every plugin.
pub struct Services {
    pub store: Store,
    pub cache: TtlCache,
    /// The base URL trackers use to reach this host, without a trailing `/`.
    pub public_url: String,
    pub metrics: Arc<Metrics>,
    pub log_limiter: LogLimiter,
    /// Which addresses outbound requests may connect to.
    pub addresses: Arc<outbound::AddressPolicy>,
}
