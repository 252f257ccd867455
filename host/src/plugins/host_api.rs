//! The contract's `host` interface, as seen from inside a plugin.

use std::time::Duration;

use super::call::CallState;
use super::contract::latest::trackbridge::plugin::host::{Host, Level};
use super::contract::provider_types::Host as ProviderTypesHost;
use super::contract::types::{Host as TypesHost, Integration as WitIntegration};
use super::log_limit::Verdict;
use crate::metrics::PluginLabels;
use crate::store::Integration;

/// A host service (the database) failed during a plugin call; the call is
/// aborted so the caller can answer "try again later" instead of a wrong "no".
#[derive(Debug, thiserror::Error)]
#[error("host service unavailable: {0}")]
pub struct HostUnavailable(pub String);

/// Longest log line kept from a plugin; the rest is cut.
const MAX_LOG_BYTES: usize = 4096;

fn to_wit(i: &Integration) -> WitIntegration {
    WitIntegration {
        id: i.id,
        external_id: i.external_id.clone(),
        name: i.name.clone(),
        metadata: i.metadata.clone(),
    }
}

impl TypesHost for CallState {}
impl ProviderTypesHost for CallState {}
impl super::contract::notifier::notifier_types::Host for CallState {}

impl Host for CallState {
    async fn log(&mut self, level: Level, message: String) {
        let mut message = message;
        if message.len() > MAX_LOG_BYTES {
            let mut cut = MAX_LOG_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        let dropped = match self.services.log_limiter.check(&self.plugin) {
            Verdict::Emit { dropped } => dropped,
            Verdict::Drop => {
                self.services
                    .metrics
                    .plugin_log_dropped
                    .get_or_create(&PluginLabels {
                        plugin: self.plugin.clone(),
                    })
                    .inc();
                return;
            }
        };
        let integration = self.integration.as_ref().map(|i| i.id);
        let request_id = self.request_id.as_str();
        macro_rules! emit {
            ($lvl:ident) => {
                if dropped > 0 {
                    tracing::$lvl!(target: "plugin", plugin = %self.plugin, version = %self.version, request_id, ?integration, dropped_before = dropped, "{message}")
                } else {
                    tracing::$lvl!(target: "plugin", plugin = %self.plugin, version = %self.version, request_id, ?integration, "{message}")
                }
            };
        }
        match level {
            Level::Trace => emit!(trace),
            Level::Debug => emit!(debug),
            Level::Info => emit!(info),
            Level::Warn => emit!(warn),
            Level::Error => emit!(error),
        }
    }

    async fn now_ms(&mut self) -> u64 {
        crate::time::now_ms().max(0) as u64
    }

    async fn current_integration(&mut self) -> Option<WitIntegration> {
        self.integration.as_ref().map(to_wit)
    }

    async fn select_integration(
        &mut self,
        external_id: String,
    ) -> wasmtime::Result<Option<WitIntegration>> {
        self.select_shown(&external_id, to_wit).await
    }

    async fn lookup_integration(
        &mut self,
        external_id: String,
    ) -> wasmtime::Result<Option<WitIntegration>> {
        self.lookup_shown(&external_id, to_wit).await
    }

    async fn public_url(&mut self) -> String {
        self.services.public_url.clone()
    }

    async fn cache_get(&mut self, key: String) -> Option<Vec<u8>> {
        self.cache_get_value(&key)
    }

    async fn cache_set(&mut self, key: String, value: Vec<u8>, ttl_secs: u32) {
        self.cache_set_value(&key, value, ttl_secs)
    }
}

/// What every contract version's `host` does the same way.
impl CallState {
    /// This plugin's integration with `external_id`; a database failure traps.
    /// The future holds no borrow of the call's state (which is not `Sync`).
    pub(super) fn find_integration(
        &self,
        external_id: &str,
    ) -> impl Future<Output = wasmtime::Result<Option<Integration>>> + Send + 'static {
        let (services, plugin) = (self.services.clone(), self.plugin.clone());
        let external_id = external_id.to_owned();
        async move {
            services
                .store
                .integration_by_external_id(&plugin, &external_id)
                .await
                .map_err(|e| wasmtime::Error::new(HostUnavailable(e.to_string())))
        }
    }

    /// `select-integration`: this plugin's integration with `external_id`
    /// becomes the current one; `show` is how the caller's contract version
    /// shows it.
    pub(super) async fn select_shown<T>(
        &mut self,
        external_id: &str,
        show: fn(&Integration) -> T,
    ) -> wasmtime::Result<Option<T>> {
        let found = self.find_integration(external_id).await?;
        Ok(found.map(|integration| {
            let shown = show(&integration);
            self.select(integration);
            shown
        }))
    }

    /// `lookup-integration`: the same, without making it current.
    pub(super) async fn lookup_shown<T>(
        &mut self,
        external_id: &str,
        show: fn(&Integration) -> T,
    ) -> wasmtime::Result<Option<T>> {
        Ok(self.find_integration(external_id).await?.as_ref().map(show))
    }

    pub(super) fn cache_get_value(&self, key: &str) -> Option<Vec<u8>> {
        let integration = self.integration.as_ref().map(|i| i.id);
        self.services.cache.get(&self.plugin, integration, key)
    }

    pub(super) fn cache_set_value(&self, key: &str, value: Vec<u8>, ttl_secs: u32) {
        let integration = self.integration.as_ref().map(|i| i.id);
        self.services.cache.set(
            &self.plugin,
            integration,
            key,
            value,
            Duration::from_secs(u64::from(ttl_secs)),
        );
    }
}
