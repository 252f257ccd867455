//! A Jira Cloud REST client over the SDK's HTTP client: authentication on
//! every call, error mapping, and the 240 s cache Sentry uses for lookups.

use serde_json::Value;
use trackbridge_plugin_sdk::http::{Method, Request, Response};
use trackbridge_plugin_sdk::integration::Integration;
use trackbridge_plugin_sdk::url::{Url, encode_component};
use trackbridge_plugin_sdk::{Error, Result, cache, clock, json};

use crate::auth::Credential;

/// How long lookups (statuses, transitions, user searches, emails) are cached.
pub const CACHE_TTL_SECS: u32 = 240;

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

    /// Sends `method path?params` (path relative to the base URL) with auth
    /// and maps error statuses.
    pub fn call(
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

    pub fn get(&self, path: &str, params: &[(&str, &str)]) -> Result<Value> {
        self.call(Method::Get, path, params, None)?.json()
    }

    fn get_cached(&self, key: &str, path: &str, params: &[(&str, &str)]) -> Result<Value> {
        cache::get_or_fetch(key, CACHE_TTL_SECS, || self.get(path, params))
    }

    pub fn server_info(&self) -> Result<Value> {
        self.get("/rest/api/2/serverInfo", &[])
    }

    /// The issue; a 404 means it does not exist or we may not see it.
    pub fn issue(&self, key: &str) -> Result<Value> {
        self.get(&issue_path(key, ""), &[])
            .map_err(|e| match e.status() {
                Some(404) => {
                    Error::rejected(format!("Jira issue {key} does not exist or is not visible"))
                }
                _ => e,
            })
    }

    /// Ids of the statuses in the `done` category.
    pub fn done_status_ids(&self) -> Result<Vec<String>> {
        cache::get_or_fetch("statuses:done", CACHE_TTL_SECS, || {
            let statuses = self.get("/rest/api/2/status", &[])?;
            Ok(done_ids(&statuses))
        })
    }

    /// The issue's `transitions` array.
    pub fn transitions(&self, key: &str) -> Result<Value> {
        let response = self.get_cached(
            &format!("transitions:{key}"),
            &issue_path(key, "/transitions"),
            &[],
        )?;
        Ok(response
            .get("transitions")
            .cloned()
            .unwrap_or(Value::Array(Vec::new())))
    }

    pub fn transition(&self, key: &str, transition_id: &str) -> Result<()> {
        let body = serde_json::json!({"transition": {"id": transition_id}});
        self.call(
            Method::Post,
            &issue_path(key, "/transitions"),
            &[],
            Some(&body),
        )?;
        Ok(())
    }

    pub fn assignable_users(&self, key: &str, email: &str) -> Result<Vec<Value>> {
        let users = self.get_cached(
            &format!("assignable:{key}:{email}"),
            "/rest/api/2/user/assignable/search",
            &[("issueKey", key), ("query", email)],
        )?;
        Ok(users.as_array().cloned().unwrap_or_default())
    }

    /// Assigns to `account_id`, or unassigns with `None`.
    pub fn assign(&self, key: &str, account_id: Option<&str>) -> Result<()> {
        let body = serde_json::json!({"accountId": account_id});
        self.call(Method::Put, &issue_path(key, "/assignee"), &[], Some(&body))?;
        Ok(())
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

fn issue_path(key: &str, suffix: &str) -> String {
    format!("/rest/api/2/issue/{}{suffix}", encode_component(key))
}

/// Ids of the entries of a `/rest/api/2/status` answer whose category is `done`.
pub fn done_ids(statuses: &Value) -> Vec<String> {
    statuses
        .as_array()
        .map(|list| {
            list.iter()
                .filter(|s| json::str_at(s, &["statusCategory", "key"]) == Some("done"))
                .filter_map(|s| id_string(s.get("id")?))
                .collect()
        })
        .unwrap_or_default()
}

/// Jira ids are strings, but tolerate numbers.
pub fn id_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
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
    fn done_set_from_statuses() {
        let statuses = json!([
            {"id": "3", "statusCategory": {"key": "indeterminate"}},
            {"id": "10000", "statusCategory": {"key": "new"}},
            {"id": "10002", "statusCategory": {"key": "done"}},
            {"id": 10003, "statusCategory": {"key": "done"}},
            {"statusCategory": {"key": "done"}}
        ]);
        assert_eq!(done_ids(&statuses), vec!["10002", "10003"]);
        assert!(done_ids(&json!({"errorMessages": []})).is_empty());
    }

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
