//! What every plugin call shares, whatever the world: the engine, the host
//! services, the limits, and the way a call is set up and its outcome judged.

use std::sync::Arc;

use wasmtime::{Engine, Store, Trap};

use super::Services;
use super::bindings::types::PluginError;
use super::call::{CallContext, CallState};
use super::engine::EPOCH_TICK;
use super::error::{CallFailure, PluginCallError};
use super::host_api::HostUnavailable;
use crate::store::Integration;

/// Limits applied to every call.
#[derive(Clone, Copy, Debug)]
pub struct CallLimits {
    pub timeout: std::time::Duration,
    pub memory_bytes: usize,
}

pub struct Runtime {
    pub engine: Engine,
    pub services: Arc<Services>,
    pub limits: CallLimits,
}

/// The result of a call, with the integration it acted for at the end (a
/// webhook verification selects one).
pub struct WithIntegration<T> {
    pub value: T,
    pub integration: Option<Integration>,
}

/// Run one export of `$plugin` in a fresh instance: instantiate from the pool,
/// call, and bound the whole call by the wall-clock budget (the epoch deadline
/// bounds the guest's own computing; this bounds waiting on the network).
macro_rules! call_export {
    ($plugin:ident, $ctx:expr, $export:literal, |$b:ident, $s:ident| $call:expr) => {{
        let mut store = $plugin
            .runtime
            .new_store(&$plugin.info.name, &$plugin.info.version, $ctx);
        let run = async {
            let $b = $plugin.pre.instantiate_async(&mut store).await?;
            let $s = &mut store;
            $call.await
        };
        let result = tokio::time::timeout($plugin.runtime.limits.timeout, run).await;
        $plugin.runtime.finish(
            &$plugin.info.name,
            &$plugin.info.version,
            $export,
            &store,
            result,
        )
    }};
}
pub(crate) use call_export;

impl Runtime {
    /// A fresh store for one call, with the call limits applied.
    pub fn new_store(&self, plugin: &str, version: &str, ctx: CallContext) -> Store<CallState> {
        let state = CallState::new(
            plugin,
            version,
            self.services.clone(),
            ctx,
            self.limits.memory_bytes,
        );
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        let ticks = (self.limits.timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        store
    }

    /// Turn the outcome of a call into a value or an error naming the plugin,
    /// its version, the export and the cause.
    pub fn finish<T>(
        &self,
        plugin: &str,
        version: &str,
        export: &'static str,
        store: &Store<CallState>,
        result: Result<wasmtime::Result<T>, tokio::time::error::Elapsed>,
    ) -> Result<WithIntegration<T>, PluginCallError> {
        let failure = match result {
            Ok(Ok(value)) => {
                return Ok(WithIntegration {
                    value,
                    integration: store.data().integration().cloned(),
                });
            }
            Err(_) => CallFailure::Timeout,
            Ok(Err(err)) => {
                if let Some(host) = err.downcast_ref::<HostUnavailable>() {
                    CallFailure::Host(host.to_string())
                } else if matches!(err.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
                    CallFailure::Timeout
                } else {
                    CallFailure::Trap {
                        cause: format!("{err:#}"),
                        guest_output: store.data().guest_output(),
                    }
                }
            }
        };
        let error = PluginCallError {
            plugin: plugin.to_owned(),
            version: version.to_owned(),
            export,
            failure,
        };
        tracing::warn!(error = %error, "plugin call failed");
        Err(error)
    }
}

/// Flatten a contract-level `result` into the call error.
pub fn flatten<T>(
    export: &'static str,
    r: Result<WithIntegration<Result<T, PluginError>>, PluginCallError>,
    plugin: &str,
    version: &str,
) -> Result<WithIntegration<T>, PluginCallError> {
    let r = r?;
    match r.value {
        Ok(value) => Ok(WithIntegration {
            value,
            integration: r.integration,
        }),
        Err(e) => Err(PluginCallError {
            plugin: plugin.to_owned(),
            version: version.to_owned(),
            export,
            failure: CallFailure::Plugin(e),
        }),
    }
}
