//! A provider plugin: its exports as async Rust calls.

use std::sync::Arc;

use super::call::CallContext;
use super::contract::ProviderPre;
use super::contract::provider_types::{
    ExternalIssue, InboundEvent, IncomingRequest, IntegrationData, ProviderInfo, Rejection,
    StatusMapping, SyncOutcome, UserRef, VerifiedWebhook,
};
use super::error::PluginCallError;
use super::health::CallStats;
use super::module_info::ModuleInfo;
use super::runtime::{Runtime, WithIntegration, call_export, flatten};
use crate::store::Integration;

/// A provider ready to serve: compiled, linked and pre-instantiated once; every
/// call gets a fresh instance from the pool.
pub struct ProviderPlugin {
    pub info: ProviderInfo,
    pub module: ModuleInfo,
    pub stats: Arc<CallStats>,
    /// This version's call metrics.
    pub(super) metrics: Arc<super::call_metrics::CallMetrics>,
    pub(super) pre: ProviderPre,
    pub(super) runtime: Arc<Runtime>,
}

impl ProviderPlugin {
    pub fn name(&self) -> &str {
        &self.info.name
    }

    pub fn version(&self) -> &str {
        &self.info.version
    }

    fn flatten<T>(
        &self,
        export: &'static str,
        r: Result<WithIntegration<Result<T, super::contract::types::PluginError>>, PluginCallError>,
    ) -> Result<T, PluginCallError> {
        Ok(flatten(export, r, &self.info.name, &self.info.version)?.value)
    }

    pub async fn describe(&self) -> Result<ProviderInfo, PluginCallError> {
        let this = self;
        let r = call_export!(this, CallContext::default(), "describe", |b, s| b
            .describe(s))?;
        Ok(r.value)
    }

    /// Installation: outbound calls may reach `hosts` (from the input's URL fields).
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
        self.flatten("build-integration", r)
    }

    /// Remove what the installation created at the tracker.
    pub async fn uninstall(&self, integration: Integration) -> Result<(), PluginCallError> {
        let this = self;
        let r = call_export!(
            this,
            CallContext::for_integration(integration),
            "uninstall",
            |b, s| b.uninstall(s)
        );
        self.flatten("uninstall", r)
    }

    /// Verify an incoming request; on success the integration it selected comes back.
    pub async fn verify_webhook(
        &self,
        request: &IncomingRequest,
    ) -> Result<WithIntegration<Result<VerifiedWebhook, Rejection>>, PluginCallError> {
        let this = self;
        let request = request.clone();
        call_export!(this, CallContext::default(), "verify-webhook", |b, s| b
            .verify_webhook(s, &request))
    }

    pub async fn handle_webhook(
        &self,
        integration: Integration,
        request: &IncomingRequest,
    ) -> Result<Vec<InboundEvent>, PluginCallError> {
        let this = self;
        let request = request.clone();
        let r = call_export!(
            this,
            CallContext::for_integration(integration),
            "handle-webhook",
            |b, s| b.handle_webhook(s, &request)
        );
        self.flatten("handle-webhook", r)
    }

    pub async fn sync_status(
        &self,
        integration: Integration,
        issue: &ExternalIssue,
        resolve: bool,
        mappings: &[StatusMapping],
    ) -> Result<SyncOutcome, PluginCallError> {
        let this = self;
        let (issue, mappings) = (issue.clone(), mappings.to_vec());
        let r = call_export!(
            this,
            CallContext::for_integration(integration),
            "sync-status",
            |b, s| b.sync_status(s, &issue, resolve, &mappings)
        );
        self.flatten("sync-status", r)
    }

    /// Periodic upkeep of `integration` (contract 0.2.0).
    pub async fn maintain(&self, integration: Integration) -> Result<(), PluginCallError> {
        let this = self;
        let r = call_export!(
            this,
            CallContext::for_integration(integration),
            "maintain",
            |b, s| b.maintain(s)
        );
        self.flatten("maintain", r)
    }

    pub async fn sync_assignee(
        &self,
        integration: Integration,
        issue: &ExternalIssue,
        user: Option<&UserRef>,
    ) -> Result<SyncOutcome, PluginCallError> {
        let this = self;
        let (issue, user) = (issue.clone(), user.cloned());
        let r = call_export!(
            this,
            CallContext::for_integration(integration),
            "sync-assignee",
            |b, s| b.sync_assignee(s, &issue, user.as_ref())
        );
        self.flatten("sync-assignee", r)
    }
}
