//! The job table: verified webhooks waiting to be processed and the outbound
//! calls written in the same transaction as the change that causes them.
//!
//! A job is `pending` until a worker claims it (`running`, under a lease that
//! the worker renews), then `done` or `dead` (dead-lettered: the retry schedule
//! ran out, or the error cannot be fixed by retrying). Jobs that share a serial
//! key run one at a time, in id order; a finished job leaves the line by
//! dropping its serial key, so the serial index only holds live jobs. Jobs
//! without one run as soon as a worker is free.

use serde::Serialize;
use sqlx::{AnyConnection, Row};

use super::{Result, Store, StoreError};

/// A job to write.
#[derive(Clone, Debug, Default)]
pub struct NewJob {
    pub kind: &'static str,
    pub integration_id: Option<i64>,
    pub group_id: Option<i64>,
    pub dedup_key: Option<String>,
    pub body_sha256: Option<String>,
    pub event_time: Option<i64>,
    pub payload: String,
    pub body: Option<Vec<u8>>,
    /// The plugin version that verified a webhook (`name version`).
    pub verified_by: Option<String>,
}

/// The kinds whose later jobs may overtake one waiting for a retry: they carry
/// the provider's event time, and an older event is ignored when it comes last.
pub(super) const OVERTAKABLE: &str = "webhook";

/// The line a job waits in: one per target and group for outbound calls. A
/// webhook that carries the provider's event time waits in none: its events
/// are checked against the issue's clock in the transaction that applies
/// them, so they may run in any order and the newest still wins. Only
/// webhooks without a time keep their integration's arrival order.
pub fn serial_key(
    kind: &str,
    integration: Option<i64>,
    group: Option<i64>,
    event_time: Option<i64>,
) -> Option<String> {
    let part = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    Some(match kind {
        "webhook" if event_time.is_some() => return None,
        "webhook" => format!("webhook:{}", part(integration)),
        _ => format!("{kind}:{}:{}", part(integration), part(group)),
    })
}

/// A claimed job.
#[derive(Clone, Debug)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub integration_id: Option<i64>,
    pub group_id: Option<i64>,
    pub event_time: Option<i64>,
    pub payload: String,
    pub body: Option<Vec<u8>>,
    /// Attempts so far, this one included.
    pub attempts: i64,
    /// When it was written (ms): for a webhook, when it arrived.
    pub created_at: i64,
}

/// What an operator sees of a job (never its payload: webhooks carry customer data).
#[derive(Clone, Debug, Serialize)]
pub struct JobView {
    pub id: i64,
    pub kind: String,
    pub integration_id: Option<i64>,
    pub group_id: Option<i64>,
    pub state: String,
    pub attempts: i64,
    pub dedup_key: Option<String>,
    pub event_time: Option<i64>,
    pub run_after: i64,
    pub last_error: Option<String>,
    pub last_failed_at: Option<i64>,
    pub note: Option<String>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    /// The plugin version that verified a webhook, and the one that ran the
    /// job's last attempt (`name version`).
    pub verified_by: Option<String>,
    pub handled_by: Option<String>,
}

/// Queue figures of one integration (`None`: jobs that belong to none).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct QueueStats {
    pub integration_id: Option<i64>,
    /// Pending and running jobs.
    pub depth: i64,
    /// When the oldest pending or running job was created (ms since the epoch).
    pub oldest_pending_at: Option<i64>,
    /// Jobs whose last failed attempt is less than an hour old.
    pub failures_last_hour: i64,
    pub dead_letters: i64,
}

/// Whether a webhook was stored or is a repeat of one already stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enqueued {
    Stored(i64),
    Duplicate,
}

/// Which jobs to list.
#[derive(Clone, Debug, Default)]
pub struct JobFilter {
    pub state: Option<String>,
    pub integration_id: Option<i64>,
    pub kind: Option<String>,
    pub limit: i64,
}

