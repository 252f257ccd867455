//! Swapping plugin versions in a running host: under continuous webhook load
//! nothing fails and nothing is lost; a module that does not implement the
//! contract is refused with what it lacks; a version that traps is rolled back
//! by itself and an operator can roll back by hand; a restart with a warm
//! artifact cache compiles nothing; host processes on one PostgreSQL converge;
//! a watched plugins directory reloads a changed file.
//!
//! Every wait has a deadline; the load is bounded in count.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use futures::StreamExt as _;
use serde_json::{Value, json};
use trackbridge_e2e::jira_sim::{JiraAuth, JiraSim, JiraUser};
use trackbridge_e2e::process::HostProcess;
use trackbridge_e2e::scenario::{
    BOB_EMAIL, JiraScenario, deliver, http_client, jobs, wait_queue_idle,
};
use trackbridge_e2e::test_plugins::{plugins_dir_with, test_plugin};
use trackbridge_e2e::{ApiClient, TestDatabase, TestHost};

const WAIT: Duration = Duration::from_secs(30);
const HOST_PROCESS: &str = env!("CARGO_BIN_EXE_host-process");
const FIRST: &str = "jira 0.1.0";
const NEXT: &str = "jira 0.2.0-next";

async fn built(krate: &'static str) -> anyhow::Result<PathBuf> {
    Ok(tokio::task::spawn_blocking(move || test_plugin(krate)).await?)
}

