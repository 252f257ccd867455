//! Notifications: after a group is assigned, unassigned, resolved or
//! unresolved, every notifier installed in its organization (Discord, …) posts
//! one message about the group, and edits that same message on later events.
//!
//! Delivery runs on one background worker, in order, so two quick events on a
//! group never race into two messages; a notifier failure never touches the
//! change that caused it.

use std::time::Duration;

use tokio::sync::mpsc;

use super::DomainError;
use crate::plugins::Registry;
use crate::plugins::bindings::notifier::notifier_types::{GroupEvent, GroupSummary};
use crate::plugins::bindings::types::{PluginError, UpstreamError};
use crate::store::{Assignee, Store};
use std::sync::Arc;

/// Attempts per message when the service asks us to slow down or fails.
const MAX_ATTEMPTS: u32 = 4;
/// Longest wait we honour from a `retry_after`.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct Notifications {
    queue: mpsc::UnboundedSender<(i64, GroupEvent)>,
}

impl Notifications {
    pub fn start(store: Store, registry: Arc<Registry>) -> Notifications {
        let (queue, mut events) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let worker = Worker { store, registry };
            while let Some((group, event)) = events.recv().await {
                if let Err(err) = worker.deliver(group, event).await {
                    tracing::error!(group, error = %err, "notification failed");
                }
            }
        });
        Notifications { queue }
    }

    pub fn group_changed(&self, group: i64, event: GroupEvent) {
        // The worker lives as long as the runtime; a send can only fail at shutdown.
        let _ = self.queue.send((group, event));
    }
}

struct Worker {
    store: Store,
    registry: Arc<Registry>,
}

/// What to do after a failed attempt.
enum Next {
    RetryAfter(Duration),
    /// The service refused us for good (401/403/404): stop sending until fixed.
    Broken,
    GiveUp,
}

fn next_step(error: Option<&PluginError>, attempt: u32) -> Next {
    let backoff = Duration::from_secs(1 << attempt.min(5));
    match error {
        Some(PluginError::Unauthorized(_)) => Next::Broken,
        Some(PluginError::Upstream(UpstreamError {
            status,
            retry_after_secs,
            ..
        })) => match status {
            Some(401 | 403 | 404) => Next::Broken,
            Some(429) => Next::RetryAfter(
                retry_after_secs
                    .map(|s| Duration::from_secs(u64::from(s)))
                    .unwrap_or(backoff)
                    .min(MAX_RETRY_AFTER),
            ),
            Some(s) if *s >= 500 => Next::RetryAfter(backoff),
            None => Next::RetryAfter(backoff),
            Some(_) => Next::GiveUp,
        },
        Some(PluginError::InvalidInput(_) | PluginError::Rejected(_)) => Next::Broken,
        Some(PluginError::Internal(_)) | None => Next::GiveUp,
    }
}

impl Worker {
    async fn deliver(&self, group_id: i64, event: GroupEvent) -> Result<(), DomainError> {
        let group = self.store.group(group_id).await?;
        let project = self.store.project(group.project_id).await?;
        let installations = self
            .store
            .org_installations(project.organization_id)
            .await?;
        let targets: Vec<_> = installations
            .into_iter()
            .filter_map(|(i, broken)| Some((self.registry.notifier(&i.provider)?, i, broken)))
            .collect();
        if targets.is_empty() {
            return Ok(());
        }
        let assignee = match group.assignee {
            None => None,
            Some(Assignee::User(id)) => {
                let user = self.store.user(id).await?;
                Some(match user.emails.first() {
                    Some(e) => format!("{} ({})", user.name, e.email),
                    None => user.name,
                })
            }
            Some(Assignee::Team(id)) => Some(format!("#{}", self.store.team(id).await?.slug)),
        };
        let mut links = Vec::new();
        for issue in &group.external_issues {
            let integration = self.store.integration(issue.integration_id).await?;
            links.push(format!("{} {}", integration.name, issue.key));
        }
        let summary = GroupSummary {
            id: group.id,
            title: group.title.clone(),
            status: group.status.clone(),
            project: project.name.clone(),
            assignee,
            links,
        };
        for (notifier, integration, broken) in targets {
            if let Some(reason) = broken {
                tracing::info!(integration = integration.id, %reason, "notifier is broken; not sending");
                continue;
            }
            let previous = self
                .store
                .notification_message(group.id, integration.id)
                .await?;
            for attempt in 0..MAX_ATTEMPTS {
                let result = notifier
                    .notify(integration.clone(), &summary, event, previous.as_deref())
                    .await;
                let error = match result {
                    Ok(delivered) => {
                        self.store
                            .save_notification_message(
                                group.id,
                                project.id,
                                integration.id,
                                &delivered.message_id,
                            )
                            .await?;
                        break;
                    }
                    Err(e) => e,
                };
                match next_step(error.plugin_error(), attempt) {
                    Next::RetryAfter(wait) if attempt + 1 < MAX_ATTEMPTS => {
                        tracing::info!(integration = integration.id, ?wait, error = %error, "notifier asked to wait");
                        tokio::time::sleep(wait).await;
                    }
                    Next::Broken => {
                        tracing::warn!(integration = integration.id, error = %error, "notifier refused us; marking the installation broken");
                        self.store
                            .mark_broken(
                                project.organization_id,
                                integration.id,
                                &error.to_string(),
                            )
                            .await?;
                        break;
                    }
                    _ => {
                        tracing::warn!(integration = integration.id, error = %error, "notification dropped");
                        break;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(status: Option<u16>, retry_after_secs: Option<u32>) -> PluginError {
        PluginError::Upstream(UpstreamError {
            status,
            message: String::new(),
            retry_after_secs,
        })
    }

    #[test]
    fn refusals_are_never_retried() {
        for status in [401, 403, 404] {
            assert!(matches!(
                next_step(Some(&upstream(Some(status), None)), 0),
                Next::Broken
            ));
        }
        assert!(matches!(
            next_step(Some(&PluginError::Unauthorized("x".into())), 0),
            Next::Broken
        ));
    }

    #[test]
    fn rate_limits_wait_as_told_within_bounds() {
        match next_step(Some(&upstream(Some(429), Some(2))), 0) {
            Next::RetryAfter(d) => assert_eq!(d, Duration::from_secs(2)),
            _ => panic!("429 must be retried"),
        }
        match next_step(Some(&upstream(Some(429), Some(3600))), 0) {
            Next::RetryAfter(d) => assert_eq!(d, MAX_RETRY_AFTER),
            _ => panic!("429 must be retried"),
        }
        assert!(matches!(
            next_step(Some(&upstream(Some(503), None)), 1),
            Next::RetryAfter(_)
        ));
        assert!(matches!(
            next_step(Some(&upstream(Some(400), None)), 0),
            Next::GiveUp
        ));
    }
}
