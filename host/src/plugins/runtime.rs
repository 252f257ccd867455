//! What every plugin call shares, whatever the world: the engine, the host
//! services, the limits, and the way a call is set up and its outcome judged.

use std::sync::Arc;

use std::sync::atomic::{AtomicBool, Ordering};

use wasmtime::{Engine, Store, Trap, UpdateDeadline};

use super::Services;
use super::artifacts::ArtifactCache;
use super::call::{CallContext, CallState};
use super::contract::types::PluginError;
use super::error::{CallFailure, PluginCallError};
use super::health::CallStats;
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
    pub artifacts: ArtifactCache,
    /// One permit per instance the pool can hold: a burst of calls queues
    /// here (within each call's time budget) instead of being refused.
    pub slots: tokio::sync::Semaphore,
    /// Where calls that run past their first epoch tick go on.
    pub guest: super::guest::GuestRuntime,
    /// A runtime without a host keeps its scratch database here, removed
    /// with the runtime.
    pub scratch: Option<tempfile::TempDir>,
}

/// The result of a call, with the integration it acted for at the end (a
/// webhook verification selects one).
pub struct WithIntegration<T> {
    pub value: T,
    pub integration: Option<Integration>,
}

/// Run one export of `$plugin` in a fresh instance: wait for a slot in the
/// pool, instantiate, call, and bound the whole call — waiting included — by
/// the wall-clock budget (the epoch callback stops the guest's own computing
/// at the same deadline; this bounds waiting on the network and on other
/// calls). The call owns everything it touches, so that it can move to the
/// guest runtime ([`super::guest`]) when it runs long; `$call` may use only
/// owned values of the caller, which it moves.
macro_rules! call_export {
    ($plugin:ident, $ctx:expr, $export:literal, |$b:ident, $s:ident| $call:expr) => {{
        let runtime = $plugin.runtime.clone();
        let pre = $plugin.pre.clone();
        let (name, version) = ($plugin.info.name.clone(), $plugin.info.version.clone());
        let stats = $plugin.stats.clone();
        let metrics = $plugin.metrics.clone();
        let ctx = $ctx;
        // Taken here, in the caller's task: the call may end on another.
        let request_id = crate::plugins::scope::request_id();
        let moved = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let first_tick_used = moved.clone();
        let call = async move {
            let started = std::time::Instant::now();
            let deadline = tokio::time::Instant::now() + runtime.limits.timeout;
            // Declared before the store, so the slot is given back only after
            // the store (and the pooled instance it holds) is gone.
            let slot = tokio::time::timeout_at(deadline, runtime.slots.acquire())
                .await
                .ok();
            let mut store = runtime.new_store(
                &name,
                &version,
                ctx,
                request_id,
                deadline.into_std(),
                first_tick_used,
            );
            let result = match &slot {
                None => None,
                Some(Err(closed)) => Some(Err(wasmtime::Error::msg(closed.to_string()))),
                Some(Ok(_)) => {
                    let _in_flight = metrics.in_flight();
                    let run = async {
                        let $b = pre.instantiate_async(&mut store).await?;
                        let $s = &mut store;
                        $call.await
                    };
                    tokio::time::timeout_at(deadline, run).await.ok()
                }
            };
            runtime.finish(
                crate::plugins::runtime::Finished {
                    plugin: &name,
                    version: &version,
                    export: $export,
                    stats: &stats,
                    metrics: &metrics,
                    started,
                },
                &store,
                result,
            )
        };
        let call = tracing::Instrument::instrument(call, tracing::Span::current());
        let result = $plugin.runtime.guest.run(moved, call).await;
        crate::plugins::scope::served_by(&$plugin.info.name, &$plugin.info.version);
        result
    }};
}
pub(crate) use call_export;

/// Which call finished, for [`Runtime::finish`].
pub struct Finished<'a> {
    pub plugin: &'a str,
    pub version: &'a str,
    pub export: &'static str,
    pub stats: &'a CallStats,
    pub metrics: &'a super::call_metrics::CallMetrics,
    pub started: std::time::Instant,
}

impl Runtime {
    /// A fresh store for one call, with the call limits applied: the memory
    /// cap, and at each epoch tick of guest computing either a yield to the
    /// executor (`first_tick_used` tells the caller the call runs long) or,
    /// past `deadline`, an interrupt.
    pub fn new_store(
        &self,
        plugin: &str,
        version: &str,
        ctx: CallContext,
        request_id: String,
        deadline: std::time::Instant,
        first_tick_used: Arc<AtomicBool>,
    ) -> Store<CallState> {
        let state = CallState::new(
            plugin,
            version,
            request_id,
            self.services.clone(),
            ctx,
            self.limits.memory_bytes,
        );
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if std::time::Instant::now() >= deadline {
                return Ok(UpdateDeadline::Interrupt);
            }
            first_tick_used.store(true, Ordering::Release);
            Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(tokio::task::yield_now()),
            ))
        });
        store
    }

    /// Turn the outcome of a call into a value or an error naming the plugin,
    /// its version, the export and the cause; count it.
    pub fn finish<T: CallValue>(
        &self,
        call: Finished<'_>,
        store: &Store<CallState>,
        result: Option<wasmtime::Result<T>>,
    ) -> Result<WithIntegration<T>, PluginCallError> {
        // `None`: the time budget ran out.
        let failure = match result {
            Some(Ok(value)) => {
                match value.plugin_error() {
                    Some(e) => {
                        let error = PluginCallError {
                            plugin: call.plugin.to_owned(),
                            version: call.version.to_owned(),
                            export: call.export,
                            failure: CallFailure::Plugin(e.clone()),
                        };
                        self.count(&call, Some(&error));
                    }
                    None => self.count(&call, None),
                }
                return Ok(WithIntegration {
                    value,
                    integration: store.data().integration().cloned(),
                });
            }
            None => CallFailure::Timeout,
            Some(Err(err)) => {
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
            plugin: call.plugin.to_owned(),
            version: call.version.to_owned(),
            export: call.export,
            failure,
        };
        self.count(&call, Some(&error));
        tracing::warn!(error = %error, "plugin call failed");
        Err(error)
    }

    /// Count a finished call: metrics, and the version's probation.
    pub fn count(&self, call: &Finished<'_>, error: Option<&PluginCallError>) {
        let elapsed = call.started.elapsed();
        tracing::debug!(
            plugin = call.plugin,
            version = call.version,
            export = call.export,
            elapsed_us = elapsed.as_micros() as u64,
            ok = error.is_none(),
            "plugin call"
        );
        call.metrics
            .count(call.export, elapsed.as_secs_f64(), error);
        call.stats
            .record(error.map(|e| (&e.failure, e.to_string())));
    }
}

/// What an export returns, as far as counting goes: the plugin's own error,
/// when it answered with one.
pub trait CallValue {
    fn plugin_error(&self) -> Option<&PluginError>;
}

impl<T> CallValue for Result<T, PluginError> {
    fn plugin_error(&self) -> Option<&PluginError> {
        self.as_ref().err()
    }
}

impl CallValue for super::contract::provider_types::ProviderInfo {
    fn plugin_error(&self) -> Option<&PluginError> {
        None
    }
}

/// A rejected webhook is the plugin doing its job, not failing.
impl CallValue
    for Result<
        super::contract::provider_types::VerifiedWebhook,
        super::contract::provider_types::Rejection,
    >
{
    fn plugin_error(&self) -> Option<&PluginError> {
        None
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
