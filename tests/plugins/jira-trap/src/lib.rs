//! A broken release of `jira`: it passes the install checks (it describes
//! itself as the Jira provider does) and panics on every real call, as a
//! version with a bad bug would.

use trackbridge_plugin_sdk::provider::*;
use trackbridge_plugin_sdk::serde_json::Value;
use trackbridge_plugin_sdk::{Provider, Result};

pub const VERSION: &str = "0.3.0-trap";

pub struct JiraTrap;

fn broken() -> ! {
    panic!("jira {VERSION} is broken on purpose")
}

impl Provider for JiraTrap {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            name: "jira".into(),
            version: VERSION.into(),
            display_name: "Jira".into(),
            routes: vec![Route::new("POST", "/extensions/jira/issue-updated/")],
            config_schema: r#"{"type":"object"}"#.into(),
            url_fields: vec!["base_url".into()],
            allowed_host_patterns: vec![],
        }
    }

    fn build_integration(_input: Value) -> Result<IntegrationData> {
        broken()
    }

    fn verify_webhook(_request: &IncomingRequest) -> Result<VerifiedWebhook, Rejection> {
        broken()
    }

    fn handle_webhook(_request: &IncomingRequest) -> Result<Vec<InboundEvent>> {
        broken()
    }

    fn sync_status(
        _issue: ExternalIssue,
        _resolve: bool,
        _mappings: Vec<StatusMapping>,
    ) -> Result<SyncOutcome> {
        broken()
    }

    fn sync_assignee(_issue: ExternalIssue, _emails: Option<Vec<String>>) -> Result<SyncOutcome> {
        broken()
    }
}

trackbridge_plugin_sdk::export_provider!(JiraTrap);
