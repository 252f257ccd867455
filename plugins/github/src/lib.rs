//! GitHub Issues provider for trackbridge (github.com and GitHub Enterprise
//! Server), written with the plugin SDK alone.
//!
//! Installs with a personal access token (creating the repository webhook)
//! or as a GitHub App (minting installation tokens), turns `issues`
//! deliveries into status and assignee changes, closes, reopens and assigns
//! issues, and sweeps the hook's failed deliveries for redelivery, since
//! GitHub never retries them.

pub mod api;
pub mod app_auth;
pub mod config;
pub mod install;
pub mod issue;
pub mod issues_api;
pub mod outbound;
pub mod redeliver;
pub mod webhook;

use serde_json::Value;
use trackbridge_plugin_sdk::provider::*;
use trackbridge_plugin_sdk::secrets::{self, HeaderFormat};
use trackbridge_plugin_sdk::{Error, Provider, Result, integration, json as j};

use crate::api::Client;
use crate::issue::IssueKey;

pub const WEBHOOK_PATH: &str = "/extensions/github/webhook";

/// The current integration's repository and a client authenticated for it.
pub struct Repo {
    pub client: Client,
    pub full_name: String,
    pub repository_id: Option<u64>,
    /// The GitHub user this product acts as (the token's owner, the App's bot).
    pub actor: Option<String>,
    pub hook_id: Option<u64>,
    pub app: bool,
}

impl Repo {
    pub fn current() -> Result<Repo> {
        let current = integration::require_current()?;
        let meta = &current.metadata;
        let api_url = j::str_at(meta, &["api_url"])
            .ok_or_else(|| Error::internal("the integration has no api_url (reinstall it)"))?;
        let app = j::str_at(meta, &["auth"]) == Some("app");
        let client = if app {
            Client::new(api_url, app_auth::installation_authorization(false)?)
                .with_refresh(app_auth::refresh)
        } else {
            let token = secrets::require("token")?;
            Client::new(
                api_url,
                token.stand_in(&HeaderFormat::Prefixed("Bearer ".into())),
            )
        };
        Ok(Repo {
            client,
            full_name: j::str_at(meta, &["repository"])
                .unwrap_or_default()
                .to_string(),
            repository_id: j::u64_at(meta, &["repository_id"]),
            actor: j::str_at(meta, &["actor_login"]).map(str::to_string),
            hook_id: j::u64_at(meta, &["hook_id"]),
            app,
        })
    }
}

pub struct GitHub;

impl Provider for GitHub {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            routes: vec![Route::new("POST", WEBHOOK_PATH)],
            config_schema: config::config_schema().to_string(),
            url_fields: vec!["api_url".into()],
            allowed_host_patterns: vec![config::DEFAULT_API_HOST.into()],
            status_model: StatusModel::OpenClosed,
            maintenance_interval_secs: Some(redeliver::INTERVAL_SECS),
            ..ProviderInfo::new("github", env!("CARGO_PKG_VERSION"), "GitHub Issues")
        }
    }

    fn build_integration(input: Value) -> Result<IntegrationData> {
        install::build(&input)
    }

    fn uninstall() -> Result<()> {
        install::uninstall(&Repo::current()?)
    }

    fn verify_webhook(request: &IncomingRequest) -> Result<VerifiedWebhook, Rejection> {
        webhook::verify(request)
    }

    fn handle_webhook(request: &IncomingRequest) -> Result<Vec<InboundEvent>> {
        webhook::handle(request, &Repo::current()?)
    }

    fn sync_status(
        issue: ExternalIssue,
        resolve: bool,
        _: Vec<StatusMapping>,
    ) -> Result<SyncOutcome> {
        outbound::sync_status(&Repo::current()?, &IssueKey::parse(&issue.key)?, resolve)
    }

    fn sync_assignee(issue: ExternalIssue, user: Option<UserRef>) -> Result<SyncOutcome> {
        outbound::sync_assignee(
            &Repo::current()?,
            &IssueKey::parse(&issue.key)?,
            user.as_ref(),
        )
    }

    fn maintain() -> Result<()> {
        let repo = Repo::current()?;
        let hook = if repo.app {
            // The App's hook is the App's: it is listed with the JWT.
            let jwt = Client::new(repo.client.api_url(), app_auth::jwt_authorization()?);
            return redeliver::sweep(&redeliver::Hook {
                client: &jwt,
                base: "/app/hook".into(),
                repository_id: repo.repository_id,
            })
            .map(drop);
        } else {
            let hook_id = repo
                .hook_id
                .ok_or_else(|| Error::internal("the integration has no hook_id (reinstall it)"))?;
            redeliver::Hook {
                client: &repo.client,
                base: format!("/repos/{}/hooks/{hook_id}", repo.full_name),
                repository_id: None,
            }
        };
        redeliver::sweep(&hook).map(drop)
    }
}

trackbridge_plugin_sdk::export_provider!(GitHub);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_itself() {
        let info = GitHub::describe();
        assert_eq!(
            (info.name.as_str(), info.display_name.as_str()),
            ("github", "GitHub Issues")
        );
        assert_eq!(info.routes.len(), 1);
        assert_eq!(info.routes[0].path, WEBHOOK_PATH);
        assert_eq!(info.url_fields, ["api_url"]);
        assert!(matches!(info.status_model, StatusModel::OpenClosed));
        assert_eq!(info.maintenance_interval_secs, Some(300));
        let schema: Value = serde_json::from_str(&info.config_schema).unwrap();
        assert_eq!(
            schema["required"],
            serde_json::json!(["repository", "credential"])
        );
    }
}
