//! The worker loop: claim, run under a renewed lease, record.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use super::Runner;
use super::policy::{Outcome, RetryPolicy, jitter};
use crate::plugins::scope::scoped;
use crate::store::{Job, Store, StoreError};
use crate::time::now_ms;

/// How the workers run.
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// Jobs this process runs at once.
    pub workers: usize,
    /// How long a claimed job stays ours without renewal; another process
    /// takes it over once it expires.
    pub lease: Duration,
    /// The longest sleep between looks at the table when nothing woke us
    /// (jobs written by other processes, retries falling due).
    pub poll: Duration,
    pub retry: RetryPolicy,
    /// How long done jobs are kept; done webhooks are the dedup records, and
    /// trackers retry for up to about 36 hours (Azure DevOps' probation).
    pub retention: Duration,
}

impl Default for WorkerSettings {
    fn default() -> WorkerSettings {
        WorkerSettings {
            workers: 4,
            lease: Duration::from_secs(30),
            poll: Duration::from_secs(1),
            retry: RetryPolicy::default(),
            retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// The running workers.
pub struct Workers {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    store: Store,
    /// This process's lease owner tag (each worker's is `<process>-<n>`).
    process: String,
}

impl Workers {
    /// Stop claiming; wait until `deadline` for the jobs in hand to be
    /// recorded. Jobs still running then are cut and handed back to the queue
    /// (pending, due now), so another process — or this one, restarted —
    /// takes them at once rather than after their lease.
    pub async fn shutdown(self, deadline: tokio::time::Instant) {
        let _ = self.stop.send(true);
        let mut cut = 0;
        for mut task in self.tasks {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
                let _ = task.await;
                cut += 1;
            }
        }
        if cut > 0 {
            match self.store.release_leases_of(&self.process).await {
                Ok(jobs) => tracing::warn!(
                    jobs,
                    "jobs unfinished at the end of the shutdown grace were handed back to the queue"
                ),
                Err(err) => tracing::warn!(
                    error = %err,
                    "jobs unfinished at the end of the shutdown grace could not be handed back; they run again once their leases expire"
                ),
            }
        }
    }
}

/// Start `settings.workers` workers. `wake` is notified (`notify_one`)
/// whenever jobs were written in this process.
pub fn start<R: Runner>(
    store: Store,
    runner: Arc<R>,
    wake: Arc<Notify>,
    settings: WorkerSettings,
) -> Workers {
    let (stop, stopped) = watch::channel(false);
    let process = process_tag();
    tracing::debug!(process = %process, workers = settings.workers, "job workers start");
    let mut tasks: Vec<JoinHandle<()>> = (0..settings.workers.max(1))
        .map(|n| {
            let worker = Worker {
                owner: format!("{process}-{n}"),
                store: store.clone(),
                runner: runner.clone(),
                wake: wake.clone(),
                settings: settings.clone(),
            };
            let stopped = stopped.clone();
            tokio::spawn(async move { worker.run(stopped).await })
        })
        .collect();
    tasks.push(tokio::spawn(prune(
        store.clone(),
        settings.retention,
        stopped,
    )));
    Workers {
        stop,
        tasks,
        store,
        process,
    }
}

/// Forget done jobs older than the retention, once an hour.
async fn prune(store: Store, retention: Duration, mut stopped: watch::Receiver<bool>) {
    let every = Duration::from_secs(3600).min(retention);
    while !*stopped.borrow() {
        let before = now_ms() - retention.as_millis() as i64;
        match store.prune_jobs(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(jobs = n, "forgot done jobs past the retention"),
            Err(err) => tracing::warn!(error = %err, "cannot prune done jobs"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stopped.changed() => {}
        }
    }
}

/// Names this process in leases: pid plus randomness, as pids repeat across
/// machines and restarts.
fn process_tag() -> String {
    let mut bytes = [0u8; 4];
    let _ = getrandom::fill(&mut bytes);
    format!("{}-{:08x}", std::process::id(), u32::from_le_bytes(bytes))
}

struct Worker<R> {
    owner: String,
    store: Store,
    runner: Arc<R>,
    wake: Arc<Notify>,
    settings: WorkerSettings,
}

impl<R: Runner> Worker<R> {
    async fn run(self, mut stopped: watch::Receiver<bool>) {
        while !*stopped.borrow() {
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let now = now_ms();
            let lease_until = now + self.settings.lease.as_millis() as i64;
            let wait = match self.store.claim_job(&self.owner, lease_until, now).await {
                Ok(Some(job)) => {
                    // Pass the baton: there may be more, and an idle worker
                    // looks; the one that finds nothing does not wake another.
                    self.wake.notify_one();
                    if self.execute(job).await {
                        continue;
                    }
                    // The database took the claim but not the result: it
                    // is failing (a full disk, say). Claiming again at once
                    // would spin; wait as when it is away.
                    self.settings.poll
                }
                Ok(None) => self.idle_wait().await,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot claim jobs; the database is unavailable");
                    self.settings.poll
                }
            };
            tokio::select! {
                _ = &mut woken => {}
                _ = tokio::time::sleep(wait) => {}
                _ = stopped.changed() => {}
            }
        }
    }

    /// Until the next job falls due, at most one poll interval. A job that is
    /// due but waits behind another in its line is woken by that one's end.
    async fn idle_wait(&self) -> Duration {
        let poll = self.settings.poll;
        match self.store.next_due().await {
            Ok(Some(due)) => {
                let ahead = due - now_ms();
                if ahead <= 0 {
                    poll
                } else {
                    Duration::from_millis(ahead as u64).min(poll)
                }
            }
            _ => poll,
        }
    }

    /// Run a claimed job and record its result; false when the result
    /// could not be recorded.
    async fn execute(&self, job: Job) -> bool {
        let (id, kind, attempts) = (job.id, job.kind.clone(), job.attempts);
        let span = tracing::info_span!("job", id, kind = %kind, attempt = attempts);
        tracing::debug!(parent: &span, worker = %self.owner, "job claimed");
        // Plugin log lines carry the job as their request id.
        let run = scoped(format!("job-{id}"), self.runner.run(job)).instrument(span);
        tokio::pin!(run);
        let mut beat = tokio::time::interval(self.settings.lease / 3);
        beat.tick().await;
        let (outcome, handled_by) = loop {
            tokio::select! {
                ran = &mut run => break ran,
                _ = beat.tick() => {
                    let until = now_ms() + self.settings.lease.as_millis() as i64;
                    match self.store.renew_lease(id, &self.owner, until).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(id, "lost the lease of a running job"),
                        Err(err) => tracing::warn!(id, error = %err, "cannot renew a lease"),
                    }
                }
            }
        };
        let recorded = self
            .record(id, &kind, attempts, outcome, handled_by.as_deref())
            .await;
        // The next job in this one's line is claimed by this worker's next round.
        match recorded {
            Ok(true) => true,
            Ok(false) => {
                tracing::warn!(
                    id,
                    kind = %kind,
                    "job was taken over before its result was recorded; the other run's result counts"
                );
                false
            }
            // The job stays running under our lease; once that expires it runs again.
            Err(err) => {
                tracing::error!(id, kind = %kind, error = %err, "cannot record a job's result");
                false
            }
        }
    }

    async fn record(
        &self,
        id: i64,
        kind: &str,
        attempts: i64,
        outcome: Outcome,
        handled_by: Option<&str>,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        match outcome {
            Outcome::Done { note } => {
                tracing::debug!(id, kind, note = note.as_deref().unwrap_or(""), "job done");
                self.store
                    .complete_job(id, &self.owner, note.as_deref(), handled_by, now)
                    .await
            }
            Outcome::Retry { error, after } => {
                match self.settings.retry.next_delay(attempts, after, jitter()) {
                    Some(delay) => {
                        tracing::info!(id, kind, attempts, ?delay, %error, "job failed; will retry");
                        let run_after = now + delay.as_millis() as i64;
                        self.store
                            .retry_job(id, &self.owner, &error, handled_by, run_after, now)
                            .await
                    }
                    None => {
                        tracing::warn!(id, kind, attempts, %error, "job failed on every attempt; dead-lettered");
                        let error = format!("gave up after {attempts} attempts: {error}");
                        self.store
                            .bury_job(id, &self.owner, &error, handled_by, now)
                            .await
                    }
                }
            }
            Outcome::Fail { error } => {
                tracing::warn!(id, kind, %error, "job failed for good; dead-lettered");
                self.store
                    .bury_job(id, &self.owner, &error, handled_by, now)
                    .await
            }
        }
    }
}
