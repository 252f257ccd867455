//! Stored webhooks, processed in two steps. First, without writing: the
//! provider plugin turns the delivery into normalized events, and what each
//! would change is read and decided. Then, in the caller's transaction (one
//! for a whole batch of jobs): each event is applied to the linked groups
//! unless a newer event about the same external issue was applied already.

use super::assignment::InboundAssignee;
use super::jobs::{WebhookPayload, call_failure};
use super::status::GroupStatus;
use super::{AfterCommit, Domain, DomainError};
use crate::plugins::contract::provider_types::{
    Change, InboundEvent, IncomingRequest, StatusAction,
};
use crate::queue::Outcome;
use crate::store::{self, Integration, Job, StoreError};

/// A delivery, read and decided, waiting for its transaction.
pub struct PreparedWebhook {
    integration: Integration,
    provider: (String, String),
    events: Vec<PlannedEvent>,
    /// Its place in arrival order (its job id): breaks ties between equal times.
    arrival: i64,
    /// Event times that were too far ahead to be believed.
    clamped: usize,
}

/// One event of a delivery, decided.
struct PlannedEvent {
    issue: String,
    /// Which of the issue's clocks it moves; `None`: it changes nothing.
    clock: Option<&'static str>,
    time: Option<i64>,
    plan: Option<Plan>,
}

enum Plan {
    Assignee(InboundAssignee),
    Status(Vec<i64>, GroupStatus),
}

