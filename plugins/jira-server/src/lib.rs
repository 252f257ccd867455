//! Jira Server / Data Center provider for trackbridge: Sentry's Jira Server
//! issue sync as a plugin.
//!
//! Calls Jira with OAuth 1.0a RSA-SHA1 (an incoming application link's
//! consumer key and private key, plus the access token of the dance; the host
//! signs with the key); registers an issue webhook at installation whose URL
//! carries an HS256 token naming the integration.

pub mod client;
pub mod install;
pub mod jwt;
pub mod oauth1;
pub mod outbound;
pub mod registration;
pub mod webhook;

use serde_json::Value;
use trackbridge_plugin_sdk::provider::*;
use trackbridge_plugin_sdk::{Error, Provider, Result, info, integration, warn};

use crate::client::Client;

/// The webhook route; `{token}` is the HS256 token naming the integration.
pub const WEBHOOK_ROUTE: &str = "/extensions/jira-server/issue-updated/{token}/";
/// [`WEBHOOK_ROUTE`] up to the token.
pub const WEBHOOK_PREFIX: &str = "/extensions/jira-server/issue-updated/";
/// The name of the webhook registered in Jira.
pub const WEBHOOK_NAME: &str = "trackbridge Issue Sync";

pub struct JiraServer;

fn current_client() -> Result<Client> {
    Client::for_integration(&integration::require_current()?)
}

impl Provider for JiraServer {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            routes: vec![Route::new("POST", WEBHOOK_ROUTE)],
            config_schema: install::config_schema().to_string(),
            url_fields: vec!["base_url".into()],
            ..ProviderInfo::new("jira-server", env!("CARGO_PKG_VERSION"), "Jira Server")
        }
    }

    fn build_integration(input: Value) -> Result<IntegrationData> {
        install::build(&input)
    }

    fn uninstall() -> Result<()> {
        let current = integration::require_current()?;
        let Some(id) = current
            .metadata
            .get("webhook_id")
            .and_then(client::id_string)
        else {
            warn!("no webhook id was stored for this integration; nothing to remove in Jira");
            return Ok(());
        };
        let response = Client::for_integration(&current)?
            .delete_webhook(&id)
            .map_err(|e| match e {
                Error::Upstream {
                    status,
                    message,
                    retry_after_secs,
                } => Error::Upstream {
                    status,
                    message: format!("could not delete the issue webhook {id} in Jira: {message}"),
                    retry_after_secs,
                },
                other => other,
            })?;
        if response.status == 404 {
            info!("the issue webhook {id} was already gone from Jira");
            return Ok(());
        }
        response.error_for_status().map_err(|e| match e {
            Error::Unauthorized(m) => Error::Unauthorized(format!(
                "could not delete the issue webhook {id} in Jira: {m}"
            )),
            Error::Upstream {
                status,
                message,
                retry_after_secs,
            } => Error::Upstream {
                status,
                message: format!("could not delete the issue webhook {id} in Jira: {message}"),
                retry_after_secs,
            },
            other => other,
        })?;
        Ok(())
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

trackbridge_plugin_sdk::export_provider!(JiraServer);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use trackbridge_plugin_sdk::http::{Method, Response};
    use trackbridge_plugin_sdk::testing;

    /// The OAuth test cases' 1024-bit RSA key, reused as the consumer key in tests.
    pub(crate) const TEST_KEY: &str = include_str!("../testdata/oauth-test-cases-key.pem");

    #[test]
    fn describes_itself() {
        let info = JiraServer::describe();
        assert_eq!(
            (info.name.as_str(), info.display_name.as_str()),
            ("jira-server", "Jira Server")
        );
        assert_eq!(info.routes.len(), 1);
        assert_eq!(
            (info.routes[0].method.as_str(), info.routes[0].path.as_str()),
            ("POST", "/extensions/jira-server/issue-updated/{token}/")
        );
        assert_eq!(info.url_fields, vec!["base_url".to_string()]);
        assert!(info.allowed_host_patterns.is_empty());
        assert_eq!(info.status_model, StatusModel::Workflow);
        assert_eq!(info.maintenance_interval_secs, None);
        let schema: Value = serde_json::from_str(&info.config_schema).unwrap();
        assert_eq!(schema["properties"]["consumer_key"]["maxLength"], 200);
        assert_eq!(schema["properties"]["verify_ssl"]["default"], true);
    }

    fn installed(webhook_id: Option<&str>) {
        testing::reset();
        testing::add_integration(
            "jira.example.com:sentry-bot",
            json!({"base_url": "https://jira.example.com", "webhook_id": webhook_id,
                   "consumer_key": "sentry-bot", "access_token": "access-token"}),
            json!({"private_key": TEST_KEY, "webhook_secret": "w"}),
        );
        testing::make_current("jira.example.com:sentry-bot");
    }

    #[test]
    fn uninstall_deletes_the_webhook() {
        for (status, ok) in [(204, true), (404, true), (403, false), (502, false)] {
            installed(Some("7"));
            testing::on_http(move |_| Ok(Response::new(status, "")));
            assert_eq!(JiraServer::uninstall().is_ok(), ok, "{status}");
            let sent = testing::requests();
            assert_eq!(sent.len(), 1);
            assert_eq!(sent[0].method, Method::Delete);
            assert_eq!(
                sent[0].full_url(),
                "https://jira.example.com/rest/webhooks/1.0/webhook/7"
            );
            client::tests::assert_signed(&sent[0]);
        }
        installed(Some("7"));
        testing::on_http(|_| Err(Error::unreachable("connection refused")));
        let e = JiraServer::uninstall().unwrap_err();
        assert!(e.message().contains("issue webhook 7"), "{e}");

        installed(None);
        assert!(JiraServer::uninstall().is_ok());
        assert!(testing::requests().is_empty());
    }

    #[test]
    fn calls_for_an_installation_of_the_0_1_0_build_ask_to_install_again() {
        testing::reset();
        testing::add_integration(
            "jira.example.com:sentry-bot",
            json!({"base_url": "https://jira.example.com", "domain_name": "jira.example.com",
                   "verify_ssl": true, "webhook_id": "7"}),
            json!({"consumer_key": "sentry-bot", "private_key": TEST_KEY,
                   "access_token": "access-token", "access_token_secret": "access-secret",
                   "webhook_secret": "w"}),
        );
        testing::make_current("jira.example.com:sentry-bot");
        testing::on_http(|_| Ok(Response::new(204, "")));
        let issue = ExternalIssue {
            key: "APP-1".into(),
            metadata: "{}".into(),
        };
        for e in [
            JiraServer::uninstall().unwrap_err(),
            JiraServer::sync_assignee(issue.clone(), None).unwrap_err(),
            JiraServer::sync_status(issue, true, vec![]).unwrap_err(),
        ] {
            assert!(matches!(e, Error::Unauthorized(_)), "{e:?}");
            assert!(e.message().contains("install it again"), "{e}");
        }
        assert!(testing::requests().is_empty());
    }
}
