//! Integrations (one per tracker installation), their per-organization
//! configuration and status mappings, following Sentry's model (§1 of the spec).

use serde::Serialize;
use serde_json::{Map, Value, json};
use sqlx::{AnyConnection, Row};

use super::sealing::{SecretKeys, binding};
use super::{Result, Store, StoreError};
use crate::time::now_ms;

/// A stored integration. `secrets` (opened: plain JSON, whatever is stored)
/// never leaves the host except into its own plugin.
#[derive(Clone, Debug)]
pub struct Integration {
    pub id: i64,
    pub provider: String,
    pub external_id: String,
    pub name: String,
    pub metadata: String,
    pub secrets: String,
    pub allowed_hosts: Vec<String>,
}

/// What a plugin's `build-integration` produced plus the hosts it may reach.
pub struct NewIntegration<'a> {
    pub provider: &'a str,
    pub external_id: &'a str,
    pub name: &'a str,
    pub metadata: &'a str,
    pub secrets: &'a str,
    pub allowed_hosts: &'a [String],
}

/// The sync switches of one organization's installation (config keys of §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncFlag {
    OutboundStatus,
    InboundStatus,
    OutboundAssignee,
    InboundAssignee,
}

impl SyncFlag {
    pub fn key(self) -> &'static str {
        match self {
            SyncFlag::OutboundStatus => "sync_status_forward",
            SyncFlag::InboundStatus => "sync_status_reverse",
            SyncFlag::OutboundAssignee => "sync_forward_assignment",
            SyncFlag::InboundAssignee => "sync_reverse_assignment",
        }
    }
}

/// One external project's outbound status mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusMapping {
    pub external_project: String,
    pub on_resolve: String,
    pub on_unresolve: String,
}

/// A configuration update as the API receives it.
#[derive(Clone, Debug, Default)]
pub struct ConfigUpdate {
    pub mappings: Option<Vec<StatusMapping>>,
    /// For open/closed trackers: outbound status sync on or off, no mappings.
    pub status_forward: Option<bool>,
    /// Every other key, stored as given.
    pub rest: Map<String, Value>,
}

/// How an integration is shown through the API: no secrets.
#[derive(Clone, Debug, Serialize)]
pub struct IntegrationView {
    pub id: i64,
    pub provider: String,
    pub external_id: String,
    pub name: String,
    pub metadata: Value,
    pub config: Value,
    /// `active`, or `broken` when its service refused us for good.
    pub status: String,
    /// Why it is broken; cleared by installing it again.
    pub broken_reason: Option<String>,
}

fn integration_from_row(r: &sqlx::any::AnyRow, keys: &SecretKeys) -> Result<Integration> {
    let hosts: String = r.try_get(6)?;
    let provider: String = r.try_get(1)?;
    let external_id: String = r.try_get(2)?;
    let stored: String = r.try_get(5)?;
    let secrets = keys.open(&stored, &binding(&provider, &external_id))?;
    Ok(Integration {
        id: r.try_get(0)?,
        provider,
        external_id,
        name: r.try_get(3)?,
        metadata: r.try_get(4)?,
        secrets,
        allowed_hosts: serde_json::from_str(&hosts)?,
    })
}

const INTEGRATION_COLUMNS: &str =
    "id, provider, external_id, name, metadata, secrets, allowed_hosts";

