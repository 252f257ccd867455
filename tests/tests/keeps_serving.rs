//! The host keeps serving on a bad day: floods of unauthenticated requests,
//! clients that give up mid-request, a full disk and misbehaving guests slow
//! down only what they touch, never stop the host from storing, and never
//! leave it broken once they are over.
//!
//! Each test runs on the run's database (SQLite, or PostgreSQL when
//! `TRACKBRIDGE_TEST_POSTGRES` is set). Every load is bounded in count and
//! time and stays on loopback.

use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use futures::StreamExt as _;
use serde_json::json;
use trackbridge_e2e::jira_sim::{JiraAuth, JiraSim};
use trackbridge_e2e::process::HostProcess;
use trackbridge_e2e::scenario::{BOB_EMAIL, JiraScenario, deliver, http_client, wait_queue_idle};
use trackbridge_e2e::test_plugins::{plugins_dir_with, test_plugin};
use trackbridge_e2e::{ApiClient, Fault, TestDatabase};

fn jira_auth() -> JiraAuth {
    JiraAuth::basic("bot@example.com", "tok")
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `n` processed deliveries of `integration`, written straight into the
/// database: the history a busy host has, which every queue scan reads.
async fn seed_done_webhooks(url: &str, integration: i64, n: i64) -> anyhow::Result<()> {
    use sqlx::Connection as _;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await?;
    let now = now_ms();
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
         INSERT INTO jobs (kind, integration_id, dedup_key, payload, state, attempts, run_after, \
                           created_at, finished_at, note) \
         SELECT 'webhook', $2, 'seed-' || i, '{}', 'done', 1, $3, $3, $3, 'seeded' FROM n",
    )
    .bind(n)
    .bind(integration)
    .bind(now)
    .execute(&mut conn)
    .await
    .context("seeding done jobs")?;
    Ok(())
}

/// `count` GETs of `path`, `concurrency` at a time, each abandoned by its
/// client after `patience` (as `curl -m` does). Returns how many were answered.
async fn flood(
    base: String,
    path: &str,
    count: usize,
    concurrency: usize,
    patience: Duration,
) -> usize {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(patience)
        .pool_max_idle_per_host(0)
        .build()
        .unwrap_or_default();
    futures::stream::iter(0..count)
        .map(|_| {
            let request = http.get(format!("{base}{path}"));
            async move { request.send().await.is_ok() }
        })
        .buffer_unordered(concurrency)
        .filter(|answered| std::future::ready(*answered))
        .count()
        .await
}

/// An admin write, a stored and processed webhook, and readiness, each
/// within `within`: the host stores again.
async fn assert_writes_work(
    api: &ApiClient,
    base_url: &str,
    scenario: &JiraScenario,
    key: &str,
    within: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    tokio::time::timeout(within, api.create_organization("After the flood"))
        .await
        .context("an admin write never completed")??;
    let took = started.elapsed();
    ensure!(took < within, "an admin write took {took:?}");

    let group = scenario.linked_group(api, key).await?;
    let event = scenario.assignee_event(key, Some(BOB_EMAIL), now_ms());
    let answer = tokio::time::timeout(
        within,
        deliver(&http_client(), base_url, &event, &format!("after-{key}")),
    )
    .await
    .context("a webhook got no answer")??;
    ensure!(answer.status == 200, "{} {}", answer.status, answer.text());
    wait_queue_idle(api, within).await?;
    let assignee = api.group(group).await?["assignee"].clone();
    ensure!(
        assignee == json!({"type": "user", "id": scenario.bob}),
        "{assignee}"
    );

    let ready = api.without_token().get("/readyz").await?;
    ensure!(
        ready.status == 200,
        "/readyz: {} {}",
        ready.status,
        ready.body
    );
    Ok(())
}

