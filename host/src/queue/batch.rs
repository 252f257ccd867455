//! One batch of claimed jobs: prepared side by side (their plugin calls and
//! reads) under leases renewed meanwhile, then written in one transaction —
//! every job's effects and its result, each job under a savepoint of its
//! own, so that a job whose writes fail is undone and retried alone while
//! the rest of the batch commits.

use std::sync::Arc;

use tracing::Instrument as _;

use super::Runner;
use super::policy::{DEFERRAL, Outcome, RetryPolicy, jitter, spread};
use crate::plugins::scope::scoped;
use crate::store::{self, Attempt, Job, Recorded, Store};
use crate::time::now_ms;

/// A prepared job, with what recording its result needs.
struct Ready<P> {
    id: i64,
    kind: String,
    attempts: i64,
    /// When this attempt began (ms), for its row in the attempt history.
    started_at: i64,
    handled_by: Option<String>,
    prepared: P,
}

/// How a batch went.
pub(super) struct BatchResult {
    /// The batch's transaction did not commit, or jobs of it were deferred:
    /// the database is failing, and claiming again at once would add to its
    /// load.
    pub failed: bool,
}

/// Run `jobs`, claimed by `owner` under a lease of `lease`, and record their
/// results.
pub(super) async fn run<R: Runner>(
    store: &Store,
    runner: &Arc<R>,
    owner: &str,
    lease: std::time::Duration,
    retry: &RetryPolicy,
    jobs: Vec<Job>,
) -> BatchResult {
    let ids: Vec<i64> = jobs.iter().map(|j| j.id).collect();
    let prepare = futures_util::future::join_all(jobs.into_iter().map(|job| {
        let (id, kind, attempts) = (job.id, job.kind.clone(), job.attempts);
        let span = tracing::info_span!("job", id, kind = %kind, attempt = attempts);
        let runner = runner.clone();
        async move {
            let started_at = now_ms();
            // Plugin log lines carry the job as their request id.
            let (prepared, handled_by) = scoped(format!("job-{id}"), runner.prepare(job)).await;
            Ready {
                id,
                kind,
                attempts,
                started_at,
                handled_by,
                prepared,
            }
        }
        .instrument(span)
    }));
    tokio::pin!(prepare);
    let mut beat = tokio::time::interval(lease / 3);
    beat.tick().await;
    let ready = loop {
        tokio::select! {
            ready = &mut prepare => break ready,
            _ = beat.tick() => {
                let until = now_ms() + lease.as_millis() as i64;
                match store.renew_leases(&ids, owner, until).await {
                    Ok(held) if held < ids.len() as u64 => tracing::warn!(
                        held,
                        claimed = ids.len(),
                        "lost the lease of running jobs"
                    ),
                    Ok(_) => {}
                    Err(err) => tracing::warn!(error = %err, "cannot renew leases"),
                }
            }
        }
    };
    match write(store, runner.as_ref(), owner, retry, ready).await {
        Ok(Written {
            recorded,
            deferred,
            effects,
        }) => {
            tracing::debug!(claimed = ids.len(), recorded, deferred, "batch committed");
            runner.committed(effects);
            BatchResult {
                failed: deferred > 0,
            }
        }
        // The jobs stay running under our leases; once they expire they run again.
        Err(err) => {
            tracing::error!(error = %err, jobs = ids.len(), "cannot record a batch of jobs");
            BatchResult { failed: true }
        }
    }
}

/// What a batch's transaction wrote.
struct Written<C> {
    recorded: usize,
    deferred: usize,
    effects: Vec<C>,
}

