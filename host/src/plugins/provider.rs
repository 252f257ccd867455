//! A loaded provider component and its exports as async Rust calls.

use std::path::Path;
use std::sync::Arc;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store, Trap};

use super::Services;
use super::bindings::provider_types::{
    ExternalIssue, InboundEvent, IncomingRequest, IntegrationData, ProviderInfo, Rejection,
    StatusMapping, SyncOutcome, VerifiedWebhook,
};
use super::bindings::types::PluginError;
use super::bindings::{ProviderPlugin as Bindings, ProviderPluginPre};
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

/// A provider plugin ready to serve: compiled, linked and pre-instantiated once;
/// every call gets a fresh instance from the pool.
pub struct ProviderPlugin {
    pub info: ProviderInfo,
    pre: ProviderPluginPre<CallState>,
    engine: Engine,
    services: Arc<Services>,
    limits: CallLimits,
}

/// The result of a call that may have selected an integration.
pub struct WithIntegration<T> {
    pub value: T,
    pub integration: Option<Integration>,
}

/// Errors while loading a plugin file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("{path}: `describe` failed: {source}")]
    Describe {
        path: String,
        source: PluginCallError,
    },
}

fn linker(engine: &Engine) -> wasmtime::Result<Linker<CallState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    Bindings::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
    Ok(linker)
}

/// Run one export in a fresh instance: instantiate from the pool, call, and
/// bound the whole call by the wall-clock budget (the epoch deadline bounds the
/// guest's own computing; this bounds waiting on the network).
macro_rules! call_export {
    ($self:ident, $ctx:expr, $export:literal, |$b:ident, $s:ident| $call:expr) => {{
        let mut store = $self.new_store($ctx);
        let run = async {
            let $b = $self.pre.instantiate_async(&mut store).await?;
            let $s = &mut store;
            $call.await
        };
        let result = tokio::time::timeout($self.limits.timeout, run).await;
        $self.finish($export, &store, result)
    }};
}

impl ProviderPlugin {
    /// Compile, type-check against the provider world, and ask the plugin to
    /// describe itself.
    pub async fn load(
        engine: &Engine,
        path: &Path,
        services: Arc<Services>,
        limits: CallLimits,
    ) -> Result<ProviderPlugin, LoadError> {
        let shown = path.display().to_string();
        let invalid = |message: String| LoadError::Invalid {
            path: shown.clone(),
            message,
        };
        let component = Component::from_file(engine, path)
            .map_err(|e| invalid(format!("not a valid component: {e:#}")))?;
        let linker = linker(engine).map_err(|e| invalid(format!("linker setup: {e:#}")))?;
        let instance_pre = linker.instantiate_pre(&component).map_err(|e| {
            invalid(format!(
                "imports something this host does not provide (contract versions {:?}): {e:#}",
                super::bindings::CONTRACT_VERSIONS
            ))
        })?;
        let pre = ProviderPluginPre::new(instance_pre).map_err(|e| {
            invalid(format!(
                "does not export the provider world (trackbridge:plugin/provider@0.1.0): {e:#}"
            ))
        })?;
        let mut plugin = ProviderPlugin {
            info: ProviderInfo {
                name: path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                version: "?".into(),
                display_name: String::new(),
                routes: Vec::new(),
                config_schema: String::new(),
                url_fields: Vec::new(),
                allowed_host_patterns: Vec::new(),
            },
            pre,
            engine: engine.clone(),
            services,
            limits,
        };
        let info = plugin
            .describe()
            .await
            .map_err(|source| LoadError::Describe {
                path: shown.clone(),
                source,
            })?;
        plugin.info = info;
        Ok(plugin)
    }

    pub fn name(&self) -> &str {
        &self.info.name
    }

    pub fn version(&self) -> &str {
        &self.info.version
    }

