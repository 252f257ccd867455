//! The integrations' secrets as a whole: which keys they are sealed with,
//! sealing the plain ones, and re-sealing under a new key.

use std::sync::Arc;

use sqlx::Row;

use super::sealing::{SealError, SecretKeys, binding, sealed_with};
use super::{Result, Store};

/// How the stored secrets stand.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretsAtRest {
    /// Integrations whose secrets are stored as plain text.
    pub plain: usize,
    /// Integrations whose secrets are sealed, by key id.
    pub sealed: Vec<(String, usize)>,
}

impl Store {
    /// This store, sealing secrets it writes with `keys` and opening what it
    /// reads with them.
    pub fn with_secret_keys(mut self, keys: SecretKeys) -> Store {
        self.secret_keys = Arc::new(keys);
        self
    }

    pub fn secret_keys(&self) -> &SecretKeys {
        &self.secret_keys
    }

    /// Count the integrations by how their secrets are stored.
    pub async fn secrets_at_rest(&self) -> Result<SecretsAtRest> {
        let rows = sqlx::query("SELECT secrets FROM integrations")
            .fetch_all(&self.pool)
            .await?;
        let mut at_rest = SecretsAtRest::default();
        let mut by_key = std::collections::BTreeMap::<String, usize>::new();
        for row in &rows {
            let stored: String = row.try_get(0)?;
            match sealed_with(&stored) {
                Some(key) => *by_key.entry(key.to_owned()).or_default() += 1,
                None => at_rest.plain += 1,
            }
        }
        at_rest.sealed = by_key.into_iter().collect();
        Ok(at_rest)
    }

    /// Refuse keys that cannot open every stored secret: a host started so
    /// would fail at the first webhook of an integration it cannot open.
    pub async fn check_secret_keys(&self) -> Result<SecretsAtRest> {
        let at_rest = self.secrets_at_rest().await?;
        let known: Vec<&str> = self.secret_keys.ids().collect();
        if let Some((key, _)) = at_rest
            .sealed
            .iter()
            .find(|(k, _)| !known.contains(&k.as_str()))
        {
            return Err(SealError::UnknownKey { key: key.clone() }.into());
        }
        Ok(at_rest)
    }

    /// Seal every secret not yet sealed under the sealing key (`all`), or
    /// only those stored plain; returns how many were sealed. One
    /// transaction: a failure leaves every row as it was.
    pub async fn seal_secrets(&self, all: bool) -> Result<usize> {
        if self.secret_keys.is_empty() {
            return Ok(0);
        }
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query("SELECT id, provider, external_id, secrets FROM integrations")
            .fetch_all(&mut *tx)
            .await?;
        let mut sealed = 0;
        for row in &rows {
            let (id, provider, external_id, stored): (i64, String, String, String) = (
                row.try_get(0)?,
                row.try_get(1)?,
                row.try_get(2)?,
                row.try_get(3)?,
            );
            let redo = if all {
                !self.secret_keys.is_current(&stored)
            } else {
                sealed_with(&stored).is_none()
            };
            if !redo {
                continue;
            }
            let bound = binding(&provider, &external_id);
            let plain = self.secret_keys.open(&stored, &bound)?;
            let resealed = self.secret_keys.seal(&plain, &bound)?;
            sqlx::query("UPDATE integrations SET secrets = $1 WHERE id = $2")
                .bind(&resealed)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sealed += 1;
        }
        tx.commit().await?;
        Ok(sealed)
    }
}
