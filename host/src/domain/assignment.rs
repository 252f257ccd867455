//! Assign and deassign (Sentry's GroupAssignee manager, spec §4) and the inbound
//! assignee sync from a tracker (spec §3).

use serde_json::json;

use super::jobs::{GroupChange, GroupChanged};
use super::{AfterCommit, Domain, DomainError, Source};
use crate::store::{self, Assignee, GroupRow, SyncFlag};

/// What an assignment did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AssignOutcome {
    pub new_assignment: bool,
    pub updated_assignment: bool,
}

/// What an assignment reads before its write transaction: on SQLite a writer
/// waiting for a second pooled connection can starve, so reads on other
/// connections come first.
#[derive(Clone, Debug)]
pub(super) struct AssigneeFacts {
    email: Option<String>,
    /// The organization of an assigned team.
    team_org: Option<i64>,
}

/// An inbound assignee event, read and decided before its transaction.
pub(super) enum InboundAssignee {
    /// Deassign every linked group.
    Deassign(Vec<i64>),
    /// Assign each group to the user with the tracker's email who can see it.
    Assign(Vec<(i64, i64, AssigneeFacts)>),
}

impl InboundAssignee {
    pub(super) fn groups(&self) -> Vec<i64> {
        match self {
            InboundAssignee::Deassign(groups) => groups.clone(),
            InboundAssignee::Assign(assigned) => assigned.iter().map(|(g, _, _)| *g).collect(),
        }
    }
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
        let facts = self.assignee_facts(to).await?;
        let mut after = AfterCommit::default();
        let mut tx = self.store.begin_write().await?;
        let outcome = self
            .assign_in(&mut tx, &mut after, group, to, &facts, source, create_only)
            .await?;
        tx.commit().await?;
        self.committed(after);
        Ok(outcome)
    }

    pub(super) async fn assignee_facts(&self, to: Assignee) -> Result<AssigneeFacts, DomainError> {
        Ok(match to {
            Assignee::User(user) => AssigneeFacts {
                email: self
                    .store
                    .user(user)
                    .await?
                    .emails
                    .first()
                    .map(|e| e.email.clone()),
                team_org: None,
            },
            Assignee::Team(team) => AssigneeFacts {
                email: None,
                team_org: Some(self.store.team(team).await?.organization_id),
            },
        })
    }

    /// [`Self::assign`] inside the caller's write transaction.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn assign_in(
        &self,
        tx: &mut sqlx::AnyConnection,
        after: &mut AfterCommit,
        group: i64,
        to: Assignee,
        facts: &AssigneeFacts,
        source: Source,
        create_only: bool,
    ) -> Result<AssignOutcome, DomainError> {
        let row = store::group_row(tx, group).await?;
        if facts.team_org.is_some_and(|org| org != row.organization_id) {
            return Err(DomainError::Invalid(
                "the team belongs to another organization".into(),
            ));
        }
        store::subscribe(tx, &row, to, "assigned").await?;
        let previous = store::current_assignee(tx, group).await?;
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
        after.assigned.push(group);
        if !(outcome.new_assignment || outcome.updated_assignment) {
            return Ok(outcome);
        }
        store::put_assignee(tx, &row, to).await?;
        let (id, kind) = match to {
            Assignee::User(id) => (id, "user"),
            Assignee::Team(id) => (id, "team"),
        };
        let data = json!({
            "assignee": id.to_string(),
            "assigneeEmail": facts.email,
            "assigneeType": kind,
        });
        store::insert_activity(tx, &row, "assigned", source.acting_user(), &data).await?;
        store::insert_history(tx, &row, "assigned", source.acting_user(), Some(to)).await?;
        if let Some(prev) = previous {
            self.drop_replaced_subscription(tx, &row, prev, to).await?;
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
        self.fan_out(tx, after, &row, &changed).await?;
        Ok(outcome)
    }

    /// Remove the group's assignee. Nothing happens when there is none.
    /// Returns whether an assignee was removed.
    pub async fn deassign(&self, group: i64, source: Source) -> Result<bool, DomainError> {
        let mut after = AfterCommit::default();
        let mut tx = self.store.begin_write().await?;
        let removed = self.deassign_in(&mut tx, &mut after, group, source).await?;
        tx.commit().await?;
        self.committed(after);
        Ok(removed)
    }

    /// [`Self::deassign`] inside the caller's write transaction.
    pub(super) async fn deassign_in(
        &self,
        tx: &mut sqlx::AnyConnection,
        after: &mut AfterCommit,
        group: i64,
        source: Source,
    ) -> Result<bool, DomainError> {
        let row = store::group_row(tx, group).await?;
        let Some(previous) = store::current_assignee(tx, group).await? else {
            return Ok(false);
        };
        store::delete_assignee(tx, group).await?;
        store::insert_activity(tx, &row, "unassigned", source.acting_user(), &json!({})).await?;
        store::insert_history(tx, &row, "unassigned", source.acting_user(), None).await?;
        store::unsubscribe_assigned(tx, group, previous).await?;
        let changed = GroupChanged {
            change: GroupChange::Unassigned,
            user: None,
            team: false,
            source_integration: source.integration(),
        };
        self.fan_out(tx, after, &row, &changed).await?;
        after.unassigned.push(group);
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

    /// `sync_group_assignee_inbound`, its reads: a tracker says its issue `key`
    /// is now assigned to `email` (or to nobody). Every linked group is
    /// deassigned on deassign; on assign, the groups whose project a user with
    /// that verified email can access. [`Self::apply_inbound_assignee`] writes it.
    pub(super) async fn plan_inbound_assignee(
        &self,
        integration: i64,
        email: Option<&str>,
        key: &str,
    ) -> Result<InboundAssignee, DomainError> {
        let orgs = self
            .store
            .orgs_that_sync(integration, SyncFlag::InboundAssignee)
            .await?;
        let groups = self.store.groups_linked_to(integration, key, &orgs).await?;
        if groups.is_empty() {
            tracing::info!(integration, key, "inbound assignee: no affected groups");
        }
        let Some(email) = email else {
            return Ok(InboundAssignee::Deassign(
                groups.iter().map(|g| g.id).collect(),
            ));
        };
        let users = if groups.is_empty() {
            Vec::new()
        } else {
            self.store.users_by_verified_email(email).await?
        };
        let mut assign = Vec::new();
        for g in &groups {
            let user = users
                .iter()
                .find(|(_, projects)| projects.contains(&g.project_id));
            match user {
                Some((user, _)) => {
                    let facts = self.assignee_facts(Assignee::User(*user)).await?;
                    assign.push((g.id, *user, facts));
                }
                None => tracing::info!(
                    integration,
                    group = g.id,
                    "inbound assignee: no user with this email can access the group's project"
                ),
            }
        }
        Ok(InboundAssignee::Assign(assign))
    }

    /// Write a planned inbound assignee event in the caller's transaction.
    pub(super) async fn apply_inbound_assignee(
        &self,
        tx: &mut sqlx::AnyConnection,
        after: &mut AfterCommit,
        integration: i64,
        plan: &InboundAssignee,
    ) -> Result<(), DomainError> {
        let source = Source::Integration(integration);
        match plan {
            InboundAssignee::Deassign(groups) => {
                for g in groups {
                    self.deassign_in(tx, after, *g, source).await?;
                }
            }
            InboundAssignee::Assign(assign) => {
                for (g, user, facts) in assign {
                    self.assign_in(tx, after, *g, Assignee::User(*user), facts, source, false)
                        .await?;
                }
            }
        }
        Ok(())
    }
}
