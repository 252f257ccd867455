//! The worker loop: claim, run under a renewed lease, record.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::Runner;
use super::policy::RetryPolicy;
use crate::store::Store;
use crate::time::now_ms;

/// How the workers run.
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// Workers of this process; each runs a batch at a time.
    pub workers: usize,
    /// The most jobs one worker claims and writes together.
    pub batch: usize,
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
            batch: 32,
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
            let claimed = self
                .store
                .claim_jobs(&self.owner, lease_until, now, self.settings.batch.max(1))
                .await;
            let wait = match claimed {
                Ok(jobs) if !jobs.is_empty() => {
                    // Pass the baton: there may be more, and an idle worker
                    // looks; the one that finds nothing does not wake another.
                    self.wake.notify_one();
                    let done = super::batch::run(
                        &self.store,
                        &self.runner,
                        &self.owner,
                        self.settings.lease,
                        &self.settings.retry,
                        jobs,
                    )
                    .await;
                    if !done.failed {
                        continue;
                    }
                    // The database took the claim but not the results, or
                    // failed under some of the jobs: it is failing (a full
                    // disk, an overload). Claiming again at once would spin
                    // or add to its load; wait as when it is away.
                    self.settings.poll
                }
                Ok(_) => self.idle_wait().await,
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
}
