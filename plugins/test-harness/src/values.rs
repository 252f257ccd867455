//! Short constructors of the contract's records, for the calls' arguments.

use serde_json::Value;
use trackbridge_host::plugins::contract::notifier::notifier_types::GroupSummary;
use trackbridge_host::plugins::contract::provider_types::{ExternalIssue, StatusMapping};

/// The external issue `key`, with no link metadata (`{}`).
pub fn issue(key: impl Into<String>) -> ExternalIssue {
    ExternalIssue {
        key: key.into(),
        metadata: "{}".into(),
    }
}

/// The external issue `key` with the link metadata `metadata`.
pub fn issue_with(key: impl Into<String>, metadata: &Value) -> ExternalIssue {
    ExternalIssue {
        key: key.into(),
        metadata: metadata.to_string(),
    }
}

/// A status mapping: in `external_project`, resolving moves an issue to
/// `on_resolve` and unresolving to `on_unresolve`.
pub fn mapping(
    external_project: impl Into<String>,
    on_resolve: impl Into<String>,
    on_unresolve: impl Into<String>,
) -> StatusMapping {
    StatusMapping {
        external_project: external_project.into(),
        on_resolve: on_resolve.into(),
        on_unresolve: on_unresolve.into(),
    }
}

/// An unresolved, unassigned group with no links, in project `backend`.
pub fn group(id: i64, title: impl Into<String>) -> GroupSummary {
    GroupSummary {
        id,
        title: title.into(),
        status: "unresolved".into(),
        project: "backend".into(),
        assignee: None,
        links: Vec::new(),
    }
}