/// The host as a process of its own, as a scraper and a tracker meet it.
const HOST_PROCESS: &str = env!("CARGO_BIN_EXE_host-process");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metrics_flood_during_webhook_traffic_leaves_every_write_working() -> anyhow::Result<()> {
    let jira = JiraSim::start(jira_auth()).await?;
    let database = TestDatabase::new().await?;
    let host = HostProcess::start(HOST_PROCESS, database.url(), &[]).await?;
    let api = host.api();
    let scenario = JiraScenario::setup(api, &jira).await?;
    seed_done_webhooks(database.url(), scenario.integration, 10_000).await?;
    for i in 0..20 {
        scenario.linked_group(api, &format!("FLOOD-{i}")).await?;
    }
    let base = host.base_url().to_owned();

    // The hang the flood used to cause was a race, lost about every other
    // time: three rounds.
    for round in 0..3 {
        // The machine is as busy as 500 scraping processes make it: the host's
        // tasks wait for a core between being woken and running.
        let spinning = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let spinners: Vec<_> = (0..6)
            .map(|_| {
                let spinning = spinning.clone();
                std::thread::spawn(move || {
                    while spinning.load(std::sync::atomic::Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        // 8,000 scrapes, 500 at a time, each client patient for 30 s.
        let scrapes = tokio::spawn(flood(
            base.clone(),
            "/metrics",
            8000,
            500,
            Duration::from_secs(30),
        ));
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Webhooks while the scrapes run: each must be answered, stored (200) or
        // refused for a retry (503), within a bound — never left hanging.
        let http = http_client();
        let answers: Vec<anyhow::Result<u16>> = futures::stream::iter(0..100)
            .map(|i| {
                let event = scenario.assignee_event(
                    &format!("FLOOD-{}", i % 20),
                    Some(BOB_EMAIL),
                    now_ms(),
                );
                let (http, base) = (http.clone(), base.clone());
                async move {
                    let answer = tokio::time::timeout(
                        Duration::from_secs(20),
                        deliver(&http, &base, &event, &format!("flood-{round}-{i}")),
                    )
                    .await
                    .context("no answer within 20 s")??;
                    Ok(answer.status)
                }
            })
            .buffer_unordered(10)
            .collect()
            .await;
        let answered = scrapes.await?;
        spinning.store(false, std::sync::atomic::Ordering::Relaxed);
        for spinner in spinners {
            let _ = spinner.join();
        }
        let mut statuses = Vec::new();
        for answer in answers {
            statuses.push(answer.with_context(|| host.last_logs(30))?);
        }
        ensure!(
            statuses.iter().all(|s| *s == 200),
            "every webhook is stored during the flood: {statuses:?}"
        );
        ensure!(answered == 8000, "{answered} of 8000 scrapes answered");
    }
    assert_writes_work(api, &base, &scenario, "AFTER-1", Duration::from_secs(10))
        .await
        .with_context(|| host.last_logs(30))?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_guests_slow_nothing_but_their_own_calls() -> anyhow::Result<()> {
    // The built-in plugins and `faulty`, which misbehaves on request.
    let plugins = tokio::task::spawn_blocking(|| {
        plugins_dir_with(&[test_plugin("trackbridge-test-plugin-faulty")])
    })
    .await??;
    let database = TestDatabase::new().await?;
    let host = HostProcess::start(
        HOST_PROCESS,
        database.url(),
        &[
            ("TB_PLUGINS_DIR", plugins.path().display().to_string()),
            ("TB_PLUGIN_TIMEOUT_SECS", "3".into()),
        ],
    )
    .await?;
    let base = host.base_url().to_owned();
    // Two calls that compute forever, one that allocates without end, one
    // that panics — all at once, the first three until their 3 s budget ends them.
    let misbehaving: Vec<_> = ["loop", "loop", "oom", "panic"]
        .into_iter()
        .map(|body| {
            let http = http_client();
            let url = format!("{base}/extensions/faulty/hook/");
            tokio::spawn(async move {
                let response = http.post(url).body(body).send().await?;
                anyhow::Ok(response.status().as_u16())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Meanwhile, everything else answers promptly: liveness, an admin read,
    // and another plugin's webhook (an unsigned Jira delivery, which the
    // Jira plugin refuses).
    let http = http_client();
    let api = host.api();
    let mut latencies = Vec::new();
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        let started = Instant::now();
        let health = http.get(format!("{base}/healthz")).send().await?;
        ensure!(health.status() == 200);
        latencies.push(("/healthz", started.elapsed()));

        let started = Instant::now();
        api.get("/api/plugins").await?.expect(200)?;
        latencies.push(("GET /api/plugins", started.elapsed()));

        let started = Instant::now();
        let jira = http
            .post(format!("{base}/extensions/jira/issue-updated/"))
            .header("content-type", "application/json")
            .body(r#"{"webhookEvent": "jira:issue_updated"}"#)
            .send()
            .await?;
        ensure!(
            jira.status().is_client_error(),
            "jira answered {}",
            jira.status()
        );
        latencies.push(("a Jira webhook", started.elapsed()));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (what, took) = latencies
        .iter()
        .max_by_key(|(_, d)| *d)
        .copied()
        .context("probes ran")?;
    ensure!(
        took < Duration::from_millis(300),
        "{what} took {took:?} while guests misbehaved ({} probes)",
        latencies.len()
    );

    for call in misbehaving {
        let status = call.await??;
        ensure!(status == 503, "a misbehaving call answered {status}");
    }
    Ok(())
}

/// A host process with these HTTP limits (milliseconds), on a database of its own.
async fn host_with_http_limits(
    header_ms: u64,
    body_ms: u64,
    idle_ms: u64,
    max_connections: usize,
) -> anyhow::Result<(HostProcess, TestDatabase)> {
    let database = TestDatabase::new().await?;
    let host = HostProcess::start(
        HOST_PROCESS,
        database.url(),
        &[
            ("TB_HTTP_HEADER_TIMEOUT_MS", header_ms.to_string()),
            ("TB_HTTP_BODY_TIMEOUT_MS", body_ms.to_string()),
            ("TB_HTTP_IDLE_TIMEOUT_MS", idle_ms.to_string()),
            ("TB_MAX_CONNECTIONS", max_connections.to_string()),
        ],
    )
    .await?;
    Ok((host, database))
}

async fn connect(host: &HostProcess) -> anyhow::Result<tokio::net::TcpStream> {
    let addr = host.base_url().trim_start_matches("http://").to_owned();
    Ok(tokio::net::TcpStream::connect(addr).await?)
}

/// Everything the server sends until it closes the connection, at most `within`.
async fn read_to_close(
    stream: &mut tokio::net::TcpStream,
    within: Duration,
) -> anyhow::Result<String> {
    use tokio::io::AsyncReadExt as _;
    let mut got = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut got))
        .await
        .with_context(|| {
            format!(
                "the connection was still open after {within:?}: {:?}",
                String::from_utf8_lossy(&got)
            )
        })??;
    Ok(String::from_utf8_lossy(&got).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_slow_bodies_and_idle_connections_are_answered_and_closed()
-> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt as _;
    let (host, _db) = host_with_http_limits(500, 500, 500, 100).await?;

    // Headers that never finish: 408, then closed.
    let mut slow = connect(&host).await?;
    slow.write_all(b"POST /extensions/jira/issue-updated/ HTTP/1.1\r\nHost: x\r\n")
        .await?;
    let answer = read_to_close(&mut slow, Duration::from_secs(5)).await?;
    ensure!(
        answer.starts_with("HTTP/1.1 408"),
        "slow headers: {answer:?}"
    );
    ensure!(answer.contains(r#"{"error":"#), "{answer:?}");

    // A body that stops halfway, on a webhook route and on the admin API.
    for (path, auth) in [
        ("/extensions/jira/issue-updated/", String::new()),
        (
            "/api/organizations",
            format!("authorization: Bearer {}\r\n", trackbridge_e2e::ADMIN_TOKEN),
        ),
    ] {
        let mut slow = connect(&host).await?;
        slow.write_all(
            format!("POST {path} HTTP/1.1\r\nHost: x\r\n{auth}content-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"name\":")
                .as_bytes(),
        )
        .await?;
        let answer = read_to_close(&mut slow, Duration::from_secs(5)).await?;
        ensure!(
            answer.starts_with("HTTP/1.1 408"),
            "slow body on {path}: {answer:?}"
        );
        ensure!(answer.contains("body did not arrive"), "{answer:?}");
    }

    // A body cut short by the client is bad input, not "too large".
    let mut cut = connect(&host).await?;
    cut.write_all(b"POST /extensions/jira/issue-updated/ HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"a\":").await?;
    cut.shutdown().await?;
    let answer = read_to_close(&mut cut, Duration::from_secs(5)).await?;
    ensure!(
        answer.starts_with("HTTP/1.1 400"),
        "a truncated body: {answer:?}"
    );

    // A kept-alive connection that says nothing more is closed.
    let mut idle = connect(&host).await?;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await?;
    let answer = read_to_close(&mut idle, Duration::from_secs(5)).await?;
    ensure!(answer.starts_with("HTTP/1.1 200"), "idle: {answer:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_get_503_and_the_host_serves_again_once_they_close()
-> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt as _;
    let (host, _db) = host_with_http_limits(10_000, 10_000, 30_000, 20).await?;
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(connect(&host).await?);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut over = connect(&host).await?;
    over.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await?;
    let answer = read_to_close(&mut over, Duration::from_secs(5)).await?;
    ensure!(
        answer.starts_with("HTTP/1.1 503"),
        "over the cap: {answer:?}"
    );
    ensure!(
        answer.to_ascii_lowercase().contains("retry-after: 1"),
        "{answer:?}"
    );

    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let health = http_client()
        .get(format!("{}/healthz", host.base_url()))
        .send()
        .await?;
    ensure!(health.status() == 200, "{}", health.status());
    let metrics = host.api().metrics().await?;
    ensure!(
        metrics.contains("trackbridge_http_connections_refused_total 1"),
        "the refusal is counted: {metrics}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_accepting_lets_requests_finish_hands_jobs_back_and_exits()
-> anyhow::Result<()> {
    let jira = JiraSim::start(jira_auth()).await?;
    let database = TestDatabase::new().await?;
    let mut host = HostProcess::start(
        HOST_PROCESS,
        database.url(),
        &[
            ("TB_SHUTDOWN_GRACE_SECS", "2".into()),
            ("TB_PLUGIN_TIMEOUT_SECS", "30".into()),
        ],
    )
    .await?;
    let api = host.api().clone();
    let scenario = JiraScenario::setup(&api, &jira).await?;
    // SEN-5 is an issue the simulated Jira has.
    let group = scenario.linked_group(&api, "SEN-5").await?;

    // A tracker call that hangs: its job is running when the signal comes.
    jira.recorder().inject(
        Fault::hang(1, Duration::from_secs(20)).only("POST", "/rest/api/2/issue/SEN-5/transitions"),
    );
    api.update_group(group, &json!({"status": "resolved"}))
        .await?
        .expect(200)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while trackbridge_e2e::scenario::jobs(&api, "kind=sync_status&state=running")
        .await?
        .is_empty()
    {
        ensure!(Instant::now() < deadline, "the sync job never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // And a request in flight: an installation whose check at Jira takes a second.
    jira.recorder()
        .inject(Fault::hang(1, Duration::from_secs(1)).only("GET", "/rest/api/2/serverInfo"));
    let org = scenario.org;
    let jira_url = jira.base_url();
    let install = tokio::spawn({
        let api = api.clone();
        async move {
            api.post(
                &format!("/api/organizations/{org}/integrations"),
                &json!({"provider": "jira", "input": {
                    "base_url": jira_url,
                    "credential": {"type": "api_token", "email": "bot@example.com", "api_token": "tok"},
                    "webhook_secret": "another"}}),
            )
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let signalled = Instant::now();
    host.terminate()?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    ensure!(
        connect(&host).await.is_err(),
        "no new connection is accepted once stopping"
    );
    let answered = install.await??;
    ensure!(
        answered.status == 201 || answered.status == 502,
        "the request in flight got its answer: {} {}",
        answered.status,
        answered.text
    );
    let status = host.wait_exit(Duration::from_secs(10)).await?;
    ensure!(status.success(), "a clean exit: {status}");
    ensure!(
        signalled.elapsed() < Duration::from_secs(6),
        "the 2 s grace bounds the stop: {:?}",
        signalled.elapsed()
    );

    // The job cut at the end of the grace is back in the queue, due now.
    use sqlx::Connection as _;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(database.url()).await?;
    let states: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT state, lease_owner FROM jobs WHERE kind = 'sync_status'")
            .fetch_all(&mut conn)
            .await?;
    ensure!(
        states == [("pending".to_owned(), None)],
        "handed back: {states:?}"
    );
    Ok(())
}

/// Holds the database locked from outside the host until dropped: SQLite's
/// write lock, or PostgreSQL's table locks on what webhooks and admin writes
/// touch.
struct OutsideLock {
    conn: Option<sqlx::AnyConnection>,
}

impl OutsideLock {
    async fn take(database: &TestDatabase) -> anyhow::Result<OutsideLock> {
        use sqlx::Connection as _;
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(database.url()).await?;
        if database.is_postgres() {
            sqlx::query("BEGIN").execute(&mut conn).await?;
            sqlx::query("LOCK TABLE jobs, organizations IN ACCESS EXCLUSIVE MODE")
                .execute(&mut conn)
                .await?;
        } else {
            sqlx::query("BEGIN EXCLUSIVE").execute(&mut conn).await?;
        }
        Ok(OutsideLock { conn: Some(conn) })
    }

    async fn release(mut self) -> anyhow::Result<()> {
        if let Some(mut conn) = self.conn.take() {
            sqlx::query("ROLLBACK").execute(&mut conn).await?;
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_gets_bounded_503s_and_nothing_waits_on() -> anyhow::Result<()> {
    let jira = JiraSim::start(jira_auth()).await?;
    let database = TestDatabase::new().await?;
    let host = HostProcess::start(HOST_PROCESS, database.url(), &[]).await?;
    let api = host.api().clone();
    let scenario = JiraScenario::setup(&api, &jira).await?;
    scenario.linked_group(&api, "LOCK-1").await?;
    let base = host.base_url().to_owned();

    let lock = OutsideLock::take(&database).await?;
    // Thirty writers at once while the lock is held for 20 s: each is answered
    // well before the lock goes, with 503 and Retry-After.
    let bound = Duration::from_secs(15);
    let started = Instant::now();
    let mut writers = Vec::new();
    for i in 0..15 {
        let (http, base) = (http_client(), base.clone());
        let event = scenario.assignee_event("LOCK-1", Some(BOB_EMAIL), now_ms());
        writers.push(tokio::spawn(async move {
            let answer = deliver(&http, &base, &event, &format!("lock-{i}")).await?;
            let retry_after = answer.header("retry-after").is_some();
            anyhow::Ok(("webhook", answer.status, retry_after, started.elapsed()))
        }));
        let api = api.clone();
        writers.push(tokio::spawn(async move {
            let answer = api
                .post(
                    "/api/organizations",
                    &json!({"name": format!("Locked {i}")}),
                )
                .await?;
            anyhow::Ok(("admin write", answer.status, true, started.elapsed()))
        }));
    }
    let mut answers = Vec::new();
    for writer in writers {
        answers.push(
            tokio::time::timeout(Duration::from_secs(25), writer)
                .await
                .context("a writer got no answer in 25 s")???,
        );
    }
    lock.release().await?;
    for (what, status, retry_after, took) in &answers {
        ensure!(
            *status == 503 && *retry_after && *took < bound,
            "{what}: {status} after {took:?} (retry-after: {retry_after}); all: {answers:?}"
        );
    }
    assert_writes_work(&api, &base, &scenario, "LOCK-2", Duration::from_secs(15)).await?;
    Ok(())
}

/// A tmpfs of `mib` MiB, unmounted when dropped (the test runs as root, as CI does).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(mib: u32) -> anyhow::Result<Tmpfs> {
        let dir = tempfile::tempdir()?;
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .context("running mount")?;
        ensure!(
            status.success(),
            "mounting a tmpfs failed ({status}); this test fills a disk of its own and needs root"
        );
        Ok(Tmpfs { dir })
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Write zeros into `name` until the file system is full.
    fn fill(&self, name: &str) -> anyhow::Result<()> {
        use std::io::Write as _;
        let mut file = std::fs::File::create(self.path().join(name))?;
        let chunk = vec![0u8; 1 << 16];
        loop {
            if let Err(err) = file.write_all(&chunk).and_then(|()| file.sync_all()) {
                ensure!(err.raw_os_error() == Some(28), "filling the disk: {err}");
                return Ok(());
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_gets_503s_spins_nothing_and_leaves_nothing_broken_once_freed()
-> anyhow::Result<()> {
    let jira = JiraSim::start(jira_auth()).await?;
    let disk = Tmpfs::mount(20)?;
    let url = format!(
        "sqlite://{}?mode=rwc",
        disk.path().join("trackbridge.db").display()
    );
    let host = HostProcess::start(
        HOST_PROCESS,
        &url,
        &[
            ("TB_RETRY_SCHEDULE", vec!["0.5"; 60].join(",")),
            // A result that could not be recorded is retried once its lease ends.
            ("TB_JOB_LEASE_SECS", "2".into()),
        ],
    )
    .await?;
    let api = host.api().clone();
    let base = host.base_url().to_owned();
    let scenario = JiraScenario::setup(&api, &jira).await?;
    let group = scenario.linked_group(&api, "SEN-5").await?;
    // Work that keeps a worker busy while the disk is full: a tracker call
    // that fails, and is retried every 500 ms.
    jira.recorder()
        .inject(Fault::status(1000, 500).only("POST", "/rest/api/2/issue/SEN-5/transitions"));
    api.update_group(group, &json!({"status": "resolved"}))
        .await?
        .expect(200)?;
    tokio::time::sleep(Duration::from_millis(500)).await;

    disk.fill("filler")?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu_before = host.cpu_time()?;
    let logs_before = host.logs().len();
    let watched = Instant::now();
    for i in 0..5 {
        let event = scenario.assignee_event("SEN-5", Some(BOB_EMAIL), now_ms());
        let answer = deliver(&http_client(), &base, &event, &format!("full-{i}")).await?;
        ensure!(
            answer.status == 503 && answer.header("retry-after").is_some(),
            "a webhook on a full disk: {} {}",
            answer.status,
            answer.text()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let ready = api.without_token().get("/readyz").await?;
    ensure!(
        ready.status == 503,
        "not ready on a full disk: {}",
        ready.text
    );
    let cpu = host.cpu_time()? - cpu_before;
    let watched = watched.elapsed();
    ensure!(
        cpu < watched / 2,
        "the host used {cpu:?} of CPU in {watched:?} on a full disk: it spins; last logs:\n{}",
        host.last_logs(20)
    );
    let lines = host.logs().len() - logs_before;
    ensure!(
        lines < 200,
        "{lines} log lines in {watched:?} on a full disk:\n{}",
        host.last_logs(20)
    );

    std::fs::remove_file(disk.path().join("filler"))?;
    jira.recorder().clear_faults();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ready = api.without_token().get("/readyz").await?;
        if ready.status == 200 {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "still not ready once freed: {}",
            ready.text
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_writes_work(&api, &base, &scenario, "FREED-1", Duration::from_secs(15))
        .await
        .with_context(|| host.last_logs(30))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while jira.issue("SEN-5").context("SEN-5")?.status_id != "10101" {
        ensure!(
            Instant::now() < deadline,
            "the retried tracker call never went through once freed: {:?}",
            trackbridge_e2e::scenario::jobs(&api, "kind=sync_status").await?
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}
