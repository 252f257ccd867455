//! Delivery guarantees under faults: a verified webhook is stored before the
//! 2xx and processed exactly once in effect; duplicates and out-of-order
//! events change nothing; a tracker that rate-limits, fails or hangs is retried
//! on schedule, dead-lettered, and replayed; the database going away yields
//! 503s and loses nothing; `kill -9` loses nothing acknowledged.
//!
//! Each test runs on the run's database (SQLite, or PostgreSQL when
//! `TRACKBRIDGE_TEST_POSTGRES` is set). Every wait has a deadline.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use futures::StreamExt as _;
use serde_json::{Value, json};
use trackbridge_e2e::jira_sim::{JiraAuth, JiraSim};
use trackbridge_e2e::process::HostProcess;
use trackbridge_e2e::proxy::TcpProxy;
use trackbridge_e2e::scenario::{
    BOB_EMAIL, JiraScenario, deliver, http_client, jobs, wait_queue_idle,
};
use trackbridge_e2e::{ApiClient, Fault, TestDatabase, TestHost};

const SEN5_TRANSITIONS: &str = "/rest/api/2/issue/SEN-5/transitions";
const QUEUE_WAIT: Duration = Duration::from_secs(30);
const HOST_PROCESS: &str = env!("CARGO_BIN_EXE_host-process");

