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
use trackbridge_e2e::{ApiClient, TestDatabase};

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
            let event =
                scenario.assignee_event(&format!("FLOOD-{}", i % 20), Some(BOB_EMAIL), now_ms());
            let (http, base) = (http.clone(), base.clone());
            async move {
                let answer = tokio::time::timeout(
                    Duration::from_secs(20),
                    deliver(&http, &base, &event, &format!("flood-{i}")),
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