/// What applying a delivery did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub applied: usize,
    /// Older than the last applied to their issue, and ignored.
    pub stale: usize,
    /// Times too far ahead, replaced by the time of arrival.
    pub clamped: usize,
    /// Tracker users who matched no user, as notes name them.
    pub unmatched: Vec<String>,
}

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
    /// The first step of a `webhook` job: the plugin's `handle-webhook` and
    /// the reads that decide what each event changes. Writes nothing; an
    /// outcome instead when there is nothing to apply.
    pub(super) async fn prepare_webhook(
        &self,
        job: &Job,
        payload: WebhookPayload,
    ) -> Result<Result<PreparedWebhook, Outcome>, DomainError> {
        let Some(plugin) = self.registry.provider(&payload.plugin) else {
            // The operator may be swapping the plugin: keep the delivery.
            return Ok(Err(Outcome::Retry {
                error: format!("no plugin `{}` is loaded", payload.plugin),
                after: None,
            }));
        };
        let integration = match job.integration_id {
            Some(id) => match self.store.integration(id).await {
                Ok(i) => i,
                Err(StoreError::NotFound(_)) => {
                    return Ok(Err(Outcome::note("the integration was uninstalled")));
                }
                Err(e) => return Err(e.into()),
            },
            None => {
                return Ok(Err(Outcome::Fail {
                    error: "webhook job without an integration".into(),
                }));
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
            Err(err) => return Ok(Err(call_failure(&err))),
        };
        let clock = DeliveryClock {
            fallback: job.event_time,
            arrived: job.created_at,
        };
        let provider = (plugin.name().to_owned(), plugin.info.display_name.clone());
        Ok(Ok(self
            .plan_events(integration, provider, events, clock, job.id)
            .await?))
    }

    /// Decide what each of a delivery's events changes; `clock` gives the
    /// delivery's event time, for events that carry none, and when it
    /// arrived; `arrival` is its place in arrival order (its job id).
    pub async fn plan_events(
        &self,
        integration: Integration,
        provider: (String, String),
        events: Vec<InboundEvent>,
        clock: DeliveryClock,
        arrival: i64,
    ) -> Result<PreparedWebhook, DomainError> {
        let mut planned = Vec::with_capacity(events.len());
        let mut clamped = 0;
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
            let issue = event.external_issue;
            let (clock, plan) = match &event.change {
                Change::Status(s) if matches!(s.action, StatusAction::None) => (None, None),
                Change::Assignee(person) => (
                    Some("assignee"),
                    Some(Plan::Assignee(
                        self.plan_inbound_assignee(integration.id, person.as_ref(), &issue)
                            .await?,
                    )),
                ),
                Change::Status(change) => (
                    Some("status"),
                    Some(Plan::Status(
                        self.plan_inbound_status(integration.id, &issue).await?,
                        match change.action {
                            StatusAction::Resolve => GroupStatus::Resolved,
                            _ => GroupStatus::Unresolved,
                        },
                    )),
                ),
            };
            planned.push(PlannedEvent {
                issue,
                clock,
                time,
                plan,
            });
        }
        Ok(PreparedWebhook {
            integration,
            provider,
            events: planned,
            arrival,
            clamped,
        })
    }

    /// The second step: apply a prepared delivery's events in `tx`. The
    /// issue's clock moves in the same transaction, so deliveries may be
    /// prepared concurrently and applied in any order: the newest is the one
    /// that stays.
    pub(super) async fn apply_prepared(
        &self,
        tx: &mut sqlx::AnyConnection,
        after: &mut AfterCommit,
        prepared: PreparedWebhook,
    ) -> Result<Applied, DomainError> {
        let integration = prepared.integration.id;
        let provider = (prepared.provider.0.as_str(), prepared.provider.1.as_str());
        let mut done = Applied {
            clamped: prepared.clamped,
            ..Applied::default()
        };
        for event in prepared.events {
            let (Some(clock), Some(plan)) = (event.clock, event.plan) else {
                done.applied += 1;
                continue;
            };
            let issue = &event.issue;
            if let Some(time) = event.time
                && !store::advance_issue_clock(
                    tx,
                    integration,
                    issue,
                    clock,
                    time,
                    prepared.arrival,
                )
                .await?
            {
                tracing::info!(integration, %issue, clock, time, "older event ignored");
                done.stale += 1;
                continue;
            }
            let groups = match plan {
                Plan::Assignee(plan) => {
                    self.apply_inbound_assignee(tx, after, integration, &plan)
                        .await?;
                    done.unmatched.extend(plan.unmatched());
                    plan.groups()
                }
                Plan::Status(groups, status) => {
                    self.apply_inbound_status(tx, after, integration, provider, &groups, status)
                        .await?
                }
            };
            tracing::info!(integration, %issue, clock, ?groups, "inbound event applied");
            done.applied += 1;
        }
        Ok(done)
    }

    /// Apply a prepared delivery in a write transaction of its own (what a
    /// batch does for many); returns what it did.
    pub async fn apply_alone(&self, prepared: PreparedWebhook) -> Result<Applied, DomainError> {
        let mut after = AfterCommit::default();
        let mut tx = self.store.begin_write().await?;
        let done = self.apply_prepared(&mut tx, &mut after, prepared).await?;
        tx.commit().await?;
        self.committed(after);
        Ok(done)
    }
}

impl PreparedWebhook {
    /// The integration and the first issue its events are about: the rows
    /// its writes lock first (the issue's clock, then its groups).
    pub fn write_order(&self) -> String {
        let issue = self.events.first().map_or("", |e| e.issue.as_str());
        format!("{:020}/{issue}", self.integration.id)
    }
}

impl Applied {
    /// The job's note.
    pub fn note(&self) -> String {
        let mut note = format!(
            "{} event(s) applied, {} older than the last applied and ignored",
            self.applied, self.stale
        );
        if self.clamped > 0 {
            note.push_str(&format!(
                "; {} event time(s) more than {} s ahead of the host's clock replaced by the time of arrival",
                self.clamped,
                MAX_CLOCK_SKEW_MS / 1000
            ));
        }
        if !self.unmatched.is_empty() {
            note.push_str(&format!(
                "; assignee not matched to any user (nothing changed): {}",
                self.unmatched.join(", ")
            ));
        }
        note
    }
}
