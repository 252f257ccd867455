//! Plugin versions: every module installed (kept whole, so every host process
//! sharing the database can load it), the switches between versions, and the
//! version each plugin serves with. Host processes converge by polling
//! `plugin_active`: a `switch_id` they have not applied is a switch to catch up on.

use serde::Serialize;
use sqlx::Row;

use super::{Backend, Result, Store, StoreError};
use crate::time::now_ms;

/// A module to record.
pub struct NewPluginVersion<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub world: &'a str,
    pub contract: &'a str,
    pub sha256: &'a str,
    pub module: &'a [u8],
    pub installed_by: &'a str,
}

/// A recorded version (without its module).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct PluginVersion {
    pub id: i64,
    pub name: String,
    pub version: String,
    pub world: String,
    pub contract: String,
    pub sha256: String,
    pub size: i64,
    pub installed_by: String,
    pub installed_at: i64,
}

/// One switch from a version to another.
#[derive(Clone, Debug, Serialize)]
pub struct PluginSwitch {
    pub id: i64,
    pub name: String,
    pub from_version_id: Option<i64>,
    pub to_version_id: i64,
    /// `install`, `rollback` or `auto_rollback`.
    pub kind: String,
    pub by: String,
    pub reason: String,
    pub at: i64,
}

/// The version a plugin serves with, and the switch that made it so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActivePlugin {
    pub version_id: i64,
    pub switch_id: i64,
    /// The switch's kind and the version it switched from.
    pub kind: String,
    pub from_version_id: Option<i64>,
}

/// When a switch may happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwitchIf {
    /// Whatever is active (an operator's install or rollback).
    Always,
    /// Only when nothing is active yet (a plugins directory at start).
    NothingActive,
    /// Only when the active version is still the one this switch made (an
    /// automatic rollback: another process may have rolled back first).
    Still(i64),
}

/// A switch to make.
pub struct SwitchRequest<'a> {
    pub name: &'a str,
    pub to_version_id: i64,
    pub kind: &'a str,
    pub by: &'a str,
    pub reason: &'a str,
    pub condition: SwitchIf,
}

const VERSION_COLUMNS: &str =
    "id, name, version, world, contract, sha256, size, installed_by, installed_at";

fn version_from_row(row: &sqlx::any::AnyRow) -> Result<PluginVersion> {
    Ok(PluginVersion {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        version: row.try_get(2)?,
        world: row.try_get(3)?,
        contract: row.try_get(4)?,
        sha256: row.try_get(5)?,
        size: row.try_get(6)?,
        installed_by: row.try_get(7)?,
        installed_at: row.try_get(8)?,
    })
}