fn jira_auth() -> JiraAuth {
    JiraAuth::basic("bot@example.com", "tok")
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

async fn assignee(api: &ApiClient, group: i64) -> anyhow::Result<Value> {
    Ok(api.group(group).await?["assignee"].clone())
}

// ---------------------------------------------------------------------------------------------
// Duplicates and order

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_delivery_sent_five_times_concurrently_is_stored_and_applied_once()
-> anyhow::Result<()> {
    let jira = JiraSim::start(jira_auth()).await?;
    let host = TestHost::start().await?;
    let api = host.api();
    let scenario = JiraScenario::setup(api, &jira).await?;
    let group = scenario.linked_group(api, "APP-1").await?;
    let payload = scenario.assignee_event("APP-1", Some(BOB_EMAIL), now_ms());

    let http = http_client();
    let base = host.base_url();
    let sends = (0..5).map(|_| deliver(&http, &base, &payload, "delivery-APP-1"));
    let responses = futures::future::try_join_all(sends).await?;
    let mut answers = Vec::new();
    for r in &responses {
        ensure!(r.status == 200, "a repeat got {}: {}", r.status, r.text());
        answers.push(r.json().context("JSON answer")?["status"].clone());
    }
    let accepted = answers.iter().filter(|a| **a == "accepted").count();
    ensure!(
        accepted == 1 && answers.iter().filter(|a| **a == "duplicate").count() == 4,
        "expected one accepted and four duplicates: {answers:?}"
    );

    wait_queue_idle(api, QUEUE_WAIT).await?;
    let stored = jobs(api, "kind=webhook").await?;
    ensure!(stored.len() == 1, "webhook jobs: {stored:?}");
    ensure!(
        stored[0]["state"] == "done" && stored[0]["attempts"] == 1,
        "{stored:?}"
    );
    ensure!(assignee(api, group).await? == json!({"type": "user", "id": scenario.bob}));
    let activity = api.activity_types(group).await?;
    ensure!(activity == ["assigned"], "activity: {activity:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_delivered_out_of_order_end_in_the_newest_state() -> anyhow::Result<()> {
    let jira = JiraSim::start(jira_auth()).await?;
    let host = TestHost::start().await?;
    let api = host.api();
    let scenario = JiraScenario::setup(api, &jira).await?;
    let group = scenario.linked_group(api, "APP-7").await?;
    let (http, base) = (http_client(), host.base_url());
    let t = now_ms();

    // Newest first: resolved at t, unassigned at t. Then, once those are
    // applied, the older events (unresolve and assign to bob, a second
    // earlier) arrive late.
    let newest = [
        (scenario.status_event("APP-7", "3", "10101", t), "d-resolve"),
        (scenario.assignee_event("APP-7", None, t), "d-unassign"),
    ];
    let late = [
        (
            scenario.status_event("APP-7", "10101", "3", t - 1000),
            "d-unresolve-old",
        ),
        (
            scenario.assignee_event("APP-7", Some(BOB_EMAIL), t - 1000),
            "d-assign-old",
        ),
    ];
    for batch in [&newest, &late] {
        for (payload, id) in batch {
            let r = deliver(&http, &base, payload, id).await?;
            ensure!(r.status == 200, "{id}: {} {}", r.status, r.text());
        }
        wait_queue_idle(api, QUEUE_WAIT).await?;
    }

    let state = api.group(group).await?;
    ensure!(state["status"] == "resolved", "status: {state}");
    ensure!(state["assignee"].is_null(), "assignee: {state}");
    let history = api.history_statuses(group).await?;
    ensure!(history == ["resolved"], "history: {history:?}");
    let done = jobs(api, "kind=webhook&state=done").await?;
    let ignored = done
        .iter()
        .filter(|j| {
            j["note"]
                .as_str()
                .is_some_and(|n| n.contains("1 older than the last applied"))
        })
        .count();
    ensure!(
        ignored == 2,
        "the two late events are recorded as ignored: {done:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deliveries_about_one_issue_end_in_the_newest_state() -> anyhow::Result<()> {
    let jira = JiraSim::start(jira_auth()).await?;
    let host = TestHost::start().await?;
    let api = host.api();
    let scenario = JiraScenario::setup(api, &jira).await?;
    let group = scenario.linked_group(api, "APP-9").await?;
    let (http, base) = (http_client(), host.base_url());
    let t = now_ms();

    // Assigned to bob at odd times, to nobody at even ones; the newest (t + 23)
    // assigns bob. The one just before it goes first, then the newest, then
    // the older ones, eight at a time: processed side by side, where a clock
    // checked apart from the change it guards would let an older one land last.
    let mut events: Vec<(i64, Value)> = (0..24)
        .map(|i| {
            let email = (i % 2 == 1).then_some(BOB_EMAIL);
            (i, scenario.assignee_event("APP-9", email, t + i))
        })
        .collect();
    events.reverse();
    events.swap(0, 1);
    let sent = futures::stream::iter(events.iter().map(|(i, payload)| {
        let (http, base) = (&http, &base);
        async move { deliver(http, base, payload, &format!("d-app9-{i}")).await }
    }))
    .buffer_unordered(8)
    .collect::<Vec<_>>()
    .await;
    for r in sent {
        let r = r?;
        ensure!(r.status == 200, "{} {}", r.status, r.text());
    }
    wait_queue_idle(api, QUEUE_WAIT).await?;

    ensure!(
        assignee(api, group).await? == json!({"type": "user", "id": scenario.bob}),
        "the newest event assigned bob: {}",
        api.group(group).await?
    );
    Ok(())
}

/// Deliveries are processed concurrently, so arrival order must survive
/// where the provider's times cannot tell two events apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_events_with_the_same_time_the_later_arrival_wins_when_the_earlier_is_retried()
-> anyhow::Result<()> {
    let jira = JiraSim::start(jira_auth()).await?;
    let host = TestHost::start().await?;
    let api = host.api();
    let scenario = JiraScenario::setup(api, &jira).await?;
    let group = scenario.linked_group(api, "APP-8").await?;
    let (_carol, account) = scenario.hidden_email_user(api, &jira, "carol").await?;
    let (http, base) = (http_client(), host.base_url());
    let t = now_ms();

    // First: assigned to carol, whose email the plugin must look up — Jira
    // rate-limits that, so this delivery is retried 2 s later. Second, same
    // time: unassigned, applied meanwhile.
    jira.recorder().rate_limit_next(1, 2);
    let assign = scenario.assignee_account_event("APP-8", &account, t);
    let r = deliver(&http, &base, &assign, "d-assign-carol").await?;
    ensure!(r.status == 200, "{} {}", r.status, r.text());
    let unassign = scenario.assignee_event("APP-8", None, t);
    let r = deliver(&http, &base, &unassign, "d-unassign").await?;
    ensure!(r.status == 200, "{} {}", r.status, r.text());
    wait_queue_idle(api, QUEUE_WAIT).await?;

    let webhooks = jobs(api, "kind=webhook").await?;
    let first = webhooks
        .iter()
        .find(|j| j["dedup_key"] == "d-assign-carol")
        .context("the first delivery")?;
    ensure!(
        first["attempts"] == 2 && first["state"] == "done",
        "the first delivery was retried once: {first}"
    );
    ensure!(
        first["note"]
            .as_str()
            .is_some_and(|n| n.contains("1 older than the last applied")),
        "its retry came after the later arrival and is ignored: {first}"
    );
    ensure!(
        assignee(api, group).await?.is_null(),
        "the later arrival stays: {}",
        api.group(group).await?
    );
    ensure!(api.activity_types(group).await?.is_empty());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Outbound: 429, 500, hang

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tracker_that_rate_limits_then_fails_is_retried_dead_lettered_and_replayed()
-> anyhow::Result<()> {
    let jira = JiraSim::start(jira_auth()).await?;
    let host = TestHost::start().await?;
    let api = host.api();
    let scenario = JiraScenario::setup(api, &jira).await?;
    let group = scenario.linked_group(api, "SEN-5").await?;
    jira.recorder().clear();
    jira.recorder().rate_limit_next(1, 1);
    jira.recorder().fail_next(1000, 500);

    api.update_group(group, &json!({"status": "resolved"}))
        .await?
        .expect(200)?;
    let dead = wait_for_jobs(api, "kind=sync_status&state=dead", 1).await?;
    let job = &dead[0];
    let attempts = 1 + trackbridge_e2e::host::TEST_RETRY_SCHEDULE_MS.len();
    ensure!(job["attempts"] == attempts, "attempts: {job}");
    let error = job["last_error"].as_str().unwrap_or("");
    ensure!(error.contains("500"), "last error names the 500: {error}");

    // The 429 asked for a second; the next attempt came no sooner.
    let requests = jira.recorder().requests();
    let limited = requests
        .iter()
        .find(|r| r.status == Some(429))
        .context("the 429")?;
    let next = requests
        .iter()
        .find(|r| r.seq > limited.seq)
        .context("a retry after the 429")?;
    let waited = next.received_at - limited.received_at;
    ensure!(
        waited >= Duration::from_millis(950),
        "retried {waited:?} after a Retry-After of 1 s"
    );
    let stats = api
        .get(&format!("/api/integrations/{}/queue", scenario.integration))
        .await?
        .expect(200)?;
    ensure!(
        stats["dead_letters"] == 1 && stats["failures_last_hour"] == 1 && stats["depth"] == 0,
        "queue figures: {stats}"
    );
    ensure!(jira.issue("SEN-5").context("SEN-5")?.status_id != "10101");

    // The tracker recovers; the operator replays the dead letter.
    jira.recorder().clear_faults();
    let id = job["id"].as_i64().context("job id")?;
    api.post(&format!("/api/jobs/{id}/replay"), &json!({}))
        .await?
        .expect(200)?;
    let transition = jira
        .recorder()
        .wait_for_call("POST", SEN5_TRANSITIONS)
        .await?;
    ensure!(transition.status == Some(204) || transition.status == Some(200));
    wait_queue_idle(api, QUEUE_WAIT).await?;
    ensure!(jira.issue("SEN-5").context("SEN-5")?.status_id == "10101");
    let replayed = api.get(&format!("/api/jobs/{id}")).await?.expect(200)?;
    ensure!(replayed["state"] == "done", "{replayed}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tracker_that_hangs_is_abandoned_in_time_and_retried() -> anyhow::Result<()> {
    let jira = JiraSim::start(jira_auth()).await?;
    let host = TestHost::start_with(|s| s.plugin_timeout = Duration::from_secs(1)).await?;
    let api = host.api();
    let scenario = JiraScenario::setup(api, &jira).await?;
    let group = scenario.linked_group(api, "SEN-5").await?;
    jira.recorder()
        .inject(Fault::hang(2, Duration::from_secs(4)));

    api.update_group(group, &json!({"status": "resolved"}))
        .await?
        .expect(200)?;
    let done = wait_for_jobs(api, "kind=sync_status&state=done", 1).await?;
    ensure!(
        done[0]["attempts"] == 3,
        "two timeouts, then success: {done:?}"
    );
    ensure!(jira.issue("SEN-5").context("SEN-5")?.status_id == "10101");
    Ok(())
}

/// Wait until at least `n` jobs match `query`.
async fn wait_for_jobs(api: &ApiClient, query: &str, n: usize) -> anyhow::Result<Vec<Value>> {
    let deadline = tokio::time::Instant::now() + QUEUE_WAIT;
    loop {
        let found = jobs(api, query).await?;
        if found.len() >= n {
            return Ok(found);
        }
        if tokio::time::Instant::now() >= deadline {
            let all = jobs(api, "").await?;
            bail!("no {n} job(s) with {query} after {QUEUE_WAIT:?}; jobs: {all:?}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The database goes away

/// Makes the host's database unavailable and brings it back: on SQLite another
/// connection holds the write lock; on PostgreSQL the host reaches the server
/// through a proxy that is cut.
enum Outage {
    Sqlite {
        path: std::path::PathBuf,
        holder: Option<sqlx::SqliteConnection>,
    },
    Postgres(TcpProxy),
}

impl Outage {
    async fn begin(&mut self) -> anyhow::Result<()> {
        match self {
            Outage::Sqlite { path, holder } => {
                use sqlx::Connection as _;
                let mut conn =
                    sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                        .await?;
                sqlx::query("BEGIN EXCLUSIVE").execute(&mut conn).await?;
                *holder = Some(conn);
            }
            Outage::Postgres(proxy) => proxy.cut(),
        }
        Ok(())
    }

    async fn end(&mut self) -> anyhow::Result<()> {
        match self {
            Outage::Sqlite { holder, .. } => {
                if let Some(mut conn) = holder.take() {
                    sqlx::query("ROLLBACK").execute(&mut conn).await?;
                }
            }
            Outage::Postgres(proxy) => proxy.restore(),
        }
        Ok(())
    }
}

/// `postgres://user@host[:port]/db` with another `host:port`.
fn with_authority(url: &str, authority: &str) -> anyhow::Result<String> {
    let (scheme, rest) = url.split_once("://").context("a URL")?;
    let (user_host, db) = rest.split_once('/').context("a database name")?;
    let user = user_host
        .rsplit_once('@')
        .map(|(u, _)| format!("{u}@"))
        .unwrap_or_default();
    Ok(format!("{scheme}://{user}{authority}/{db}"))
}

fn authority_of(url: &str) -> anyhow::Result<std::net::SocketAddr> {
    let rest = url.split_once("://").context("a URL")?.1;
    let host_port = rest.split('/').next().unwrap_or("");
    let host_port = host_port.rsplit_once('@').map_or(host_port, |(_, h)| h);
    let with_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    };
    let with_port = with_port.replace("localhost", "127.0.0.1");
    Ok(with_port.parse()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_database_is_away_webhooks_get_503_with_retry_after_and_nothing_is_lost()
-> anyhow::Result<()> {
    let jira = JiraSim::start(jira_auth()).await?;
    let database = TestDatabase::new().await?;
    let (host, mut outage) = match database.sqlite_path() {
        Some(path) => (
            TestHost::start_on(database, |_| {}).await?,
            Outage::Sqlite { path, holder: None },
        ),
        None => {
            let proxy = TcpProxy::start(authority_of(database.url())?).await?;
            let url = with_authority(database.url(), &proxy.addr().to_string())?;
            let host = TestHost::start_on(database, |s| s.database_url = url).await?;
            (host, Outage::Postgres(proxy))
        }
    };
    let api = host.api();
    let scenario = JiraScenario::setup(api, &jira).await?;
    let groups = [
        scenario.linked_group(api, "APP-21").await?,
        scenario.linked_group(api, "APP-22").await?,
    ];
    let (http, base) = (http_client(), host.base_url());
    let events: Vec<_> = ["APP-21", "APP-22"]
        .iter()
        .map(|key| scenario.assignee_event(key, Some(BOB_EMAIL), now_ms()))
        .collect();

    outage.begin().await?;
    for (event, id) in events.iter().zip(["d-21", "d-22"]) {
        let r = deliver(&http, &base, event, id).await?;
        ensure!(
            r.status == 503,
            "a webhook that cannot be stored must get 503, got {}: {}",
            r.status,
            r.text()
        );
        let retry_after = r
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
            .and_then(|(_, v)| v.parse::<u64>().ok());
        ensure!(
            retry_after.is_some_and(|s| s > 0),
            "Retry-After: {:?}",
            r.headers
        );
    }
    outage.end().await?;

    // The tracker retries; the host serves again by itself.
    let deadline = tokio::time::Instant::now() + QUEUE_WAIT;
    for (event, id) in events.iter().zip(["d-21", "d-22"]) {
        loop {
            let r = deliver(&http, &base, event, id).await?;
            if r.status == 200 {
                break;
            }
            ensure!(r.status == 503, "retry answered {}: {}", r.status, r.text());
            ensure!(
                tokio::time::Instant::now() < deadline,
                "the host never recovered"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    wait_queue_idle(api, QUEUE_WAIT).await?;
    for group in groups {
        ensure!(assignee(api, group).await? == json!({"type": "user", "id": scenario.bob}));
        let activity = api.activity_types(group).await?;
        ensure!(
            activity == ["assigned"],
            "activity of {group}: {activity:?}"
        );
    }
    ensure!(jobs(api, "kind=webhook").await?.len() == 2);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Processes that die, processes that share

/// Send one webhook per `(key, account)` with up to `concurrency` in flight,
/// spread over `targets` in turn. After `kill_after` acknowledgements (when
/// set) the target at that index is killed. Returns the indices acknowledged.
struct Load<'a> {
    scenario: &'a JiraScenario,
    events: &'a [(String, String)],
    offset: usize,
    /// The events' time: a retry carries the same body as the first try.
    time: i64,
}

impl Load<'_> {
    fn delivery_id(&self, i: usize) -> String {
        format!("load-{}", self.offset + i)
    }

    async fn send(
        &self,
        targets: &[String],
        concurrency: usize,
        on_ack: impl Fn(usize) + Send + Sync,
    ) -> BTreeSet<usize> {
        let http = http_client();
        let acked = AtomicUsize::new(0);
        let time = self.time;
        let results: Vec<(usize, bool)> = futures::stream::iter(self.events.iter().enumerate())
            .map(|(i, (key, account))| {
                let payload = self.scenario.assignee_account_event(key, account, time);
                let base = targets[i % targets.len()].clone();
                let (http, id) = (http.clone(), self.delivery_id(i));
                let (acked, on_ack) = (&acked, &on_ack);
                async move {
                    let ok = matches!(deliver(&http, &base, &payload, &id).await, Ok(r) if r.status == 200);
                    if ok {
                        on_ack(acked.fetch_add(1, Ordering::SeqCst) + 1);
                    }
                    (i, ok)
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        results
            .into_iter()
            .filter_map(|(i, ok)| ok.then_some(i))
            .collect()
    }
}

/// `n` groups on issues `<prefix>-<i>`, each to be assigned to its own user
/// whose email the plugin must look up (slow: the simulator answers late).
async fn users_and_groups(
    api: &ApiClient,
    jira: &JiraSim,
    scenario: &JiraScenario,
    prefix: &str,
    n: usize,
) -> anyhow::Result<(Vec<(String, String)>, Vec<(i64, i64)>)> {
    let mut events = Vec::new();
    let mut expected = Vec::new();
    for i in 0..n {
        let key = format!("{prefix}-{i}");
        let (user, account) = scenario
            .hidden_email_user(api, jira, &format!("{}{i}", prefix.to_lowercase()))
            .await?;
        let group = scenario.linked_group(api, &key).await?;
        events.push((key, account));
        expected.push((group, user));
    }
    Ok((events, expected))
}

/// `(id, lease_owner, lease_until)` of the running jobs, read from the database.
async fn running_leases(url: &str) -> anyhow::Result<Vec<(i64, Option<String>, Option<i64>)>> {
    use sqlx::Connection as _;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await?;
    let rows: Vec<(i64, Option<String>, Option<i64>)> =
        sqlx::query_as("SELECT id, lease_owner, lease_until FROM jobs WHERE state = 'running'")
            .fetch_all(&mut conn)
            .await?;
    Ok(rows)
}

async fn ensure_assigned_once(api: &ApiClient, group: i64, user: i64) -> anyhow::Result<()> {
    let who = assignee(api, group).await?;
    ensure!(
        who == json!({"type": "user", "id": user}),
        "group {group} assignee {who}, expected user {user}"
    );
    let activity = api.activity_types(group).await?;
    ensure!(
        activity == ["assigned"],
        "group {group} activity {activity:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_webhooks_arrive_loses_nothing_acknowledged() -> anyhow::Result<()> {
    const N: usize = 30;
    let database = TestDatabase::new().await?;
    let jira = JiraSim::start(jira_auth()).await?;
    // On PostgreSQL the jobs a dead process held are taken over once their
    // lease expires (on SQLite at once, at start): keep it short.
    let settings = [("TB_JOB_LEASE_SECS", "1".to_owned())];
    let first = HostProcess::start(HOST_PROCESS, database.url(), &settings).await?;
    let scenario = JiraScenario::setup(first.api(), &jira).await?;
    let (events, expected) = users_and_groups(first.api(), &jira, &scenario, "KILL", N).await?;
    // Each webhook needs an email lookup that takes 50 ms: a backlog builds.
    jira.recorder().set_latency(Duration::from_millis(50));

    let load = Load {
        scenario: &scenario,
        events: &events,
        offset: 0,
        time: now_ms(),
    };
    let first_url = first.base_url().to_owned();
    let (kill_tx, kill_rx) = tokio::sync::oneshot::channel::<()>();
    let kill_tx = std::sync::Mutex::new(Some(kill_tx));
    let killer = tokio::spawn(async move {
        if kill_rx.await.is_ok() {
            first.kill().await
        } else {
            Ok(())
        }
    });
    let acked = load
        .send(&[first_url], 4, |n| {
            if n == 12
                && let Some(tx) = kill_tx.lock().unwrap().take()
            {
                let _ = tx.send(());
            }
        })
        .await;
    killer.await??;
    ensure!(
        acked.len() >= 12,
        "only {} acknowledged before the kill",
        acked.len()
    );

    let second = HostProcess::start(HOST_PROCESS, database.url(), &settings).await?;
    let api = second.api();
    if let Err(err) = wait_queue_idle(api, QUEUE_WAIT).await {
        let leases = running_leases(database.url()).await?;
        bail!(
            "{err:#}\nrunning jobs' leases: {leases:?}\nthe restarted host's log:\n{}",
            second.last_logs(60)
        );
    }
    for i in &acked {
        let (group, user) = expected[*i];
        ensure_assigned_once(api, group, user)
            .await
            .with_context(|| format!("acknowledged webhook {i}"))?;
    }
    // Jira retries what was not acknowledged; then everything is applied once.
    let rest: Vec<usize> = (0..N).filter(|i| !acked.contains(i)).collect();
    let http = http_client();
    for i in &rest {
        let (key, account) = &events[*i];
        let payload = scenario.assignee_account_event(key, account, load.time);
        let r = deliver(&http, second.base_url(), &payload, &load.delivery_id(*i)).await?;
        ensure!(r.status == 200, "retry of {i}: {} {}", r.status, r.text());
    }
    wait_queue_idle(api, QUEUE_WAIT).await?;
    for (group, user) in &expected {
        ensure_assigned_once(api, *group, *user).await?;
    }
    let stored = jobs(api, "kind=webhook").await?;
    ensure!(
        stored.len() == N,
        "{} webhook jobs for {N} deliveries",
        stored.len()
    );
    ensure!(stored.iter().all(|j| j["state"] == "done"), "{stored:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_postgres_share_the_work_and_survive_a_kill() -> anyhow::Result<()> {
    const N: usize = 24;
    // Several processes need PostgreSQL, whatever database the run uses.
    let database = TestDatabase::postgres().await?;
    let jira = JiraSim::start(jira_auth()).await?;
    // Batches of two: what b holds when it dies is at most 4 workers × 2 jobs.
    let settings = [
        ("TB_JOB_LEASE_SECS", "1".to_owned()),
        ("TB_JOB_POLL_SECS", "0.05".to_owned()),
        ("TB_JOB_BATCH", "2".to_owned()),
    ];
    let a = HostProcess::start(HOST_PROCESS, database.url(), &settings).await?;
    let b = HostProcess::start(HOST_PROCESS, database.url(), &settings).await?;
    let api = a.api().clone();
    let scenario = JiraScenario::setup(&api, &jira).await?;
    let (events, expected) = users_and_groups(&api, &jira, &scenario, "BOTH", 2 * N).await?;
    jira.recorder().set_latency(Duration::from_millis(20));
    let targets = [a.base_url().to_owned(), b.base_url().to_owned()];

    // Phase 1: every delivery sent to both processes at once.
    let first_half = &events[..N];
    let both = Load {
        scenario: &scenario,
        events: first_half,
        offset: 0,
        time: now_ms(),
    };
    let to_a = both.send(&targets[..1], 4, |_| {});
    let to_b = both.send(&targets[1..], 4, |_| {});
    let (acked_a, acked_b) = tokio::join!(to_a, to_b);
    ensure!(acked_a.len() == N && acked_b.len() == N, "all acknowledged");
    wait_queue_idle(&api, QUEUE_WAIT).await?;
    for (group, user) in &expected[..N] {
        ensure_assigned_once(&api, *group, *user).await?;
    }
    let stored = jobs(&api, "kind=webhook").await?;
    ensure!(
        stored.len() == N,
        "{} webhook jobs for {N} deliveries",
        stored.len()
    );
    ensure!(
        stored
            .iter()
            .all(|j| j["state"] == "done" && j["attempts"] == 1),
        "each stored webhook claimed exactly once: {stored:?}"
    );

    // Phase 2: load spread over both; b is killed half-way.
    let second_half = &events[N..];
    let load = Load {
        scenario: &scenario,
        events: second_half,
        offset: N,
        time: now_ms(),
    };
    let (kill_tx, kill_rx) = tokio::sync::oneshot::channel::<()>();
    let kill_tx = std::sync::Mutex::new(Some(kill_tx));
    let killer = tokio::spawn(async move {
        if kill_rx.await.is_ok() {
            b.kill().await
        } else {
            Ok(())
        }
    });
    let acked = load
        .send(&targets, 4, |n| {
            if n == N / 2
                && let Some(tx) = kill_tx.lock().unwrap().take()
            {
                let _ = tx.send(());
            }
        })
        .await;
    killer.await??;
    // What b could not acknowledge, Jira retries — at a.
    let http = http_client();
    for i in (0..N).filter(|i| !acked.contains(i)) {
        let (key, account) = &second_half[i];
        let payload = scenario.assignee_account_event(key, account, load.time);
        let r = deliver(&http, a.base_url(), &payload, &load.delivery_id(i)).await?;
        ensure!(r.status == 200, "retry of {i}: {} {}", r.status, r.text());
    }
    // b's leases expire after a second and a takes its jobs over.
    wait_queue_idle(&api, QUEUE_WAIT).await?;
    for (group, user) in &expected {
        ensure_assigned_once(&api, *group, *user).await?;
    }
    let stored = jobs(&api, "kind=webhook").await?;
    ensure!(stored.len() == 2 * N, "{} webhook jobs", stored.len());
    ensure!(stored.iter().all(|j| j["state"] == "done"), "{stored:?}");
    let retried = stored.iter().filter(|j| j["attempts"] != 1).count();
    ensure!(
        retried <= 8,
        "only jobs b held when it died (at most its 4 workers' batches of 2) may have run twice: {retried}"
    );
    Ok(())
}
