//! Periodic upkeep a provider asks for (contract 0.2.0's `maintain`, every
//! `maintenance-interval-secs` per active integration): a job per integration
//! and interval, written with a dedup key naming the interval, so however
//! many host processes share the database each interval runs once; as a job,
//! a failure is retried and shown like any other.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::watch;

use super::jobs::call_failure;
use super::{Domain, DomainError};
use crate::plugins::Plugin;
use crate::queue::Outcome;
use crate::store::{self, Job, NewJob};
use crate::time::now_ms;

/// The job kind.
pub const KIND: &str = "maintain";

/// How often the schedule is looked at: the finest interval it can keep.
const TICK: Duration = Duration::from_secs(1);

impl Domain {
    /// Write the upkeep jobs due now; returns how many were new. `written`
    /// holds the interval each integration's job was last written for by this
    /// process, so an interval costs one write, not one per tick.
    pub async fn schedule_maintenance(
        &self,
        written: &mut HashMap<i64, i64>,
    ) -> Result<usize, DomainError> {
        let now = now_ms();
        let mut due = Vec::new();
        for plugin in self.registry.plugins() {
            let Plugin::Provider(provider) = plugin else {
                continue;
            };
            let Some(interval) = provider.info.maintenance_interval_secs.filter(|s| *s > 0) else {
                continue;
            };
            let slot = now / (i64::from(interval) * 1000);
            for integration in self
                .store
                .active_integrations_of(&provider.info.name)
                .await?
            {
                let job = NewJob {
                    kind: KIND,
                    integration_id: Some(integration),
                    dedup_key: Some(format!("{interval}s/{slot}")),
                    payload: "{}".into(),
                    ..NewJob::default()
                };
                due.push((integration, slot, job));
            }
        }
        if due.is_empty() {
            return Ok(0);
        }
        let mut tx = self.store.begin_write().await?;
        let mut new = 0;
        for (_, _, job) in &due {
            new += usize::from(store::insert_job(&mut tx, job, now).await?.is_some());
        }
        tx.commit().await?;
        // Another process may have written some of them first: either way
        // each of these intervals has its job now.
        for (integration, slot, _) in due {
            written.insert(integration, slot);
        }
        if new > 0 {
            self.jobs_committed();
        }
        Ok(new)
    }

    /// Keep writing upkeep jobs until `stopped` says to stop.
    pub async fn maintain_periodically(self, mut stopped: watch::Receiver<bool>) {
        let mut written = HashMap::new();
        loop {
            if let Err(err) = self.schedule_maintenance(&mut written).await {
                tracing::warn!(error = %err, "could not schedule plugin upkeep; trying again");
            }
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = stopped.changed() => return,
            }
        }
    }

    /// Run an upkeep job: one `maintain` call.
    pub(super) async fn run_maintain(&self, job: &Job) -> Result<Outcome, DomainError> {
        let Some(integration_id) = job.integration_id else {
            return Ok(Outcome::Fail {
                error: "upkeep job without an integration".into(),
            });
        };
        let (integration, plugin) = match self.provider_for(integration_id).await? {
            Ok(found) => found,
            Err(outcome) => return Ok(outcome),
        };
        Ok(match plugin.maintain(integration).await {
            Ok(()) => Outcome::note("upkeep done"),
            Err(err) => {
                tracing::warn!(integration = integration_id, error = %err, "plugin upkeep failed");
                call_failure(&err)
            }
        })
    }
}
