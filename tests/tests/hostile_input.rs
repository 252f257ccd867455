//! Hostile input changes nothing: a plugin that declares a route matching
//! other providers' deliveries is refused, a signed event dated far in the
//! future does not pin its issue, and the errors of the HTTP surface are
//! always `{"error"}` JSON with the status that says what happened.
//!
//! Each test runs on the run's database (SQLite, or PostgreSQL when
//! `TRACKBRIDGE_TEST_POSTGRES` is set).

use std::time::Duration;

use anyhow::{Context as _, ensure};
use serde_json::{Value, json};
use trackbridge_e2e::jira_sim::{JiraAuth, JiraSim};
use trackbridge_e2e::scenario::{
    BOB_EMAIL, JiraScenario, deliver, http_client, jobs, wait_queue_idle,
};
use trackbridge_e2e::test_plugins::test_plugin;
use trackbridge_e2e::{ApiClient, TestHost};

const WAIT: Duration = Duration::from_secs(30);

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_whose_route_would_take_other_providers_deliveries_is_refused()
-> anyhow::Result<()> {
    let jira = JiraSim::start(jira_auth()).await?;
    let host = TestHost::start().await?;
    let api = host.api();
    let scenario = JiraScenario::setup(api, &jira).await?;
    let group = scenario.linked_group(api, "HJ-1").await?;

    let hijack =
        tokio::task::spawn_blocking(|| test_plugin("trackbridge-test-plugin-route-hijack")).await?;
    let refused = api.install_plugin(&hijack).await?;
    ensure!(refused.status == 400, "{} {}", refused.status, refused.text);
    let error = refused.body["error"].as_str().unwrap_or_default();
    ensure!(
        error.contains("/extensions/{p}/issue-updated/") && error.contains("`/extensions/hijack/`"),
        "the refusal names the route and the rule: {error}"
    );
    let serving = api.get("/api/plugins").await?.expect(200)?;
    ensure!(
        !serving.to_string().contains("hijack"),
        "a refused plugin serves nothing: {serving}"
    );

    // Jira's deliveries still reach Jira's plugin.
    let event = scenario.assignee_event("HJ-1", Some(BOB_EMAIL), now_ms());
    let answer = deliver(&http_client(), &host.base_url(), &event, "hj-1").await?;
    ensure!(answer.status == 200, "{} {}", answer.status, answer.text());
    wait_queue_idle(api, WAIT).await?;
    ensure!(assignee(api, group).await? == json!({"type": "user", "id": scenario.bob}));
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_event_dated_far_in_the_future_does_not_pin_its_issue() -> anyhow::Result<()> {
    let jira = JiraSim::start(jira_auth()).await?;
    let host = TestHost::start().await?;
    let api = host.api();
    let scenario = JiraScenario::setup(api, &jira).await?;
    let group = scenario.linked_group(api, "FUT-1").await?;
    let (http, base) = (http_client(), host.base_url());

    // Signed, authentic, and dated 2100-01-01.
    let future = scenario.assignee_event("FUT-1", Some(BOB_EMAIL), 4_102_444_800_000);
    let answer = deliver(&http, &base, &future, "fut-1").await?;
    ensure!(answer.status == 200, "{} {}", answer.status, answer.text());
    wait_queue_idle(api, WAIT).await?;
    ensure!(assignee(api, group).await? == json!({"type": "user", "id": scenario.bob}));

    // A real event after it still applies.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let now = scenario.assignee_event("FUT-1", None, now_ms());
    let answer = deliver(&http, &base, &now, "fut-2").await?;
    ensure!(answer.status == 200, "{} {}", answer.status, answer.text());
    wait_queue_idle(api, WAIT).await?;
    ensure!(
        assignee(api, group).await?.is_null(),
        "the later real event was applied"
    );
    let webhooks = jobs(api, "kind=webhook").await?;
    let first = webhooks
        .iter()
        .find(|j| j["dedup_key"] == "fut-1")
        .context("the future-dated delivery's job")?;
    ensure!(
        first["event_time"].as_i64().is_some_and(|t| t <= now_ms()),
        "its time is its arrival, not 2100: {first}"
    );
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_of_the_http_surface_is_json() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let http = http_client();
    let base = host.base_url();
    let too_big = vec![b'x'; (1 << 20) + 1];
    let authed = |method: reqwest::Method, path: &str| {
        http.request(method, format!("{base}{path}"))
            .bearer_auth(trackbridge_e2e::ADMIN_TOKEN)
    };
    let cases: Vec<(&str, u16, reqwest::RequestBuilder)> = vec![
        ("no token", 401, http.get(format!("{base}/api/plugins"))),
        (
            "a path id that is no number",
            400,
            authed(reqwest::Method::GET, "/api/groups/abc"),
        ),
        (
            "a query that does not parse",
            400,
            authed(reqwest::Method::GET, "/api/jobs?limit=many"),
        ),
        (
            "a method the route does not serve",
            405,
            authed(reqwest::Method::DELETE, "/api/plugins"),
        ),
        (
            "a body that is not JSON",
            400,
            authed(reqwest::Method::POST, "/api/organizations")
                .header("content-type", "application/json")
                .body("{"),
        ),
        (
            "an unknown API route",
            404,
            authed(reqwest::Method::GET, "/api/nothing-here"),
        ),
        (
            "an unknown webhook route",
            404,
            http.post(format!("{base}/extensions/nobody/hook/")),
        ),
        (
            "a webhook over the size limit",
            413,
            http.post(format!("{base}/extensions/jira/issue-updated/"))
                .body(too_big),
        ),
    ];
    for (what, status, request) in cases {
        let response = request.send().await.with_context(|| what.to_owned())?;
        let got = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        ensure!(got == status, "{what}: {got} {body}");
        ensure!(
            content_type.starts_with("application/json") && body["error"].is_string(),
            "{what}: {content_type} {body}"
        );
    }
    host.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_reach_no_loopback_or_metadata_address_unless_the_operator_allows_it()
-> anyhow::Result<()> {
    let dir = tokio::task::spawn_blocking(|| {
        trackbridge_e2e::test_plugins::plugins_dir_with(&[test_plugin(
            "trackbridge-test-plugin-faulty",
        )])
    })
    .await??;
    let path = dir.path().to_path_buf();
    // The operator allowed nothing: the default.
    let host = TestHost::start_with(move |s| {
        s.plugins_dir = path;
        s.outbound_allow_networks = Vec::new();
    })
    .await?;
    let api = host.api();
    let org = trackbridge_e2e::id_of(&api.create_organization("Acme").await?)?;
    let tracker = JiraSim::start(JiraAuth::bearer("unused")).await?;
    let port = tracker
        .base_url()
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    // By name (localhost resolves to loopback), by address, and the cloud
    // metadata address: each the integration's own host, so the name gate
    // lets it through — the address gate must not.
    for base_url in [
        format!("http://localhost:{port}/rest/api/2/serverInfo"),
        format!("http://127.0.0.1:{port}/rest/api/2/serverInfo"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
    ] {
        let installed = api
            .post(
                &format!("/api/organizations/{org}/integrations"),
                &json!({"provider": "faulty", "input": {"base_url": base_url, "fetch_url": base_url}}),
            )
            .await?;
        ensure!(
            installed.status != 201,
            "{base_url} was reached: {}",
            installed.text
        );
    }
    ensure!(
        tracker.recorder().requests().is_empty(),
        "nothing reached loopback"
    );
    let refused = trackbridge_e2e::logs::lines_with("resolves only to internal addresses");
    ensure!(
        refused.iter().any(|l| l.contains("localhost")),
        "the refusal is logged with the host: {refused:?}"
    );
    host.shutdown().await;
    Ok(())
}
