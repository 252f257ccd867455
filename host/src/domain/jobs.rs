//! The domain's jobs: what each kind carries and how the queue runs it.
//!
//! - `webhook`: a verified delivery, processed by its provider plugin
//!   ([`super::inbound`]);
//! - `sync_status`, `sync_assignee`: one call to one tracker, written in the
//!   transaction of the assignment or status change ([`super::outbound`]);
//! - `notify`: one message to one notifier, written likewise ([`super::notify`]).

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::inbound::PreparedWebhook;
use super::{AfterCommit, Domain, DomainError};
use crate::plugins::PluginCallError;
use crate::plugins::contract::notifier::notifier_types::GroupEvent;
use crate::plugins::contract::types::{PluginError, UpstreamError};
use crate::queue::{Outcome, Runner};
use crate::store::{Job, StoreError};
use sqlx::AnyConnection;

/// A change to a group that trackers and notifiers hear about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupChange {
    Assigned,
    Unassigned,
    Resolved,
    Unresolved,
}

impl GroupChange {
    pub fn event(self) -> GroupEvent {
        match self {
            GroupChange::Assigned => GroupEvent::Assigned,
            GroupChange::Unassigned => GroupEvent::Unassigned,
            GroupChange::Resolved => GroupEvent::Resolved,
            GroupChange::Unresolved => GroupEvent::Unresolved,
        }
    }
}

/// A change to a group, as the fan-out sees it.
#[derive(Clone, Debug)]
pub struct GroupChanged {
    pub change: GroupChange,
    /// The user now assigned (`None` for a team or nobody).
    pub user: Option<i64>,
    /// Assigned to a team: told to notifiers, never pushed to trackers.
    pub team: bool,
    /// The integration the change came from: never pushed back to it.
    pub source_integration: Option<i64>,
}

/// The payload of a `sync_status` / `sync_assignee` job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SyncPayload {
    pub key: String,
    pub metadata: String,
    /// For `sync_status`.
    #[serde(default)]
    pub resolved: bool,
    /// For `sync_assignee`: the user to assign, or nobody.
    #[serde(default)]
    pub user: Option<i64>,
}

/// The payload of a `notify` job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NotifyPayload {
    pub change: GroupChange,
}

/// The payload of a `webhook` job; the body is stored beside it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WebhookPayload {
    pub plugin: String,
    pub method: String,
    pub path: String,
    pub query: String,
    /// The request's headers minus credentials: the delivery is verified
    /// already, and stored credentials would be secrets at rest.
    pub headers: Vec<(String, String)>,
    pub route_params: Vec<(String, String)>,
}

/// Headers never stored with a webhook: anything that names a credential,
/// a signature over the body (replayable with it), a session or a key.
pub fn is_credential_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name == "cookie"
        || [
            "auth",
            "signature",
            "secret",
            "token",
            "key",
            "password",
            "passwd",
            "credential",
            "session",
            "jwt",
        ]
        .iter()
        .any(|part| name.contains(part))
}

/// A job, worked out ([`Runner::prepare`]).
pub enum Prepared {
    /// Finished (or failed) without anything left to write but its result.
    Ended(Outcome),
    /// A delivery whose events are to be applied.
    Webhook(Box<PreparedWebhook>),
}

impl Runner for Domain {
    type Prepared = Prepared;
    type Committed = AfterCommit;

    async fn prepare(&self, job: Job) -> Prepared {
        let result = match job.kind.as_str() {
            "webhook" => match parse::<WebhookPayload>(&job) {
                Ok(payload) => match self.prepare_webhook(&job, payload).await {
                    Ok(Ok(prepared)) => return Prepared::Webhook(Box::new(prepared)),
                    Ok(Err(outcome)) => Ok(outcome),
                    Err(err) => Err(err),
                },
                Err(outcome) => return Prepared::Ended(outcome),
            },
            "sync_status" | "sync_assignee" => match parse::<SyncPayload>(&job) {
                Ok(payload) => self.run_sync(&job, payload).await,
                Err(outcome) => return Prepared::Ended(outcome),
            },
            "notify" => match parse::<NotifyPayload>(&job) {
                Ok(payload) => self.run_notify(&job, payload).await,
                Err(outcome) => return Prepared::Ended(outcome),
            },
            super::maintenance::KIND => self.run_maintain(&job).await,
            other => {
                return Prepared::Ended(Outcome::Fail {
                    error: format!("unknown job kind `{other}`"),
                });
            }
        };
        Prepared::Ended(result.unwrap_or_else(domain_failure))
    }