fn jira_next() -> impl std::future::Future<Output = anyhow::Result<PathBuf>> {
    built("trackbridge-test-plugin-jira-next")
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

async fn start_jira() -> anyhow::Result<JiraSim> {
    JiraSim::start(JiraAuth::basic("bot@example.com", "tok")).await
}

/// Poll `check` until it holds, within [`WAIT`].
async fn eventually<F, Fut>(what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if check().await? {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{what}: not within {WAIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of a metric line `name{labels} value`, 0 when absent.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_under_continuous_webhook_load_fails_nothing_and_loses_nothing() -> anyhow::Result<()>
{
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    // The load alternates assign and unassign over these issues, each event a
    // millisecond newer than the one before; it stops by itself after MAX.
    const ISSUES: usize = 20;
    const MAX: usize = 3000;
    let jira = start_jira().await?;
    let host = TestHost::start().await?;
    let api = host.api();
    let scenario = JiraScenario::setup(api, &jira).await?;
    let mut groups = Vec::new();
    for i in 0..ISSUES {
        groups.push(scenario.linked_group(api, &format!("LOAD-{i}")).await?);
    }
    let next = jira_next().await?;
    let (http, base) = (http_client(), host.base_url());
    let time = now_ms();
    let event = |i: usize| {
        let email = (i / ISSUES).is_multiple_of(2).then_some(BOB_EMAIL);
        scenario.assignee_event(&format!("LOAD-{}", i % ISSUES), email, time + i as i64)
    };

    let acked = AtomicUsize::new(0);
    let stop_at = AtomicUsize::new(MAX);
    let load = futures::stream::iter(0..MAX)
        .take_while(|i| futures::future::ready(*i < stop_at.load(SeqCst)))
        .map(|i| {
            let payload = event(i);
            let (http, base, acked) = (&http, &base, &acked);
            async move {
                let r = deliver(http, base, &payload, &format!("load-{i}")).await;
                acked.fetch_add(1, SeqCst);
                (i, r)
            }
        })
        .buffer_unordered(6)
        .collect::<Vec<_>>();
    // The operator swaps to the next version while webhooks keep coming, rolls
    // back while they still do, and the load goes on a little after that.
    let operator = async {
        let after = |n: usize| {
            let acked = &acked;
            async move {
                let deadline = tokio::time::Instant::now() + WAIT;
                while acked.load(SeqCst) < n {
                    ensure!(tokio::time::Instant::now() < deadline, "the load stalled");
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                anyhow::Ok(acked.load(SeqCst))
            }
        };
        let n = after(30).await?;
        let installed = api.install_plugin(&next).await?;
        ensure!(installed.status == 201, "install: {}", installed.text);
        let n = after(acked.load(SeqCst).max(n) + 30).await?;
        let rolled = api.post("/api/plugins/jira/rollback", &json!({})).await?;
        ensure!(rolled.status == 200, "rollback: {}", rolled.text);
        let n = after(acked.load(SeqCst).max(n) + 30).await?;
        stop_at.store(n, SeqCst);
        anyhow::Ok(())
    };
    let (responses, swapped) = tokio::join!(load, operator);
    swapped?;
    let sent = responses.len();
    ensure!(sent < MAX, "the operator finished before the load ran out");
    let mut newest = vec![None; ISSUES];
    for (i, r) in &responses {
        let r = r.as_ref().map_err(|e| anyhow::anyhow!("{e:#}"))?;
        ensure!(
            r.status == 200 && r.json().is_some_and(|b| b["status"] == "accepted"),
            "webhook {i} failed during the swap: {} {}",
            r.status,
            r.text()
        );
        let slot = &mut newest[i % ISSUES];
        *slot = Some(slot.map_or(*i, |j: usize| j.max(*i)));
    }

    wait_queue_idle(api, WAIT).await?;
    let stored = jobs(api, "kind=webhook").await?;
    ensure!(
        stored.len() == sent,
        "{} webhook jobs for {sent} webhooks",
        stored.len()
    );
    let mut verifiers = BTreeSet::new();
    for job in &stored {
        ensure!(job["state"] == "done", "{job}");
        let verified = job["verified_by"].as_str().context("verified_by")?;
        let handled = job["handled_by"].as_str().context("handled_by")?;
        ensure!(
            [FIRST, NEXT].contains(&verified) && [FIRST, NEXT].contains(&handled),
            "handled by an unknown version: {job}"
        );
        verifiers.insert(verified.to_owned());
    }
    ensure!(
        verifiers.len() == 2,
        "both versions served part of the load: {verifiers:?}"
    );
    // Every group ends as the newest event about its issue says.
    for (k, group) in groups.iter().enumerate() {
        let i = newest[k].context("every issue had events")?;
        let expected = if (i / ISSUES).is_multiple_of(2) {
            json!({"type": "user", "id": scenario.bob})
        } else {
            Value::Null
        };
        let g = api.group(*group).await?;
        ensure!(
            g["assignee"] == expected,
            "group {group} after event {i}: {g}"
        );
    }
    ensure!(api.serving_version("jira").await? == "0.1.0");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_that_does_not_implement_the_contract_is_refused_and_the_serving_version_stays()
-> anyhow::Result<()> {
    let jira = start_jira().await?;
    let host = TestHost::start().await?;
    let api = host.api();
    let scenario = JiraScenario::setup(api, &jira).await?;
    scenario.linked_group(api, "SEN-1").await?;

    let wrong = built("trackbridge-test-plugin-wrong-contract").await?;
    let refused = api.install_plugin(&wrong).await?;
    ensure!(refused.status == 400, "{} {}", refused.status, refused.text);
    let error = refused.body["error"].as_str().unwrap_or("");
    for part in [
        "does not implement the provider-plugin world of trackbridge:plugin@0.1.0",
        "`trackbridge:plugin/provider@0.1.0` lacks `build-integration`, `uninstall`, `verify-webhook`",
    ] {
        ensure!(error.contains(part), "`{part}` not in: {error}");
    }
    let garbage = api
        .post_bytes("/api/plugins", b"\0asm\x0d\0\x01\0garbage".to_vec())
        .await?;
    ensure!(
        garbage.status == 400 && garbage.text.contains("not a valid component"),
        "{}",
        garbage.text
    );
    let unauthenticated = api
        .without_token()
        .post_bytes("/api/plugins", std::fs::read(&wrong)?)
        .await?;
    ensure!(unauthenticated.status == 401);

    ensure!(api.serving_version("jira").await? == "0.1.0");
    let r = deliver(
        &http_client(),
        &host.base_url(),
        &scenario.assignee_event("SEN-1", Some(BOB_EMAIL), now_ms()),
        "after-refusal",
    )
    .await?;
    ensure!(r.status == 200, "{}", r.text());
    wait_queue_idle(api, WAIT).await?;
    let done = jobs(api, "kind=webhook&state=done").await?;
    ensure!(
        done.len() == 1 && done[0]["handled_by"] == FIRST,
        "{done:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_that_traps_on_every_call_is_rolled_back_by_itself_and_nothing_is_lost()
-> anyhow::Result<()> {
    let jira = start_jira().await?;
    // Probation: 4 calls, at most 2 may fail.
    let host = TestHost::start_with(|s| {
        s.swap.probation.calls = 4;
        s.swap.probation.max_failure_rate = 0.5;
    })
    .await?;
    let api = host.api();
    let scenario = JiraScenario::setup(api, &jira).await?;
    let group = scenario.linked_group(api, "SEN-2").await?;

    let trap = built("trackbridge-test-plugin-jira-trap").await?;
    let installed = api.install_plugin(&trap).await?;
    ensure!(installed.status == 201, "{}", installed.text);
    ensure!(api.serving_version("jira").await? == "0.3.0-trap");

    // Jira keeps retrying the delivery while it is answered 503; once the host
    // rolled back, it is accepted and applied.
    let payload = scenario.assignee_event("SEN-2", Some(BOB_EMAIL), now_ms());
    let (http, base) = (http_client(), host.base_url());
    let mut refused = 0;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = deliver(&http, &base, &payload, "retried-delivery").await?;
        if r.status == 200 {
            break;
        }
        ensure!(
            r.status == 503 && r.header("retry-after").is_some(),
            "a trapping plugin's webhook must be retried: {} {}",
            r.status,
            r.text()
        );
        refused += 1;
        ensure!(tokio::time::Instant::now() < deadline, "never rolled back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ensure!(refused >= 3, "3 failed calls trip the probation: {refused}");
    ensure!(api.serving_version("jira").await? == "0.1.0");

    let history = api.get("/api/plugins/jira/versions").await?.expect(200)?;
    let last = history["switches"]
        .as_array()
        .and_then(|s| s.last())
        .context("switches")?;
    ensure!(
        last["kind"] == "auto_rollback" && last["by"] == "host",
        "{last}"
    );
    let reason = last["reason"].as_str().unwrap_or("");
    ensure!(
        reason.contains("3 of its first 3 calls failed (traps 3")
            && reason.contains("broken on purpose"),
        "the reason says why: {reason}"
    );
    let metrics = api.metrics().await?;
    ensure!(
        metric(
            &metrics,
            r#"trackbridge_plugin_switches_total{plugin="jira",kind="auto_rollback"}"#
        ) == 1.0,
        "{metrics}"
    );
    ensure!(
        metric(
            &metrics,
            r#"trackbridge_plugin_call_traps_total{plugin="jira",version="0.3.0-trap",export="verify-webhook"}"#
        ) >= 3.0
    );

    wait_queue_idle(api, WAIT).await?;
    let g = api.group(group).await?;
    ensure!(
        g["assignee"] == json!({"type": "user", "id": scenario.bob}),
        "{g}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_rolls_back_and_forward_and_every_version_is_recorded() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let api = host.api();
    let next = jira_next().await?;
    let installed = api.install_plugin(&next).await?.expect(201)?;
    ensure!(installed["version"]["version"] == "0.2.0-next");
    ensure!(
        installed["switch"]["kind"] == "install" && installed["switch"]["by"] == "e2e-operator"
    );
    // The same module again changes nothing.
    let again = api.install_plugin(&next).await?.expect(200)?;
    ensure!(again["switch"].is_null(), "{again}");

    let back = api
        .post("/api/plugins/jira/rollback", &json!({}))
        .await?
        .expect(200)?;
    ensure!(back["version"]["version"] == "0.1.0", "{back}");
    ensure!(api.serving_version("jira").await? == "0.1.0");
    let forward = api
        .post("/api/plugins/jira/rollback", &json!({"to": "0.2.0-next"}))
        .await?
        .expect(200)?;
    ensure!(forward["version"]["version"] == "0.2.0-next");
    ensure!(api.serving_version("jira").await? == "0.2.0-next");
    let unknown = api
        .post("/api/plugins/jira/rollback", &json!({"to": "9.9.9"}))
        .await?;
    ensure!(unknown.status == 404, "{}", unknown.text);

    let history = api.get("/api/plugins/jira/versions").await?.expect(200)?;
    let versions = history["versions"].as_array().context("versions")?;
    ensure!(versions.len() == 2, "{history}");
    let sha = sha256_hex(&std::fs::read(&next)?);
    let recorded = versions
        .iter()
        .find(|v| v["version"] == "0.2.0-next")
        .context("next recorded")?;
    ensure!(recorded["sha256"] == sha.as_str());
    ensure!(recorded["size"] == std::fs::metadata(&next)?.len());
    ensure!(recorded["contract"] == "trackbridge:plugin@0.2.0");
    ensure!(
        recorded["installed_by"] == "e2e-operator" && recorded["installed_at"].as_i64() > Some(0)
    );
    let first = versions
        .iter()
        .find(|v| v["version"] == "0.1.0")
        .context("first")?;
    ensure!(first["installed_by"] == "plugins-dir");
    let kinds: Vec<&str> = history["switches"]
        .as_array()
        .context("switches")?
        .iter()
        .filter_map(|s| s["kind"].as_str())
        .collect();
    ensure!(
        kinds == ["install", "install", "rollback", "rollback"],
        "{kinds:?}"
    );
    Ok(())
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_a_warm_artifact_cache_compiles_nothing() -> anyhow::Result<()> {
    let cache = tempfile::tempdir()?;
    let dir = cache.path().to_path_buf();
    let database = TestDatabase::new().await?;
    let url = database.url().to_owned();

    let cold = TestHost::start_on(database, |s| s.plugin_cache_dir = Some(dir.clone())).await?;
    let metrics = cold.api().metrics().await?;
    ensure!(
        metric(&metrics, "trackbridge_plugin_compilations_total") == 4.0
            && metric(&metrics, "trackbridge_plugin_artifact_cache_hits_total") == 0.0,
        "a cold start compiles the four plugins once each: {metrics}"
    );
    // The restart: same cache, same database.
    let warm = TestHost::start_on(TestDatabase::sqlite()?, |s| {
        s.plugin_cache_dir = Some(dir.clone());
        s.database_url = url.clone();
    })
    .await?;
    let metrics = warm.api().metrics().await?;
    ensure!(
        metric(&metrics, "trackbridge_plugin_compilations_total") == 0.0,
        "a warm start compiles nothing: {metrics}"
    );
    ensure!(metric(&metrics, "trackbridge_plugin_artifact_cache_hits_total") >= 4.0);
    ensure!(warm.api().serving_version("jira").await? == "0.1.0");
    drop(cold);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_postgres_converge_on_a_swap_and_a_rollback() -> anyhow::Result<()> {
    let database = TestDatabase::postgres().await?;
    let settings = [("TB_PLUGIN_SYNC_SECS", "0.1".to_owned())];
    let a = HostProcess::start(HOST_PROCESS, database.url(), &settings).await?;
    let b = HostProcess::start(HOST_PROCESS, database.url(), &settings).await?;
    let next = jira_next().await?;

    a.api().install_plugin(&next).await?.expect(201)?;
    let converged = |api: &ApiClient, version: &'static str| {
        let api = api.clone();
        async move {
            eventually(&format!("serving jira {version}"), || {
                let api = api.clone();
                async move { Ok(api.serving_version("jira").await? == version) }
            })
            .await
        }
    };
    converged(b.api(), "0.2.0-next").await?;
    b.api()
        .post("/api/plugins/jira/rollback", &json!({}))
        .await?
        .expect(200)?;
    converged(a.api(), "0.1.0").await?;
    converged(b.api(), "0.1.0").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watched_plugins_directory_installs_a_changed_file_through_the_same_checks()
-> anyhow::Result<()> {
    let dir = tokio::task::spawn_blocking(|| plugins_dir_with(&[])).await??;
    let path = dir.path().to_path_buf();
    let host = TestHost::start_with(|s| {
        s.plugins_dir = path.clone();
        s.swap.watch = true;
        s.swap.watch_debounce = Duration::from_millis(200);
    })
    .await?;
    let api = host.api();
    let jira_file = dir.path().join("trackbridge_plugin_jira.wasm");
    let replace = |bytes: Vec<u8>| {
        let tmp = dir.path().join("incoming.tmp");
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &jira_file)
    };

    // A broken file is refused and the serving version stays.
    replace(b"\0asm\x0d\0\x01\0not yet".to_vec())?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    ensure!(api.serving_version("jira").await? == "0.1.0");

    replace(std::fs::read(jira_next().await?)?)?;
    eventually("the changed file serves", || async {
        Ok(api.serving_version("jira").await? == "0.2.0-next")
    })
    .await?;
    let history = api.get("/api/plugins/jira/versions").await?.expect(200)?;
    ensure!(
        history["versions"]
            .as_array()
            .is_some_and(|v| v.iter().any(|v| v["installed_by"] == "watch")),
        "{history}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_readiness_and_plugin_logs_tell_the_operator_what_happens() -> anyhow::Result<()> {
    let database = TestDatabase::new().await?;
    let jira = start_jira().await?;
    let host = HostProcess::start(HOST_PROCESS, database.url(), &[]).await?;
    let api = host.api();
    let scenario = JiraScenario::setup(api, &jira).await?;
    scenario.linked_group(api, "LOG-1").await?;

    let ready = api.without_token().get("/readyz").await?;
    ensure!(
        ready.status == 200 && ready.body["status"] == "ready",
        "{}",
        ready.text
    );
    ensure!(ready.body["plugins"] == 4, "{}", ready.text);

    // An assignee whose email Jira hides and has none to give: the plugin warns.
    jira.add_user(JiraUser {
        account_id: "acct-no-email".into(),
        display_name: "Nobody".into(),
        email: String::new(),
        email_visible: false,
    });
    let mut payload = scenario.assignee_account_event("LOG-1", "acct-no-email", now_ms());
    payload["issue"]["fields"]["assignee"]["emailAddress"] = Value::Null;
    let r = deliver(&http_client(), host.base_url(), &payload, "log-1").await?;
    ensure!(r.status == 200, "{}", r.text());
    let job = r.json().and_then(|b| b["job"].as_i64()).context("job id")?;
    wait_queue_idle(api, WAIT).await?;

    let wanted = format!("request_id=\"job-{job}\"");
    eventually("the plugin's warning in the host log", || {
        let logs = host.logs();
        let wanted = wanted.clone();
        async move {
            Ok(logs.iter().any(|l| {
                l.contains("WARN")
                    && l.contains("plugin=jira")
                    && l.contains("version=0.1.0")
                    && l.contains(&wanted)
                    && l.contains("jira.missing-assignee-email")
            }))
        }
    })
    .await?;

    // The queue figures are read in the background (every 2 s), never by a
    // scrape: they show the delivery's integration within a few seconds.
    let integration = format!(
        "trackbridge_queue_depth{{integration=\"{}\"}}",
        scenario.integration
    );
    eventually("the integration's queue figures in /metrics", || {
        let (api, integration) = (api.clone(), integration.clone());
        async move { Ok(api.metrics().await?.contains(&integration)) }
    })
    .await?;
    let metrics = api.without_token().get("/metrics").await?;
    ensure!(metrics.status == 200);
    let text = metrics.text;
    for series in [
        r#"trackbridge_plugin_calls_total{plugin="jira",version="0.1.0",export="verify-webhook"}"#,
        r#"trackbridge_plugin_calls_total{plugin="jira",version="0.1.0",export="handle-webhook"}"#,
        r#"trackbridge_webhooks_total{provider="jira",status="200"}"#,
        r#"trackbridge_plugin_call_duration_seconds_count{plugin="jira",version="0.1.0",export="verify-webhook"}"#,
    ] {
        ensure!(metric(&text, series) >= 1.0, "{series} in:\n{text}");
    }
    for name in [
        "# TYPE trackbridge_plugin_instances_in_flight gauge",
        "# TYPE trackbridge_plugin_call_errors counter",
        "# TYPE trackbridge_plugin_call_traps counter",
        "# TYPE trackbridge_plugin_call_timeouts counter",
        "# TYPE trackbridge_queue_dead_letters gauge",
        "# TYPE trackbridge_queue_figures_age_seconds gauge",
        r#"trackbridge_plugin_active{plugin="jira",version="0.1.0""#,
    ] {
        ensure!(text.contains(name), "{name} in:\n{text}");
    }
    let refused = deliver(&http_client(), host.base_url(), &json!({"bad": true}), "x").await?;
    ensure!(refused.status == 401 || refused.status == 400);
    let text = api.metrics().await?;
    ensure!(text.contains(&format!(
        r#"trackbridge_webhooks_total{{provider="jira",status="{}"}} 1"#,
        refused.status
    )));
    Ok(())
}
