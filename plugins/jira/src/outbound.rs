//! Outbound syncs: moving an issue to the mapped status and assigning it to
//! the Jira account operators mapped, else the one behind a verified email
//! (sentry-flows §2.2, §2.3).

use trackbridge_plugin_sdk::provider::{SyncOutcome, UserRef};
use trackbridge_plugin_sdk::{Error, Result, json, warn};

/// The status sync is the same on Jira Server; see `trackbridge-jira-common`.
pub use trackbridge_jira_common::sync_status;

use crate::client::{Client, JiraApi};

/// Jira and the host may differ in email case; Sentry compares lower-cased.
pub fn emails_match(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

/// Assign `key` to `user` (`None`: unassign). A mapped identity is the
/// account itself, so it is assigned without a search; otherwise the
/// verified emails are searched as Sentry does.
pub fn sync_assignee(client: &Client, key: &str, user: Option<&UserRef>) -> Result<SyncOutcome> {
    let Some(user) = user else {
        client.assign(key, None)?;
        return Ok(SyncOutcome::changed());
    };
    if let Some(account_id) = user.identity_id().filter(|id| !id.is_empty()) {
        client.assign(key, Some(account_id))?;
        return Ok(SyncOutcome::changed());
    }
    assign_by_email(client, key, &user.emails)
}

fn assign_by_email(client: &Client, key: &str, emails: &[String]) -> Result<SyncOutcome> {
    let mut matched: Option<String> = None;
    for email in emails {
        let users = match client.assignable_users(key, email) {
            Ok(users) => users,
            // One email failing to search must not stop the others (Sentry skips it).
            Err(e @ (Error::Unauthorized(_) | Error::Upstream { .. })) => {
                warn!("jira: assignable-user search for {key} failed: {e}");
                continue;
            }
            Err(e) => return Err(e),
        };
        for user in &users {
            let Some(account_id) = json::non_empty_str_at(user, &["accountId"]) else {
                continue;
            };
            let user_email = match json::non_empty_str_at(user, &["emailAddress"]) {
                Some(e) => Some(e.to_string()),
                None => client.user_email(account_id)?,
            };
            if user_email.is_some_and(|e| emails_match(&e, email)) {
                // Later emails may replace this match, as in Sentry.
                matched = Some(account_id.to_string());
                break;
            }
        }
    }
    let Some(account_id) = matched else {
        return Ok(SyncOutcome::unchanged("no Jira user with a matching email"));
    };
    client.assign(key, Some(&account_id))?;
    Ok(SyncOutcome::changed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Credential;
    use serde_json::{Value, json};
    use trackbridge_plugin_sdk::http::{Method, Response};
    use trackbridge_plugin_sdk::provider::Identity;
    use trackbridge_plugin_sdk::testing;

    const BASE: &str = "https://example.atlassian.net";

    fn by_email(emails: &[&str]) -> Option<UserRef> {
        Some(UserRef {
            emails: emails.iter().map(|e| e.to_string()).collect(),
            identities: Vec::new(),
        })
    }

    fn client() -> Client {
        let credential =
            Credential::parse(&json!({"type": "oauth2", "access_token": "t"})).unwrap();
        Client::new(BASE, credential)
    }

    #[test]
    fn email_case_insensitivity() {
        assert!(emails_match("Bob@example.com", "bob@example.com"));
        assert!(emails_match("ÅSA@example.com", "åsa@example.com"));
        assert!(!emails_match("bob@example.com", "bob@example.org"));
    }

    fn puts() -> Vec<Value> {
        testing::requests()
            .iter()
            .filter(|r| r.method == Method::Put)
            .map(|r| serde_json::from_slice(r.body.as_deref().unwrap_or_default()).unwrap())
            .collect()
    }

    #[test]
    fn assigns_case_insensitively() {
        testing::reset();
        testing::on_http(|req| {
            Ok(match req.method {
                Method::Get => {
                    assert_eq!(
                        req.full_url(),
                        format!(
                            "{BASE}/rest/api/2/user/assignable/search?issueKey=APP-1&query=bob%40example.com"
                        )
                    );
                    Response::json_body(
                        200,
                        &json!([{"accountId": "deadbeef123", "emailAddress": "Bob@example.com"}]),
                    )
                }
                _ => Response::new(204, ""),
            })
        });
        let outcome =
            sync_assignee(&client(), "APP-1", by_email(&["bob@example.com"]).as_ref()).unwrap();
        assert!(outcome.changed);
        assert_eq!(testing::requests().len(), 2);
        assert_eq!(puts(), vec![json!({"accountId": "deadbeef123"})]);
        let put = &testing::requests()[1];
        assert_eq!(
            put.full_url(),
            format!("{BASE}/rest/api/2/issue/APP-1/assignee")
        );
    }

    #[test]
    fn hidden_email_uses_email_api() {
        testing::reset();
        testing::on_http(|req| {
            let url = req.full_url();
            Ok(if url.contains("/user/assignable/search") {
                Response::json_body(
                    200,
                    &json!([{"accountId": "deadbeef123", "displayName": "Dead Beef"}]),
                )
            } else if url.contains("/rest/api/3/user/email") {
                Response::json_body(
                    200,
                    &json!({"accountId": "deadbeef123", "email": "bob@example.com"}),
                )
            } else {
                Response::new(204, "")
            })
        });
        let outcome =
            sync_assignee(&client(), "APP-1", by_email(&["bob@example.com"]).as_ref()).unwrap();
        assert!(outcome.changed);
        assert_eq!(testing::requests().len(), 3);
    }

    #[test]
    fn no_match_and_search_errors() {
        testing::reset();
        testing::on_http(|req| {
            let url = req.full_url();
            Ok(if url.contains("query=denied") {
                Response::new(403, "")
            } else if url.contains("query=broken") {
                Response::new(500, "")
            } else {
                Response::json_body(
                    200,
                    &json!([{"accountId": "x", "emailAddress": "bob@example.org"}]),
                )
            })
        });
        let emails = by_email(&["denied@x.test", "broken@x.test", "bob@example.com"]);
        let outcome = sync_assignee(&client(), "APP-1", emails.as_ref()).unwrap();
        assert_eq!(
            (outcome.changed, outcome.note.as_deref()),
            (false, Some("no Jira user with a matching email"))
        );
        assert!(puts().is_empty());
        assert_eq!(
            testing::logs().iter().filter(|(l, _)| l == "warn").count(),
            2
        );
    }

    #[test]
    fn later_email_replaces_match_and_unassign() {
        testing::reset();
        testing::on_http(|req| {
            let url = req.full_url();
            Ok(if url.contains("query=a%40x.test") {
                Response::json_body(
                    200,
                    &json!([{"accountId": "A", "emailAddress": "a@x.test"}]),
                )
            } else if url.contains("query=b%40x.test") {
                Response::json_body(
                    200,
                    &json!([{"accountId": "B", "emailAddress": "B@x.test"}]),
                )
            } else {
                Response::new(204, "")
            })
        });
        let emails = by_email(&["a@x.test", "b@x.test"]);
        sync_assignee(&client(), "APP-1", emails.as_ref()).unwrap();
        assert_eq!(puts(), vec![json!({"accountId": "B"})]);

        testing::reset();
        testing::on_http(|_| Ok(Response::new(204, "")));
        assert!(sync_assignee(&client(), "APP-1", None).unwrap().changed);
        assert_eq!(puts(), vec![json!({"accountId": null})]);
    }

    #[test]
    fn assign_errors_are_returned() {
        testing::reset();
        testing::on_http(|req| {
            Ok(match req.method {
                Method::Get => Response::json_body(
                    200,
                    &json!([{"accountId": "A", "emailAddress": "a@x.test"}]),
                ),
                _ => Response::json_body(
                    400,
                    &json!({"errorMessages": [], "errors": {"assignee": "User 'A' cannot be assigned issues."}}),
                ),
            })
        });
        let e = sync_assignee(&client(), "APP-1", by_email(&["a@x.test"]).as_ref()).unwrap_err();
        assert_eq!(e.status(), Some(400));
        assert!(e.message().contains("cannot be assigned"), "{e}");
    }

    #[test]
    fn a_mapped_identity_is_assigned_without_a_search() {
        testing::reset();
        testing::on_http(|_| Ok(Response::new(204, "")));
        let user = UserRef {
            emails: vec!["bob@example.com".into()],
            identities: vec![Identity::new("5b10ac8d82e05b22cc7d4ef5").with_display_name("Bob")],
        };
        let outcome = sync_assignee(&client(), "APP-1", Some(&user)).unwrap();
        assert!(outcome.changed);
        let sent = testing::requests();
        assert_eq!(sent.len(), 1, "no search: {sent:?}");
        assert_eq!(
            sent[0].full_url(),
            format!("{BASE}/rest/api/2/issue/APP-1/assignee")
        );
        assert_eq!(
            puts(),
            vec![json!({"accountId": "5b10ac8d82e05b22cc7d4ef5"})]
        );
    }

    #[test]
    fn a_user_without_identities_or_emails_matches_no_one() {
        testing::reset();
        testing::on_http(|_| Ok(Response::new(204, "")));
        let outcome = sync_assignee(&client(), "APP-1", by_email(&[]).as_ref()).unwrap();
        assert!(!outcome.changed);
        assert!(testing::requests().is_empty());
    }
}
