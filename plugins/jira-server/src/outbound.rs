//! Outbound syncs (sentry-flows §2.2, and §2.3 "[newer] Jira Server"):
//! transitions to the mapped status, assignment by user `name`.

use serde_json::Value;
use trackbridge_plugin_sdk::provider::{SyncOutcome, UserRef};
use trackbridge_plugin_sdk::{Error, Result, json, warn};

/// The status sync is the same as on Jira Cloud (see `trackbridge-jira-common`);
/// this client maps unreachable transitions and logs a missing transition.
pub use trackbridge_jira_common::sync_status;

use crate::client::{Client, JiraApi};

pub const ASSIGN_FAILED: &str = "Failed to assign user to Jira Server issue";
pub const ASSIGN_FORBIDDEN: &str = "Insufficient permissions to assign user to Jira Server issue";

/// The Jira user for one host email among a search's results: the only
/// result whatever its email, else the one whose `emailAddress` matches
/// case-insensitively.
pub fn pick_user<'a>(users: &'a [Value], email: &str) -> Option<&'a Value> {
    if let [only] = users {
        return Some(only);
    }
    users.iter().find(|u| {
        json::non_empty_str_at(u, &["emailAddress"])
            .is_some_and(|e| e.to_lowercase() == email.to_lowercase())
    })
}

/// Assigns `key` to `user`: by the user name an operator mapped at this
/// integration (the identity's id, see `Client::assignee_identity`), else by
/// searching the user's verified emails; unassigns for `None`.
pub fn sync_assignee(client: &Client, key: &str, user: Option<&UserRef>) -> Result<SyncOutcome> {
    let Some(user) = user else {
        assign(client, key, None)?;
        return Ok(SyncOutcome::changed());
    };
    if let Some(name) = user.identity_id().filter(|id| !id.is_empty()) {
        assign(client, key, Some(name))?;
        return Ok(SyncOutcome::changed());
    }
    let mut matched: Option<String> = None;
    for email in user.emails.iter().filter(|e| !e.is_empty()) {
        let users = match client.assignable_users(key, email) {
            Ok(users) => users,
            // One email failing to search must not stop the others (Sentry skips it).
            Err(e @ (Error::Unauthorized(_) | Error::Upstream { .. })) => {
                warn!("jira-server: assignable-user search for {key} failed: {e}");
                continue;
            }
            Err(e) => return Err(e),
        };
        if let Some(name) =
            pick_user(&users, email).and_then(|u| json::non_empty_str_at(u, &["name"]))
        {
            // A later email may replace this match, as in Sentry.
            matched = Some(name.to_string());
        }
    }
    let Some(name) = matched else {
        return Err(Error::rejected(format!(
            "{ASSIGN_FAILED}: no assignable user of {key} matches the user's verified emails"
        )));
    };
    assign(client, key, Some(&name))?;
    Ok(SyncOutcome::changed())
}

