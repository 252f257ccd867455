//! Azure DevOps (VSTS) provider for trackbridge: Sentry's VSTS issue sync as a
//! plugin (sentry-flows §7).
//!
//! Installs with a personal access token or an OAuth access token, creates a
//! `workitem.updated` service hook subscription that sends a random
//! `shared-secret` header, turns its deliveries into assignee and status
//! changes, and pushes group changes back as JSON Patch updates.

pub mod client;
pub mod install;
pub mod outbound;
pub mod time;
pub mod webhook;

use serde_json::Value;
use trackbridge_plugin_sdk::provider::*;
use trackbridge_plugin_sdk::{Provider, Result, integration};

use crate::client::Client;

/// Sentry's path, so service hooks created for Sentry can point here unchanged.
pub const WEBHOOK_PATH: &str = "/extensions/vsts/issue-updated/";

pub struct Vsts;

fn current_client() -> Result<Client> {
    Client::for_integration(&integration::require_current()?)
}

impl Provider for Vsts {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            routes: vec![Route::new("POST", WEBHOOK_PATH)],
            config_schema: install::config_schema().to_string(),
            url_fields: vec!["organization_url".into(), "graph_url".into()],
            allowed_host_patterns: install::ALLOWED_HOST_PATTERNS
                .iter()
                .map(|p| p.to_string())
                .collect(),
            ..ProviderInfo::new("vsts", env!("CARGO_PKG_VERSION"), "Azure DevOps")
        }
    }

    fn build_integration(input: Value) -> Result<IntegrationData> {
        install::build(&input)
    }

    fn uninstall() -> Result<()> {
        install::uninstall()
    }

    fn verify_webhook(request: &IncomingRequest) -> Result<VerifiedWebhook, Rejection> {
        webhook::verify(request)
    }

    fn handle_webhook(request: &IncomingRequest) -> Result<Vec<InboundEvent>> {
        webhook::handle(request, &current_client()?)
    }

    fn sync_status(
        issue: ExternalIssue,
        resolve: bool,
        mappings: Vec<StatusMapping>,
    ) -> Result<SyncOutcome> {
        outbound::sync_status(&current_client()?, &issue.key, resolve, &mappings)
    }

    fn sync_assignee(issue: ExternalIssue, user: Option<UserRef>) -> Result<SyncOutcome> {
        outbound::sync_assignee(&current_client()?, &issue.key, user.as_ref())
    }
}

trackbridge_plugin_sdk::export_provider!(Vsts);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_itself() {
        let info = Vsts::describe();
        assert_eq!(
            (info.name.as_str(), info.display_name.as_str()),
            ("vsts", "Azure DevOps")
        );
        assert_eq!(info.routes.len(), 1);
        assert_eq!(
            (info.routes[0].method.as_str(), info.routes[0].path.as_str()),
            ("POST", WEBHOOK_PATH)
        );
        assert_eq!(info.url_fields, ["organization_url", "graph_url"]);
        assert_eq!(
            info.allowed_host_patterns,
            ["*.vssps.visualstudio.com:443", "vssps.dev.azure.com:443"]
        );
        let schema: Value = serde_json::from_str(&info.config_schema).unwrap();
        assert_eq!(
            schema["required"],
            serde_json::json!(["organization_url", "credential"])
        );
    }
}