impl Store {
    /// Store an installation for `org`. Installing the same tracker installation
    /// again (same provider and external id) refreshes its data and adds the
    /// organization, as Sentry's `ensure_integration` does.
    pub async fn install_integration(
        &self,
        org: i64,
        new: NewIntegration<'_>,
    ) -> Result<Integration> {
        self.organization(org).await?;
        let hosts = serde_json::to_string(new.allowed_hosts)?;
        let secrets = self
            .secret_keys
            .seal(new.secrets, &binding(new.provider, new.external_id))?;
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO integrations (provider, external_id, name, metadata, secrets, allowed_hosts, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (provider, external_id) DO UPDATE SET name = $3, metadata = $4, secrets = $5, \
             allowed_hosts = $6, status = 'active' RETURNING id",
        )
        .bind(new.provider)
        .bind(new.external_id)
        .bind(new.name)
        .bind(new.metadata)
        .bind(&secrets)
        .bind(&hosts)
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO organization_integrations (organization_id, integration_id) VALUES ($1, $2) \
             ON CONFLICT (organization_id, integration_id) DO UPDATE SET status = 'active', broken_reason = NULL",
        )
        .bind(org)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.integrations.clear();
        self.integration(id).await
    }

    /// An integration by id, from memory when this process read it before
    /// and nothing changed since ([`super::integration_cache`]).
    pub async fn integration(&self, id: i64) -> Result<Integration> {
        self.check_integration_cache().await;
        if let Some(cached) = self.integrations.get(id) {
            return Ok(cached);
        }
        let epoch = self.integrations.epoch();
        let row = sqlx::query(&format!(
            "SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("integration"))?;
        let integration = integration_from_row(&row, &self.secret_keys)?;
        self.integrations.put(epoch, None, Some(&integration));
        Ok(integration)
    }

    /// The active integration of `provider` with `external_id`, from memory
    /// when this process looked it up before and nothing changed since.
    pub async fn integration_by_external_id(
        &self,
        provider: &str,
        external_id: &str,
    ) -> Result<Option<Integration>> {
        self.check_integration_cache().await;
        if let Some(cached) = self.integrations.by_external(provider, external_id) {
            return Ok(cached);
        }
        let epoch = self.integrations.epoch();
        let row = sqlx::query(&format!(
            "SELECT {INTEGRATION_COLUMNS} FROM integrations \
             WHERE provider = $1 AND external_id = $2 AND status = 'active'"
        ))
        .bind(provider)
        .bind(external_id)
        .fetch_optional(&self.pool)
        .await?;
        let found = row
            .as_ref()
            .map(|r| integration_from_row(r, &self.secret_keys))
            .transpose()?;
        self.integrations
            .put(epoch, Some((provider, external_id)), found.as_ref());
        Ok(found)
    }

    /// At most every half second: whether another process changed an
    /// integration, in which case what is cached is forgotten.
    pub(super) async fn check_integration_cache(&self) {
        if !self.integrations.should_check() {
            return;
        }
        let seen =
            sqlx::query_scalar::<_, i64>("SELECT value FROM integrations_generation WHERE id = 1")
                .fetch_optional(&self.pool)
                .await
                .ok()
                .flatten();
        self.integrations.checked(seen);
    }

    /// The organization's installation of `integration` as shown by the API.
    pub async fn integration_view(&self, org: i64, integration: i64) -> Result<IntegrationView> {
        let oi = self.org_integration_id(org, integration).await?;
        let i = self.integration(integration).await?;
        let broken_reason: Option<String> =
            sqlx::query_scalar("SELECT broken_reason FROM organization_integrations WHERE id = $1")
                .bind(oi)
                .fetch_one(&self.pool)
                .await?;
        Ok(IntegrationView {
            id: i.id,
            provider: i.provider,
            external_id: i.external_id,
            name: i.name,
            metadata: serde_json::from_str(&i.metadata)?,
            config: self.config_view(oi).await?,
            status: if broken_reason.is_some() {
                "broken"
            } else {
                "active"
            }
            .into(),
            broken_reason,
        })
    }

    pub async fn org_integration_views(&self, org: i64) -> Result<Vec<IntegrationView>> {
        self.organization(org).await?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT integration_id FROM organization_integrations \
             WHERE organization_id = $1 AND status = 'active' ORDER BY integration_id",
        )
        .bind(org)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.integration_view(org, id).await?);
        }
        Ok(out)
    }

    /// The organization's active installation of `integration`, with why it
    /// is broken (if it is); `None` when it has none.
    pub async fn org_installation(
        &self,
        org: i64,
        integration: i64,
    ) -> Result<Option<(Integration, Option<String>)>> {
        let installed = installations_of(&mut *self.pool.acquire().await?, org)
            .await?
            .into_iter()
            .find(|i| i.integration_id == integration);
        match installed {
            Some(i) => Ok(Some((
                self.integration(integration).await?,
                i.broken_reason,
            ))),
            None => Ok(None),
        }
    }

    /// Stop using `org`'s installation of `integration` until it is installed again.
    pub async fn mark_broken(&self, org: i64, integration: i64, reason: &str) -> Result<()> {
        sqlx::query(
            "UPDATE organization_integrations SET broken_reason = $3 \
             WHERE organization_id = $1 AND integration_id = $2",
        )
        .bind(org)
        .bind(integration)
        .bind(reason)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The message a notifier posted about `group`, if any.
    pub async fn notification_message(
        &self,
        group: i64,
        integration: i64,
    ) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT message_id FROM notification_messages WHERE group_id = $1 AND integration_id = $2",
        )
        .bind(group)
        .bind(integration)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn save_notification_message(
        &self,
        group: i64,
        project: i64,
        integration: i64,
        message: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO notification_messages (group_id, project_id, integration_id, message_id, updated_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (group_id, integration_id) DO UPDATE SET message_id = $4, updated_at = $5",
        )
        .bind(group)
        .bind(project)
        .bind(integration)
        .bind(message)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Organizations with an active installation of `integration`.
    /// The integrations of `provider` installed and active in some organization.
    pub async fn active_integrations_of(&self, provider: &str) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT i.id FROM integrations i \
             JOIN organization_integrations oi ON oi.integration_id = i.id \
             WHERE i.provider = $1 AND oi.status = 'active' ORDER BY i.id",
        )
        .bind(provider)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn integration_orgs(&self, integration: i64) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT organization_id FROM organization_integrations \
             WHERE integration_id = $1 AND status = 'active' ORDER BY organization_id",
        )
        .bind(integration)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Remove `org`'s installation; the integration itself is disabled when no
    /// organization uses it any more. Links and external issues stay, so history
    /// keeps its meaning and a re-installation finds them again.
    pub async fn uninstall_integration(&self, org: i64, integration: i64) -> Result<()> {
        let oi = self.org_integration_id(org, integration).await?;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "DELETE FROM integration_external_projects WHERE organization_integration_id = $1",
        )
        .bind(oi)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE organization_integrations SET status = 'disabled', config = '{}' WHERE id = $1",
        )
        .bind(oi)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE integrations SET status = 'disabled' WHERE id = $1 AND NOT EXISTS \
             (SELECT 1 FROM organization_integrations WHERE integration_id = $1 AND status = 'active')",
        )
        .bind(integration)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.integrations.clear();
        Ok(())
    }

    async fn org_integration_id(&self, org: i64, integration: i64) -> Result<i64> {
        sqlx::query_scalar(
            "SELECT id FROM organization_integrations \
             WHERE organization_id = $1 AND integration_id = $2 AND status = 'active'",
        )
        .bind(org)
        .bind(integration)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("integration"))
    }

    /// Save configuration. Status mappings replace the stored ones and
    /// `sync_status_forward` becomes true iff at least one mapping exists.
    pub async fn save_config(
        &self,
        org: i64,
        integration: i64,
        update: ConfigUpdate,
    ) -> Result<Value> {
        let oi = self.org_integration_id(org, integration).await?;
        let mut tx = self.begin_write().await?;
        let stored: String =
            sqlx::query_scalar("SELECT config FROM organization_integrations WHERE id = $1")
                .bind(oi)
                .fetch_one(&mut *tx)
                .await?;
        let mut config: Map<String, Value> = serde_json::from_str(&stored)?;
        for (k, v) in update.rest {
            config.insert(k, v);
        }
        if let Some(mappings) = update.mappings {
            sqlx::query(
                "DELETE FROM integration_external_projects WHERE organization_integration_id = $1",
            )
            .bind(oi)
            .execute(&mut *tx)
            .await?;
            for m in &mappings {
                sqlx::query(
                    "INSERT INTO integration_external_projects \
                     (organization_integration_id, external_id, resolved_status, unresolved_status) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(oi)
                .bind(&m.external_project)
                .bind(&m.on_resolve)
                .bind(&m.on_unresolve)
                .execute(&mut *tx)
                .await?;
            }
            config.insert(
                SyncFlag::OutboundStatus.key().into(),
                Value::Bool(!mappings.is_empty()),
            );
        }
        if let Some(on) = update.status_forward {
            config.insert(SyncFlag::OutboundStatus.key().into(), Value::Bool(on));
        }
        sqlx::query("UPDATE organization_integrations SET config = $2 WHERE id = $1")
            .bind(oi)
            .bind(Value::Object(config).to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.config_view(oi).await
    }

    /// The configuration with `sync_status_forward` rendered as its mappings.
    async fn config_view(&self, org_integration: i64) -> Result<Value> {
        let stored: String =
            sqlx::query_scalar("SELECT config FROM organization_integrations WHERE id = $1")
                .bind(org_integration)
                .fetch_one(&self.pool)
                .await?;
        let mut config: Map<String, Value> = serde_json::from_str(&stored)?;
        let mut forward = Map::new();
        for m in self.mappings_of(org_integration).await? {
            forward.insert(
                m.external_project,
                json!({"on_resolve": m.on_resolve, "on_unresolve": m.on_unresolve}),
            );
        }
        // An open/closed tracker's switch has no mappings and is shown as it was set.
        let switched_on = forward.is_empty()
            && config.get(SyncFlag::OutboundStatus.key()) == Some(&Value::Bool(true));
        if !switched_on {
            config.insert(
                SyncFlag::OutboundStatus.key().into(),
                Value::Object(forward),
            );
        }
        for flag in [
            SyncFlag::InboundStatus,
            SyncFlag::OutboundAssignee,
            SyncFlag::InboundAssignee,
        ] {
            config.entry(flag.key()).or_insert(Value::Bool(false));
        }
        config
            .entry("resolution_strategy")
            .or_insert(json!("resolve"));
        Ok(Value::Object(config))
    }

    async fn mappings_of(&self, org_integration: i64) -> Result<Vec<StatusMapping>> {
        let rows = sqlx::query(
            "SELECT external_id, resolved_status, unresolved_status FROM integration_external_projects \
             WHERE organization_integration_id = $1 ORDER BY id",
        )
        .bind(org_integration)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(StatusMapping {
                    external_project: r.try_get(0)?,
                    on_resolve: r.try_get(1)?,
                    on_unresolve: r.try_get(2)?,
                })
            })
            .collect()
    }

    /// The status mappings of `org`'s installation of `integration`.
    pub async fn status_mappings(&self, org: i64, integration: i64) -> Result<Vec<StatusMapping>> {
        let oi = self.org_integration_id(org, integration).await?;
        self.mappings_of(oi).await
    }

    /// Organizations that installed `integration` and switched `flag` on
    /// (Sentry's `where_should_sync`).
    pub async fn orgs_that_sync(&self, integration: i64, flag: SyncFlag) -> Result<Vec<i64>> {
        orgs_syncing(&mut *self.pool.acquire().await?, integration, flag).await
    }
}

