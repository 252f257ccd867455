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
            routes: vec![Route::new("POST", "/extensions/jira/issue-updated/")],
            url_fields: vec!["base_url".into()],
            status_model: StatusModel::Workflow,
            ..ProviderInfo::new("jira", VERSION, "Jira")
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

    fn sync_assignee(_issue: ExternalIssue, _user: Option<UserRef>) -> Result<SyncOutcome> {
        broken()
    }

    fn maintain() -> Result<()> {
        broken()
    }
}

trackbridge_plugin_sdk::export_provider!(JiraTrap);
