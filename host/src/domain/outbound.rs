//! The outbound fan-out: after a group's status or assignee changed, every
//! linked external issue whose installation says so is updated through its
//! provider plugin — except the issue's tracker the change came from.

use std::sync::Arc;

use super::{DomainError, Source};
use crate::plugins::Registry;
use crate::plugins::bindings::provider_types::ExternalIssue;
use crate::store::{Store, SyncFlag};

#[derive(Clone)]
pub struct Outbound {
    store: Store,
    registry: Arc<Registry>,
}

enum Change {
    Status { resolved: bool },
    Assignee { user: Option<i64> },
}

impl Outbound {
    pub fn new(store: Store, registry: Arc<Registry>) -> Outbound {
        Outbound { store, registry }
    }

    /// Push a status change to the linked trackers, in the background.
    pub fn status_changed(&self, group: i64, resolved: bool, source: Source) {
        self.spawn(group, Change::Status { resolved }, source);
    }

    /// Push an assignee change (a user, or nobody) to the linked trackers.
    pub fn assignee_changed(&self, group: i64, user: Option<i64>, source: Source) {
        self.spawn(group, Change::Assignee { user }, source);
    }

    fn spawn(&self, group: i64, change: Change, source: Source) {
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(err) = this.push(group, change, source).await {
                tracing::error!(group, error = %err, "outbound sync failed");
            }
        });
    }

    async fn push(&self, group: i64, change: Change, source: Source) -> Result<(), DomainError> {
        let links = self.store.group_external_issues(group).await?;
        if links.is_empty() {
            return Ok(());
        }
        let org = self
            .store
            .project(self.store.group(group).await?.project_id)
            .await?
            .organization_id;
        let emails = match change {
            Change::Assignee { user: Some(user) } => Some(self.store.verified_emails(user).await?),
            _ => None,
        };
        for link in links {
            if source.integration() == Some(link.integration_id) {
                continue;
            }
            let flag = match change {
                Change::Status { .. } => SyncFlag::OutboundStatus,
                Change::Assignee { .. } => SyncFlag::OutboundAssignee,
            };
            if !self
                .store
                .should_sync(org, link.integration_id, flag)
                .await?
            {
                continue;
            }
            let integration = self.store.integration(link.integration_id).await?;
            let Some(plugin) = self.registry.provider(&integration.provider) else {
                tracing::warn!(provider = %integration.provider, "no plugin loaded for the linked issue's provider");
                continue;
            };
            let issue = ExternalIssue {
                key: link.key.clone(),
                metadata: link.metadata.clone(),
            };
            let result = match change {
                Change::Status { resolved } => {
                    let mappings: Vec<_> = self
                        .store
                        .status_mappings(org, integration.id)
                        .await?
                        .into_iter()
                        .map(
                            |m| crate::plugins::bindings::provider_types::StatusMapping {
                                external_project: m.external_project,
                                on_resolve: m.on_resolve,
                                on_unresolve: m.on_unresolve,
                            },
                        )
                        .collect();
                    plugin
                        .sync_status(integration, &issue, resolved, &mappings)
                        .await
                }
                Change::Assignee { .. } => {
                    plugin
                        .sync_assignee(integration, &issue, emails.as_deref())
                        .await
                }
            };
            match result {
                Ok(outcome) => tracing::info!(
                    group,
                    issue = %link.key,
                    changed = outcome.changed,
                    note = outcome.note.as_deref().unwrap_or(""),
                    "outbound sync done"
                ),
                Err(err) => {
                    tracing::warn!(group, issue = %link.key, error = %err, "outbound sync failed")
                }
            }
        }
        Ok(())
    }
}
