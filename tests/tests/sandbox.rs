//! The sandbox, through HTTP: a plugin that panics, loops, exhausts its memory
//! or calls a host it was not given fails that call only, with an error naming
//! the plugin, its version, the export and the cause in the log (the sender
//! hears only that the plugin failed, and a request id) — and keeps serving.
//! The misbehaving plugin is `tests/plugins/faulty`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use trackbridge_e2e::jira_sim::{JiraAuth, JiraSim};
use trackbridge_e2e::test_plugins::{plugins_dir_with, test_plugin};
use trackbridge_e2e::{RawResponse, TestHost, id_of};

const HOOK: &str = "/extensions/faulty/hook/";

async fn host_with_faulty(
    timeout: Duration,
    memory: usize,
) -> anyhow::Result<(TestHost, tempfile::TempDir)> {
    let dir = tokio::task::spawn_blocking(|| {
        plugins_dir_with(&[test_plugin("trackbridge-test-plugin-faulty")])
    })
    .await??;
    let path = dir.path().to_path_buf();
    let host = TestHost::start_with(move |s| {
        s.plugins_dir = path;
        s.plugin_timeout = timeout;
        s.plugin_memory_bytes = memory;
    })
    .await?;
    Ok((host, dir))
}

async fn send(host: &TestHost, body: &str) -> anyhow::Result<RawResponse> {
    host.post_raw(HOOK, &[], body.as_bytes().to_vec()).await
}

fn error_of(response: &RawResponse) -> String {
    response
        .json()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_else(|| response.text())
}

/// The plugin answers normally: proves a previous failure poisoned nothing.
async fn assert_still_serving(host: &TestHost) -> anyhow::Result<()> {
    let alive = send(host, "hello").await?;
    assert_eq!(alive.status, 404, "{}", alive.text());
    assert_eq!(error_of(&alive), "alive");
    Ok(())
}

/// The sender of a failed delivery learns that the plugin failed and the
/// request id, nothing more: the plugin's error (its panic message, the wasm
/// backtrace, source paths) goes to the log under that request id, which is
/// where this returns it from, checked to name the plugin, its version and
/// the export.
async fn failure_seen_by_sender_and_log(
    host: &TestHost,
    body: &str,
    kind: &str,
) -> anyhow::Result<String> {
    let response = send(host, body).await?;
    assert_eq!(response.status, 503, "{}", response.text());
    assert!(response.headers.iter().any(|(k, _)| k == "retry-after"));
    let answer = response.json().unwrap_or_default();
    let error = error_of(&response);
    assert!(error.contains("faulty") && error.contains(kind), "{error}");
    for internal in ["backtrace", ".rs", "wasm", "panic", "guest said", "/"] {
        assert!(
            !error.contains(internal),
            "`{internal}` reached the sender: {error}"
        );
    }
    let request_id = answer["request_id"].as_str().unwrap_or_default().to_owned();
    assert!(!request_id.is_empty(), "{answer}");
    let logged = trackbridge_e2e::logs::lines_with(&request_id).join("\n");
    for part in ["faulty", "0.0.1-test", "verify-webhook"] {
        assert!(
            logged.contains(part),
            "`{part}` missing from the log: {logged}"
        );
    }
    Ok(logged)
}

#[tokio::test]
async fn a_panic_fails_that_call_only_and_the_log_carries_the_panic_message() -> anyhow::Result<()>
{
    let (host, _dir) = host_with_faulty(Duration::from_secs(10), 64 << 20).await?;
    let logged = failure_seen_by_sender_and_log(&host, "panic", "crashed").await?;
    assert!(
        logged.contains("faulty plugin was asked to panic"),
        "{logged}"
    );
    // The guest's own words come before the backtrace.
    let said = logged.find("faulty plugin was asked to panic");
    let backtrace = logged.find("backtrace");
    assert!(backtrace.is_none() || said < backtrace, "{logged}");
    assert_still_serving(&host).await?;
    host.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_guest_that_computes_forever_is_stopped_at_its_deadline() -> anyhow::Result<()> {
    let (host, _dir) = host_with_faulty(Duration::from_millis(500), 64 << 20).await?;
    let started = Instant::now();
    let logged = failure_seen_by_sender_and_log(&host, "loop", "ran out of time").await?;
    let elapsed = started.elapsed();
    assert!(logged.contains("timed out"), "{logged}");
    // Generous bound: the point is that it stops at all, not how fast.
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
    assert_still_serving(&host).await?;
    host.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_guest_that_exhausts_its_memory_cap_traps_and_says_so() -> anyhow::Result<()> {
    let (host, _dir) = host_with_faulty(Duration::from_secs(10), 16 << 20).await?;
    let logged = failure_seen_by_sender_and_log(&host, "oom", "crashed").await?;
    assert!(logged.contains("trapped"), "{logged}");
    assert!(
        logged.contains("memory"),
        "the cause names memory: {logged}"
    );
    assert_still_serving(&host).await?;
    host.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_plugin_reaches_only_the_hosts_of_its_integration() -> anyhow::Result<()> {
    let (host, _dir) = host_with_faulty(Duration::from_secs(10), 64 << 20).await?;
    let allowed = JiraSim::start(JiraAuth::bearer("unused")).await?;
    let forbidden = JiraSim::start(JiraAuth::bearer("unused")).await?;
    let api = host.api();
    let org = id_of(&api.create_organization("Acme").await?)?;
    let installed: Value = api
        .post(
            &format!("/api/organizations/{org}/integrations"),
            &json!({"provider": "faulty", "input": {
                "base_url": format!("{}/rest/api/2/serverInfo", allowed.base_url()),
                "fetch_url": format!("{}/rest/api/2/serverInfo", forbidden.base_url()),
            }}),
        )
        .await?
        .expect(201)?;
    let refused = installed["metadata"]["forbidden_fetch"]
        .as_str()
        .unwrap_or("");
    assert!(refused.starts_with("refused"), "{installed}");
    assert!(
        refused.contains("denied"),
        "the plugin learns why: {refused}"
    );
    assert!(
        forbidden.recorder().requests().is_empty(),
        "nothing reached the forbidden host"
    );
    assert_eq!(
        allowed.recorder().requests().len(),
        1,
        "the allowed host was reached"
    );
    host.shutdown().await;
    Ok(())
}
