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

/// How far ahead of the host's clock a provider's event time may be and
/// still be believed. Trackers' clocks are NTP-synchronized; five minutes
/// allows for a self-hosted one that drifts.
pub const MAX_CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;

/// The clock of one delivery: its event time, and when it arrived.
#[derive(Clone, Copy, Debug)]
pub struct DeliveryClock {
    /// The delivery's event time, for events that carry none.
    pub fallback: Option<i64>,
    /// When the host stored it (ms).
    pub arrived: i64,
}

/// `time`, or `arrived` when `time` is more than [`MAX_CLOCK_SKEW_MS`] after
/// it. An event dated in the future would otherwise pin its issue's clock:
/// every real event after it would look older and be ignored. Refusing it
/// instead would lose it for good (trackers do not send a refused delivery
/// again), while its time of arrival orders it correctly against what comes
/// after.
pub fn believable_time(time: i64, arrived: i64) -> i64 {
    if time > arrived.saturating_add(MAX_CLOCK_SKEW_MS) {
        arrived
    } else {
        time
    }
}

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
        let clock = DeliveryClock {
            fallback: job.event_time,
            arrived: job.created_at,
        };
        let (applied, stale, clamped) = self
            .apply_events(&integration, provider, events, clock, job.id)
            .await?;
        let mut note =
            format!("{applied} event(s) applied, {stale} older than the last applied and ignored");
        if clamped > 0 {
            note.push_str(&format!(
                "; {clamped} event time(s) more than {} s ahead of the host's clock replaced by the time of arrival",
                MAX_CLOCK_SKEW_MS / 1000
            ));
        }
        Ok(Outcome::note(note))
    }

    /// Apply a delivery's events to the linked groups; `clock` gives the
    /// delivery's event time, for events that carry none, and when it
    /// arrived; `arrival` is its place in arrival order (its job id), which
    /// breaks ties between equal times. Returns how many were applied, how
    /// many were older than the last applied and ignored, and how many times
    /// were too far ahead to be believed.
    pub async fn apply_events(
        &self,
        integration: &Integration,
        provider: (&str, &str),
        events: Vec<InboundEvent>,
        clock: DeliveryClock,
        arrival: i64,
    ) -> Result<(usize, usize, usize), DomainError> {
        let (mut applied, mut stale, mut clamped) = (0, 0, 0);
        for event in events {
            let time = event
                .event_time
                .and_then(|t| i64::try_from(t).ok())
                .or(clock.fallback)
                .map(|t| {
                    let believable = believable_time(t, clock.arrived);
                    if believable != t {
                        clamped += 1;
                        tracing::warn!(
                            integration = integration.id,
                            issue = %event.external_issue,
                            event_time = t,
                            "an event time far ahead of the host's clock was replaced by the time of arrival"
                        );
                    }
                    believable
                });
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
        Ok((applied, stale, clamped))
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