fn assign(client: &Client, key: &str, name: Option<&str>) -> Result<()> {
    client.assign(key, name).map_err(|e| {
        let reason = e.message().to_string();
        match e {
            Error::Unauthorized(_) if reason.starts_with("HTTP 401") => {
                Error::Unauthorized(format!("{ASSIGN_FORBIDDEN}: {reason}"))
            }
            Error::Unauthorized(_) => Error::rejected(format!("{ASSIGN_FAILED}: {reason}")),
            Error::Upstream {
                status,
                retry_after_secs,
                ..
            } => Error::Upstream {
                status,
                message: format!("{ASSIGN_FAILED}: {reason}"),
                retry_after_secs,
            },
            other => other,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::tests::test_oauth;
    use serde_json::json;
    use trackbridge_plugin_sdk::http::{Method, Response};
    use trackbridge_plugin_sdk::provider::{Identity, StatusMapping};
    use trackbridge_plugin_sdk::testing;

    const BASE: &str = "https://jira.example.com";

    fn client() -> Client {
        Client::new(BASE, test_oauth())
    }

    fn mapping() -> Vec<StatusMapping> {
        vec![StatusMapping {
            external_project: "10100".into(),
            on_resolve: "10101".into(),
            on_unresolve: "3".into(),
        }]
    }

    fn fake_jira(status: &'static str) {
        testing::on_http(move |req| {
            let url = req.full_url();
            Ok(if url.ends_with("/rest/api/2/issue/SEN-5") {
                Response::json_body(
                    200,
                    &json!({"key": "SEN-5", "fields": {
                    "project": {"id": "10100"}, "status": {"id": status}}}),
                )
            } else if url.ends_with("/transitions") && req.method == Method::Get {
                Response::json_body(
                    200,
                    &json!({"transitions": [
                    {"id": "11", "to": {"id": "10100"}}, {"id": "21", "to": {"id": "3"}},
                    {"id": "31", "to": {"id": "10101"}}, {"id": "61", "name": "Kicked"}]}),
                )
            } else {
                Response::new(204, "")
            })
        });
    }

    fn posted_transitions() -> Vec<Value> {
        testing::requests()
            .iter()
            .filter(|r| r.method == Method::Post)
            .map(|r| serde_json::from_slice(r.body.as_deref().unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn sentry_outbound_issue_sync() {
        for (resolve, id) in [(false, "21"), (true, "31")] {
            testing::reset();
            fake_jira("10100");
            assert!(
                sync_status(&client(), "SEN-5", resolve, &mapping())
                    .unwrap()
                    .changed
            );
            assert_eq!(
                posted_transitions(),
                vec![json!({"transition": {"id": id}})]
            );
        }
        testing::reset();
        fake_jira("10101");
        let outcome = sync_status(&client(), "SEN-5", true, &mapping()).unwrap();
        assert!(!outcome.changed);
        assert!(posted_transitions().is_empty());
        testing::reset();
        fake_jira("10100");
        assert!(!sync_status(&client(), "SEN-5", true, &[]).unwrap().changed);
    }

    fn puts() -> Vec<Value> {
        testing::requests()
            .iter()
            .filter(|r| r.method == Method::Put)
            .map(|r| serde_json::from_slice(r.body.as_deref().unwrap()).unwrap())
            .collect()
    }

    fn searching(users: Value, put_status: u16) {
        testing::on_http(move |req| {
            Ok(match req.method {
                Method::Get => Response::json_body(200, &users),
                _ => Response::json_body(put_status, &json!({"errorMessages": ["nope"]})),
            })
        });
    }

    fn bob() -> Option<UserRef> {
        Some(UserRef {
            emails: vec!["bob@example.org".to_string()],
            identities: Vec::new(),
        })
    }

    #[test]
    fn case_insensitive_match() {
        testing::reset();
        searching(
            json!([{"name": "Alive Tofu", "emailAddress": "Bob@Example.org"},
                         {"name": "other", "emailAddress": "other@example.org"}]),
            204,
        );
        assert!(
            sync_assignee(&client(), "APP-1", bob().as_ref())
                .unwrap()
                .changed
        );
        assert_eq!(puts(), vec![json!({"name": "Alive Tofu"})]);
        let search = &testing::requests()[0];
        assert_eq!(
            search.full_url(),
            format!(
                "{BASE}/rest/api/2/user/assignable/search?issueKey=APP-1&username=bob%40example.org"
            )
        );
    }

    #[test]
    fn single_user_taken_without_email() {
        testing::reset();
        searching(json!([{"name": "Beef"}]), 204);
        sync_assignee(&client(), "APP-1", bob().as_ref()).unwrap();
        assert_eq!(puts(), vec![json!({"name": "Beef"})]);
    }

    #[test]
    fn several_users_without_email_is_an_error_without_put() {
        testing::reset();
        searching(json!([{"name": "a"}, {"name": "b"}]), 204);
        let e = sync_assignee(&client(), "APP-1", bob().as_ref()).unwrap_err();
        assert!(e.message().starts_with(ASSIGN_FAILED), "{e}");
        assert_eq!(testing::requests().len(), 1);
        testing::reset();
        searching(json!([]), 204);
        assert!(sync_assignee(&client(), "APP-1", bob().as_ref()).is_err());
    }

    #[test]
    fn assign_errors() {
        testing::reset();
        searching(json!([{"name": "bob"}]), 401);
        let e = sync_assignee(&client(), "APP-1", bob().as_ref()).unwrap_err();
        assert!(matches!(e, Error::Unauthorized(_)), "{e}");
        assert!(e.message().starts_with(ASSIGN_FORBIDDEN), "{e}");
        for status in [400, 403, 500] {
            testing::reset();
            searching(json!([{"name": "bob"}]), status);
            let e = sync_assignee(&client(), "APP-1", bob().as_ref()).unwrap_err();
            assert!(e.message().starts_with(ASSIGN_FAILED), "{status}: {e}");
        }
    }

    #[test]
    fn a_mapped_identity_is_assigned_without_a_search() {
        testing::reset();
        testing::on_http(|_| Ok(Response::new(204, "")));
        let user = UserRef {
            emails: vec!["bob@example.org".to_string()],
            identities: vec![Identity::new("bob.b").with_login("bob.b")],
        };
        assert!(
            sync_assignee(&client(), "APP-1", Some(&user))
                .unwrap()
                .changed
        );
        let sent = testing::requests();
        assert_eq!(sent.len(), 1, "no search");
        assert_eq!(puts(), vec![json!({"name": "bob.b"})]);
        crate::client::tests::assert_signed(&sent[0]);

        // Jira's refusal is reported as for a searched user.
        testing::reset();
        searching(json!([]), 400);
        let e = sync_assignee(&client(), "APP-1", Some(&user)).unwrap_err();
        assert!(e.message().starts_with(ASSIGN_FAILED), "{e}");
    }

    #[test]
    fn unassign_puts_null_name() {
        testing::reset();
        testing::on_http(|_| Ok(Response::new(204, "")));
        assert!(sync_assignee(&client(), "APP-1", None).unwrap().changed);
        assert_eq!(puts(), vec![json!({"name": null})]);
        crate::client::tests::assert_signed(&testing::requests()[0]);
    }
}
