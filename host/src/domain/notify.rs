//! Notifications: a `notify` job posts one message about a group through one
//! notifier installation (Discord, …), or edits the message it posted before.
//! Jobs of one group and installation run in order, so two quick events never
//! race into two messages; a notifier failure never touches the change that
//! caused it. A notifier that refuses us (401/403/404) marks the installation
//! broken, and nothing more is sent until it is installed again.

use super::jobs::{NotifyPayload, breaks_installation, call_failure};
use super::{Domain, DomainError};
use crate::plugins::contract::notifier::notifier_types::GroupSummary;
use crate::queue::Outcome;
use crate::store::{Assignee, Job, StoreError};

impl Domain {
    /// Run a `notify` job.
    pub(super) async fn run_notify(
        &self,
        job: &Job,
        payload: NotifyPayload,
    ) -> Result<Outcome, DomainError> {
        let (Some(integration_id), Some(group_id)) = (job.integration_id, job.group_id) else {
            return Ok(Outcome::Fail {
                error: "notify job without an integration or group".into(),
            });
        };
        let group = self.store.group(group_id).await?;
        let project = self.store.project(group.project_id).await?;
        let org = project.organization_id;
        let installation = self.store.org_installation(org, integration_id).await?;
        let Some((integration, broken)) = installation else {
            return Ok(Outcome::note("the notifier was uninstalled"));
        };
        if let Some(reason) = broken {
            return Ok(Outcome::note(format!(
                "the installation is broken ({reason}); not sent"
            )));
        }
        let Some(notifier) = self.registry.notifier(&integration.provider) else {
            return Ok(Outcome::Retry {
                error: format!("no plugin `{}` is loaded", integration.provider),
                after: None,
            });
        };
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
            match self.store.integration(issue.integration_id).await {
                Ok(linked) => links.push(format!("{} {}", linked.name, issue.key)),
                Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let summary = GroupSummary {
            id: group.id,
            title: group.title.clone(),
            status: group.status.clone(),
            project: project.name.clone(),
            assignee,
            links,
        };
        let previous = self
            .store
            .notification_message(group.id, integration.id)
            .await?;
        let result = notifier
            .notify(
                integration.clone(),
                &summary,
                payload.change.event(),
                previous.as_deref(),
            )
            .await;
        match result {
            Ok(delivered) => {
                self.store
                    .save_notification_message(
                        group.id,
                        project.id,
                        integration.id,
                        &delivered.message_id,
                    )
                    .await?;
                Ok(Outcome::note(format!("message {}", delivered.message_id)))
            }
            Err(err) if breaks_installation(&err) => {
                tracing::warn!(integration = integration.id, error = %err, "notifier refused us; marking the installation broken");
                self.store
                    .mark_broken(org, integration.id, &err.to_string())
                    .await?;
                Ok(Outcome::Fail {
                    error: err.to_string(),
                })
            }
            Err(err) => Ok(call_failure(&err)),
        }
    }
}
