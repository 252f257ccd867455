//! The workers' batches, through the queue's public interface with a runner
//! of the test's own: a batch's jobs are written in one transaction, and a
//! job whose own writes fail is undone and retried alone while the rest of
//! its batch commits. On the run's database (SQLite, or PostgreSQL when
//! `TRACKBRIDGE_TEST_POSTGRES` is set), where savepoints behave differently
//! after an error.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::ensure;
use sqlx::AnyConnection;
use tokio::sync::Notify;
use trackbridge_e2e::TestDatabase;
use trackbridge_host::queue::{Outcome, Runner, WorkerSettings};
use trackbridge_host::store::{Job, NewJob, Store};

/// Each job's effect is a row naming it; the job `fails` also writes a row
/// the database refuses (a NULL into a NOT NULL column) after its good one.
struct Recording {
    fails: i64,
    committed: Mutex<Vec<i64>>,
    prepared_together: Mutex<Vec<usize>>,
    in_prepare: std::sync::atomic::AtomicUsize,
}

impl Runner for Recording {
    type Prepared = i64;
    type Committed = i64;

    async fn prepare(&self, job: Job) -> i64 {
        use std::sync::atomic::Ordering;
        let now = self.in_prepare.fetch_add(1, Ordering::SeqCst) + 1;
        self.prepared_together.lock().unwrap().push(now);
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.in_prepare.fetch_sub(1, Ordering::SeqCst);
        job.id
    }

    async fn apply(&self, tx: &mut AnyConnection, id: i64) -> Result<(Outcome, i64), Outcome> {
        let write = |value: Option<i64>| {
            sqlx::query("INSERT INTO batch_effects (job) VALUES ($1)").bind(value)
        };
        let failed = |e: sqlx::Error| Outcome::Retry {
            error: e.to_string(),
            after: None,
        };
        write(Some(id)).execute(&mut *tx).await.map_err(failed)?;
        if id == self.fails {
            write(None).execute(&mut *tx).await.map_err(failed)?;
        }
        Ok((Outcome::note(format!("effect of {id}")), id))
    }

    fn committed(&self, effects: Vec<i64>) {
        self.committed.lock().unwrap().extend(effects);
    }

