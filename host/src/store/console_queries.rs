//! What the operator console reads and writes beyond the API's queries: its
//! sessions and audit record, the delivery log with its filters, a job's
//! stored payload and attempt history, dead letters grouped by cause, and
//! every installation.

use sqlx::Row;

use super::jobs::{JOB_VIEW_COLUMNS, view_from_row};
use super::{JobView, Result, Store};

/// A signed-in console session (found by the hash of its cookie's id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleSession {
    pub id_hash: String,
    pub csrf_token: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// One change made through the console.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub who: String,
    pub at: i64,
    pub what: String,
    pub target: String,
}

/// Which jobs the delivery log shows; every field narrows.
#[derive(Clone, Debug, Default)]
pub struct DeliveryFilter {
    pub state: Option<String>,
    pub kind: Option<String>,
    pub integration_id: Option<i64>,
    pub provider: Option<String>,
    /// Created at or after / before (ms, UTC).
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub group_id: Option<i64>,
    /// A job id or a dedup key (the provider's delivery id).
    pub any_id: Option<String>,
    /// Only jobs with a smaller id (the next page).
    pub before: Option<i64>,
    pub limit: i64,
}

/// One attempt at a job, as the worker recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobAttempt {
    pub attempt: i64,
    pub started_at: i64,
    pub finished_at: i64,
    /// `done`, `retry`, `deferred` or `dead`.
    pub outcome: String,
    pub error: Option<String>,
    pub next_retry_at: Option<i64>,
}

/// Dead letters sharing an integration and an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetterGroup {
    pub integration_id: Option<i64>,
    pub error: String,
    pub count: i64,
    pub newest_id: i64,
}

