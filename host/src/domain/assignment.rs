//! Assign and deassign (Sentry's GroupAssignee manager, spec §4) and the inbound
//! assignee sync from a tracker (spec §3).

use serde_json::json;

use super::jobs::{GroupChange, GroupChanged};
use super::{AfterCommit, Domain, DomainError, Source};
use crate::plugins::contract::types::Identity;
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
    /// Assign each group to the user the tracker's person resolved to there;
    /// groups where the person resolved to no one are recorded as unmatched.
    Assign {
        assign: Vec<(i64, i64, AssigneeFacts)>,
        unmatched: Vec<i64>,
        person: Identity,
    },
}

impl InboundAssignee {
    pub(super) fn groups(&self) -> Vec<i64> {
        match self {
            InboundAssignee::Deassign(groups) => groups.clone(),
            InboundAssignee::Assign { assign, .. } => assign.iter().map(|(g, _, _)| *g).collect(),
        }
    }

    /// Who could not be matched, for the job's note.
    pub(super) fn unmatched(&self) -> Option<String> {
        match self {
            InboundAssignee::Assign {
                unmatched, person, ..
            } if !unmatched.is_empty() => Some(describe(person)),
            _ => None,
        }
    }
}

/// A tracker's person, as a note names them (no email: notes are shown widely).
fn describe(person: &Identity) -> String {
    match (&person.login, &person.display_name) {
        (Some(login), _) => format!("{} ({login})", person.id),
        (None, Some(name)) => format!("{} ({name})", person.id),
        (None, None) => person.id.clone(),
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
        person: Option<&Identity>,
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
        let Some(person) = person else {
            return Ok(InboundAssignee::Deassign(
                groups.iter().map(|g| g.id).collect(),
            ));
        };
        // An email counts only when the tracker vouches for it; the user's
        // side must be verified too (Sentry's rule).
        let by_email = match (&person.email, person.email_verified, groups.is_empty()) {
            (Some(email), true, false) => self.store.users_by_verified_email(email).await?,
            _ => Vec::new(),
        };
        let (mut assign, mut unmatched) = (Vec::new(), Vec::new());
        for g in &groups {
            let mut user = by_email
                .iter()
                .find(|(_, projects)| projects.contains(&g.project_id))
                .map(|(user, _)| *user);
            if user.is_none()
                && let Some(mapped) = self
                    .store
                    .mapped_user(g.organization_id, integration, &person.id)
                    .await?
            {
                if self
                    .store
                    .user_projects(mapped)
                    .await?
                    .contains(&g.project_id)
                {
                    user = Some(mapped);
                } else {
                    tracing::info!(
                        integration,
                        group = g.id,
                        user = mapped,
                        "inbound assignee: the mapped user cannot access the group's project"
                    );
                }
            }
            match user {
                Some(user) => {
                    let facts = self.assignee_facts(Assignee::User(user)).await?;
                    assign.push((g.id, user, facts));
                }
                None => {
                    tracing::info!(
                        integration,
                        group = g.id,
                        person = %describe(person),
                        "inbound assignee: the tracker's user matches no user who can access the group; nothing changed"
                    );
                    unmatched.push(g.id);
                }
            }
        }
        Ok(InboundAssignee::Assign {
            assign,
            unmatched,
            person: person.clone(),
        })
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
            InboundAssignee::Assign {
                assign,
                unmatched,
                person,
            } => {
                for (g, user, facts) in assign {
                    self.assign_in(tx, after, *g, Assignee::User(*user), facts, source, false)
                        .await?;
                }
                // Never an unassignment: the group keeps its assignee, and
                // the activity says who the tracker named.
                let data = json!({
                    "integration": integration,
                    "externalUser": person.id,
                    "login": person.login,
                    "name": person.display_name,
                });
                for g in unmatched {
                    let row = store::group_row(tx, *g).await?;
                    store::insert_activity(tx, &row, "assignee_unmatched", None, &data).await?;
                }
            }
        }
        Ok(())
    }
}
