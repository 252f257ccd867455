//! Normalized events from a provider's webhook, applied to the linked groups.

use super::status::GroupStatus;
use super::{Domain, DomainError};
use crate::plugins::bindings::provider_types::{Change, InboundEvent, StatusAction};
use crate::store::Integration;

/// Apply `events` that arrived through `integration`. `provider` is the plugin's
/// (key, display name), recorded in activity data.
pub async fn apply_events(
    domain: &Domain,
    integration: &Integration,
    provider: (&str, &str),
    events: Vec<InboundEvent>,
) -> Result<(), DomainError> {
    for event in events {
        match event.change {
            Change::Assignee(email) => {
                let groups = domain
                    .sync_assignee_inbound(integration.id, email.as_deref(), &event.external_issue)
                    .await?;
                tracing::info!(integration = integration.id, issue = %event.external_issue, ?groups, "inbound assignee applied");
            }
            Change::Status(change) => {
                let status = match change.action {
                    StatusAction::Resolve => GroupStatus::Resolved,
                    StatusAction::Unresolve => GroupStatus::Unresolved,
                    StatusAction::None => continue,
                };
                let groups = domain
                    .sync_status_inbound(integration.id, provider, &event.external_issue, status)
                    .await?;
                tracing::info!(integration = integration.id, issue = %event.external_issue, ?groups, "inbound status applied");
            }
        }
    }
    Ok(())
}