    async fn apply(
        &self,
        tx: &mut AnyConnection,
        prepared: Prepared,
    ) -> Result<(Outcome, AfterCommit), Outcome> {
        match prepared {
            Prepared::Ended(outcome) => Ok((outcome, AfterCommit::default())),
            Prepared::Webhook(prepared) => {
                let mut after = AfterCommit::default();
                match self.apply_prepared(tx, &mut after, *prepared).await {
                    Ok(applied) => Ok((Outcome::note(applied.note()), after)),
                    Err(err) => Err(domain_failure(err)),
                }
            }
        }
    }

    fn write_order(prepared: &Prepared) -> String {
        match prepared {
            // Only the job's own row: any order will do.
            Prepared::Ended(_) => String::new(),
            Prepared::Webhook(webhook) => webhook.write_order(),
        }
    }

    fn committed(&self, effects: Vec<AfterCommit>) {
        let mut all = AfterCommit::default();
        for after in effects {
            all.jobs |= after.jobs;
            all.assigned.extend(after.assigned);
            all.unassigned.extend(after.unassigned);
        }
        Domain::committed(self, all);
    }
}

fn parse<T: DeserializeOwned>(job: &Job) -> Result<T, Outcome> {
    serde_json::from_str(&job.payload).map_err(|e| Outcome::Fail {
        error: format!("unreadable {} job: {e}", job.kind),
    })
}

/// A domain error while running a job: a database that is failing as a whole
/// defers the job, another database error is retried, an invalid change fails
/// for good.
pub fn domain_failure(err: DomainError) -> Outcome {
    match err {
        DomainError::Store(StoreError::NotFound(what)) => {
            Outcome::note(format!("{what} no longer exists; nothing to do"))
        }
        DomainError::Invalid(msg) => Outcome::Fail { error: msg },
        DomainError::Store(err) if err.is_unavailable() => Outcome::Deferred {
            error: err.to_string(),
        },
        DomainError::Store(other) => Outcome::Retry {
            error: other.to_string(),
            after: None,
        },
    }
}

/// Whether a failed plugin call is worth retrying. The tracker refusing us
/// (401, 403, 404, a rejected transition, bad input) is not: it needs a
/// person. Rate limits, 5xx, network trouble, timeouts and traps are.
pub fn call_failure(err: &PluginCallError) -> Outcome {
    let error = err.to_string();
    match err.plugin_error() {
        Some(PluginError::Upstream(UpstreamError {
            status,
            retry_after_secs,
            ..
        })) => match status {
            Some(429) | Some(408) | Some(425) => Outcome::Retry {
                error,
                after: retry_after_secs.map(|s| Duration::from_secs(u64::from(s))),
            },
            Some(s) if *s >= 500 => Outcome::Retry {
                error,
                after: retry_after_secs.map(|s| Duration::from_secs(u64::from(s))),
            },
            None => Outcome::Retry { error, after: None },
            Some(_) => Outcome::Fail { error },
        },
        Some(
            PluginError::Unauthorized(_) | PluginError::Rejected(_) | PluginError::InvalidInput(_),
        ) => Outcome::Fail { error },
        Some(PluginError::Internal(_)) | None => Outcome::Retry { error, after: None },
    }
}

/// Whether a notifier's error says the installation cannot work until fixed.
pub fn breaks_installation(err: &PluginCallError) -> bool {
    match err.plugin_error() {
        Some(PluginError::Upstream(UpstreamError { status, .. })) => {
            matches!(status, Some(401 | 403 | 404))
        }
        Some(
            PluginError::Unauthorized(_) | PluginError::Rejected(_) | PluginError::InvalidInput(_),
        ) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_not_stored() {
        for name in [
            "Authorization",
            "Proxy-Authorization",
            "X-Hub-Signature",
            "X-Hub-Signature-256",
            "cookie",
            "X-Shared-Secret",
            "x-api-token",
            "X-Api-Key",
            "X-Auth-User",
            "X-Gitlab-Token",
            "X-Session-Id",
            "X-Password",
        ] {
            assert!(is_credential_header(name), "{name}");
        }
        for name in [
            "content-type",
            "x-atlassian-webhook-identifier",
            "user-agent",
            "x-github-delivery",
            "x-request-id",
        ] {
            assert!(!is_credential_header(name), "{name}");
        }
    }
}
