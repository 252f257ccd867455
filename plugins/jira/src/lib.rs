//! Jira Cloud provider for trackbridge: Sentry's Jira issue sync as a plugin.
//!
//! Installs with an API token, an OAuth 2.0 access token or an Atlassian
//! Connect shared secret; receives issue-updated webhooks signed either as
//! Connect JWTs or with an admin-webhook secret (`X-Hub-Signature`).

pub mod auth;
pub mod client;
pub mod connect_jwt;
pub mod hub_signature;
pub mod install;
pub mod outbound;
pub mod qsh;
pub mod webhook;

use serde_json::Value;
use trackbridge_plugin_sdk::provider::*;
use trackbridge_plugin_sdk::{Provider, Result, integration};

use crate::client::Client;

/// Sentry's path, so a Jira configured for Sentry can point here unchanged.
pub const WEBHOOK_PATH: &str = "/extensions/jira/issue-updated/";

pub struct Jira;

fn current_client() -> Result<Client> {
    Client::for_integration(&integration::require_current()?)
}

impl Provider for Jira {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            routes: vec![Route::new("POST", WEBHOOK_PATH)],
            config_schema: install::config_schema().to_string(),
            url_fields: vec!["base_url".into()],
            status_model: StatusModel::Workflow,
            maintenance_interval_secs: None,
            ..ProviderInfo::new("jira", env!("CARGO_PKG_VERSION"), "Jira")
        }
    }

    fn build_integration(input: Value) -> Result<IntegrationData> {
        install::build(&input)
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

#[cfg(feature = "export")]
trackbridge_plugin_sdk::export_provider!(Jira);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_itself() {
        let info = Jira::describe();
        assert_eq!(
            (info.name.as_str(), info.display_name.as_str()),
            ("jira", "Jira")
        );
        assert_eq!(info.routes.len(), 1);
        assert_eq!(
            (info.routes[0].method.as_str(), info.routes[0].path.as_str()),
            ("POST", WEBHOOK_PATH)
        );
        assert_eq!(info.url_fields, vec!["base_url".to_string()]);
        assert!(info.allowed_host_patterns.is_empty());
        assert!(matches!(info.status_model, StatusModel::Workflow));
        assert_eq!(info.maintenance_interval_secs, None);
        let schema: Value = serde_json::from_str(&info.config_schema).unwrap();
        assert_eq!(
            schema["required"],
            serde_json::json!(["base_url", "credential"])
        );
    }
}