    fn write_order(_: &i64) -> String {
        String::new()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_writes_fail_fails_alone_and_its_batch_commits() -> anyhow::Result<()> {
    let database = TestDatabase::new().await?;
    let store = Store::connect(database.url()).await?;
    sqlx::query("CREATE TABLE batch_effects (job BIGINT NOT NULL)")
        .execute(store.pool())
        .await?;
    let now = trackbridge_host::time::now_ms();
    let jobs: Vec<NewJob> = (0..8)
        .map(|i| NewJob {
            kind: "webhook",
            dedup_key: Some(format!("batch-{i}")),
            event_time: Some(now),
            payload: "{}".into(),
            ..NewJob::default()
        })
        .collect();
    let ids: Vec<i64> = store
        .enqueue_webhooks(&jobs, now)
        .await?
        .into_iter()
        .map(|e| match e {
            trackbridge_host::store::Enqueued::Stored(id) => id,
            other => panic!("{other:?}"),
        })
        .collect();
    let fails = ids[3];
    let runner = Arc::new(Recording {
        fails,
        committed: Mutex::default(),
        prepared_together: Mutex::default(),
        in_prepare: Default::default(),
    });
    // One worker, one batch for all eight; a retry far away.
    let settings = WorkerSettings {
        workers: 1,
        batch: 32,
        retry: trackbridge_host::queue::RetryPolicy {
            schedule: vec![Duration::from_secs(3600)],
            max_retry_after: Duration::from_secs(3600),
        },
        ..WorkerSettings::default()
    };
    let wake = Arc::new(Notify::new());
    let workers =
        trackbridge_host::queue::start(store.clone(), runner.clone(), wake.clone(), settings);
    wake.notify_one();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let done = store
            .jobs(&trackbridge_host::store::JobFilter {
                state: Some("done".into()),
                limit: 100,
                ..Default::default()
            })
            .await?;
        if done.len() == 7 {
            break;
        }
        ensure!(tokio::time::Instant::now() < deadline, "done: {done:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    workers
        .shutdown(tokio::time::Instant::now() + Duration::from_secs(5))
        .await;

    let failed = store.job(fails).await?;
    ensure!(
        failed.state == "pending" && failed.last_error.as_deref().is_some_and(|e| !e.is_empty()),
        "the failing job waits for its retry with its error: {failed:?}"
    );
    let effects: Vec<i64> = sqlx::query_scalar("SELECT job FROM batch_effects ORDER BY job")
        .fetch_all(store.pool())
        .await?;
    let others: Vec<i64> = ids.iter().copied().filter(|id| *id != fails).collect();
    ensure!(
        effects == others,
        "its good write was undone with its bad one: {effects:?}"
    );
    for id in &others {
        let job = store.job(*id).await?;
        ensure!(
            job.note.as_deref() == Some(format!("effect of {id}").as_str()),
            "{job:?}"
        );
    }
    let mut committed = runner.committed.lock().unwrap().clone();
    committed.sort();
    ensure!(committed == others, "committed effects: {committed:?}");
    let together = runner
        .prepared_together
        .lock()
        .unwrap()
        .iter()
        .copied()
        .max();
    ensure!(
        together == Some(8),
        "the batch's jobs were prepared side by side: {together:?}"
    );
    Ok(())
}

/// The database fails under the first run of every job (as a statement
/// timeout would); later runs go through.
struct DatabaseFailsOnce {
    runs: std::sync::atomic::AtomicUsize,
}

impl Runner for DatabaseFailsOnce {
    type Prepared = i64;
    type Committed = ();

    async fn prepare(&self, job: Job) -> i64 {
        job.id
    }

    async fn apply(&self, _: &mut AnyConnection, id: i64) -> Result<(Outcome, ()), Outcome> {
        use std::sync::atomic::Ordering;
        if self.runs.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(Outcome::Deferred {
                error: "canceling statement due to statement timeout".into(),
            });
        }
        Ok((Outcome::note(format!("effect of {id}")), ()))
    }

    fn committed(&self, _: Vec<()>) {}

    fn write_order(_: &i64) -> String {
        String::new()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_the_database_failed_under_runs_again_shortly_its_attempt_not_counted()
-> anyhow::Result<()> {
    let database = TestDatabase::new().await?;
    let store = Store::connect(database.url()).await?;
    let now = trackbridge_host::time::now_ms();
    let job = NewJob {
        kind: "webhook",
        dedup_key: Some("deferred".into()),
        event_time: Some(now),
        payload: "{}".into(),
        ..NewJob::default()
    };
    let id = match store.enqueue_webhooks(&[job], now).await?.pop() {
        Some(trackbridge_host::store::Enqueued::Stored(id)) => id,
        other => anyhow::bail!("{other:?}"),
    };
    // A retry of the schedule would come after an hour.
    let settings = WorkerSettings {
        workers: 1,
        retry: trackbridge_host::queue::RetryPolicy {
            schedule: vec![Duration::from_secs(3600)],
            max_retry_after: Duration::from_secs(3600),
        },
        ..WorkerSettings::default()
    };
    let runner = Arc::new(DatabaseFailsOnce {
        runs: Default::default(),
    });
    let wake = Arc::new(Notify::new());
    let workers = trackbridge_host::queue::start(store.clone(), runner, wake.clone(), settings);
    wake.notify_one();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let job = loop {
        let job = store.job(id).await?;
        if job.state == "done" {
            break job;
        }
        ensure!(tokio::time::Instant::now() < deadline, "{job:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    workers
        .shutdown(tokio::time::Instant::now() + Duration::from_secs(5))
        .await;
    ensure!(
        job.attempts == 1,
        "only the run that went through counts: {job:?}"
    );
    ensure!(
        job.last_error.as_deref() == Some("canceling statement due to statement timeout"),
        "the deferral is on record: {job:?}"
    );
    Ok(())
}

const HOST_PROCESS: &str = env!("CARGO_BIN_EXE_host-process");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_working_batches_of_one_integration_apply_each_delivery_once_newest_last()
-> anyhow::Result<()> {
    use futures::StreamExt as _;
    use serde_json::json;
    use trackbridge_e2e::jira_sim::{JiraAuth, JiraSim};
    use trackbridge_e2e::process::HostProcess;
    use trackbridge_e2e::scenario::{
        BOB_EMAIL, JiraScenario, deliver, http_client, jobs, wait_queue_idle,
    };
    const ISSUES: usize = 10;
    const PER_ISSUE: usize = 30;
    // Several processes need PostgreSQL, whatever database the run uses.
    let database = TestDatabase::postgres().await?;
    let jira = JiraSim::start(JiraAuth::basic("bot@example.com", "tok")).await?;
    let settings = [("TB_JOB_POLL_SECS", "0.05".to_owned())];
    let a = HostProcess::start(HOST_PROCESS, database.url(), &settings).await?;
    let b = HostProcess::start(HOST_PROCESS, database.url(), &settings).await?;
    let api = a.api().clone();
    let scenario = JiraScenario::setup(&api, &jira).await?;
    let mut groups = Vec::new();
    for i in 0..ISSUES {
        groups.push(scenario.linked_group(&api, &format!("BAT-{i}")).await?);
    }
    // Delivery n is about issue n % ISSUES, one millisecond after n - 1,
    // alternately assigning bob and nobody: the newest of each issue is its
    // last, which assigns bob (PER_ISSUE is even, the last is odd).
    let base = trackbridge_host::time::now_ms() - 10_000;
    let targets = [a.base_url().to_owned(), b.base_url().to_owned()];
    let http = http_client();
    let answers: Vec<anyhow::Result<u16>> = futures::stream::iter(0..ISSUES * PER_ISSUE)
        .map(|n| {
            let key = format!("BAT-{}", n % ISSUES);
            let round = n / ISSUES;
            let email = (round % 2 == 1).then_some(BOB_EMAIL);
            let event = scenario.assignee_event(&key, email, base + n as i64);
            let (http, target) = (http.clone(), targets[n % 2].clone());
            async move {
                Ok(deliver(&http, &target, &event, &format!("bat-{n}"))
                    .await?
                    .status)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for answer in answers {
        ensure!(answer? == 200, "every delivery acknowledged");
    }
    wait_queue_idle(&api, Duration::from_secs(60)).await?;
    for group in &groups {
        let assignee = api.group(*group).await?["assignee"].clone();
        ensure!(
            assignee == json!({"type": "user", "id": scenario.bob}),
            "group {group} ends with its newest event: {assignee}"
        );
    }
    let stored = jobs(&api, "kind=webhook").await?;
    ensure!(stored.len() == ISSUES * PER_ISSUE, "{} jobs", stored.len());
    ensure!(
        stored
            .iter()
            .all(|j| j["state"] == "done" && j["attempts"] == 1),
        "each delivery processed exactly once: {:?}",
        stored
            .iter()
            .filter(|j| j["attempts"] != 1)
            .collect::<Vec<_>>()
    );
    let notes: Vec<&str> = stored.iter().filter_map(|j| j["note"].as_str()).collect();
    ensure!(
        notes.iter().all(|n| n.starts_with("1 event(s) applied, 0")
            || n.starts_with("0 event(s) applied, 1 older")),
        "each event applied or found older, never both: {notes:?}"
    );
    let by_both = ["verified_by", "handled_by"]
        .iter()
        .all(|f| stored.iter().all(|j| j[*f].is_string()));
    ensure!(by_both, "versions recorded");
    drop(b);
    Ok(())
}
