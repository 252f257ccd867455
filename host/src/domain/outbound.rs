//! The outbound fan-out: a `group_changed` job expands into one job per linked
//! external issue whose installation syncs that kind of change — except the
//! tracker the change came from — and one per notifier of the organization.
//! Each of those calls one plugin once.

use super::jobs::{GroupChange, GroupChanged, SyncPayload, call_failure};
use super::{Domain, DomainError};
use crate::plugins::bindings::provider_types::{ExternalIssue, StatusMapping};
use crate::queue::Outcome;
use crate::store::{Job, NewJob, StoreError, SyncFlag};

impl Domain {
    /// Run a `group_changed` job: write the calls it leads to.
    pub(super) async fn expand_group_change(
        &self,
        job: &Job,
        changed: GroupChanged,
    ) -> Result<Outcome, DomainError> {
        let Some(group_id) = job.group_id else {
            return Ok(Outcome::Fail {
                error: "group_changed job without a group".into(),
            });
        };
        let group = self.store.group(group_id).await?;
        let org = self.store.project(group.project_id).await?.organization_id;
        let mut follow_ups = Vec::new();

        let sync = match changed.change {
            GroupChange::Resolved | GroupChange::Unresolved => {
                Some(("sync_status", SyncFlag::OutboundStatus))
            }
            // Teams are never pushed to trackers.
            GroupChange::Assigned if changed.team => None,
            GroupChange::Assigned | GroupChange::Unassigned => {
                Some(("sync_assignee", SyncFlag::OutboundAssignee))
            }
        };
        if let Some((kind, flag)) = sync {
            for link in &group.external_issues {
                if changed.source_integration == Some(link.integration_id)
                    || !self
                        .store
                        .should_sync(org, link.integration_id, flag)
                        .await?
                {
                    continue;
                }
                let payload = SyncPayload {
                    key: link.key.clone(),
                    metadata: link.metadata.clone(),
                    resolved: changed.change == GroupChange::Resolved,
                    user: changed.user,
                };
                follow_ups.push(NewJob {
                    kind,
                    integration_id: Some(link.integration_id),
                    group_id: Some(group_id),
                    payload: serde_json::to_string(&payload).unwrap_or_default(),
                    ..NewJob::default()
                });
            }
        }
        for (integration, broken) in self.store.org_installations(org).await? {
            if self.registry.notifier(&integration.provider).is_none() {
                continue;
            }
            if let Some(reason) = broken {
                tracing::info!(integration = integration.id, %reason, "notifier is broken; not sending");
                continue;
            }
            follow_ups.push(NewJob {
                kind: "notify",
                integration_id: Some(integration.id),
                group_id: Some(group_id),
                payload: serde_json::json!({ "change": changed.change }).to_string(),
                ..NewJob::default()
            });
        }
        Ok(Outcome::Done {
            note: Some(format!("{} call(s) queued", follow_ups.len())),
            follow_ups,
        })
    }

    /// Run a `sync_status` or `sync_assignee` job: one call to one tracker.
    pub(super) async fn run_sync(
        &self,
        job: &Job,
        payload: SyncPayload,
    ) -> Result<Outcome, DomainError> {
        let (Some(integration_id), Some(group_id)) = (job.integration_id, job.group_id) else {
            return Ok(Outcome::Fail {
                error: "sync job without an integration or group".into(),
            });
        };
        let integration = match self.store.integration(integration_id).await {
            Ok(i) => i,
            Err(StoreError::NotFound(_)) => {
                return Ok(Outcome::note("the integration was uninstalled"));
            }
            Err(e) => return Err(e.into()),
        };
        let Some(plugin) = self.registry.provider(&integration.provider) else {
            return Ok(Outcome::Retry {
                error: format!("no plugin `{}` is loaded", integration.provider),
                after: None,
            });
        };
        let issue = ExternalIssue {
            key: payload.key.clone(),
            metadata: payload.metadata.clone(),
        };
        let result = if job.kind == "sync_status" {
            let group = self.store.group(group_id).await?;
            let org = self.store.project(group.project_id).await?.organization_id;
            let mappings: Vec<_> = self
                .store
                .status_mappings(org, integration.id)
                .await?
                .into_iter()
                .map(|m| StatusMapping {
                    external_project: m.external_project,
                    on_resolve: m.on_resolve,
                    on_unresolve: m.on_unresolve,
                })
                .collect();
            plugin
                .sync_status(integration, &issue, payload.resolved, &mappings)
                .await
        } else {
            let emails = match payload.user {
                Some(user) => Some(self.store.verified_emails(user).await?),
                None => None,
            };
            plugin
                .sync_assignee(integration, &issue, emails.as_deref())
                .await
        };
        Ok(match result {
            Ok(outcome) => {
                tracing::info!(
                    group = group_id,
                    issue = %payload.key,
                    changed = outcome.changed,
                    note = outcome.note.as_deref().unwrap_or(""),
                    "outbound sync done"
                );
                Outcome::note(match outcome.note {
                    Some(note) => format!("changed: {}; {note}", outcome.changed),
                    None => format!("changed: {}", outcome.changed),
                })
            }
            Err(err) => {
                tracing::warn!(group = group_id, issue = %payload.key, error = %err, "outbound sync failed");
                call_failure(&err)
            }
        })
    }
}
