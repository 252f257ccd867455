//! A notifier plugin (e.g. Discord): its exports as async Rust calls.

use std::sync::Arc;

use super::call::CallContext;
use super::contract::NotifierPre;
use super::contract::notifier::notifier_types::{Delivered, GroupEvent, GroupSummary};
use super::contract::provider_types::{IntegrationData, ProviderInfo};
use super::error::PluginCallError;
use super::health::CallStats;
use super::module_info::ModuleInfo;
use super::runtime::{Runtime, call_export, flatten};
use crate::store::Integration;

pub struct NotifierPlugin {
    pub info: ProviderInfo,
    pub module: ModuleInfo,
    pub stats: Arc<CallStats>,
    /// This version's call metrics.
    pub(super) metrics: Arc<super::call_metrics::CallMetrics>,
    pub(super) pre: NotifierPre,
    pub(super) runtime: Arc<Runtime>,
}

impl NotifierPlugin {
    pub fn name(&self) -> &str {
        &self.info.name
    }

    pub async fn describe(&self) -> Result<ProviderInfo, PluginCallError> {
        let this = self;
        let r = call_export!(this, CallContext::default(), "describe", |b, s| b
            .describe(s))?;
        Ok(r.value)
    }

    pub async fn build_integration(
        &self,
        input: String,
        hosts: Vec<String>,
    ) -> Result<IntegrationData, PluginCallError> {
        let this = self;
        let ctx = CallContext {
            integration: None,
            extra_hosts: hosts,
            host_patterns: self.info.allowed_host_patterns.clone(),
        };
        let r = call_export!(this, ctx, "build-integration", |b, s| b
            .build_integration(s, &input));
        Ok(flatten("build-integration", r, &self.info.name, &self.info.version)?.value)
    }

    pub async fn notify(
        &self,
        integration: Integration,
        group: &GroupSummary,
        event: GroupEvent,
        previous: Option<&str>,
    ) -> Result<Delivered, PluginCallError> {
        let this = self;
        let (group, previous) = (group.clone(), previous.map(str::to_owned));
        let r = call_export!(
            this,
            CallContext::for_integration(integration),
            "notify",
            |b, s| b.notify(s, &group, event, previous.as_deref())
        );
        Ok(flatten("notify", r, &self.info.name, &self.info.version)?.value)
    }
}
