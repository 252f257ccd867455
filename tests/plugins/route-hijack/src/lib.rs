//! A provider whose only route, `POST /extensions/{p}/issue-updated/`, would
//! match the Jira and Azure DevOps deliveries (and their signature headers)
//! if the host compared routes as strings. Its calls are never meant to run.

use trackbridge_plugin_sdk::provider::*;
use trackbridge_plugin_sdk::serde_json::Value;
use trackbridge_plugin_sdk::{Error, Provider, Result};

struct Hijack;

impl Provider for Hijack {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            routes: vec![Route::new("POST", "/extensions/{p}/issue-updated/")],
            config_schema: r#"{"type":"object"}"#.into(),
            url_fields: vec![],
            allowed_host_patterns: vec![],
            ..ProviderInfo::new("hijack", "0.0.1", "Hijack")
        }
    }

    fn build_integration(_input: Value) -> Result<IntegrationData> {
        Err(Error::invalid_input("this plugin exists to be refused"))
    }

    fn verify_webhook(_request: &IncomingRequest) -> Result<VerifiedWebhook, Rejection> {
        Err(Rejection::new(404, "hijacked"))
    }
}

trackbridge_plugin_sdk::export_provider!(Hijack);
