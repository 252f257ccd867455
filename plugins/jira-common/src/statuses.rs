//! The `done` status category and the resolve/unresolve rule (sentry-flows §2.4).

use serde_json::Value;
use trackbridge_plugin_sdk::json;
use trackbridge_plugin_sdk::provider::StatusAction;

use crate::ids::id_string;

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

/// Resolve when the issue enters the done category, unresolve when it leaves it.
pub fn status_action(from: Option<&str>, to: Option<&str>, done: &[String]) -> StatusAction {
    let is_done = |id: Option<&str>| id.is_some_and(|id| done.iter().any(|d| d == id));
    match (is_done(from), is_done(to)) {
        (false, true) => StatusAction::Resolve,
        (true, false) => StatusAction::Unresolve,
        _ => StatusAction::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        // Jira Server's variant of the answer.
        let statuses = json!([
            {"id": "3", "statusCategory": {"key": "indeterminate"}},
            {"id": "10002", "statusCategory": {"key": "done"}},
            {"id": 10003, "statusCategory": {"key": "done"}},
            {"statusCategory": {"key": "done"}}
        ]);
        assert_eq!(done_ids(&statuses), vec!["10002", "10003"]);
    }

    #[test]
    fn resolve_rules() {
        let done = vec!["10101".to_string(), "10002".to_string()];
        assert_eq!(
            status_action(Some("3"), Some("10101"), &done),
            StatusAction::Resolve
        );
        assert_eq!(
            status_action(Some("10101"), Some("3"), &done),
            StatusAction::Unresolve
        );
        assert_eq!(
            status_action(Some("10101"), Some("10002"), &done),
            StatusAction::None
        );
        assert_eq!(
            status_action(Some("3"), Some("10000"), &done),
            StatusAction::None
        );
        assert_eq!(
            status_action(None, Some("10002"), &done),
            StatusAction::Resolve
        );
        assert_eq!(
            status_action(Some("10002"), None, &done),
            StatusAction::Unresolve
        );
        assert_eq!(
            status_action(Some("3"), Some("10101"), &[]),
            StatusAction::None
        );
    }
}
