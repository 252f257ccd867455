//! The Jira logic that Jira Cloud and Jira Server share: outbound status
//! sync, the done-category rule, changelog handling, and reading a delivery.
//!
//! A provider implements [`JiraApi`] for its client (how a request is
//! authenticated and sent, which user field it uses); the REST lookups,
//! the status sync and the webhook's changelog handling come with it.

pub mod api;
pub mod changelog;
pub mod ids;
pub mod inbound;
pub mod payload;
pub mod statuses;
pub mod transitions;

#[cfg(test)]
mod test_client;

pub use api::{CACHE_TTL_SECS, JiraApi};
pub use changelog::has_changelog;
pub use ids::id_string;
pub use inbound::events;
pub use statuses::{done_ids, status_action};
pub use transitions::{pick_transition, sync_status};