    /// A fresh store for one call, with the call limits applied.
    fn new_store(&self, ctx: CallContext) -> Store<CallState> {
        let state = CallState::new(
            &self.info.name,
            &self.info.version,
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
    fn finish<T>(
        &self,
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
            plugin: self.info.name.clone(),
            version: self.info.version.clone(),
            export,
            failure,
        };
        tracing::warn!(error = %error, "plugin call failed");
        Err(error)
    }

    /// Flatten a contract-level `result` into the call error.
    fn flatten<T>(
        &self,
        export: &'static str,
        r: Result<WithIntegration<Result<T, PluginError>>, PluginCallError>,
    ) -> Result<WithIntegration<T>, PluginCallError> {
        let r = r?;
        match r.value {
            Ok(value) => Ok(WithIntegration {
                value,
                integration: r.integration,
            }),
            Err(e) => Err(PluginCallError {
                plugin: self.info.name.clone(),
                version: self.info.version.clone(),
                export,
                failure: CallFailure::Plugin(e),
            }),
        }
    }

    pub async fn describe(&self) -> Result<ProviderInfo, PluginCallError> {
        let r = call_export!(self, CallContext::default(), "describe", |b, s| b
            .trackbridge_plugin_provider()
            .call_describe(s))?;
        Ok(r.value)
    }

    /// Installation: outbound calls may reach `hosts` (from the input's URL fields).
    pub async fn build_integration(
        &self,
        input: String,
        hosts: Vec<String>,
    ) -> Result<IntegrationData, PluginCallError> {
        let ctx = CallContext {
            integration: None,
            extra_hosts: hosts,
        };
        let r = call_export!(self, ctx, "build-integration", |b, s| b
            .trackbridge_plugin_provider()
            .call_build_integration(s, &input));
        Ok(self.flatten("build-integration", r)?.value)
    }

    /// Remove what the installation created at the tracker.
    pub async fn uninstall(&self, integration: Integration) -> Result<(), PluginCallError> {
        let r = call_export!(self, for_integration(integration), "uninstall", |b, s| b
            .trackbridge_plugin_provider()
            .call_uninstall(s));
        Ok(self.flatten("uninstall", r)?.value)
    }

    /// Verify an incoming request; on success the integration it selected comes back.
    pub async fn verify_webhook(
        &self,
        request: &IncomingRequest,
    ) -> Result<WithIntegration<Result<VerifiedWebhook, Rejection>>, PluginCallError> {
        call_export!(self, CallContext::default(), "verify-webhook", |b, s| b
            .trackbridge_plugin_provider()
            .call_verify_webhook(s, request))
    }

    pub async fn handle_webhook(
        &self,
        integration: Integration,
        request: &IncomingRequest,
    ) -> Result<Vec<InboundEvent>, PluginCallError> {
        let r = call_export!(
            self,
            for_integration(integration),
            "handle-webhook",
            |b, s| b
                .trackbridge_plugin_provider()
                .call_handle_webhook(s, request)
        );
        Ok(self.flatten("handle-webhook", r)?.value)
    }

    pub async fn sync_status(
        &self,
        integration: Integration,
        issue: &ExternalIssue,
        resolve: bool,
        mappings: &[StatusMapping],
    ) -> Result<SyncOutcome, PluginCallError> {
        let r = call_export!(self, for_integration(integration), "sync-status", |b, s| b
            .trackbridge_plugin_provider()
            .call_sync_status(s, issue, resolve, mappings));
        Ok(self.flatten("sync-status", r)?.value)
    }

    pub async fn sync_assignee(
        &self,
        integration: Integration,
        issue: &ExternalIssue,
        emails: Option<&[String]>,
    ) -> Result<SyncOutcome, PluginCallError> {
        let r = call_export!(
            self,
            for_integration(integration),
            "sync-assignee",
            |b, s| b
                .trackbridge_plugin_provider()
                .call_sync_assignee(s, issue, emails)
        );
        Ok(self.flatten("sync-assignee", r)?.value)
    }
}

fn for_integration(integration: Integration) -> CallContext {
    CallContext {
        integration: Some(integration),
        extra_hosts: Vec::new(),
    }
}
