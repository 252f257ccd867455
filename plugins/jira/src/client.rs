//! A Jira Cloud REST client over the SDK's HTTP client: authentication on
//! every call, error mapping; the shared lookups (cached for Sentry's 240 s)
//! come from [`JiraApi`].

use serde_json::Value;
use trackbridge_jira_common::api::with_display_name;
use trackbridge_plugin_sdk::http::{Method, Request, Response};
use trackbridge_plugin_sdk::integration::Integration;
use trackbridge_plugin_sdk::provider::Identity;
use trackbridge_plugin_sdk::url::Url;
use trackbridge_plugin_sdk::{Error, Result, clock, json, warn};

pub use trackbridge_jira_common::{JiraApi, id_string};

use crate::auth::{Auth, Credential, Stored};

pub struct Client {
    /// Without trailing slash; may carry a context path (`https://host/jira`).
    base_url: String,
    /// How requests authenticate, or why the integration cannot: kept until
    /// a request needs it, so a delivery that makes no call is still handled.
    auth: Result<Auth>,
}

impl Client {
    /// A client with the operator's credential, for the installation check.
    pub fn new(base_url: &str, credential: Credential) -> Self {
        Client::with_auth(base_url, Ok(Auth::Input(credential)))
    }

    fn with_auth(base_url: &str, auth: Result<Auth>) -> Self {
        Client {
            base_url: base_url.trim_end_matches('/').to_string(),
            auth,
        }
    }

    /// The client for the current integration, authenticating by handle.
    pub fn for_integration(integration: &Integration) -> Result<Self> {
        let base_url = integration
            .metadata_str("base_url")
            .ok_or_else(|| Error::internal("the integration has no base_url"))?;
        Ok(Client::with_auth(
            base_url,
            Stored::of(integration).map(Auth::Stored),
        ))
    }

    pub fn server_info(&self) -> Result<Value> {
        self.get("/rest/api/2/serverInfo", &[])
    }

    /// The user's email through the GDPR email API (hidden addresses included
    /// when the app has the email scope); `None` when Jira returns none.
    pub fn user_email(&self, account_id: &str) -> Result<Option<String>> {
        let response = self.get_cached(
            &format!("email:{account_id}"),
            "/rest/api/3/user/email",
            &[("accountId", account_id)],
        )?;
        Ok(json::non_empty_str_at(&response, &["email"]).map(str::to_string))
    }
}

impl JiraApi for Client {
    const USER_FIELD: &'static str = "accountId";
    const USER_SEARCH_PARAM: &'static str = "query";

