//! Resolve and unresolve, from the API or from a tracker (spec §2.4, inbound
//! status task).

use serde_json::{Value, json};

use super::jobs::{GroupChange, GroupChanged};
use super::{AfterCommit, Domain, DomainError, Source};
use crate::store::{self, SyncFlag};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupStatus {
    Resolved,
    Unresolved,
}

impl GroupStatus {
    pub fn parse(s: &str) -> Option<GroupStatus> {
        match s {
            "resolved" => Some(GroupStatus::Resolved),
            "unresolved" => Some(GroupStatus::Unresolved),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            GroupStatus::Resolved => "resolved",
            GroupStatus::Unresolved => "unresolved",
        }
    }
}

impl Domain {
    /// Set the group's status. A group already in that status is left alone (no
    /// activity). Returns whether it changed.
    pub async fn set_status(
        &self,
        group: i64,
        status: GroupStatus,
        source: Source,
        activity_data: Value,
    ) -> Result<bool, DomainError> {
        let mut after = AfterCommit::default();
        let mut tx = self.store.begin_write().await?;
        let changed = self
            .set_status_in(&mut tx, &mut after, group, status, source, &activity_data)
            .await?;
        tx.commit().await?;
        self.committed(after);
        Ok(changed)
    }

    /// [`Self::set_status`] inside the caller's write transaction.
    pub(super) async fn set_status_in(
        &self,
        tx: &mut sqlx::AnyConnection,
        after: &mut AfterCommit,
        group: i64,
        status: GroupStatus,
        source: Source,
        activity_data: &Value,
    ) -> Result<bool, DomainError> {
        let row = store::group_row(tx, group).await?;
        if row.status == status.as_str() {
            return Ok(false);
        }
        let (substatus, activity) = match status {
            GroupStatus::Resolved => (None, "set_resolved"),
            GroupStatus::Unresolved => (Some("ongoing"), "set_unresolved"),
        };
        store::set_status(tx, group, status.as_str(), substatus).await?;
        store::insert_activity(tx, &row, activity, source.acting_user(), activity_data).await?;
        store::insert_history(tx, &row, status.as_str(), source.acting_user(), None).await?;
        let changed = GroupChanged {
            change: match status {
                GroupStatus::Resolved => GroupChange::Resolved,
                GroupStatus::Unresolved => GroupChange::Unresolved,
            },
            user: None,
            team: false,
            source_integration: source.integration(),
        };
        self.fan_out(tx, after, &row, &changed).await?;
        Ok(true)
    }

    /// The inbound status task, its reads: a tracker moved issue `key` across
    /// the done line. It applies to the linked groups of every organization
    /// with inbound status sync on.
    pub(super) async fn plan_inbound_status(
        &self,
        integration: i64,
        key: &str,
    ) -> Result<Vec<i64>, DomainError> {
        let orgs = self
            .store
            .orgs_that_sync(integration, SyncFlag::InboundStatus)
            .await?;
        let groups = self.store.groups_linked_to(integration, key, &orgs).await?;
        Ok(groups.iter().map(|g| g.id).collect())
    }

    /// Write a planned inbound status change in the caller's transaction;
    /// returns the groups that changed.
    pub(super) async fn apply_inbound_status(
        &self,
        tx: &mut sqlx::AnyConnection,
        after: &mut AfterCommit,
        integration: i64,
        provider: (&str, &str),
        groups: &[i64],
        status: GroupStatus,
    ) -> Result<Vec<i64>, DomainError> {
        // Resolution strategies that target releases need releases, which this host
        // does not model; every strategy resolves plainly (Sentry's fallback when a
        // project has no open release).
        let data = json!({
            "provider": provider.1,
            "provider_key": provider.0,
            "integration_id": integration,
        });
        let source = Source::Integration(integration);
        let mut changed = Vec::new();
        for g in groups {
            if self
                .set_status_in(tx, after, *g, status, source, &data)
                .await?
            {
                changed.push(*g);
            }
        }
        Ok(changed)
    }
}