pub(super) const JOB_VIEW_COLUMNS: &str = "id, kind, integration_id, group_id, state, attempts, dedup_key, \
     event_time, run_after, last_error, last_failed_at, note, created_at, finished_at, verified_by, handled_by";

/// Write `job` (pending, due now) on `conn`, typically inside the transaction
/// of the change that causes it. Returns its id, or `None` when its dedup key
/// is taken.
pub async fn insert_job(conn: &mut AnyConnection, job: &NewJob, now: i64) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "INSERT INTO jobs (kind, integration_id, group_id, serial_key, dedup_key, body_sha256, \
         event_time, payload, body, verified_by, state, attempts, run_after, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $11, 'pending', 0, $10, $10) \
         ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(job.kind)
    .bind(job.integration_id)
    .bind(job.group_id)
    .bind(serial_key(
        job.kind,
        job.integration_id,
        job.group_id,
        job.event_time,
    ))
    .bind(job.dedup_key.as_deref())
    .bind(job.body_sha256.as_deref())
    .bind(job.event_time)
    .bind(&job.payload)
    .bind(job.body.as_deref())
    .bind(now)
    .bind(job.verified_by.as_deref())
    .fetch_optional(&mut *conn)
    .await?)
}

/// Same delivery id, different body: the sender reused an id, or someone
/// replays a signed request with another body. The first is kept; say so.
async fn warn_when_body_differs(conn: &mut AnyConnection, job: &NewJob) -> Result<()> {
    let stored: Option<Option<String>> = sqlx::query_scalar(
        "SELECT body_sha256 FROM jobs WHERE kind = $1 AND integration_id = $2 AND dedup_key = $3",
    )
    .bind(job.kind)
    .bind(job.integration_id)
    .bind(job.dedup_key.as_deref())
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(stored) = stored
        && stored != job.body_sha256
    {
        tracing::warn!(
            integration = job.integration_id,
            dedup_key = job.dedup_key.as_deref().unwrap_or(""),
            "a repeated delivery id arrived with a different body; the first one is kept"
        );
    }
    Ok(())
}

pub(super) fn job_from_row(row: &sqlx::any::AnyRow) -> Result<Job> {
    Ok(Job {
        id: row.try_get(0)?,
        kind: row.try_get(1)?,
        integration_id: row.try_get(2)?,
        group_id: row.try_get(3)?,
        event_time: row.try_get(4)?,
        payload: row.try_get(5)?,
        body: row.try_get(6)?,
        attempts: row.try_get(7)?,
        created_at: row.try_get(8)?,
    })
}

pub(super) fn view_from_row(row: &sqlx::any::AnyRow) -> Result<JobView> {
    Ok(JobView {
        id: row.try_get(0)?,
        kind: row.try_get(1)?,
        integration_id: row.try_get(2)?,
        group_id: row.try_get(3)?,
        state: row.try_get(4)?,
        attempts: row.try_get(5)?,
        dedup_key: row.try_get(6)?,
        event_time: row.try_get(7)?,
        run_after: row.try_get(8)?,
        last_error: row.try_get(9)?,
        last_failed_at: row.try_get(10)?,
        note: row.try_get(11)?,
        created_at: row.try_get(12)?,
        finished_at: row.try_get(13)?,
        verified_by: row.try_get(14)?,
        handled_by: row.try_get(15)?,
    })
}

impl Store {
    /// Store a verified webhook. It is committed (synchronous=FULL on SQLite)
    /// when this returns: only then may the tracker hear 2xx.
    pub async fn enqueue_webhook(&self, job: &NewJob, now: i64) -> Result<Enqueued> {
        let mut stored = self
            .enqueue_webhooks(std::slice::from_ref(job), now)
            .await?;
        stored.pop().ok_or(StoreError::NotFound("stored webhook"))
    }

