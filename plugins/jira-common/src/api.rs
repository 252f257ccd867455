//! The Jira REST calls both providers make, on top of one provider-specific
//! way of sending a request.

use serde_json::Value;
use trackbridge_plugin_sdk::http::{Method, Response};
use trackbridge_plugin_sdk::provider::Identity;
use trackbridge_plugin_sdk::url::encode_component;
use trackbridge_plugin_sdk::{Error, Result, cache, json};

use crate::statuses::done_ids;

/// How long lookups (statuses, transitions, user searches, emails) are cached,
/// as in Sentry.
pub const CACHE_TTL_SECS: u32 = 240;

/// A Jira REST client. A provider supplies [`JiraApi::call`] and the two
/// user-field names; everything else has a shared default.
pub trait JiraApi {
    /// The field naming a user in an assignment (`accountId` on Cloud,
    /// `name` on Server).
    const USER_FIELD: &'static str;
    /// The assignable-user search's query parameter (`query` on Cloud,
    /// `username` on Server).
    const USER_SEARCH_PARAM: &'static str;

    /// Sends `method path?params` (path relative to the base URL),
    /// authenticated; error statuses become errors.
    fn call(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Response>;

    /// The email of an assignee whose `emailAddress` is hidden; `None` when
    /// the provider has no way to learn it (Jira Server has no email API).
    fn hidden_assignee_email(&self, _assignee: &Value) -> Result<Option<String>> {
        Ok(None)
    }

    /// Who an assignee object of a delivery is, with `email` (its
    /// `emailAddress`, else what [`JiraApi::hidden_assignee_email`] found);
    /// `None` when it cannot be named, and then no assignee event is made.
    ///
    /// By default, as in contract 0.1.0, an assignee is named only with an
    /// email: the id is the [`JiraApi::USER_FIELD`] value (else the email),
    /// with the `displayName`. The email is marked verified: Atlassian
    /// accounts verify their addresses, and Jira Server/DC takes them from
    /// the organization's own user directory, so the host matches them as
    /// it did under 0.1.0.
    fn assignee_identity(&self, assignee: &Value, email: Option<String>) -> Option<Identity> {
        let email = email?;
        let id = json::non_empty_str_at(assignee, &[Self::USER_FIELD])
            .map_or_else(|| email.clone(), str::to_string);
        Some(with_display_name(
            Identity::new(id).with_email(email, true),
            assignee,
        ))
    }

    /// How an error fetching transitions reaches the caller of the status
    /// sync; unchanged by default.
    fn transitions_error(&self, error: Error) -> Error {
        error
    }

    /// Called before the status sync fails for want of a transition.
    fn no_transition(&self, _key: &str, _target: &str) {}

    fn get(&self, path: &str, params: &[(&str, &str)]) -> Result<Value> {
        self.call(Method::Get, path, params, None)?.json()
    }

    /// [`JiraApi::get`] behind the cache entry `key` for [`CACHE_TTL_SECS`].
    fn get_cached(&self, key: &str, path: &str, params: &[(&str, &str)]) -> Result<Value> {
        cache::get_or_fetch(key, CACHE_TTL_SECS, || self.get(path, params))
    }

    /// The issue; a 404 means it does not exist or we may not see it.
    fn issue(&self, key: &str) -> Result<Value> {
        self.get(&issue_path(key, ""), &[])
            .map_err(|e| match e.status() {
                Some(404) => {
                    Error::rejected(format!("Jira issue {key} does not exist or is not visible"))
                }
                _ => e,
            })
    }

    /// Ids of the statuses in the `done` category (cached).
    fn done_status_ids(&self) -> Result<Vec<String>> {
        cache::get_or_fetch("statuses:done", CACHE_TTL_SECS, || {
            Ok(done_ids(&self.get("/rest/api/2/status", &[])?))
        })
    }

    /// The issue's `transitions` array (cached).
    fn transitions(&self, key: &str) -> Result<Value> {
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

    fn transition(&self, key: &str, transition_id: &str) -> Result<()> {
        let body = serde_json::json!({"transition": {"id": transition_id}});
        self.call(
            Method::Post,
            &issue_path(key, "/transitions"),
            &[],
            Some(&body),
        )?;
        Ok(())
    }

    /// Users assignable to `key` matching `search` (cached).
    fn assignable_users(&self, key: &str, search: &str) -> Result<Vec<Value>> {
        let users = self.get_cached(
            &format!("assignable:{key}:{search}"),
            "/rest/api/2/user/assignable/search",
            &[("issueKey", key), (Self::USER_SEARCH_PARAM, search)],
        )?;
        Ok(users.as_array().cloned().unwrap_or_default())
    }

    /// Assigns to the user [`JiraApi::USER_FIELD`] names, or unassigns with `None`.
    fn assign(&self, key: &str, user: Option<&str>) -> Result<()> {
        let mut body = serde_json::Map::new();
        body.insert(Self::USER_FIELD.to_string(), user.into());
        self.call(
            Method::Put,
            &issue_path(key, "/assignee"),
            &[],
            Some(&Value::Object(body)),
        )?;
        Ok(())
    }
}

/// `identity` with the assignee's non-empty `displayName`, if it has one.
pub fn with_display_name(identity: Identity, assignee: &Value) -> Identity {
    match json::non_empty_str_at(assignee, &["displayName"]) {
        Some(name) => identity.with_display_name(name),
        None => identity,
    }
}

/// `/rest/api/2/issue/{key}{suffix}`, the key percent-encoded.
pub fn issue_path(key: &str, suffix: &str) -> String {
    format!("/rest/api/2/issue/{}{suffix}", encode_component(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_client::{BASE, TestClient};
    use serde_json::json;
    use trackbridge_plugin_sdk::testing;

    #[test]
    fn statuses_are_cached_for_240_s() {
        testing::reset();
        testing::on_http(|req| {
            assert_eq!(req.full_url(), format!("{BASE}/rest/api/2/status"));
            Ok(Response::json_body(
                200,
                &json!([{"id": "10101", "statusCategory": {"key": "done"}}]),
            ))
        });
        let client = TestClient;
        assert_eq!(client.done_status_ids().unwrap(), vec!["10101"]);
        assert_eq!(client.done_status_ids().unwrap(), vec!["10101"]);
        assert_eq!(testing::requests().len(), 1);
        assert_eq!(testing::cache_entry("statuses:done").unwrap().1, 240);
    }

    #[test]
    fn user_fields_and_paths() {
        testing::reset();
        testing::on_http(|_| Ok(Response::json_body(200, &json!([{"accountId": "a"}]))));
        let users = TestClient.assignable_users("A B-1", "x@y.test").unwrap();
        assert_eq!(users, vec![json!({"accountId": "a"})]);
        TestClient.assign("A B-1", Some("a")).unwrap();
        TestClient.assign("A B-1", None).unwrap();
        let sent = testing::requests();
        assert_eq!(
            sent[0].full_url(),
            format!("{BASE}/rest/api/2/user/assignable/search?issueKey=A%20B-1&who=x%40y.test")
        );
        assert_eq!(
            sent[1].full_url(),
            format!("{BASE}/rest/api/2/issue/A%20B-1/assignee")
        );
        let body = |i: usize| -> Value {
            serde_json::from_slice(sent[i].body.as_deref().unwrap()).unwrap()
        };
        assert_eq!(body(1), json!({"user": "a"}));
        assert_eq!(body(2), json!({"user": null}));
    }

    #[test]
    fn default_assignee_identity_needs_an_email() {
        let named = TestClient
            .assignee_identity(
                &json!({"user": "u-1", "displayName": "Bob"}),
                Some("b@x.test".into()),
            )
            .unwrap();
        assert_eq!(
            (named.id.as_str(), named.display_name.as_deref()),
            ("u-1", Some("Bob"))
        );
        assert_eq!(
            (named.email.as_deref(), named.email_verified),
            (Some("b@x.test"), true)
        );
        let by_email = TestClient
            .assignee_identity(&json!({"displayName": ""}), Some("b@x.test".into()))
            .unwrap();
        assert_eq!(
            (by_email.id.as_str(), by_email.display_name),
            ("b@x.test", None)
        );
        assert!(
            TestClient
                .assignee_identity(&json!({"user": "u-1"}), None)
                .is_none()
        );
    }
}
