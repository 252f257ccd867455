//! Issues as the plugin names them (`owner/repo#number`), GitHub users as
//! identities, and the single assignee a group gets from an issue's set.

use serde_json::Value;
use trackbridge_plugin_sdk::provider::Identity;
use trackbridge_plugin_sdk::{Error, Result, json as j};

use crate::config::parse_repository;

/// `owner/repo#number`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueKey {
    pub full_name: String,
    pub number: u64,
}

impl IssueKey {
    /// Parses at the last `#`, as repository names cannot hold one.
    pub fn parse(key: &str) -> Result<IssueKey> {
        let bad = || {
            Error::rejected(format!(
                "{key:?} is not a GitHub issue key (owner/repo#number)"
            ))
        };
        let (repository, number) = key.rsplit_once('#').ok_or_else(bad)?;
        let (owner, repo) = parse_repository(repository).map_err(|_| bad())?;
        let number = number.parse().map_err(|_| bad())?;
        Ok(IssueKey {
            full_name: format!("{owner}/{repo}"),
            number,
        })
    }

    pub fn path(&self) -> String {
        format!("/repos/{}/issues/{}", self.full_name, self.number)
    }
}

impl std::fmt::Display for IssueKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}#{}", self.full_name, self.number)
    }
}

/// A GitHub user object as an identity: the durable numeric id, the login,
/// the email only when GitHub shows one (a public profile email, which it
/// does not vouch for, so never verified).
pub fn identity(user: &Value) -> Option<Identity> {
    let id = user.get("id").and_then(Value::as_u64)?;
    let mut identity = Identity::new(id.to_string());
    if let Some(login) = j::non_empty_str_at(user, &["login"]) {
        identity = identity.with_login(login);
    }
    if let Some(name) = j::non_empty_str_at(user, &["name"]) {
        identity = identity.with_display_name(name);
    }
    if let Some(email) = j::non_empty_str_at(user, &["email"]) {
        identity = identity.with_email(email, false);
    }
    identity.bot = j::str_at(user, &["type"]) == Some("Bot")
        || identity
            .login
            .as_deref()
            .is_some_and(|l| l.ends_with("[bot]"));
    Some(identity)
}

/// The logins of an issue's current assignees, in GitHub's order.
pub fn assignee_logins(issue: &Value) -> Vec<String> {
    issue
        .get("assignees")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|u| j::non_empty_str_at(u, &["login"]).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub fn has_login(logins: &[String], login: &str) -> bool {
    logins.iter().any(|l| l.eq_ignore_ascii_case(login))
}

/// What an issue's assignee set means for the group.
#[derive(Debug, Clone, PartialEq)]
pub enum Choice {
    /// The person trackbridge assigned is still assigned: the group has them.
    Keep,
    Assign(Identity),
    Nobody,
}

/// The one assignee a group gets: nothing changes while the person this
/// product assigned (`ours`) is still among them, so co-assignees added in
/// GitHub never take the group away; otherwise the first in GitHub's order.
pub fn choose(issue: &Value, ours: Option<&str>) -> Choice {
    let assignees: Vec<&Value> = issue
        .get("assignees")
        .and_then(Value::as_array)
        .map(|list| list.iter().collect())
        .unwrap_or_default();
    if let Some(ours) = ours
        && assignees
            .iter()
            .any(|u| j::str_at(u, &["login"]).is_some_and(|l| l.eq_ignore_ascii_case(ours)))
    {
        return Choice::Keep;
    }
    match assignees.iter().find_map(|u| identity(u)) {
        Some(identity) => Choice::Assign(identity),
        None => Choice::Nobody,
    }
}

/// Who `actor` (this product's GitHub user) assigned last, by the issue's
/// events (oldest first): the person to remove when the group moves on.
pub fn last_assigned_by(events: &Value, actor: &str) -> Option<String> {
    events
        .as_array()?
        .iter()
        .filter(|e| j::str_at(e, &["event"]) == Some("assigned"))
        .filter(|e| {
            j::str_at(e, &["actor", "login"]).is_some_and(|a| a.eq_ignore_ascii_case(actor))
        })
        .filter_map(|e| j::str_at(e, &["assignee", "login"]))
        .next_back()
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_parse_at_the_last_hash() {
        let key = IssueKey::parse("octo/Hello-World#12").unwrap();
        assert_eq!(key.full_name, "octo/Hello-World");
        assert_eq!(key.path(), "/repos/octo/Hello-World/issues/12");
        assert_eq!(key.to_string(), "octo/Hello-World#12");
        for bad in [
            "12",
            "octo#12",
            "octo/repo#",
            "octo/repo#x",
            "a/b/c#1",
            "../x#1",
        ] {
            assert!(
                matches!(IssueKey::parse(bad), Err(Error::Rejected(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn users_are_identities_with_unverified_public_emails() {
        let octocat = json!({"login": "octocat", "id": 1, "type": "User", "email": "o@github.com", "name": "The Octocat"});
        let id = identity(&octocat).unwrap();
        assert_eq!(id.id, "1");
        assert_eq!(id.login.as_deref(), Some("octocat"));
        assert_eq!(id.email.as_deref(), Some("o@github.com"));
        assert!(!id.email_verified);
        assert!(!id.bot);
        let fixture: Value = serde_json::from_str(include_str!(
            "../../../tests/fixtures/github/rest_get_user_no_email_200.json"
        ))
        .unwrap();
        let id = identity(&fixture).unwrap();
        assert_eq!((id.login.as_deref(), id.email), (Some("ammarmallik"), None));
        let bot = identity(&json!({"login": "dependabot[bot]", "id": 2, "type": "Bot"})).unwrap();
        assert!(bot.bot);
        assert!(identity(&json!({"login": "no-id"})).is_none());
    }

    #[test]
    fn the_group_keeps_ours_else_gets_the_first() {
        let issue = json!({"assignees": [{"login": "carol", "id": 3}, {"login": "Bob", "id": 2}]});
        assert_eq!(choose(&issue, Some("bob")), Choice::Keep);
        match choose(&issue, Some("alice")) {
            Choice::Assign(id) => assert_eq!(id.login.as_deref(), Some("carol")),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            choose(&json!({"assignees": []}), Some("bob")),
            Choice::Nobody
        );
        // The GHES 3.5 example: an empty set beside a stale singular `assignee`.
        let ghes: Value = serde_json::from_str(include_str!(
            "../../../tests/fixtures/github/webhook_issues_unassigned_ghes35.json"
        ))
        .unwrap();
        assert!(!ghes["issue"]["assignee"].is_null());
        assert_eq!(choose(&ghes["issue"], None), Choice::Nobody);
    }

    #[test]
    fn ours_is_the_last_assignment_by_our_actor() {
        let events = json!([
            {"event": "assigned", "actor": {"login": "tb-bot"}, "assignee": {"login": "alice"}},
            {"event": "assigned", "actor": {"login": "carol"}, "assignee": {"login": "carol"}},
            {"event": "labeled", "actor": {"login": "tb-bot"}},
            {"event": "assigned", "actor": {"login": "TB-bot"}, "assignee": {"login": "bob"}},
            {"event": "unassigned", "actor": {"login": "tb-bot"}, "assignee": {"login": "alice"}}
        ]);
        assert_eq!(last_assigned_by(&events, "tb-bot").as_deref(), Some("bob"));
        assert_eq!(last_assigned_by(&events, "nobody"), None);
        assert_eq!(last_assigned_by(&json!({}), "tb-bot"), None);
    }
}
