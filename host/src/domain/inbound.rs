//! Stored webhooks, processed: the provider plugin turns the delivery into
//! normalized events, and each is applied to the linked groups unless a newer
//! event about the same external issue was applied already.

use super::assignment::InboundAssignee;
use super::jobs::{WebhookPayload, call_failure};
use super::status::GroupStatus;
use super::{AfterCommit, Domain, DomainError};
use crate::plugins::bindings::provider_types::{
    Change, InboundEvent, IncomingRequest, StatusAction,
};
use crate::queue::Outcome;
use crate::store::{self, Integration, Job, StoreError};

impl Domain {
    /// Run a `webhook` job.
    pub(super) async fn process_webhook(
        &self,
        job: &Job,
        payload: WebhookPayload,
    ) -> Result<Outcome, DomainError> {
        let Some(plugin) = self.registry.provider(&payload.plugin) else {
            // The operator may be swapping the plugin: keep the delivery.
            return Ok(Outcome::Retry {
                error: format!("no plugin `{}` is loaded", payload.plugin),
                after: None,
            });
        };
        let integration = match job.integration_id {
            Some(id) => match self.store.integration(id).await {
                Ok(i) => i,
                Err(StoreError::NotFound(_)) => {
                    return Ok(Outcome::note("the integration was uninstalled"));
                }
                Err(e) => return Err(e.into()),
            },
            None => {
                return Ok(Outcome::Fail {
                    error: "webhook job without an integration".into(),
                });
            }
        };
        let request = IncomingRequest {
            method: payload.method,
            path: payload.path,
            query: payload.query,
            headers: payload.headers,
            route_params: payload.route_params,
            body: job.body.clone().unwrap_or_default(),
        };
        let events = match plugin.handle_webhook(integration.clone(), &request).await {
            Ok(events) => events,
            Err(err) => return Ok(call_failure(&err)),
        };
        let provider = (plugin.name(), plugin.info.display_name.as_str());
        let (applied, stale) = self
            .apply_events(&integration, provider, events, job.event_time, job.id)
            .await?;
        Ok(Outcome::note(format!(
            "{applied} event(s) applied, {stale} older than the last applied and ignored"
        )))
    }

    /// Apply a delivery's events to the linked groups; `fallback_time` is the
    /// delivery's event time, for events that carry none, and `arrival` its
    /// place in arrival order (its job id), which breaks ties between equal
    /// times. Returns how many were applied and how many were older than the
    /// last applied and ignored.
    pub async fn apply_events(
        &self,
        integration: &Integration,
        provider: (&str, &str),
        events: Vec<InboundEvent>,
        fallback_time: Option<i64>,
        arrival: i64,
    ) -> Result<(usize, usize), DomainError> {
        let (mut applied, mut stale) = (0, 0);
        for event in events {
            let time = event.event_time.map(|t| t as i64).or(fallback_time);
            if self
                .apply_event(
                    integration,
                    provider,
                    event.external_issue,
                    event.change,
                    time,
                    arrival,
                )
                .await?
            {
                applied += 1;
            } else {
                stale += 1;
            }
        }
        Ok((applied, stale))
    }

    /// Apply one event; false when it is older than the last one applied to
    /// this issue for the same kind of change. The clock moves in the
    /// transaction that applies the change, so deliveries may be processed
    /// concurrently and in any order: the newest is the one that stays.
    async fn apply_event(
        &self,
        integration: &Integration,
        provider: (&str, &str),
        issue: String,
        change: Change,
        time: Option<i64>,
        arrival: i64,
    ) -> Result<bool, DomainError> {
        let clock = match &change {
            Change::Assignee(_) => "assignee",
            Change::Status(s) if matches!(s.action, StatusAction::None) => return Ok(true),
            Change::Status(_) => "status",
        };
        enum Plan {
            Assignee(InboundAssignee),
            Status(Vec<i64>, GroupStatus),
        }
        let plan = match &change {
            Change::Assignee(email) => Plan::Assignee(
                self.plan_inbound_assignee(integration.id, email.as_deref(), &issue)
                    .await?,
            ),
            Change::Status(change) => Plan::Status(
                self.plan_inbound_status(integration.id, &issue).await?,
                match change.action {
                    StatusAction::Resolve => GroupStatus::Resolved,
                    _ => GroupStatus::Unresolved,
                },
            ),
        };
        let mut after = AfterCommit::default();
        let mut tx = self.store.begin_write().await?;
        if let Some(time) = time
            && !store::advance_issue_clock(&mut tx, integration.id, &issue, clock, time, arrival)
                .await?
        {
            drop(tx);
            tracing::info!(integration = integration.id, %issue, clock, time, "older event ignored");
            return Ok(false);
        }
        let groups = match plan {
            Plan::Assignee(plan) => {
                self.apply_inbound_assignee(&mut tx, &mut after, integration.id, &plan)
                    .await?;
                plan.groups()
            }
            Plan::Status(groups, status) => {
                self.apply_inbound_status(
                    &mut tx,
                    &mut after,
                    integration.id,
                    provider,
                    &groups,
                    status,
                )
                .await?
            }
        };
        tx.commit().await?;
        tracing::info!(integration = integration.id, %issue, clock, ?groups, "inbound event applied");
        self.committed(after);
        Ok(true)
    }
}