    /// Store verified webhooks in one transaction: one commit, and on SQLite
    /// one fsync, for all of them. Committed when this returns.
    pub async fn enqueue_webhooks(&self, jobs: &[NewJob], now: i64) -> Result<Vec<Enqueued>> {
        // Several processes may store the same deliveries at once (a tracker
        // retrying against another one): inserting in one order everywhere
        // means their transactions wait for each other instead of deadlocking
        // on each other's dedup keys.
        let mut order: Vec<usize> = (0..jobs.len()).collect();
        order.sort_by_key(|&i| (jobs[i].integration_id, jobs[i].dedup_key.as_deref()));
        let mut out = vec![Enqueued::Duplicate; jobs.len()];
        let mut tx = self.begin_write().await?;
        for i in order {
            let job = &jobs[i];
            out[i] = match insert_job(&mut tx, job, now).await? {
                Some(id) => Enqueued::Stored(id),
                None => {
                    warn_when_body_differs(&mut tx, job).await?;
                    Enqueued::Duplicate
                }
            };
        }
        tx.commit().await?;
        Ok(out)
    }

    /// At start on SQLite, where this process is the only one: whatever was
    /// running belonged to a process that is gone.
    pub async fn release_all_leases(&self) -> Result<u64> {
        let mut conn = self.writer().await?;
        let done = sqlx::query(
            "UPDATE jobs SET state = 'pending', lease_owner = NULL, lease_until = NULL \
             WHERE state = 'running'",
        )
        .execute(&mut *conn)
        .await?;
        Ok(done.rows_affected())
    }

    /// Hand back the running jobs of the workers of `process` (owners
    /// `<process>-<n>`): pending, due now. Returns how many.
    pub async fn release_leases_of(&self, process: &str) -> Result<u64> {
        let mut conn = self.writer().await?;
        let done = sqlx::query(
            "UPDATE jobs SET state = 'pending', lease_owner = NULL, lease_until = NULL, run_after = $2 \
             WHERE state = 'running' AND lease_owner LIKE $1",
        )
        .bind(format!("{process}-%"))
        .bind(crate::time::now_ms())
        .execute(&mut *conn)
        .await?;
        Ok(done.rows_affected())
    }

    /// When the next pending job falls due or a lease expires, if any.
    pub async fn next_due(&self) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(CASE WHEN state = 'pending' THEN run_after ELSE lease_until END) \
             FROM jobs WHERE state IN ('pending', 'running')",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Put a dead job (or a done webhook) back in line, due now.
    pub async fn replay_job(&self, id: i64, now: i64) -> Result<JobView> {
        let job = self.job(id).await?;
        let replayable = job.state == "dead" || (job.state == "done" && job.kind == "webhook");
        if !replayable {
            return Err(StoreError::Conflict(format!(
                "job {id} is {} ({}); only dead jobs and done webhooks can be replayed",
                job.state, job.kind
            )));
        }
        let key = serial_key(&job.kind, job.integration_id, job.group_id, job.event_time);
        let mut conn = self.writer().await?;
        sqlx::query(
            "UPDATE jobs SET state = 'pending', attempts = 0, run_after = $2, serial_key = $3, \
             finished_at = NULL, note = 'replayed' WHERE id = $1 AND state IN ('dead', 'done')",
        )
        .bind(id)
        .bind(now)
        .bind(key)
        .execute(&mut *conn)
        .await?;
        self.job(id).await
    }

