//! Workers and the job table: claiming due jobs in batches under a lease,
//! renewing it, and recording each job's result — inside the transaction
//! that writes the job's effects, so that a job is applied and finished in
//! one commit, and a batch of jobs in one.

use sqlx::AnyConnection;

use super::jobs::{Job, OVERTAKABLE, job_from_row};
use super::{Backend, Result, Store};

/// A job's result, as recorded.
#[derive(Clone, Debug)]
pub enum Recorded<'a> {
    Done {
        note: Option<&'a str>,
    },
    /// Failed; due again at `run_after`. An attempt not `counted` failed for
    /// a reason outside the job (the database failed under it) and is given
    /// back.
    Retry {
        error: &'a str,
        run_after: i64,
        counted: bool,
    },
    /// Dead-lettered.
    Dead {
        error: &'a str,
    },
}

impl Store {
    /// Claim up to `limit` jobs that are due and first in their line, for
    /// `owner` until `lease_until`. Running jobs whose lease expired (their
    /// process died) are taken over first.
    pub async fn claim_jobs(
        &self,
        owner: &str,
        lease_until: i64,
        now: i64,
        limit: usize,
    ) -> Result<Vec<Job>> {
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            // SQLite runs the whole statement under its single write lock.
            Backend::Sqlite => "",
        };
        // Free in its line: no earlier job of the same serial key is running,
        // or pending and due (a webhook waiting for a retry may be overtaken).
        // The subqueries see the table as it was before this statement, so of
        // two jobs in one line only the first is ever claimed.
        let free = format!(
            "NOT EXISTS (SELECT 1 FROM jobs e WHERE e.serial_key = j.serial_key AND e.id < j.id \
               AND (e.state = 'running' OR (e.state = 'pending' \
                    AND (e.kind <> '{OVERTAKABLE}' OR e.run_after <= $3))))"
        );
        // Each branch walks `jobs_claim_order` and stops after `limit`
        // matches (the unary `+` keeps SQLite from picking `jobs_ready` and
        // sorting every due job instead).
        let sql = format!(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = $1, lease_until = $2 \
             WHERE id IN \
               (SELECT j.id FROM jobs j WHERE j.state = 'running' AND j.lease_until < $3 AND {free} \
                ORDER BY j.id LIMIT $4 {lock}) \
             OR id IN \
               (SELECT j.id FROM jobs j WHERE j.state = 'pending' AND +j.run_after <= $3 AND {free} \
                ORDER BY j.id LIMIT $4 {lock}) \
             RETURNING id, kind, integration_id, group_id, event_time, payload, body, attempts, created_at"
        );
        let mut conn = self.lease_writer().await?;
        // Every row: stepping the statement to its end is also what reports
        // a commit that failed (a full disk); a claim whose rows came back
        // but whose commit did not happen would run jobs nobody holds.
        let rows = sqlx::query(&sql)
            .bind(owner)
            .bind(lease_until)
            .bind(now)
            .bind(limit as i64)
            .fetch_all(&mut *conn)
            .await?;
        let mut jobs = rows.iter().map(job_from_row).collect::<Result<Vec<_>>>()?;
        jobs.sort_by_key(|j| j.id);
        Ok(jobs)
    }

    /// Extend the leases of the jobs `ids` this owner still holds; returns
    /// how many it still held.
    pub async fn renew_leases(&self, ids: &[i64], owner: &str, lease_until: i64) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let mut conn = self.lease_writer().await?;
        let done = sqlx::query(&format!(
            "UPDATE jobs SET lease_until = $2 WHERE id IN ({list}) AND lease_owner = $1 AND state = 'running'"
        ))
        .bind(owner)
        .bind(lease_until)
        .execute(&mut *conn)
        .await?;
        Ok(done.rows_affected())
    }
}

/// Record the result of job `id` on `conn`, typically in the transaction
/// that writes its effects. False when `owner` no longer holds it (another
/// worker took it over): then nothing is recorded.
pub async fn record_job(
    conn: &mut AnyConnection,
    id: i64,
    owner: &str,
    result: &Recorded<'_>,
    handled_by: Option<&str>,
    now: i64,
) -> Result<bool> {
    let query = match result {
        Recorded::Done { note } => sqlx::query(
            "UPDATE jobs SET state = 'done', serial_key = NULL, lease_owner = NULL, lease_until = NULL, \
             note = $3, finished_at = $4, handled_by = COALESCE($5, handled_by) \
             WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
        )
        .bind(id)
        .bind(owner)
        .bind(*note)
        .bind(now)
        .bind(handled_by),
        Recorded::Retry {
            error,
            run_after,
            counted,
        } => sqlx::query(
            "UPDATE jobs SET state = 'pending', attempts = attempts - $7, lease_owner = NULL, lease_until = NULL, \
             last_error = $3, last_failed_at = $4, run_after = $5, handled_by = COALESCE($6, handled_by) \
             WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
        )
        .bind(id)
        .bind(owner)
        .bind(*error)
        .bind(now)
        .bind(*run_after)
        .bind(handled_by)
        .bind(i64::from(!*counted)),
        Recorded::Dead { error } => sqlx::query(
            "UPDATE jobs SET state = 'dead', serial_key = NULL, lease_owner = NULL, lease_until = NULL, \
             last_error = $3, last_failed_at = $4, finished_at = $4, handled_by = COALESCE($5, handled_by) \
             WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
        )
        .bind(id)
        .bind(owner)
        .bind(*error)
        .bind(now)
        .bind(handled_by),
    };
    Ok(query.execute(&mut *conn).await?.rows_affected() == 1)
}

/// `SAVEPOINT name`: what follows can be undone alone (`ROLLBACK TO`) while
/// the transaction goes on.
pub async fn savepoint(conn: &mut AnyConnection, name: &str) -> Result<()> {
    sqlx::query(&format!("SAVEPOINT {name}"))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Keep what was written since `SAVEPOINT name`.
pub async fn release_savepoint(conn: &mut AnyConnection, name: &str) -> Result<()> {
    sqlx::query(&format!("RELEASE SAVEPOINT {name}"))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Undo what was written since `SAVEPOINT name` (and end it).
pub async fn rollback_to_savepoint(conn: &mut AnyConnection, name: &str) -> Result<()> {
    sqlx::query(&format!("ROLLBACK TO SAVEPOINT {name}"))
        .execute(&mut *conn)
        .await?;
    release_savepoint(conn, name).await
}