/// One of an organization's active installations, without its secrets.
#[derive(Clone, Debug)]
pub struct Installation {
    pub integration_id: i64,
    pub provider: String,
    /// Why it is broken, if it is.
    pub broken_reason: Option<String>,
}

/// The organization's active installations.
pub async fn installations_of(conn: &mut AnyConnection, org: i64) -> Result<Vec<Installation>> {
    let rows = sqlx::query(
        "SELECT i.id, i.provider, oi.broken_reason FROM integrations i \
         JOIN organization_integrations oi ON oi.integration_id = i.id \
         WHERE oi.organization_id = $1 AND oi.status = 'active' AND i.status = 'active' ORDER BY i.id",
    )
    .bind(org)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Installation {
                integration_id: r.try_get(0)?,
                provider: r.try_get(1)?,
                broken_reason: r.try_get(2)?,
            })
        })
        .collect()
}

/// The organizations whose installation of `integration` has `flag` on.
pub async fn orgs_syncing(
    conn: &mut AnyConnection,
    integration: i64,
    flag: SyncFlag,
) -> Result<Vec<i64>> {
    let rows = sqlx::query(
        "SELECT organization_id, config FROM organization_integrations \
         WHERE integration_id = $1 AND status = 'active' ORDER BY organization_id",
    )
    .bind(integration)
    .fetch_all(&mut *conn)
    .await?;
    let mut orgs = Vec::new();
    for r in rows {
        let config: String = r.try_get(1)?;
        if flag_is_on(&config, flag)? {
            orgs.push(r.try_get(0)?);
        }
    }
    Ok(orgs)
}

fn flag_is_on(config: &str, flag: SyncFlag) -> Result<bool> {
    let config: Value = serde_json::from_str(config)?;
    Ok(match config.get(flag.key()) {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Object(m)) => !m.is_empty(),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Number(n)) => n.as_f64().is_some_and(|n| n != 0.0),
        Some(Value::Array(a)) => !a.is_empty(),
    })
}
