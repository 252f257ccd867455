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

/// The attempt a result ends, for its row in `job_attempts`.
#[derive(Clone, Copy, Debug)]
pub struct Attempt<'a> {
    pub kind: &'a str,
    /// The job's attempt count as claimed (this attempt included).
    pub number: i64,
    pub started_at: i64,
}

impl<'a> Recorded<'a> {
    fn outcome(&self) -> &'static str {
        match self {
            Recorded::Done { .. } => "done",
            Recorded::Retry { counted: true, .. } => "retry",
            Recorded::Retry { counted: false, .. } => "deferred",
            Recorded::Dead { .. } => "dead",
        }
    }

    fn error(&self) -> Option<&'a str> {
        match self {
            Recorded::Done { .. } => None,
            Recorded::Retry { error, .. } | Recorded::Dead { error } => Some(*error),
        }
    }

    fn next_retry_at(&self) -> Option<i64> {
        match self {
            Recorded::Retry { run_after, .. } => Some(*run_after),
            _ => None,
        }
    }

    /// The update of the job's row, and how many parameters it takes.
    fn update_sql(&self) -> (&'static str, usize) {
        match self {
            Recorded::Done { .. } => (
                "UPDATE jobs SET state = 'done', serial_key = NULL, lease_owner = NULL, lease_until = NULL, \
                 note = $3, finished_at = $4, handled_by = COALESCE($5, handled_by) \
                 WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
                5,
            ),
            Recorded::Retry { .. } => (
                "UPDATE jobs SET state = 'pending', attempts = attempts - $7, lease_owner = NULL, lease_until = NULL, \
                 last_error = $3, last_failed_at = $4, run_after = $5, handled_by = COALESCE($6, handled_by) \
                 WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
                7,
            ),
            Recorded::Dead { .. } => (
                "UPDATE jobs SET state = 'dead', serial_key = NULL, lease_owner = NULL, lease_until = NULL, \
                 last_error = $3, last_failed_at = $4, finished_at = $4, handled_by = COALESCE($5, handled_by) \
                 WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
                5,
            ),
        }
    }
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Bind the parameters of [`Recorded::update_sql`], in its order.
fn bind_update<'q>(
    query: AnyQuery<'q>,
    result: &Recorded<'q>,
    id: i64,
    owner: &'q str,
    handled_by: Option<&'q str>,
    now: i64,
) -> AnyQuery<'q> {
    let query = query.bind(id).bind(owner);
    match result {
        Recorded::Done { note } => query.bind(*note).bind(now).bind(handled_by),
        Recorded::Retry {
            error,
            run_after,
            counted,
        } => query
            .bind(*error)
            .bind(now)
            .bind(*run_after)
            .bind(handled_by)
            .bind(i64::from(!*counted)),
        Recorded::Dead { error } => query.bind(*error).bind(now).bind(handled_by),
    }
}

const ATTEMPT_COLUMNS: &str =
    "job_id, kind, attempt, started_at, finished_at, outcome, error, next_retry_at";

/// Bind an attempt's row after its job id (which the statement supplies).
fn bind_attempt<'q>(
    query: AnyQuery<'q>,
    result: &Recorded<'q>,
    attempt: &Attempt<'q>,
    now: i64,
) -> AnyQuery<'q> {
    query
        .bind(attempt.kind)
        .bind(attempt.number)
        .bind(attempt.started_at)
        .bind(now)
        .bind(result.outcome())
        .bind(result.error())
        .bind(result.next_retry_at())
}

/// `$first, $first+1, …`: the placeholders of an attempt's row after its job id.
fn attempt_placeholders(first: usize) -> String {
    (first..first + 7)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Record the result of job `id` on `conn`, typically in the transaction
/// that writes its effects, and the attempt it ends in `job_attempts`. False
/// when `owner` no longer holds it (another worker took it over): then
/// nothing is recorded.
pub async fn record_job(
    conn: &mut AnyConnection,
    id: i64,
    owner: &str,
    result: &Recorded<'_>,
    handled_by: Option<&str>,
    attempt: &Attempt<'_>,
    now: i64,
) -> Result<bool> {
    let (update, params) = result.update_sql();
    if conn.backend_name() == "PostgreSQL" {
        // One statement: the attempt's row is inserted for the job's row the
        // update matched, so the history adds no round trip to the batch.
        let sql = format!(
            "WITH recorded AS ({update} RETURNING id) \
             INSERT INTO job_attempts ({ATTEMPT_COLUMNS}) SELECT id, {} FROM recorded",
            attempt_placeholders(params + 1)
        );
        let query = bind_update(sqlx::query(&sql), result, id, owner, handled_by, now);
        let query = bind_attempt(query, result, attempt, now);
        return Ok(query.execute(&mut *conn).await?.rows_affected() == 1);
    }
    // SQLite runs in this process: a second statement costs no round trip.
    let updated = bind_update(sqlx::query(update), result, id, owner, handled_by, now)
        .execute(&mut *conn)
        .await?
        .rows_affected()
        == 1;
    if updated {
        let sql = format!(
            "INSERT INTO job_attempts ({ATTEMPT_COLUMNS}) VALUES ($1, {})",
            attempt_placeholders(2)
        );
        bind_attempt(sqlx::query(&sql).bind(id), result, attempt, now)
            .execute(&mut *conn)
            .await?;
    }
    Ok(updated)
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
