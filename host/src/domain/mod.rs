//! The domain flows of Sentry's integration platform, provider-agnostic:
//! assignment, status changes, inbound sync from trackers and the outbound
//! fan-out to every linked tracker except the one a change came from.

mod assignee_cache;
mod assignment;
mod inbound;
mod notify;
mod outbound;
pub mod status;

pub use assignment::AssignOutcome;
pub use inbound::apply_events;
pub use notify::Notifications;
pub use outbound::Outbound;

use std::sync::Arc;

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
    pub outbound: Outbound,
    pub notifications: Notifications,
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

    /// The flows; starts the notification worker, so call it inside the runtime.
    pub fn new(store: Store, registry: Arc<Registry>) -> Domain {
        Domain {
            outbound: Outbound::new(store.clone(), registry.clone()),
            notifications: Notifications::start(store.clone(), registry),
            assignee_exists: Arc::default(),
            store,
        }
    }
}
