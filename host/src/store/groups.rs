//! Issue groups, their assignee, subscriptions, activity, history and links to
//! external issues. Functions taking a connection run inside the caller's
//! transaction; the domain layer decides what one change consists of.

use serde::Serialize;
use serde_json::Value;
use sqlx::{AnyConnection, Row};

use super::{Result, Store, StoreError, conflict_or_sql};
use crate::time::now_ms;

/// `GroupLink.linked_type` for an external issue (Sentry's value).
const LINKED_TYPE_ISSUE: i64 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", content = "id", rename_all = "lowercase")]
pub enum Assignee {
    User(i64),
    Team(i64),
}

impl Assignee {
    fn columns(self) -> (Option<i64>, Option<i64>) {
        match self {
            Assignee::User(id) => (Some(id), None),
            Assignee::Team(id) => (None, Some(id)),
        }
    }

    fn from_columns(user: Option<i64>, team: Option<i64>) -> Option<Assignee> {
        user.map(Assignee::User).or(team.map(Assignee::Team))
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct LinkedIssue {
    pub id: i64,
    pub integration_id: i64,
    pub key: String,
    #[serde(skip)]
    pub metadata: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Group {
    pub id: i64,
    pub project_id: i64,
    pub title: String,
    pub status: String,
    pub assignee: Option<Assignee>,
    pub external_issues: Vec<LinkedIssue>,
}

/// The columns of a group the flows need, read inside a transaction.
#[derive(Clone, Debug)]
pub struct GroupRow {
    pub id: i64,
    pub project_id: i64,
    pub organization_id: i64,
    pub status: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Activity {
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub data: Value,
    pub user_id: Option<i64>,
    pub created_at: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Subscription {
    pub subscriber: Assignee,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct HistoryEntry {
    pub id: i64,
    pub status: String,
    pub prev_history_id: Option<i64>,
    pub created_at: i64,
}

impl Store {
    pub async fn create_group(&self, project: i64, title: &str) -> Result<Group> {
        self.project(project).await?;
        let now = now_ms();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO groups (project_id, title, status, substatus, created_at, last_seen) \
             VALUES ($1, $2, 'unresolved', 'ongoing', $3, $3) RETURNING id",
        )
        .bind(project)
        .bind(title)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        self.group(id).await
    }

    pub async fn group(&self, id: i64) -> Result<Group> {
        let mut conn = self.pool.acquire().await?;
        let row = sqlx::query("SELECT id, project_id, title, status FROM groups WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(StoreError::NotFound("group"))?;
        let assignee = current_assignee(&mut conn, id).await?;
        // Give the connection back before taking another: holding one while
        // waiting for a second starves the pool under concurrent reads.
        drop(conn);
        let external_issues = self.group_external_issues(id).await?;
        Ok(Group {
            id: row.try_get(0)?,
            project_id: row.try_get(1)?,
            title: row.try_get(2)?,
            status: row.try_get(3)?,
            assignee,
            external_issues,
        })
    }

    pub async fn group_external_issues(&self, group: i64) -> Result<Vec<LinkedIssue>> {
        external_issues_of(&mut *self.pool.acquire().await?, group).await
    }

    /// Link `group` to the external issue `key` of `integration`, creating the
    /// external issue for the group's organization when it is new.
    pub async fn link_external_issue(
        &self,
        group: i64,
        integration: i64,
        key: &str,
    ) -> Result<LinkedIssue> {
        let mut tx = self.begin_write().await?;
        let row = group_row(&mut tx, group).await?;
        let existing: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM external_issues \
             WHERE organization_id = $1 AND integration_id = $2 AND key = $3",
        )
        .bind(row.organization_id)
        .bind(integration)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?;
        let issue = match existing {
            Some(id) => id,
            None => sqlx::query_scalar(
                "INSERT INTO external_issues (organization_id, integration_id, key) \
                 VALUES ($1, $2, $3) RETURNING id",
            )
            .bind(row.organization_id)
            .bind(integration)
            .bind(key)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| conflict_or_sql(e, "this external issue"))?,
        };
        sqlx::query(
            "INSERT INTO group_links (group_id, project_id, linked_type, linked_id) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(group)
        .bind(row.project_id)
        .bind(LINKED_TYPE_ISSUE)
        .bind(issue)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or_sql(e, "this link"))?;
        tx.commit().await?;
        Ok(LinkedIssue {
            id: issue,
            integration_id: integration,
            key: key.into(),
            metadata: "{}".into(),
        })
    }

    /// Groups linked to the external issue `key` of `integration`, restricted to
    /// organizations in `orgs` (both the issue's and the group's organization).
    /// Like Sentry, the link is matched on `linked_id` alone.
    pub async fn groups_linked_to(
        &self,
        integration: i64,
        key: &str,
        orgs: &[i64],
    ) -> Result<Vec<GroupRow>> {
        let rows = sqlx::query(
            "SELECT g.id, g.project_id, p.organization_id, g.status, ei.organization_id \
             FROM external_issues ei \
             JOIN group_links gl ON gl.linked_id = ei.id \
             JOIN groups g ON g.id = gl.group_id \
             JOIN projects p ON p.id = g.project_id \
             WHERE ei.integration_id = $1 AND ei.key = $2 ORDER BY g.id",
        )
        .bind(integration)
        .bind(key)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let group = GroupRow {
                id: r.try_get(0)?,
                project_id: r.try_get(1)?,
                organization_id: r.try_get(2)?,
                status: r.try_get(3)?,
            };
            let issue_org: i64 = r.try_get(4)?;
            if orgs.contains(&issue_org) && orgs.contains(&group.organization_id) {
                out.push(group);
            }
        }
        Ok(out)
    }

    /// Groups of `project` seen at or after `since_ms`.
    pub async fn groups_seen_since(&self, project: i64, since_ms: i64) -> Result<Vec<i64>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM groups WHERE project_id = $1 AND last_seen >= $2")
                .bind(project)
                .bind(since_ms)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Who is subscribed to the group, and why.
    pub async fn subscriptions(&self, group: i64) -> Result<Vec<Subscription>> {
        self.group(group).await?;
        let rows = sqlx::query(
            "SELECT user_id, team_id, reason FROM group_subscriptions WHERE group_id = $1 ORDER BY id",
        )
        .bind(group)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(Subscription {
                    subscriber: Assignee::from_columns(r.try_get(0)?, r.try_get(1)?)
                        .ok_or(StoreError::NotFound("subscriber"))?,
                    reason: r.try_get(2)?,
                })
            })
            .collect()
    }

    pub async fn activity(&self, group: i64) -> Result<Vec<Activity>> {
        self.group(group).await?;
        let rows = sqlx::query(
            "SELECT id, type, data, user_id, created_at FROM activities \
             WHERE group_id = $1 ORDER BY id",
        )
        .bind(group)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let data: String = r.try_get(2)?;
                Ok(Activity {
                    id: r.try_get(0)?,
                    kind: r.try_get(1)?,
                    data: serde_json::from_str(&data)?,
                    user_id: r.try_get(3)?,
                    created_at: r.try_get(4)?,
                })
            })
            .collect()
    }

    pub async fn history(&self, group: i64) -> Result<Vec<HistoryEntry>> {
        self.group(group).await?;
        let rows = sqlx::query(
            "SELECT id, status, prev_history_id, created_at FROM group_history \
             WHERE group_id = $1 ORDER BY id",
        )
        .bind(group)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(HistoryEntry {
                    id: r.try_get(0)?,
                    status: r.try_get(1)?,
                    prev_history_id: r.try_get(2)?,
                    created_at: r.try_get(3)?,
                })
            })
            .collect()
    }
}