impl Store {
    /// Record a module; a module recorded before under the same name is found,
    /// not recorded twice. True when it is new.
    pub async fn record_plugin_version(
        &self,
        v: &NewPluginVersion<'_>,
    ) -> Result<(PluginVersion, bool)> {
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO plugin_versions (name, version, world, contract, sha256, size, module, \
             installed_by, installed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (name, sha256) DO NOTHING RETURNING id",
        )
        .bind(v.name)
        .bind(v.version)
        .bind(v.world)
        .bind(v.contract)
        .bind(v.sha256)
        .bind(v.module.len() as i64)
        .bind(v.module)
        .bind(v.installed_by)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        let row = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM plugin_versions WHERE name = $1 AND sha256 = $2"
        ))
        .bind(v.name)
        .bind(v.sha256)
        .fetch_one(&self.pool)
        .await?;
        Ok((version_from_row(&row)?, inserted.is_some()))
    }

    /// Make a version the active one, recording the switch, when `condition`
    /// holds and it is not active already. `None`: nothing changed.
    pub async fn switch_plugin(&self, s: &SwitchRequest<'_>) -> Result<Option<PluginSwitch>> {
        let mut tx = self.begin_write().await?;
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE",
            // The write transaction holds SQLite's only write lock already.
            Backend::Sqlite => "",
        };
        let current = sqlx::query(&format!(
            "SELECT version_id, switch_id FROM plugin_active WHERE name = $1{lock}"
        ))
        .bind(s.name)
        .fetch_optional(&mut *tx)
        .await?
        .map(|row| -> Result<(i64, i64)> { Ok((row.try_get(0)?, row.try_get(1)?)) })
        .transpose()?;
        let allowed = match s.condition {
            SwitchIf::Always => true,
            SwitchIf::NothingActive => current.is_none(),
            SwitchIf::Still(switch) => current.map(|c| c.1) == Some(switch),
        };
        if !allowed || current.map(|c| c.0) == Some(s.to_version_id) {
            return Ok(None);
        }
        let at = now_ms();
        let from = current.map(|c| c.0);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO plugin_switches (name, from_version_id, to_version_id, kind, by_whom, reason, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(s.name)
        .bind(from)
        .bind(s.to_version_id)
        .bind(s.kind)
        .bind(s.by)
        .bind(s.reason)
        .bind(at)
        .fetch_one(&mut *tx)
        .await?;
        // Two processes making the first switch at once: the row lock above
        // cannot cover a row that does not exist yet, so the insert decides.
        let written = sqlx::query(
            "INSERT INTO plugin_active (name, version_id, switch_id) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET version_id = $2, switch_id = $3 \
             WHERE plugin_active.switch_id = $4",
        )
        .bind(s.name)
        .bind(s.to_version_id)
        .bind(id)
        .bind(current.map_or(-1, |c| c.1))
        .execute(&mut *tx)
        .await?;
        if written.rows_affected() != 1 {
            return Ok(None);
        }
        tx.commit().await?;
        Ok(Some(PluginSwitch {
            id,
            name: s.name.to_owned(),
            from_version_id: from,
            to_version_id: s.to_version_id,
            kind: s.kind.to_owned(),
            by: s.by.to_owned(),
            reason: s.reason.to_owned(),
            at,
        }))
    }

    /// The active version of every plugin, by name.
    pub async fn active_plugins(&self) -> Result<Vec<(String, ActivePlugin)>> {
        let rows = sqlx::query(
            "SELECT a.name, a.version_id, a.switch_id, s.kind, s.from_version_id \
             FROM plugin_active a JOIN plugin_switches s ON s.id = a.switch_id ORDER BY a.name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get(0)?,
                    ActivePlugin {
                        version_id: row.try_get(1)?,
                        switch_id: row.try_get(2)?,
                        kind: row.try_get(3)?,
                        from_version_id: row.try_get(4)?,
                    },
                ))
            })
            .collect()
    }

    /// The active version of `name`, if it has one.
    pub async fn active_plugin(&self, name: &str) -> Result<Option<ActivePlugin>> {
        Ok(self
            .active_plugins()
            .await?
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a))
    }

    pub async fn plugin_version(&self, id: i64) -> Result<PluginVersion> {
        let row = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM plugin_versions WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("plugin version"))?;
        version_from_row(&row)
    }

    /// The module of a recorded version.
    pub async fn plugin_module(&self, id: i64) -> Result<Vec<u8>> {
        sqlx::query_scalar("SELECT module FROM plugin_versions WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("plugin version"))
    }

    /// Every recorded version of `name`, oldest first.
    pub async fn plugin_versions(&self, name: &str) -> Result<Vec<PluginVersion>> {
        let rows = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM plugin_versions WHERE name = $1 ORDER BY id"
        ))
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(version_from_row).collect()
    }

    /// Every switch of `name`, oldest first.
    pub async fn plugin_switches(&self, name: &str) -> Result<Vec<PluginSwitch>> {
        let rows = sqlx::query(
            "SELECT id, name, from_version_id, to_version_id, kind, by_whom, reason, at \
             FROM plugin_switches WHERE name = $1 ORDER BY id",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PluginSwitch {
                    id: row.try_get(0)?,
                    name: row.try_get(1)?,
                    from_version_id: row.try_get(2)?,
                    to_version_id: row.try_get(3)?,
                    kind: row.try_get(4)?,
                    by: row.try_get(5)?,
                    reason: row.try_get(6)?,
                    at: row.try_get(7)?,
                })
            })
            .collect()
    }
}
