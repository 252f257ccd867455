//! The domain flows of Sentry's integration platform, provider-agnostic:
//! assignment, status changes, inbound sync from trackers and the outbound
//! fan-out to every linked tracker except the one a change came from.
//!
//! Every outbound call is a job written in the transaction of the change that
//! causes it (an outbox); the queue's workers run them ([`jobs`]).

mod assignee_cache;
mod assignment;
mod inbound;
pub mod jobs;
mod maintenance;
mod notify;
mod outbound;
pub mod status;

pub use assignment::AssignOutcome;
pub use inbound::{Applied, DeliveryClock, MAX_CLOCK_SKEW_MS, PreparedWebhook, believable_time};

use std::sync::Arc;

use tokio::sync::Notify;

use crate::plugins::Registry;
use crate::store::{Store, StoreError};

/// Where a change came from. A change from integration X is never pushed back to X.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The host's API, optionally acting for a user.
    Api { user: Option<i64> },
    /// A tracker's webhook, through this integration.
    Integration(i64),
}

impl Source {
    fn acting_user(self) -> Option<i64> {
        match self {
            Source::Api { user } => user,
            Source::Integration(_) => None,
        }
    }

    fn integration(self) -> Option<i64> {
        match self {
            Source::Integration(id) => Some(id),
            Source::Api { .. } => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
}

impl From<sqlx::Error> for DomainError {
    fn from(e: sqlx::Error) -> DomainError {
        DomainError::Store(StoreError::Sql(e))
    }
}

/// The flows, with what they need.
#[derive(Clone)]
pub struct Domain {
    pub store: Store,
    registry: Arc<Registry>,
    /// Notified whenever this process wrote jobs, so idle workers look at once.
    jobs_written: Arc<Notify>,
    assignee_exists: Arc<assignee_cache::AssigneeExistsCache>,
}

impl Domain {
    /// Forget that the project's groups seen in the last 24 hours have an
    /// assignee (Sentry's project-wide invalidation), e.g. when who can be
    /// assigned there changed.
    pub async fn invalidate_project_assignee_cache(&self, project: i64) -> Result<(), DomainError> {
        let since = crate::time::now_ms() - assignee_cache::WINDOW.as_millis() as i64;
        let groups = self.store.groups_seen_since(project, since).await?;
        self.assignee_exists.invalidate(&groups);
        Ok(())
    }

    pub fn new(store: Store, registry: Arc<Registry>) -> Domain {
        Domain {
            registry,
            jobs_written: Arc::default(),
            assignee_exists: Arc::default(),
            store,
        }
    }

    /// What workers wait on for new jobs.
    pub fn job_signal(&self) -> Arc<Notify> {
        self.jobs_written.clone()
    }

    /// Wake an idle worker: jobs were committed. Each worker that claims a
    /// job wakes the next, so one signal is enough for a batch of jobs.
    pub fn jobs_committed(&self) {
        self.jobs_written.notify_one();
    }

    /// What a committed transaction leaves for this process to do.
    fn committed(&self, after: AfterCommit) {
        if after.jobs {
            self.jobs_committed();
        }
        for group in after.assigned {
            self.assignee_exists.mark_assigned(group);
        }
        self.assignee_exists.invalidate(&after.unassigned);
    }
}

/// Collected inside a write transaction, acted on once it committed: nothing
/// may wake a worker or fill a cache for a change that could still roll back.
#[derive(Debug, Default)]
pub struct AfterCommit {
    /// Jobs were written.
    jobs: bool,
    /// Groups now known to have an assignee.
    assigned: Vec<i64>,
    /// Groups whose assignee was removed.
    unassigned: Vec<i64>,
}
