//! What `/readyz` and `/metrics` report, measured in the background so that
//! a probe or a scrape never touches the database itself: a flood of them
//! can neither take connections from the intake nor cancel queries halfway.
//!
//! - **The write probe.** Every [`PROBE_EVERY`] one small write goes
//!   through the same path as every other write (the turn to write, a
//!   connection, a durable commit). The host is ready only while the last
//!   one succeeded and is recent: a full disk, a database that is away, or a
//!   writer stuck holding the turn all show within a few seconds.
//! - **The intake.** A batch of webhooks that could not be committed marks
//!   the host unready until a later one (or the probe) commits.
//! - **The queue snapshot.** The queue figures of `/metrics` are read every
//!   [`QUEUE_EVERY`] on a connection of their own and set into the gauges.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::store::Store;
use crate::time::now_ms;

/// How often the write probe runs.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);
/// How often the queue figures of `/metrics` are read.
pub const QUEUE_EVERY: Duration = Duration::from_secs(2);

/// The host's own view of whether it can store.
#[derive(Default)]
pub struct Monitor {
    /// When (ms) the last write probe committed; 0: none yet.
    last_write_ok: AtomicI64,
    /// The last failed probe, when it is newer than the last success.
    last_write_error: Mutex<Option<String>>,
    /// When (ms) the intake last failed to commit a batch and last committed one.
    intake_failed_at: AtomicI64,
    intake_committed_at: AtomicI64,
    intake_error: Mutex<Option<String>>,
}

/// What `/readyz` says.
#[derive(Clone, Debug, Serialize)]
pub struct Readiness {
    pub ready: bool,
    /// `ok`, or why the host cannot store.
    pub database: String,
    pub plugins: usize,
}

impl Monitor {
    /// A batch of webhooks was committed.
    pub fn intake_committed(&self) {
        self.intake_committed_at.store(now_ms(), Ordering::Relaxed);
    }

    /// A batch of webhooks could not be committed (the database failing, not
    /// one row refused).
    pub fn intake_failed(&self, error: &str) {
        if let Ok(mut e) = self.intake_error.lock() {
            *e = Some(error.to_owned());
        }
        self.intake_failed_at.store(now_ms(), Ordering::Relaxed);
    }

    fn probe_result(&self, result: Result<(), String>) {
        match result {
            Ok(()) => {
                self.last_write_ok.store(now_ms(), Ordering::Relaxed);
                if let Ok(mut e) = self.last_write_error.lock() {
                    *e = None;
                }
            }
            Err(error) => {
                if let Ok(mut e) = self.last_write_error.lock() {
                    *e = Some(error);
                }
            }
        }
    }

    /// Whether the host can store now, as of `now` (ms). `stale` is how old
    /// the last successful write may be; `store` tells how long the current
    /// writer has held its turn.
    pub fn readiness(&self, store: &Store, plugins: usize, now: i64, stale: Duration) -> Readiness {
        let stale_ms = stale.as_millis() as i64;
        let last_ok = self.last_write_ok.load(Ordering::Relaxed);
        let intake_failed = self.intake_failed_at.load(Ordering::Relaxed);
        let database = if let Some(since) = store.write_turn_held_since()
            && now - since > stale_ms
        {
            format!("a writer has held its turn for {} ms", now - since)
        } else if last_ok == 0 {
            self.last_write_error
                .lock()
                .ok()
                .and_then(|e| e.clone())
                .unwrap_or_else(|| "no write has been tried yet".into())
        } else if now - last_ok > stale_ms {
            let why = self.last_write_error.lock().ok().and_then(|e| e.clone());
            format!(
                "no write has committed for {} ms{}",
                now - last_ok,
                why.map(|w| format!(": {w}")).unwrap_or_default()
            )
        } else if intake_failed > last_ok.max(self.intake_committed_at.load(Ordering::Relaxed)) {
            let why = self.intake_error.lock().ok().and_then(|e| e.clone());
            format!(
                "webhooks could not be committed: {}",
                why.unwrap_or_default()
            )
        } else {
            "ok".into()
        };
        Readiness {
            ready: database == "ok" && plugins > 0,
            database,
            plugins,
        }
    }

    /// One write probe and one queue snapshot, now: a host that answers its
    /// first request knows whether it can store.
    pub async fn measure(&self, store: &Store, metrics: &Metrics) {
        self.probe(store).await;
        self.snapshot(store, metrics).await;
    }

    async fn probe(&self, store: &Store) {
        // Bounded inside: every wait of the write path is.
        let result = store.heartbeat(now_ms()).await.map_err(|e| e.to_string());
        if let Err(error) = &result {
            tracing::warn!(%error, "the write probe failed; the host reports not ready");
        }
        self.probe_result(result);
    }

    async fn snapshot(&self, store: &Store, metrics: &Metrics) {
        let now = now_ms();
        match store.queue_stats_snapshot(now - 3600 * 1000).await {
            Ok(stats) => metrics.set_queue(&stats, now),
            Err(error) => tracing::warn!(%error, "cannot read the queue figures for /metrics"),
        }
    }

    /// Run the write probe and the queue snapshot until `stopped`.
    pub async fn run(&self, store: Store, metrics: &Metrics, mut stopped: watch::Receiver<bool>) {
        let mut probe = tokio::time::interval(PROBE_EVERY);
        let mut queue = tokio::time::interval(QUEUE_EVERY);
        for tick in [&mut probe, &mut queue] {
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        while !*stopped.borrow() {
            tokio::select! {
                _ = probe.tick() => self.probe(&store).await,
                _ = queue.tick() => self.snapshot(&store, metrics).await,
                _ = stopped.changed() => {}
            }
        }
    }
}