    /// Replay every dead job (of one integration, when given). Returns the ids.
    pub async fn replay_dead(&self, integration: Option<i64>, now: i64) -> Result<Vec<i64>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM jobs WHERE state = 'dead' AND ($1 IS NULL OR integration_id = $1) ORDER BY id",
        )
        .bind(integration)
        .fetch_all(&self.pool)
        .await?;
        for id in &ids {
            self.replay_job(*id, now).await?;
        }
        Ok(ids)
    }

    pub async fn job(&self, id: i64) -> Result<JobView> {
        let row = sqlx::query(&format!(
            "SELECT {JOB_VIEW_COLUMNS} FROM jobs WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("job"))?;
        view_from_row(&row)
    }

    pub async fn jobs(&self, filter: &JobFilter) -> Result<Vec<JobView>> {
        let rows = sqlx::query(&format!(
            "SELECT {JOB_VIEW_COLUMNS} FROM jobs WHERE ($1 IS NULL OR state = $1) \
             AND ($2 IS NULL OR integration_id = $2) AND ($3 IS NULL OR kind = $3) \
             ORDER BY id DESC LIMIT $4"
        ))
        .bind(filter.state.as_deref())
        .bind(filter.integration_id)
        .bind(filter.kind.as_deref())
        .bind(filter.limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(view_from_row).collect()
    }

    /// Queue figures per integration; `since` bounds "recent failures".
    pub async fn queue_stats(&self, since: i64) -> Result<Vec<QueueStats>> {
        queue_stats_on(&self.pool, since).await
    }

    /// [`Self::queue_stats`] on a connection that serves nothing else (on
    /// SQLite), for the figures of `/metrics`: a scan of a long job history
    /// never holds a connection the intake or the workers are waiting for.
    pub async fn queue_stats_snapshot(&self, since: i64) -> Result<Vec<QueueStats>> {
        queue_stats_on(&self.stats, since).await
    }

    /// Commit one small write through the ordinary write path (the write probe).
    pub async fn heartbeat(&self, now: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO heartbeat (id, at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET at = $1",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// Forget done jobs finished before `before` (dedup records included).
    pub async fn prune_jobs(&self, before: i64) -> Result<u64> {
        let mut conn = self.writer().await?;
        let done = sqlx::query("DELETE FROM jobs WHERE state = 'done' AND finished_at < $1")
            .bind(before)
            .execute(&mut *conn)
            .await?;
        Ok(done.rows_affected())
    }
}

/// Record the provider's time of a `change` to `issue` unless a newer one
/// was applied already; false: the event is older than the last applied.
/// Equal times are told apart by `arrival` (the delivery's job id): the later
/// arrival is the newer. Run it in the transaction that applies the change:
/// on PostgreSQL the clock's row stays locked until then, so concurrent
/// events about one issue apply one after the other and the newest last.
pub async fn advance_issue_clock(
    conn: &mut AnyConnection,
    integration: i64,
    issue: &str,
    change: &str,
    event_time: i64,
    arrival: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO external_issue_clocks (integration_id, external_issue, change, event_time, arrival) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (integration_id, external_issue, change) DO UPDATE SET event_time = $4, arrival = $5 \
         WHERE external_issue_clocks.event_time < $4 \
            OR (external_issue_clocks.event_time = $4 AND external_issue_clocks.arrival <= $5)",
    )
    .bind(integration)
    .bind(issue)
    .bind(change)
    .bind(event_time)
    .bind(arrival)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

async fn queue_stats_on(pool: &sqlx::AnyPool, since: i64) -> Result<Vec<QueueStats>> {
    let rows = sqlx::query(
        "SELECT integration_id, \
           SUM(CASE WHEN state IN ('pending', 'running') THEN 1 ELSE 0 END), \
           MIN(CASE WHEN state IN ('pending', 'running') THEN created_at END), \
           SUM(CASE WHEN last_failed_at >= $1 THEN 1 ELSE 0 END), \
           SUM(CASE WHEN state = 'dead' THEN 1 ELSE 0 END) \
         FROM jobs GROUP BY integration_id ORDER BY integration_id",
    )
    .bind(since)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(QueueStats {
                integration_id: row.try_get(0)?,
                depth: row.try_get(1)?,
                oldest_pending_at: row.try_get(2)?,
                failures_last_hour: row.try_get(3)?,
                dead_letters: row.try_get(4)?,
            })
        })
        .collect()
}