/// The batch's transaction: each job's effects and result, in the order of
/// the rows they write ([`Runner::write_order`]), then of their ids.
async fn write<R: Runner>(
    store: &Store,
    runner: &R,
    owner: &str,
    retry: &RetryPolicy,
    mut ready: Vec<Ready<R::Prepared>>,
) -> Result<Written<R::Committed>, store::StoreError> {
    // Stable: jobs about the same rows keep their id (arrival) order.
    ready.sort_by_cached_key(|job| R::write_order(&job.prepared));
    let mut tx = store.begin_derived_write().await?;
    let mut effects = Vec::with_capacity(ready.len());
    let (mut recorded, mut deferred) = (0, 0);
    for job in ready {
        let now = now_ms();
        store::savepoint(&mut tx, "job").await?;
        let (outcome, committed) = match runner.apply(&mut tx, job.prepared).await {
            Ok((outcome, committed)) => (outcome, Some(committed)),
            Err(outcome) => {
                // Undo this job's writes only; the batch goes on without them.
                store::rollback_to_savepoint(&mut tx, "job").await?;
                store::savepoint(&mut tx, "job").await?;
                (outcome, None)
            }
        };
        let (result, error) = judge(job.id, &job.kind, job.attempts, outcome, retry, now);
        let record = match &result {
            Judged::Done(note) => Recorded::Done {
                note: note.as_deref(),
            },
            Judged::Retry { run_after, counted } => {
                deferred += usize::from(!counted);
                Recorded::Retry {
                    error: error.as_deref().unwrap_or(""),
                    run_after: *run_after,
                    counted: *counted,
                }
            }
            Judged::Dead => Recorded::Dead {
                error: error.as_deref().unwrap_or(""),
            },
        };
        if store::record_job(
            &mut tx,
            job.id,
            owner,
            &record,
            job.handled_by.as_deref(),
            &Attempt {
                kind: &job.kind,
                number: job.attempts,
                started_at: job.started_at,
            },
            now,
        )
        .await?
        {
            store::release_savepoint(&mut tx, "job").await?;
            recorded += 1;
            effects.extend(committed);
        } else {
            // Taken over by another worker (our lease ran out): its run's
            // result counts, and this one's writes are undone.
            store::rollback_to_savepoint(&mut tx, "job").await?;
            tracing::warn!(
                id = job.id,
                kind = %job.kind,
                "job was taken over before its result was recorded; the other run's result counts"
            );
        }
    }
    tx.commit().await?;
    Ok(Written {
        recorded,
        deferred,
        effects,
    })
}

enum Judged {
    Done(Option<String>),
    /// Due again at `run_after` (ms); an attempt not `counted` is given back.
    Retry {
        run_after: i64,
        counted: bool,
    },
    Dead,
}

/// What an outcome means for the job: done, retried when, or dead; with the
/// error to record.
fn judge(
    id: i64,
    kind: &str,
    attempts: i64,
    outcome: Outcome,
    retry: &RetryPolicy,
    now: i64,
) -> (Judged, Option<String>) {
    match outcome {
        Outcome::Done { note } => {
            tracing::debug!(id, kind, note = note.as_deref().unwrap_or(""), "job done");
            (Judged::Done(note), None)
        }
        Outcome::Retry { error, after } => match retry.next_delay(attempts, after, jitter()) {
            Some(delay) => {
                tracing::info!(id, kind, attempts, ?delay, %error, "job failed; will retry");
                let run_after = now + delay.as_millis() as i64;
                (
                    Judged::Retry {
                        run_after,
                        counted: true,
                    },
                    Some(error),
                )
            }
            None => {
                tracing::warn!(id, kind, attempts, %error, "job failed on every attempt; dead-lettered");
                (
                    Judged::Dead,
                    Some(format!("gave up after {attempts} attempts: {error}")),
                )
            }
        },
        Outcome::Deferred { error } => {
            let delay = spread(DEFERRAL, jitter());
            tracing::warn!(id, kind, ?delay, %error, "the database failed under a job; it runs again shortly, the attempt not counted");
            let run_after = now + delay.as_millis() as i64;
            (
                Judged::Retry {
                    run_after,
                    counted: false,
                },
                Some(error),
            )
        }
        Outcome::Fail { error } => {
            tracing::warn!(id, kind, %error, "job failed for good; dead-lettered");
            (Judged::Dead, Some(error))
        }
    }
}
