//! The outbound fan-out: a change to a group writes, in its own transaction,
//! one job per linked external issue whose installation syncs that kind of
//! change — except the tracker the change came from — and one per notifier of
//! the organization. Each of those calls one plugin once.

use std::sync::Arc;

use sqlx::AnyConnection;

use super::jobs::{GroupChange, GroupChanged, SyncPayload, call_failure};
use super::{AfterCommit, Domain, DomainError};
use crate::plugins::ProviderPlugin;
use crate::plugins::contract::provider_types::{
    ExternalIssue, StatusMapping, StatusModel, UserRef,
};
use crate::plugins::contract::types::Identity;
use crate::queue::Outcome;
use crate::store::{self, GroupRow, Integration, Job, NewJob, StoreError, SyncFlag};
use crate::time::now_ms;

impl Domain {
    /// Write the calls `changed` leads to, in the change's transaction.
    pub(super) async fn fan_out(
        &self,
        tx: &mut AnyConnection,
        after: &mut AfterCommit,
        group: &GroupRow,
        changed: &GroupChanged,
    ) -> Result<(), DomainError> {
        let org = group.organization_id;
        let mut calls = Vec::new();
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
            for link in store::external_issues_of(tx, group.id).await? {
                if changed.source_integration == Some(link.integration_id)
                    || !store::orgs_syncing(tx, link.integration_id, flag)
                        .await?
                        .contains(&org)
                {
                    continue;
                }
                let payload = SyncPayload {
                    key: link.key,
                    metadata: link.metadata,
                    resolved: changed.change == GroupChange::Resolved,
                    user: changed.user,
                };
                calls.push(NewJob {
                    kind,
                    integration_id: Some(link.integration_id),
                    group_id: Some(group.id),
                    payload: serde_json::to_string(&payload).unwrap_or_default(),
                    ..NewJob::default()
                });
            }
        }
        for installation in store::installations_of(tx, org).await? {
            if self.registry.notifier(&installation.provider).is_none() {
                continue;
            }
            if let Some(reason) = installation.broken_reason {
                tracing::info!(integration = installation.integration_id, %reason, "notifier is broken; not sending");
                continue;
            }
            calls.push(NewJob {
                kind: "notify",
                integration_id: Some(installation.integration_id),
                group_id: Some(group.id),
                payload: serde_json::json!({ "change": changed.change }).to_string(),
                ..NewJob::default()
            });
        }
        let now = now_ms();
        for call in &calls {
            store::insert_job(tx, call, now).await?;
        }
        tracing::debug!(group = group.id, change = ?changed.change, calls = calls.len(), "outbound calls queued");
        after.jobs |= !calls.is_empty();
        Ok(())
    }

    /// The integration a provider job acts for and the plugin that serves it,
    /// or how the job ends without them: done when the integration was
    /// uninstalled, retried while its plugin is not loaded.
    pub(super) async fn provider_for(
        &self,
        integration_id: i64,
    ) -> Result<Result<(Integration, Arc<ProviderPlugin>), Outcome>, DomainError> {
        let integration = match self.store.integration(integration_id).await {
            Ok(i) => i,
            Err(StoreError::NotFound(_)) => {
                return Ok(Err(Outcome::note("the integration was uninstalled")));
            }
            Err(e) => return Err(e.into()),
        };
        match self.registry.provider(&integration.provider) {
            Some(plugin) => Ok(Ok((integration, plugin))),
            None => Ok(Err(Outcome::Retry {
                error: format!("no plugin `{}` is loaded", integration.provider),
                after: None,
            })),
        }
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
        let (integration, plugin) = match self.provider_for(integration_id).await? {
            Ok(found) => found,
            Err(outcome) => return Ok(outcome),
        };
        let issue = ExternalIssue {
            key: payload.key.clone(),
            metadata: payload.metadata.clone(),
        };
        let group = self.store.group(group_id).await?;
        let org = self.store.project(group.project_id).await?.organization_id;
        let result = if job.kind == "sync_status" {
            // Open/closed trackers need no mapping: closing is resolving.
            let mappings: Vec<_> = if plugin.info.status_model == StatusModel::OpenClosed {
                Vec::new()
            } else {
                self.store
                    .status_mappings(org, integration.id)
                    .await?
                    .into_iter()
                    .map(|m| StatusMapping {
                        external_project: m.external_project,
                        on_resolve: m.on_resolve,
                        on_unresolve: m.on_unresolve,
                    })
                    .collect()
            };
            plugin
                .sync_status(integration, &issue, payload.resolved, &mappings)
                .await
        } else {
            let user = match payload.user {
                Some(user) => Some(UserRef {
                    emails: self.store.verified_emails(user).await?,
                    identities: self
                        .store
                        .identities(org, Some(integration.id), Some(user))
                        .await?
                        .into_iter()
                        .map(|i| Identity {
                            id: i.external_id,
                            login: i.login,
                            display_name: i.name,
                            email: None,
                            email_verified: false,
                            bot: false,
                        })
                        .collect(),
                }),
                None => None,
            };
            plugin
                .sync_assignee(integration, &issue, user.as_ref())
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
