//! A Jira Cloud REST client over the SDK's HTTP client: authentication on
//! every call, error mapping; the shared lookups (cached for Sentry's 240 s)
//! come from [`JiraApi`].

use serde_json::Value;
use trackbridge_plugin_sdk::http::{Method, Request, Response};
use trackbridge_plugin_sdk::integration::Integration;
use trackbridge_plugin_sdk::url::Url;
use trackbridge_plugin_sdk::{Error, Result, clock, json};

pub use trackbridge_jira_common::{JiraApi, id_string};

use crate::auth::Credential;

pub struct Client {
    /// Without trailing slash; may carry a context path (`https://host/jira`).
    base_url: String,
    credential: Credential,
}

impl Client {
    pub fn new(base_url: &str, credential: Credential) -> Self {
        Client {
            base_url: base_url.trim_end_matches('/').to_string(),
            credential,
        }
    }

    /// The client for a stored integration.
    pub fn for_integration(integration: &Integration) -> Result<Self> {
        let base_url = integration
            .metadata_str("base_url")
            .ok_or_else(|| Error::internal("the integration has no base_url"))?;
        let credential = Credential::parse(&integration.secrets["credential"]).map_err(|e| {
            Error::internal(format!("the stored credential is invalid: {}", e.message()))
        })?;
        Ok(Client::new(base_url, credential))
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
        let auth = self
            .credential
            .authorization(clock::now_secs(), method.as_str(), path, &params);
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
        assert_eq!(
            sent.header_value("authorization"),
            Some(
                "JWT eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJ0ZXN0c2VydmVyLmppcmEiLCJpYXQiOjE2NzI1MzQ4NjEsImV4cCI6MTY3MjUzNTE2MSwicXNoIjoiZGU5NTIwMTA2NDBhYjJjZmQyMDYyNzgxYjU0ZTk0Yjc4ZmNlMTY3MzEwMDZkYjdkZWVhZmZjZWI0MjVmZTI0MiJ9.tydfCeXBICtX_xtgsOEiDJFmVPo6MmaAh1Bojouprjc"
            )
        );
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
        let decoded = crate::connect_jwt::decode(token).unwrap();
        assert_eq!(
            decoded.claim_str("qsh"),
            Some(crate::qsh::qsh("GET", "/rest/api/2/serverInfo", &[]).as_str())
        );
    }
}