impl Store {
    pub async fn create_console_session(&self, session: &ConsoleSession) -> Result<()> {
        let mut conn = self.writer().await?;
        sqlx::query(
            "INSERT INTO console_sessions (id_hash, csrf_token, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&session.id_hash)
        .bind(&session.csrf_token)
        .bind(session.created_at)
        .bind(session.expires_at)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// The session whose id hashes to `id_hash`, unless it expired by `now`.
    pub async fn console_session(&self, id_hash: &str, now: i64) -> Result<Option<ConsoleSession>> {
        let row = sqlx::query(
            "SELECT id_hash, csrf_token, created_at, expires_at FROM console_sessions \
             WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(ConsoleSession {
                id_hash: r.try_get(0)?,
                csrf_token: r.try_get(1)?,
                created_at: r.try_get(2)?,
                expires_at: r.try_get(3)?,
            })
        })
        .transpose()
    }

    /// Sign a session out.
    pub async fn delete_console_session(&self, id_hash: &str) -> Result<()> {
        let mut conn = self.writer().await?;
        sqlx::query("DELETE FROM console_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Forget the sessions that expired by `now`.
    pub async fn purge_console_sessions(&self, now: i64) -> Result<u64> {
        let mut conn = self.writer().await?;
        let done = sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *conn)
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn record_console_audit(
        &self,
        who: &str,
        what: &str,
        target: &str,
        now: i64,
    ) -> Result<()> {
        let mut conn = self.writer().await?;
        sqlx::query("INSERT INTO console_audit (who, at, what, target) VALUES ($1, $2, $3, $4)")
            .bind(who)
            .bind(now)
            .bind(what)
            .bind(target)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// The newest `limit` audit entries, newest first.
    pub async fn console_audit(&self, limit: i64) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT id, who, at, what, target FROM console_audit ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get(0)?,
                    who: r.try_get(1)?,
                    at: r.try_get(2)?,
                    what: r.try_get(3)?,
                    target: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// The delivery log: jobs matching `filter`, newest first.
    pub async fn console_jobs(&self, filter: &DeliveryFilter) -> Result<Vec<JobView>> {
        let any_number = filter
            .any_id
            .as_deref()
            .and_then(|v| v.trim().parse::<i64>().ok());
        let columns = JOB_VIEW_COLUMNS
            .split(", ")
            .map(|c| format!("j.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(&format!(
            "SELECT {columns} FROM jobs j LEFT JOIN integrations i ON i.id = j.integration_id \
             WHERE ($1 IS NULL OR j.state = $1) AND ($2 IS NULL OR j.kind = $2) \
             AND ($3 IS NULL OR j.integration_id = $3) AND ($4 IS NULL OR i.provider = $4) \
             AND ($5 IS NULL OR j.created_at >= $5) AND ($6 IS NULL OR j.created_at < $6) \
             AND ($7 IS NULL OR j.dedup_key = $7 OR j.id = $8) \
             AND ($9 IS NULL OR j.id < $9) AND ($11 IS NULL OR j.group_id = $11) \
             ORDER BY j.id DESC LIMIT $10"
        ))
        .bind(filter.state.as_deref())
        .bind(filter.kind.as_deref())
        .bind(filter.integration_id)
        .bind(filter.provider.as_deref())
        .bind(filter.from)
        .bind(filter.to)
        .bind(filter.any_id.as_deref().map(str::trim))
        .bind(any_number)
        .bind(filter.before)
        .bind(filter.limit)
        .bind(filter.group_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(view_from_row).collect()
    }

    /// What a job carries: its payload and, for a webhook, the body.
    pub async fn job_payload(&self, id: i64) -> Result<Option<(String, Option<Vec<u8>>)>> {
        let row = sqlx::query("SELECT payload, body FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
    }

    /// Every recorded attempt at job `id`, oldest first (none for a job
    /// that last ran before the history was kept).
    pub async fn job_attempts(&self, id: i64) -> Result<Vec<JobAttempt>> {
        let rows = sqlx::query(
            "SELECT attempt, started_at, finished_at, outcome, error, next_retry_at \
             FROM job_attempts WHERE job_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(JobAttempt {
                    attempt: r.try_get(0)?,
                    started_at: r.try_get(1)?,
                    finished_at: r.try_get(2)?,
                    outcome: r.try_get(3)?,
                    error: r.try_get(4)?,
                    next_retry_at: r.try_get(5)?,
                })
            })
            .collect()
    }

    /// Dead letters grouped by integration and last error, largest first.
    pub async fn dead_letter_groups(&self) -> Result<Vec<DeadLetterGroup>> {
        let rows = sqlx::query(
            "SELECT integration_id, COALESCE(last_error, ''), COUNT(*), MAX(id) FROM jobs \
             WHERE state = 'dead' GROUP BY integration_id, COALESCE(last_error, '') \
             ORDER BY COUNT(*) DESC, MAX(id) DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DeadLetterGroup {
                    integration_id: r.try_get(0)?,
                    error: r.try_get(1)?,
                    count: r.try_get(2)?,
                    newest_id: r.try_get(3)?,
                })
            })
            .collect()
    }

    /// The ids of the dead letters of `integration` (when given) whose last
    /// error is `error` (when given), oldest first.
    pub async fn dead_letter_ids(
        &self,
        integration: Option<i64>,
        error: Option<&str>,
    ) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM jobs WHERE state = 'dead' AND ($1 IS NULL OR integration_id = $1) \
             AND ($2 IS NULL OR COALESCE(last_error, '') = $2) ORDER BY id",
        )
        .bind(integration)
        .bind(error)
        .fetch_all(&self.pool)
        .await?)
    }

    /// What moves when a console list's data changes: the newest job, the
    /// newest attempt (every state change of a job records one) and the
    /// integrations' change counter — `None` once the session whose id
    /// hashes to `id_hash` is gone or expired. Index lookups only; the
    /// connection goes back to the pool when this returns.
    pub async fn console_change_marker(
        &self,
        id_hash: &str,
        now: i64,
    ) -> Result<Option<(i64, i64, i64)>> {
        let row = sqlx::query(
            "SELECT (SELECT COALESCE(MAX(id), 0) FROM jobs), \
             (SELECT COALESCE(MAX(id), 0) FROM job_attempts), \
             (SELECT COALESCE(MAX(value), 0) FROM integrations_generation), \
             (SELECT COUNT(*) FROM console_sessions WHERE id_hash = $1 AND expires_at > $2)",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        let signed_in: i64 = row.try_get(3)?;
        if signed_in == 0 {
            return Ok(None);
        }
        Ok(Some((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
    }

    /// Every active installation: `(organization, integration)`.
    pub async fn all_installations(&self) -> Result<Vec<(i64, i64)>> {
        let rows = sqlx::query(
            "SELECT organization_id, integration_id FROM organization_integrations \
             WHERE status = 'active' ORDER BY integration_id, organization_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }
}