    fn call(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Response> {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let auth = self.auth.as_ref().map_err(Clone::clone)?.authorization(
            clock::now_secs(),
            method.as_str(),
            path,
            &params,
        )?;
        let mut request = Request::new(method, format!("{}{path}", self.base_url))
            .header("accept", "application/json")
            .header("authorization", auth);
        for (k, v) in params {
            request = request.query(k, v);
        }
        if let Some(body) = body {
            request = request.json(body)?;
        }
        request.send()?.error_for_status()
    }

    /// Privacy settings hide most addresses from webhooks; the email API has them.
    fn hidden_assignee_email(&self, assignee: &Value) -> Result<Option<String>> {
        match json::non_empty_str_at(assignee, &["accountId"]) {
            Some(account_id) => self.user_email(account_id),
            None => Ok(None),
        }
    }

    /// An Atlassian account is its `accountId`. Its email, when visible or
    /// found through the email API, is marked verified: Atlassian accounts
    /// verify their addresses (so the host matches them as under 0.1.0).
    /// Without an email the assignee is still named, for operators' identity
    /// mappings to match.
    fn assignee_identity(&self, assignee: &Value, email: Option<String>) -> Option<Identity> {
        let account_id = json::non_empty_str_at(assignee, &["accountId"]);
        let identity = match (account_id, email) {
            (Some(account_id), Some(email)) => Identity::new(account_id).with_email(email, true),
            (Some(account_id), None) => {
                warn!(
                    "jira.missing-assignee-email: the assignee of this issue has no visible \
                     email; only an identity mapping of its account can match it"
                );
                Identity::new(account_id)
            }
            // Not a Cloud account (an imported user?): the email is all there is.
            (None, Some(email)) => Identity::new(email.clone()).with_email(email, true),
            (None, None) => return None,
        };
        Some(with_display_name(identity, assignee))
    }
}

/// The authority (`host[:port]`, lower-case) of a URL, if it is one.
pub fn authority_of(url: &str) -> Option<String> {
    Url::parse(url).ok().map(|u| u.authority)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use trackbridge_plugin_sdk::testing;

    #[test]
    fn connect_calls_are_signed_per_request() {
        testing::reset();
        testing::set_now_ms(1_672_534_861_000);
        testing::on_http(|_| Ok(Response::json_body(200, &json!({}))));
        let credential = Credential::parse(&json!({"type": "connect", "client_key": "ck",
            "shared_secret": "a-super-secret-key-from-atlassian", "app_key": "testserver.jira"}))
        .unwrap();
        let client = Client::new("https://example.atlassian.net/", credential);
        client
            .call(
                Method::Get,
                "/rest/api/2/serverInfo",
                &[("query", "1"), ("user", "me")],
                None,
            )
            .unwrap();
        let sent = &testing::requests()[0];
        assert_eq!(
            sent.full_url(),
            "https://example.atlassian.net/rest/api/2/serverInfo?query=1&user=me"
        );
        assert_eq!(sent.header_value("authorization"), Some(SENTRY_TOKEN));
    }

    #[test]
    fn context_path_is_not_part_of_the_qsh() {
        testing::reset();
        testing::set_now_ms(1_672_534_861_000);
        testing::on_http(|_| Ok(Response::json_body(200, &json!({}))));
        let credential = Credential::parse(&json!({"type": "connect", "client_key": "ck",
            "shared_secret": "s"}))
        .unwrap();
        Client::new("https://example.test/jira", credential)
            .server_info()
            .unwrap();
        let sent = &testing::requests()[0];
        assert_eq!(
            sent.full_url(),
            "https://example.test/jira/rest/api/2/serverInfo"
        );
        let token =
            crate::connect_jwt::split_authorization(sent.header_value("authorization").unwrap())
                .unwrap();
        let decoded = trackbridge_plugin_sdk::jwt::peek(token).unwrap();
        assert_eq!(
            decoded.claim_str("qsh"),
            Some(crate::qsh::qsh("GET", "/rest/api/2/serverInfo", &[]).as_str())
        );
    }

    const SENTRY_TOKEN: &str = "JWT eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJ0ZXN0c2VydmVyLmppcmEiLCJpYXQiOjE2NzI1MzQ4NjEsImV4cCI6MTY3MjUzNTE2MSwicXNoIjoiZGU5NTIwMTA2NDBhYjJjZmQyMDYyNzgxYjU0ZTk0Yjc4ZmNlMTY3MzEwMDZkYjdkZWVhZmZjZWI0MjVmZTI0MiJ9.tydfCeXBICtX_xtgsOEiDJFmVPo6MmaAh1Bojouprjc";

    /// The client of a stored integration, made current.
    fn stored_client(metadata: Value, secrets: Value) -> Client {
        testing::add_integration("site", metadata, secrets);
        assert!(testing::make_current("site"));
        Client::for_integration(&trackbridge_plugin_sdk::integration::require_current().unwrap())
            .unwrap()
    }

    #[test]
    fn a_stored_connect_integration_signs_by_handle() {
        testing::reset();
        testing::set_now_ms(1_672_534_861_000);
        testing::on_http(|_| Ok(Response::json_body(200, &json!({}))));
        let client = stored_client(
            json!({"base_url": "https://example.atlassian.net", "auth": "connect",
                   "client_key": "ck", "app_key": "testserver.jira"}),
            json!({"credential": {"shared_secret": "a-super-secret-key-from-atlassian"}}),
        );
        client
            .get("/rest/api/2/serverInfo", &[("query", "1"), ("user", "me")])
            .unwrap();
        assert_eq!(
            testing::requests()[0].header_value("authorization"),
            Some(SENTRY_TOKEN)
        );
        assert_eq!(
            testing::secret_uses(),
            vec![
                ("credential.shared_secret".to_string(), "get".to_string()),
                (
                    "credential.shared_secret".to_string(),
                    "hmac-sha256-sign".to_string()
                )
            ]
        );
    }

    #[test]
    fn stored_tokens_travel_as_stand_ins() {
        testing::reset();
        testing::on_http(|_| Ok(Response::json_body(200, &json!({}))));
        let client = stored_client(
            json!({"base_url": "https://example.atlassian.net", "auth": "api_token",
                   "email": "bot@example.com"}),
            json!({"credential": {"api_token": "s3cr3t"}}),
        );
        client.server_info().unwrap();
        // The fake host swaps the stand-in for the value, as the host does.
        assert_eq!(
            testing::requests()[0].header_value("authorization"),
            Some("Basic Ym90QGV4YW1wbGUuY29tOnMzY3IzdA==")
        );
        assert_eq!(
            testing::secret_uses(),
            vec![
                ("credential.api_token".to_string(), "get".to_string()),
                ("credential.api_token".to_string(), "stand-in".to_string())
            ]
        );

        testing::reset();
        testing::on_http(|_| Ok(Response::json_body(200, &json!({}))));
        stored_client(
            json!({"base_url": "https://example.atlassian.net", "auth": "oauth2"}),
            json!({"credential": {"access_token": "acc3ss"}}),
        )
        .server_info()
        .unwrap();
        assert_eq!(
            testing::requests()[0].header_value("authorization"),
            Some("Bearer acc3ss")
        );
    }

    #[test]
    fn an_old_api_token_installation_fails_its_calls_with_the_reinstall_error() {
        testing::reset();
        testing::on_http(|_| Ok(Response::json_body(200, &json!({}))));
        // As the 0.1.0 build stored it: the email inside the secrets only.
        let client = stored_client(
            json!({"base_url": "https://example.atlassian.net", "auth": "api_token"}),
            json!({"credential": {"type": "api_token", "email": "bot@example.com",
                                  "api_token": "s3cr3t"}}),
        );
        let e = client.server_info().unwrap_err();
        assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
        assert!(e.message().contains("install it again"), "{e}");
        assert!(testing::requests().is_empty());
    }
}