/// The external issues `group` is linked to.
pub async fn external_issues_of(conn: &mut AnyConnection, group: i64) -> Result<Vec<LinkedIssue>> {
    let rows = sqlx::query(
        "SELECT ei.id, ei.integration_id, ei.key, ei.metadata FROM external_issues ei \
         JOIN group_links gl ON gl.linked_id = ei.id AND gl.linked_type = $2 \
         WHERE gl.group_id = $1 ORDER BY ei.id",
    )
    .bind(group)
    .bind(LINKED_TYPE_ISSUE)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(LinkedIssue {
                id: r.try_get(0)?,
                integration_id: r.try_get(1)?,
                key: r.try_get(2)?,
                metadata: r.try_get(3)?,
            })
        })
        .collect()
}

pub async fn group_row(conn: &mut AnyConnection, group: i64) -> Result<GroupRow> {
    let r = sqlx::query(
        "SELECT g.id, g.project_id, p.organization_id, g.status FROM groups g \
         JOIN projects p ON p.id = g.project_id WHERE g.id = $1",
    )
    .bind(group)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(StoreError::NotFound("group"))?;
    Ok(GroupRow {
        id: r.try_get(0)?,
        project_id: r.try_get(1)?,
        organization_id: r.try_get(2)?,
        status: r.try_get(3)?,
    })
}

