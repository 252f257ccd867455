//! Organizations, projects, users, members and teams.

use serde::Serialize;
use sqlx::{AnyConnection, Row};

use super::{Result, Store, StoreError, conflict_or_sql};
use crate::time::now_ms;

#[derive(Clone, Debug, Serialize)]
pub struct Organization {
    pub id: i64,
    pub name: String,
    pub slug: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Project {
    pub id: i64,
    pub organization_id: i64,
    pub name: String,
    pub slug: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct UserEmail {
    pub email: String,
    pub verified: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub emails: Vec<UserEmail>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Member {
    pub id: i64,
    pub organization_id: i64,
    pub user_id: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Team {
    pub id: i64,
    pub organization_id: i64,
    pub name: String,
    pub slug: String,
}

impl Store {
    pub async fn create_organization(&self, name: &str, slug: &str) -> Result<Organization> {
        let (id, ()) = super::insert_with_snowflake!(
            self,
            "organizations",
            "an organization with this slug",
            |tx, id| {
                sqlx::query(
                "INSERT INTO organizations (id, name, slug, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(id)
            .bind(name)
            .bind(slug)
            .bind(now_ms())
            .execute(&mut *tx)
            .await
            .map(drop)
            }
        )?;
        Ok(Organization {
            id,
            name: name.into(),
            slug: slug.into(),
        })
    }

    pub async fn organization(&self, id: i64) -> Result<Organization> {
        let row = sqlx::query("SELECT id, name, slug FROM organizations WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("organization"))?;
        Ok(Organization {
            id: row.try_get(0)?,
            name: row.try_get(1)?,
            slug: row.try_get(2)?,
        })
    }

    /// Create a project. Without a slug one is made from the name, unique in the
    /// organization (spec §8.1).
    pub async fn create_project(
        &self,
        org: i64,
        name: &str,
        slug: Option<&str>,
    ) -> Result<Project> {
        self.organization(org).await?;
        let (id, slug) = super::insert_with_snowflake!(
            self,
            "projects",
            "a project with this slug",
            |tx, id| {
                let slug = match slug {
                    Some(slug) => slug.to_owned(),
                    None => super::slug::unique_project_slug(&mut tx, org, name).await?,
                };
                sqlx::query(
                    "INSERT INTO projects (id, organization_id, name, slug, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(id)
                .bind(org)
                .bind(name)
                .bind(&slug)
                .bind(now_ms())
                .execute(&mut *tx)
                .await
                .map(|_| slug)
            }
        )?;
        Ok(Project {
            id,
            organization_id: org,
            name: name.into(),
            slug,
        })
    }

    pub async fn project(&self, id: i64) -> Result<Project> {
        let row = sqlx::query("SELECT id, organization_id, name, slug FROM projects WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("project"))?;
        Ok(Project {
            id: row.try_get(0)?,
            organization_id: row.try_get(1)?,
            name: row.try_get(2)?,
            slug: row.try_get(3)?,
        })
    }

    /// Delete a project and everything that hangs off it, in one transaction:
    /// groups, their assignees, subscriptions, links, activity and history, team
    /// access, and external issues that no longer link anywhere.
    pub async fn delete_project(&self, id: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM projects WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        if exists == 0 {
            return Err(StoreError::NotFound("project"));
        }
        let linked: Vec<i64> =
            sqlx::query_scalar("SELECT DISTINCT linked_id FROM group_links WHERE project_id = $1")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
        // Work still queued about the project's groups is moot.
        sqlx::query(
            "DELETE FROM jobs WHERE group_id IN (SELECT id FROM groups WHERE project_id = $1)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        for table in [
            "notification_messages",
            "activities",
            "group_history",
            "group_subscriptions",
            "group_assignees",
            "group_links",
            "groups",
            "project_teams",
        ] {
            sqlx::query(&format!("DELETE FROM {table} WHERE project_id = $1"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        for issue in linked {
            sqlx::query(
                "DELETE FROM external_issues WHERE id = $1 \
                 AND NOT EXISTS (SELECT 1 FROM group_links WHERE linked_id = $1)",
            )
            .bind(issue)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM projects WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn create_user(&self, name: &str, emails: &[UserEmail]) -> Result<User> {
        let mut tx = self.begin_write().await?;
        let id: i64 =
            sqlx::query_scalar("INSERT INTO users (name, created_at) VALUES ($1, $2) RETURNING id")
                .bind(name)
                .bind(now_ms())
                .fetch_one(&mut *tx)
                .await?;
        for email in emails {
            sqlx::query(
                "INSERT INTO user_emails (user_id, email, is_verified) VALUES ($1, $2, $3)",
            )
            .bind(id)
            .bind(&email.email)
            .bind(email.verified as i64)
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict_or_sql(e, "this email for this user"))?;
        }
        tx.commit().await?;
        Ok(User {
            id,
            name: name.into(),
            emails: emails.to_vec(),
        })
    }

    pub async fn user(&self, id: i64) -> Result<User> {
        let row = sqlx::query("SELECT id, name FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("user"))?;
        let emails = sqlx::query(
            "SELECT email, is_verified FROM user_emails WHERE user_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|r| {
            Ok(UserEmail {
                email: r.try_get(0)?,
                verified: r.try_get::<i64, _>(1)? != 0,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(User {
            id: row.try_get(0)?,
            name: row.try_get(1)?,
            emails,
        })
    }

    /// The user's verified email addresses, the only ones trackers are asked about.
    pub async fn verified_emails(&self, user: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT email FROM user_emails WHERE user_id = $1 AND is_verified = 1 ORDER BY id",
        )
        .bind(user)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn add_member(&self, org: i64, user: i64) -> Result<Member> {
        self.organization(org).await?;
        self.user(user).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO organization_members (organization_id, user_id) VALUES ($1, $2) RETURNING id",
        )
        .bind(org)
        .bind(user)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| conflict_or_sql(e, "this membership"))?;
        Ok(Member {
            id,
            organization_id: org,
            user_id: user,
        })
    }

    pub async fn create_team(&self, org: i64, name: &str, slug: &str) -> Result<Team> {
        self.organization(org).await?;
        let (id, ()) =
            super::insert_with_snowflake!(self, "teams", "a team with this slug", |tx, id| {
                sqlx::query(
                    "INSERT INTO teams (id, organization_id, name, slug) VALUES ($1, $2, $3, $4)",
                )
                .bind(id)
                .bind(org)
                .bind(name)
                .bind(slug)
                .execute(&mut *tx)
                .await
                .map(drop)
            })?;
        Ok(Team {
            id,
            organization_id: org,
            name: name.into(),
            slug: slug.into(),
        })
    }

    pub async fn team(&self, id: i64) -> Result<Team> {
        let row = sqlx::query("SELECT id, organization_id, name, slug FROM teams WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("team"))?;
        Ok(Team {
            id: row.try_get(0)?,
            organization_id: row.try_get(1)?,
            name: row.try_get(2)?,
            slug: row.try_get(3)?,
        })
    }

    pub async fn add_team_project(&self, team: i64, project: i64) -> Result<()> {
        let (team, project) = (self.team(team).await?, self.project(project).await?);
        if team.organization_id != project.organization_id {
            return Err(StoreError::Conflict(
                "the project belongs to another organization".into(),
            ));
        }
        sqlx::query("INSERT INTO project_teams (project_id, team_id) VALUES ($1, $2)")
            .bind(project.id)
            .bind(team.id)
            .execute(&self.pool)
            .await
            .map_err(|e| conflict_or_sql(e, "this team project"))?;
        Ok(())
    }

    /// Adds an organization member to a team. `Ok(false)` when the user is not a
    /// member of the team's organization.
    pub async fn add_team_member(&self, team: i64, user: i64, active: bool) -> Result<bool> {
        let team = self.team(team).await?;
        let member: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM organization_members WHERE organization_id = $1 AND user_id = $2",
        )
        .bind(team.organization_id)
        .bind(user)
        .fetch_optional(&self.pool)
        .await?;
        let Some(member) = member else {
            return Ok(false);
        };
        sqlx::query(
            "INSERT INTO organization_member_teams (team_id, organization_member_id, is_active) \
             VALUES ($1, $2, $3)",
        )
        .bind(team.id)
        .bind(member)
        .bind(active as i64)
        .execute(&self.pool)
        .await
        .map_err(|e| conflict_or_sql(e, "this team membership"))?;
        Ok(true)
    }

    /// Active users with a verified email equal to `email` (case-insensitive), in id
    /// order, each with the projects they reach through an active team membership.
    pub async fn users_by_verified_email(&self, email: &str) -> Result<Vec<(i64, Vec<i64>)>> {
        let users: Vec<i64> = sqlx::query_scalar(
            "SELECT DISTINCT u.id FROM users u JOIN user_emails e ON e.user_id = u.id \
             WHERE lower(e.email) = lower($1) AND e.is_verified = 1 AND u.is_active = 1 \
             ORDER BY u.id",
        )
        .bind(email)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(users.len());
        for user in users {
            out.push((user, self.user_projects(user).await?));
        }
        Ok(out)
    }

    /// The projects `user` can see, through their teams.
    pub async fn user_projects(&self, user: i64) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT pt.project_id FROM project_teams pt \
             JOIN organization_member_teams omt ON omt.team_id = pt.team_id \
             JOIN organization_members om ON om.id = omt.organization_member_id \
             WHERE om.user_id = $1 AND omt.is_active = 1",
        )
        .bind(user)
        .fetch_all(&self.pool)
        .await?)
    }
}

/// Whether `user` is an active member of `team`.
pub async fn is_team_member(conn: &mut AnyConnection, team: i64, user: i64) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM organization_member_teams omt \
             JOIN organization_members om ON om.id = omt.organization_member_id \
             WHERE omt.team_id = $1 AND om.user_id = $2 AND omt.is_active = 1",
    )
    .bind(team)
    .bind(user)
    .fetch_one(&mut *conn)
    .await?;
    Ok(n > 0)
}
