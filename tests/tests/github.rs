//! One group linked to a GitHub issue and a Jira Cloud issue, synced both
//! ways through the host: Jira's assignment and resolution reach GitHub, and
//! a reopening and an unassignment made in GitHub reach Jira.

use anyhow::ensure;
use serde_json::json;
use trackbridge_e2e::github_sim::{GitHubSim, OWNER, REPO};
use trackbridge_e2e::jira_sim::{JiraAuth, JiraSim};
use trackbridge_e2e::scenario::{BOB_EMAIL, JiraScenario, deliver, http_client};
use trackbridge_e2e::{DEFAULT_WAIT, id_of};

const TOKEN: &str = "ghp_e2e-token";
const NUMBER: u64 = 7;
/// bob's GitHub account, mapped to him by an operator.
const BOB_LOGIN: &str = "octobob";
const BOB_GITHUB_ID: u64 = 583231;
const JIRA_ISSUE: &str = "SEN-5";
const WEBHOOK: &str = "/extensions/github/webhook";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_syncs_between_github_and_jira_cloud_both_ways() -> anyhow::Result<()> {
    let jira = JiraSim::start(JiraAuth::basic("bot@example.com", "tok")).await?;
    let gh = GitHubSim::start(TOKEN).await?;
    gh.add_user(BOB_LOGIN, BOB_GITHUB_ID);
    gh.add_issue(NUMBER);
    let host = trackbridge_e2e::TestHost::start().await?;
    let api = host.api();
    let scenario = JiraScenario::setup(api, &jira).await?;
    // The e2e crate's plugin list predates this provider: it is uploaded the
    // way an operator adds a third-party plugin.
    let wasm = std::env::var_os(trackbridge_e2e::plugins::PLUGINS_DIR_ENV)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            trackbridge_e2e::plugins::workspace_root().join("target/plugins/wasm32-wasip2/release")
        })
        .join("trackbridge_plugin_github.wasm");
    let uploaded = api.install_plugin(&wasm).await?;
    ensure!(
        uploaded.status == 201 || uploaded.status == 200,
        "{} {}",
        uploaded.status,
        uploaded.text
    );

    let installed = api
        .install_integration(
            scenario.org,
            "github",
            &json!({"repository": format!("{OWNER}/{REPO}"), "api_url": gh.base_url(), "credential": {"type": "token", "token": TOKEN}}),
        )
        .await?;
    let github = id_of(&installed)?;
    ensure!(gh.hook_secret().is_some(), "installing created the hook");
    api.set_config(
        scenario.org,
        github,
        &json!({"sync_status_forward": true, "sync_status_reverse": true,
                "sync_forward_assignment": true, "sync_reverse_assignment": true,
                "resolution_strategy": "resolve"}),
    )
    .await?;
    api.post(
        &format!("/api/organizations/{}/identities", scenario.org),
        &json!({"integration_id": github, "external_id": BOB_GITHUB_ID.to_string(),
                "user_id": scenario.bob, "login": BOB_LOGIN}),
    )
    .await?
    .expect(201)?;
    let group = scenario.linked_group(api, JIRA_ISSUE).await?;
    let key = format!("{OWNER}/{REPO}#{NUMBER}");
    api.link_external_issue(group, github, &key).await?;
    let http = http_client();
    let issue_path = format!("/repos/{OWNER}/{REPO}/issues/{NUMBER}");

    // Jira → GitHub: bob is assigned, then the issue is resolved.
    let answer = deliver(
        &http,
        &host.base_url(),
        &scenario.assignee_event(JIRA_ISSUE, Some(BOB_EMAIL), 1_715_000_000_000),
        "jira-1",
    )
    .await?;
    ensure!(answer.status == 200, "{}", answer.text());
    api.wait_for_group(group, "assigned to bob", DEFAULT_WAIT, |g| {
        g["assignee"]["id"] == json!(scenario.bob)
    })
    .await?;
    gh.recorder()
        .wait_for_call("POST", &format!("{issue_path}/assignees"))
        .await?;
    ensure!(
        gh.issue(NUMBER).unwrap().assignees == [BOB_LOGIN],
        "{:?}",
        gh.issue(NUMBER)
    );

    let done = jira
        .done_status_ids()
        .into_iter()
        .next()
        .expect("a done status");
    let answer = deliver(
        &http,
        &host.base_url(),
        &scenario.status_event(JIRA_ISSUE, "1", &done, 1_715_000_001_000),
        "jira-2",
    )
    .await?;
    ensure!(answer.status == 200, "{}", answer.text());
    api.wait_for_group(group, "resolved", DEFAULT_WAIT, |g| {
        g["status"] == "resolved"
    })
    .await?;
    gh.recorder()
        .wait_for("the issue closed", DEFAULT_WAIT, |r| {
            r.is("PATCH", &issue_path) && r.completed()
        })
        .await?;
    let closed = gh.issue(NUMBER).unwrap();
    ensure!(
        closed.state == "closed" && closed.state_reason.as_deref() == Some("completed"),
        "{closed:?}"
    );

    // GitHub → Jira: a person reopens the issue, then takes bob off it.
    gh.set_state(NUMBER, "open");
    let (headers, body) = gh.delivery("reopened", NUMBER, "gh-1")?;
    let answer = host.post_raw(WEBHOOK, &headers, body).await?;
    ensure!(answer.status == 200, "{}", answer.text());
    api.wait_for_group(group, "unresolved", DEFAULT_WAIT, |g| {
        g["status"] == "unresolved"
    })
    .await?;
    jira.recorder()
        .wait_for_call(
            "POST",
            &format!("/rest/api/2/issue/{JIRA_ISSUE}/transitions"),
        )
        .await?;

    gh.set_assignees(NUMBER, &[]);
    let (headers, body) = gh.delivery("unassigned", NUMBER, "gh-2")?;
    let answer = host.post_raw(WEBHOOK, &headers, body.clone()).await?;
    ensure!(answer.status == 200, "{}", answer.text());
    api.wait_for_group(group, "unassigned", DEFAULT_WAIT, |g| {
        g["assignee"].is_null()
    })
    .await?;
    let put = jira
        .recorder()
        .wait_for_call("PUT", &format!("/rest/api/2/issue/{JIRA_ISSUE}/assignee"))
        .await?;
    ensure!(
        put.json()["accountId"].is_null(),
        "Jira unassigned: {}",
        put.summary()
    );

    // The same delivery again (a redelivery): accepted, nothing new reaches Jira.
    let answer = host.post_raw(WEBHOOK, &headers, body).await?;
    ensure!(answer.status == 200, "{}", answer.text());
    trackbridge_e2e::scenario::wait_queue_idle(api, DEFAULT_WAIT).await?;
    let puts = jira
        .recorder()
        .calls("PUT", &format!("/rest/api/2/issue/{JIRA_ISSUE}/assignee"));
    ensure!(puts.len() == 1, "{} assignee PUTs to Jira", puts.len());
    // A tampered delivery is refused.
    let (headers, mut body) = gh.delivery("closed", NUMBER, "gh-3")?;
    let at = body
        .windows(8)
        .position(|w| w == b"\"closed\"")
        .expect("the action");
    body[at + 1] = b'C';
    let answer = host.post_raw(WEBHOOK, &headers, body).await?;
    ensure!(answer.status == 401, "{} {}", answer.status, answer.text());
    host.shutdown().await;
    Ok(())
}