pub async fn current_assignee(conn: &mut AnyConnection, group: i64) -> Result<Option<Assignee>> {
    let row = sqlx::query("SELECT user_id, team_id FROM group_assignees WHERE group_id = $1")
        .bind(group)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(match row {
        Some(r) => Assignee::from_columns(r.try_get(0)?, r.try_get(1)?),
        None => None,
    })
}

/// Set the group's single assignee row (insert or replace).
pub async fn put_assignee(conn: &mut AnyConnection, group: &GroupRow, to: Assignee) -> Result<()> {
    let (user, team) = to.columns();
    sqlx::query(
        "INSERT INTO group_assignees (group_id, project_id, user_id, team_id, date_added) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (group_id) DO UPDATE SET user_id = $3, team_id = $4, date_added = $5",
    )
    .bind(group.id)
    .bind(group.project_id)
    .bind(user)
    .bind(team)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn delete_assignee(conn: &mut AnyConnection, group: i64) -> Result<()> {
    sqlx::query("DELETE FROM group_assignees WHERE group_id = $1")
        .bind(group)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Subscribe `who` to the group with `reason`, keeping an existing subscription.
pub async fn subscribe(
    conn: &mut AnyConnection,
    group: &GroupRow,
    who: Assignee,
    reason: &str,
) -> Result<()> {
    let (user, team) = who.columns();
    let exists: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM group_subscriptions WHERE group_id = $1 \
         AND (user_id = $2 OR team_id = $3)",
    )
    .bind(group.id)
    .bind(user)
    .bind(team)
    .fetch_one(&mut *conn)
    .await?;
    if exists == 0 {
        sqlx::query(
            "INSERT INTO group_subscriptions (group_id, project_id, user_id, team_id, reason, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(group.id)
        .bind(group.project_id)
        .bind(user)
        .bind(team)
        .bind(reason)
        .bind(now_ms())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Remove `who`'s subscription that exists because they were assigned.
pub async fn unsubscribe_assigned(
    conn: &mut AnyConnection,
    group: i64,
    who: Assignee,
) -> Result<()> {
    let (user, team) = who.columns();
    sqlx::query(
        "DELETE FROM group_subscriptions WHERE group_id = $1 AND reason = 'assigned' \
         AND (user_id = $2 OR team_id = $3)",
    )
    .bind(group)
    .bind(user)
    .bind(team)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn set_status(
    conn: &mut AnyConnection,
    group: i64,
    status: &str,
    substatus: Option<&str>,
) -> Result<()> {
    sqlx::query("UPDATE groups SET status = $2, substatus = $3 WHERE id = $1")
        .bind(group)
        .bind(status)
        .bind(substatus)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn insert_activity(
    conn: &mut AnyConnection,
    group: &GroupRow,
    kind: &str,
    user: Option<i64>,
    data: &Value,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO activities (project_id, group_id, type, user_id, data, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(group.project_id)
    .bind(group.id)
    .bind(kind)
    .bind(user)
    .bind(data.to_string())
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Append a history row; an `assigned` row points at the latest `unassigned` one.
pub async fn insert_history(
    conn: &mut AnyConnection,
    group: &GroupRow,
    status: &str,
    actor: Option<i64>,
    assignee: Option<Assignee>,
) -> Result<()> {
    let prev = if status == "assigned" {
        sqlx::query(
            "SELECT id, created_at FROM group_history WHERE group_id = $1 AND status = 'unassigned' \
             ORDER BY id DESC LIMIT 1",
        )
        .bind(group.id)
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| Ok::<_, sqlx::Error>((r.try_get::<i64, _>(0)?, r.try_get::<i64, _>(1)?)))
        .transpose()?
    } else {
        None
    };
    let team = match assignee {
        Some(Assignee::Team(t)) => Some(t),
        _ => None,
    };
    sqlx::query(
        "INSERT INTO group_history (organization_id, project_id, group_id, status, user_id, team_id, \
         prev_history_id, prev_history_date, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(group.organization_id)
    .bind(group.project_id)
    .bind(group.id)
    .bind(status)
    .bind(actor)
    .bind(team)
    .bind(prev.map(|p| p.0))
    .bind(prev.map(|p| p.1))
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(())
}
