//! The Jira Cloud provider, unchanged but for its version: what an operator
//! swapping in a fixed `jira` plugin would install. Every export delegates to
//! the real provider.

use trackbridge_plugin_jira::Jira;
use trackbridge_plugin_sdk::provider::*;
use trackbridge_plugin_sdk::serde_json::Value;
use trackbridge_plugin_sdk::{Provider, Result};

pub const VERSION: &str = "0.2.0-next";

pub struct JiraNext;

impl Provider for JiraNext {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            version: VERSION.into(),
            ..Jira::describe()
        }
    }

    fn build_integration(input: Value) -> Result<IntegrationData> {
        Jira::build_integration(input)
    }

    fn verify_webhook(request: &IncomingRequest) -> Result<VerifiedWebhook, Rejection> {
        Jira::verify_webhook(request)
    }

    fn handle_webhook(request: &IncomingRequest) -> Result<Vec<InboundEvent>> {
        Jira::handle_webhook(request)
    }

    fn sync_status(
        issue: ExternalIssue,
        resolve: bool,
        mappings: Vec<StatusMapping>,
    ) -> Result<SyncOutcome> {
        Jira::sync_status(issue, resolve, mappings)
    }

    fn sync_assignee(issue: ExternalIssue, user: Option<UserRef>) -> Result<SyncOutcome> {
        Jira::sync_assignee(issue, user)
    }

    fn maintain() -> Result<()> {
        Jira::maintain()
    }

    fn uninstall() -> Result<()> {
        Jira::uninstall()
    }
}

trackbridge_plugin_sdk::export_provider!(JiraNext);
