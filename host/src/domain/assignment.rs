//! Assign and deassign (Sentry's GroupAssignee manager, spec §4) and the inbound
//! assignee sync from a tracker (spec §3).

use serde_json::json;

use super::jobs::{GroupChange, GroupChanged, group_changed_job};
use super::{Domain, DomainError, Source};
use crate::store::{self, Assignee, GroupRow, SyncFlag};
use crate::time::now_ms;

/// What an assignment did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AssignOutcome {
    pub new_assignment: bool,
    pub updated_assignment: bool,
}

impl Domain {
    /// Assign `group` to a user or a team. Re-assigning the same assignee changes
    /// nothing; `create_only` never replaces an existing assignment.
    pub async fn assign(
        &self,
        group: i64,
        to: Assignee,
        source: Source,
        create_only: bool,
    ) -> Result<AssignOutcome, DomainError> {
        if create_only && self.assignee_exists.known_assigned(group) {
            return Ok(AssignOutcome {
                new_assignment: false,
                updated_assignment: false,
            });
        }
        // Reads on other connections happen before the write transaction starts:
        // on SQLite a writer waiting for a second pooled connection can starve.
        let (assignee_email, team_org) = match to {
            Assignee::User(user) => {
                let user = self.store.user(user).await?;
                (user.emails.first().map(|e| e.email.clone()), None)
            }
            Assignee::Team(team) => (None, Some(self.store.team(team).await?.organization_id)),
        };
        let mut tx = self.store.begin_write().await?;
        let row = store::group_row(&mut tx, group).await?;
        if team_org.is_some_and(|org| org != row.organization_id) {
            return Err(DomainError::Invalid(
                "the team belongs to another organization".into(),
            ));
        }
        store::subscribe(&mut tx, &row, to, "assigned").await?;
        let previous = store::current_assignee(&mut tx, group).await?;
        let outcome = match previous {
            None => AssignOutcome {
                new_assignment: true,
                updated_assignment: false,
            },
            Some(prev) => AssignOutcome {
                new_assignment: false,
                updated_assignment: !create_only && prev != to,
            },
        };
        if !(outcome.new_assignment || outcome.updated_assignment) {
            tx.commit().await?;
            self.assignee_exists.mark_assigned(group);
            return Ok(outcome);
        }
        store::put_assignee(&mut tx, &row, to).await?;
        let (id, kind) = match to {
            Assignee::User(id) => (id, "user"),
            Assignee::Team(id) => (id, "team"),
        };
        let data = json!({
            "assignee": id.to_string(),
            "assigneeEmail": assignee_email,
            "assigneeType": kind,
        });
        store::insert_activity(&mut tx, &row, "assigned", source.acting_user(), &data).await?;
        store::insert_history(&mut tx, &row, "assigned", source.acting_user(), Some(to)).await?;
        if let Some(prev) = previous {
            self.drop_replaced_subscription(&mut tx, &row, prev, to)
                .await?;
        }
        let changed = GroupChanged {
            change: GroupChange::Assigned,
            user: match to {
                Assignee::User(user) => Some(user),
                Assignee::Team(_) => None,
            },
            team: matches!(to, Assignee::Team(_)),
            source_integration: source.integration(),
        };
        store::insert_job(&mut tx, &group_changed_job(group, &changed), now_ms()).await?;
        tx.commit().await?;
        self.jobs_committed();
        self.assignee_exists.mark_assigned(group);
        Ok(outcome)
    }

    /// Remove the group's assignee. Nothing happens when there is none.
    /// Returns whether an assignee was removed.
    pub async fn deassign(&self, group: i64, source: Source) -> Result<bool, DomainError> {
        let mut tx = self.store.begin_write().await?;
        let row = store::group_row(&mut tx, group).await?;
        let Some(previous) = store::current_assignee(&mut tx, group).await? else {
            tx.commit().await?;
            return Ok(false);
        };
        store::delete_assignee(&mut tx, group).await?;
        store::insert_activity(
            &mut tx,
            &row,
            "unassigned",
            source.acting_user(),
            &json!({}),
        )
        .await?;
        store::insert_history(&mut tx, &row, "unassigned", source.acting_user(), None).await?;
        store::unsubscribe_assigned(&mut tx, group, previous).await?;
        let changed = GroupChanged {
            change: GroupChange::Unassigned,
            user: None,
            team: false,
            source_integration: source.integration(),
        };
        store::insert_job(&mut tx, &group_changed_job(group, &changed), now_ms()).await?;
        tx.commit().await?;
        self.jobs_committed();
        self.assignee_exists.invalidate(&[group]);
        Ok(true)
    }

    /// The spec's team rules: a user who is replaced by a team they belong to
    /// keeps their subscription; otherwise the replaced assignee's "assigned"
    /// subscription goes.
    async fn drop_replaced_subscription(
        &self,
        tx: &mut sqlx::AnyConnection,
        row: &GroupRow,
        previous: Assignee,
        new: Assignee,
    ) -> Result<(), DomainError> {
        if let (Assignee::User(user), Assignee::Team(team)) = (previous, new)
            && store::is_team_member(tx, team, user).await?
        {
            return Ok(());
        }
        store::unsubscribe_assigned(tx, row.id, previous).await?;
        Ok(())
    }

    /// `sync_group_assignee_inbound`: a tracker says its issue `key` is now
    /// assigned to `email` (or to nobody). Returns the affected group ids: every
    /// linked group on deassign, the groups actually assigned on assign.
    pub async fn sync_assignee_inbound(
        &self,
        integration: i64,
        email: Option<&str>,
        key: &str,
    ) -> Result<Vec<i64>, DomainError> {
        let orgs = self
            .store
            .orgs_that_sync(integration, SyncFlag::InboundAssignee)
            .await?;
        let groups = self.store.groups_linked_to(integration, key, &orgs).await?;
        if groups.is_empty() {
            tracing::info!(integration, key, "inbound assignee: no affected groups");
            return Ok(Vec::new());
        }
        let source = Source::Integration(integration);
        let Some(email) = email else {
            for g in &groups {
                self.deassign(g.id, source).await?;
            }
            return Ok(groups.iter().map(|g| g.id).collect());
        };
        let users = self.store.users_by_verified_email(email).await?;
        let mut assigned = Vec::new();
        for g in &groups {
            let user = users
                .iter()
                .find(|(_, projects)| projects.contains(&g.project_id));
            match user {
                Some((user, _)) => {
                    self.assign(g.id, Assignee::User(*user), source, false)
                        .await?;
                    assigned.push(g.id);
                }
                None => tracing::info!(
                    integration,
                    group = g.id,
                    "inbound assignee: no user with this email can access the group's project"
                ),
            }
        }
        Ok(assigned)
    }
}
