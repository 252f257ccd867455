//! Identity mappings: an integration's user (by the tracker's stable id)
//! is one of the organization's users, as an operator said.

use serde::Serialize;
use sqlx::Row;

use super::{Result, Store, StoreError, conflict_or_sql};
use crate::time::now_ms;

/// One mapping.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub id: i64,
    pub organization_id: i64,
    pub integration_id: i64,
    /// The tracker's stable id of its user.
    pub external_id: String,
    pub user_id: i64,
    /// The tracker's login and display name, for people reading the list.
    pub login: Option<String>,
    pub name: Option<String>,
    pub created_at: i64,
}

/// A mapping to make.
#[derive(Clone, Debug)]
pub struct NewIdentity<'a> {
    pub integration_id: i64,
    pub external_id: &'a str,
    pub user_id: i64,
    pub login: Option<&'a str>,
    pub name: Option<&'a str>,
}

/// Why a mapping was refused.
#[derive(Debug, thiserror::Error)]
pub enum IdentityRefused {
    #[error("integration {0} is not installed in this organization")]
    NotInstalled(i64),
    #[error("user {0} is not a member of this organization")]
    NotAMember(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

const COLUMNS: &str =
    "id, organization_id, integration_id, external_id, user_id, login, name, created_at";

fn from_row(r: &sqlx::any::AnyRow) -> Result<Identity> {
    Ok(Identity {
        id: r.try_get(0)?,
        organization_id: r.try_get(1)?,
        integration_id: r.try_get(2)?,
        external_id: r.try_get(3)?,
        user_id: r.try_get(4)?,
        login: r.try_get(5)?,
        name: r.try_get(6)?,
        created_at: r.try_get(7)?,
    })
}

impl Store {
    /// Map `new.external_id` at `new.integration_id` to `new.user_id` in
    /// `org`: the integration must be installed there and the user a member.
    pub async fn create_identity(
        &self,
        org: i64,
        new: NewIdentity<'_>,
    ) -> std::result::Result<Identity, IdentityRefused> {
        self.organization(org).await?;
        let installed: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM organization_integrations \
             WHERE organization_id = $1 AND integration_id = $2 AND status = 'active'",
        )
        .bind(org)
        .bind(new.integration_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::from)?;
        if installed.is_none() {
            return Err(IdentityRefused::NotInstalled(new.integration_id));
        }
        let member: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM organization_members WHERE organization_id = $1 AND user_id = $2",
        )
        .bind(org)
        .bind(new.user_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::from)?;
        if member.is_none() {
            return Err(IdentityRefused::NotAMember(new.user_id));
        }
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO identities (organization_id, integration_id, external_id, user_id, login, name, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
        ))
        .bind(org)
        .bind(new.integration_id)
        .bind(new.external_id)
        .bind(new.user_id)
        .bind(new.login)
        .bind(new.name)
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| conflict_or_sql(e, "a mapping of this user id at this integration"))?;
        let identity = from_row(&row)?;
        tx.commit().await?;
        Ok(identity)
    }

    /// The organization's mappings, optionally of one integration or user.
    pub async fn identities(
        &self,
        org: i64,
        integration: Option<i64>,
        user: Option<i64>,
    ) -> Result<Vec<Identity>> {
        self.organization(org).await?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM identities WHERE organization_id = $1 \
             AND ($2 IS NULL OR integration_id = $2) AND ($3 IS NULL OR user_id = $3) ORDER BY id"
        ))
        .bind(org)
        .bind(integration)
        .bind(user)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// The user the organization mapped the integration's user `external_id` to.
    pub async fn mapped_user(
        &self,
        org: i64,
        integration: i64,
        external_id: &str,
    ) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT i.user_id FROM identities i JOIN users u ON u.id = i.user_id \
             WHERE i.organization_id = $1 AND i.integration_id = $2 AND i.external_id = $3 \
             AND u.is_active = 1",
        )
        .bind(org)
        .bind(integration)
        .bind(external_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Forget one of the organization's mappings.
    pub async fn delete_identity(&self, org: i64, id: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query("DELETE FROM identities WHERE id = $1 AND organization_id = $2")
            .bind(id)
            .bind(org)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        if deleted == 0 {
            return Err(StoreError::NotFound("identity"));
        }
        Ok(())
    }
}
