//! A component built against the frozen contract 0.1.0 without the SDK
//! (`tests/plugins/tasks-legacy`), served beside a 0.2.0 one (`tests/plugins/tasks`)
//! for the same fake tracker, so the suite keeps a 0.1.0 component once the SDK
//! and the built-in plugins have moved on. What 0.1.0 is promised
//! (`docs/contract.md`): its integration record carries its secrets (sealed at
//! rest, handed to it in plain text), a person is an email address (matched
//! as a verified email, else recorded as unmatched), and its status model is
//! a workflow (`sync-status` gets the operator's status mappings).

use std::time::Duration;

use anyhow::{Context, ensure};
use serde_json::{Value, json};
use trackbridge_e2e::jira_sim::{JiraAuth, JiraSim};
use trackbridge_e2e::scenario::{BOB_EMAIL, JiraScenario, wait_queue_idle};
use trackbridge_e2e::tasks_sim::{
    TASKS_LEGACY_WEBHOOK, TasksSim, assignee_path, event_body, issue_path, tasks_user, webhook,
};
use trackbridge_e2e::test_plugins::{plugins_dir_with, test_plugin};
use trackbridge_e2e::{RawResponse, TestHost, id_of};
use trackbridge_host::store::sealing::SecretKeys;

const LEGACY_TOKEN: &str = "legacy-tasks-token-5c81e0";
const LEGACY_HOOK_SECRET: &str = "legacy-tasks-hook-secret-93fa27";
const LEGACY_WORKSPACE: &str = "legacy";
const TASKS_TOKEN: &str = "tasks-token-0d4b6a";
const TASKS_WORKSPACE: &str = "acme";
const QUEUE_WAIT: Duration = Duration::from_secs(20);

/// A host serving the built-in plugins, `tasks-legacy` (0.1.0) and `tasks`
/// (0.2.0), with secrets sealed at rest; an organization with bob and a
/// Jira, a legacy Tasks and a Tasks installation, every sync switch on. Each
/// Tasks installation has a simulator of its own, so every request shows
/// which plugin sent it.
struct World {
    host: TestHost,
    _plugins: tempfile::TempDir,
    _jira: JiraSim,
    legacy: TasksSim,
    tasks: TasksSim,
    scenario: JiraScenario,
    legacy_integration: i64,
    tasks_integration: i64,
}

impl World {
    async fn start() -> anyhow::Result<World> {
        let wasm = tokio::task::spawn_blocking(|| {
            [
                test_plugin("trackbridge-test-plugin-tasks-legacy"),
                test_plugin("trackbridge-test-plugin-tasks"),
            ]
        })
        .await?;
        let plugins = tokio::task::spawn_blocking(move || plugins_dir_with(&wasm)).await??;
        let dir = plugins.path().to_path_buf();
        let host = TestHost::start_with(move |s| {
            s.plugins_dir = dir;
            s.secret_keys = SecretKeys::from_bytes(&[[9; 32]]);
        })
        .await?;
        let jira = JiraSim::start(JiraAuth::basic("bot@example.com", "tok")).await?;
        let legacy = TasksSim::start(LEGACY_TOKEN).await?;
        let tasks = TasksSim::start(TASKS_TOKEN).await?;
        let api = host.api();
        let scenario = JiraScenario::setup(api, &jira).await?;
        let flags = json!({
            "sync_status_reverse": true,
            "sync_forward_assignment": true,
            "sync_reverse_assignment": true,
        });

        let legacy_integration = id_of(
            &api.install_integration(
                scenario.org,
                "tasks-legacy",
                &json!({
                    "base_url": legacy.base_url(),
                    "api_token": LEGACY_TOKEN,
                    "workspace": LEGACY_WORKSPACE,
                    "webhook_secret": LEGACY_HOOK_SECRET,
                }),
            )
            .await?,
        )?;
        // A workflow provider: outbound status sync is a mapping (the plugin
        // needs one to exist and ignores its project key).
        let mut config = flags.clone();
        config["sync_status_forward"] =
            json!({"acme-project": {"on_resolve": "closed", "on_unresolve": "open"}});
        api.set_config(scenario.org, legacy_integration, &config)
            .await?;

        let tasks_integration = id_of(
            &api.install_integration(
                scenario.org,
                "tasks",
                &json!({
                    "base_url": tasks.base_url(),
                    "api_token": TASKS_TOKEN,
                    "workspace": TASKS_WORKSPACE,
                }),
            )
            .await?,
        )?;
        // Open/closed: a switch.
        let mut config = flags;
        config["sync_status_forward"] = json!(true);
        api.set_config(scenario.org, tasks_integration, &config)
            .await?;

        Ok(World {
            host,
            _plugins: plugins,
            _jira: jira,
            legacy,
            tasks,
            scenario,
            legacy_integration,
            tasks_integration,
        })
    }

    /// A group linked to the legacy Tasks issue `key` (which that tracker has, open).
    async fn legacy_group(&self, key: &str) -> anyhow::Result<i64> {
        let api = self.host.api();
        let group = id_of(&api.create_group(self.scenario.project, key).await?)?;
        api.link_external_issue(group, self.legacy_integration, key)
            .await?;
        self.legacy.put_issue(key);
        Ok(group)
    }

    /// Deliver a Tasks webhook signed with the legacy installation's secret.
    async fn deliver(&self, delivery: &str, body: &Value) -> anyhow::Result<RawResponse> {
        let (headers, body) = webhook(LEGACY_HOOK_SECRET, LEGACY_WORKSPACE, delivery, body);
        self.post(headers, body).await
    }

    async fn post(
        &self,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> anyhow::Result<RawResponse> {
        let headers: Vec<(&str, String)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        self.host
            .post_raw(TASKS_LEGACY_WEBHOOK, &headers, body)
            .await
    }

    /// The notes of the legacy integration's finished jobs of `kind`.
    async fn notes(&self, kind: &str) -> anyhow::Result<Vec<String>> {
        let jobs = self
            .host
            .api()
            .get(&format!(
                "/api/jobs?integration={}&limit=100",
                self.legacy_integration
            ))
            .await?
            .expect(200)?;
        Ok(jobs
            .as_array()
            .context("jobs")?
            .iter()
            .filter(|j| j["kind"] == kind)
            .filter_map(|j| j["note"].as_str().map(str::to_owned))
            .collect())
    }
}

fn assignee_of(group: &Value) -> Value {
    group["assignee"]["id"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_0_1_0_component_still_receives_its_secrets_and_serves_beside_a_0_2_0_one()
-> anyhow::Result<()> {
    let w = World::start().await?;
    let api = w.host.api();
    let plugins = api.get("/api/plugins").await?.expect(200)?;
    let contract = |name: &str| {
        plugins
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == name))
            .map(|p| p["contract"].clone())
    };
    ensure!(
        contract("tasks-legacy") == Some(json!("trackbridge:plugin@0.1.0"))
            && contract("tasks") == Some(json!("trackbridge:plugin@0.2.0")),
        "{plugins}"
    );

    // One group, linked to a legacy Tasks issue and a Tasks issue.
    let group = w.legacy_group("L-1").await?;
    api.link_external_issue(group, w.tasks_integration, "T-1")
        .await?;
    w.tasks.put_issue("T-1");

    // 0.1.0 inbound, verified with the secret the plugin read from its record:
    // the tracker names bob by his email, and the group is his (0.1.0 has no
    // way to say whether the tracker verified it: the host counts it as verified).
    let bob = tasks_user(7, "bob-l", "Bob", Some(BOB_EMAIL), false);
    let assigned = w
        .deliver("l-1", &event_body("assigned", "L-1", Some(bob), 1_000))
        .await?;
    ensure!(
        assigned.status == 200,
        "{} {}",
        assigned.status,
        assigned.text()
    );
    api.wait_for_group(group, "assigned to bob", QUEUE_WAIT, |g| {
        assignee_of(g) == json!(w.scenario.bob)
    })
    .await?;
    // → 0.2.0 outbound: Tasks gets bob (no identity mapped: by his email).
    let put = w
        .tasks
        .recorder()
        .wait_for_call("PUT", &assignee_path("T-1"))
        .await?;
    ensure!(put.json() == json!({"email": BOB_EMAIL}), "{}", put.json());
    ensure!(
        put.header("authorization") == Some(&format!("Bearer {TASKS_TOKEN}")),
        "{}",
        put.summary()
    );
    wait_queue_idle(api, QUEUE_WAIT).await?;
    ensure!(
        w.legacy
            .recorder()
            .calls("PUT", &assignee_path("L-1"))
            .is_empty(),
        "no echo to the tracker the change came from"
    );

    // One altered byte, and the signature the plugin checks no longer holds.
    let (headers, mut bytes) = webhook(
        LEGACY_HOOK_SECRET,
        LEGACY_WORKSPACE,
        "l-2",
        &event_body("unassigned", "L-1", None, 2_000),
    );
    if let Some(b) = bytes.last_mut() {
        *b ^= 0x01;
    }
    let altered = w.post(headers, bytes).await?;
    ensure!(
        altered.status == 401,
        "{} {}",
        altered.status,
        altered.text()
    );
    // Signed with another secret: refused too.
    let (headers, bytes) = webhook(
        "not-the-secret",
        LEGACY_WORKSPACE,
        "l-3",
        &event_body("unassigned", "L-1", None, 2_000),
    );
    let forged = w.post(headers, bytes).await?;
    ensure!(forged.status == 401, "{} {}", forged.status, forged.text());
    let now = api.group(group).await?;
    ensure!(
        assignee_of(&now) == json!(w.scenario.bob),
        "still bob's: {now}"
    );

    // 0.1.0 outbound: the plugin sends the API token it read from its record.
    api.update_group(group, &json!({"status": "resolved"}))
        .await?
        .expect(200)?;
    let patch = w
        .legacy
        .recorder()
        .wait_for_call("PATCH", &issue_path("L-1"))
        .await?;
    ensure!(
        patch.header("authorization") == Some(&format!("Bearer {LEGACY_TOKEN}")),
        "{}",
        patch.summary()
    );
    ensure!(
        patch.json() == json!({"state": "closed"}),
        "{}",
        patch.json()
    );
    ensure!(
        w.legacy.issue("L-1").map(|(s, _)| s).as_deref() == Some("closed"),
        "the legacy tracker's issue is closed"
    );
    // And the 0.2.0 one is closed beside it.
    w.tasks
        .recorder()
        .wait_for("PATCH T-1 to closed", QUEUE_WAIT, |r| {
            r.is("PATCH", &issue_path("T-1")) && r.json()["state"] == "closed"
        })
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_0_1_0_provider_gets_the_status_mappings_and_a_0_1_0_person_is_an_email()
-> anyhow::Result<()> {
    let w = World::start().await?;
    let api = w.host.api();
    let group = w.legacy_group("L-2").await?;
    let unmatched = |activity: &[Value]| -> Vec<Value> {
        activity
            .iter()
            .filter(|a| a["type"] == "assignee_unmatched")
            .cloned()
            .collect()
    };

    let bob = tasks_user(7, "bob-l", "Bob", Some(BOB_EMAIL), false);
    let r = w
        .deliver("m-1", &event_body("assigned", "L-2", Some(bob), 1_000))
        .await?;
    ensure!(r.status == 200, "{}", r.text());
    api.wait_for_group(group, "bob's", QUEUE_WAIT, |g| {
        assignee_of(g) == json!(w.scenario.bob)
    })
    .await?;

    // Someone Tasks names without an email: 0.1.0 cannot name them, so
    // there is no event at all.
    let no_email = tasks_user(8, "ghost", "Ghost", None, false);
    let r = w
        .deliver("m-2", &event_body("assigned", "L-2", Some(no_email), 2_000))
        .await?;
    ensure!(r.status == 200, "{}", r.text());
    wait_queue_idle(api, QUEUE_WAIT).await?;
    let now = api.group(group).await?;
    ensure!(
        assignee_of(&now) == json!(w.scenario.bob),
        "still bob's: {now}"
    );
    let activity = api.activity(group).await?;
    ensure!(unmatched(&activity).is_empty(), "{activity:?}");
    let notes = w.notes("webhook").await?;
    ensure!(
        notes.iter().any(|n| n.starts_with("0 event(s) applied")),
        "the delivery had no event: {notes:?}"
    );

    // An email no user has: the group keeps its assignee, and the activity
    // names the person by that email.
    let stranger = "stranger@example.com";
    let person = tasks_user(9, "stranger", "Stranger", Some(stranger), true);
    let r = w
        .deliver("m-3", &event_body("assigned", "L-2", Some(person), 3_000))
        .await?;
    ensure!(r.status == 200, "{}", r.text());
    wait_queue_idle(api, QUEUE_WAIT).await?;
    let now = api.group(group).await?;
    ensure!(
        assignee_of(&now) == json!(w.scenario.bob),
        "still bob's: {now}"
    );
    let activity = api.activity(group).await?;
    let unmatched = unmatched(&activity);
    ensure!(
        unmatched.len() == 1
            && unmatched[0]["data"]["externalUser"] == stranger
            && unmatched[0]["data"]["integration"] == w.legacy_integration,
        "{unmatched:?}"
    );

    // The status mappings reach the plugin, which syncs only with one.
    for (status, state) in [("resolved", "closed"), ("unresolved", "open")] {
        api.update_group(group, &json!({"status": status}))
            .await?
            .expect(200)?;
        w.legacy
            .recorder()
            .wait_for(&format!("PATCH to {state}"), QUEUE_WAIT, |r| {
                r.is("PATCH", &issue_path("L-2")) && r.json()["state"] == state
            })
            .await?;
        ensure!(
            w.legacy.issue("L-2").map(|(s, _)| s).as_deref() == Some(state),
            "L-2 is {state}"
        );
    }
    wait_queue_idle(api, QUEUE_WAIT).await?;
    let notes = w.notes("sync_status").await?;
    ensure!(
        notes.len() == 2 && notes.iter().all(|n| n == "changed: true"),
        "the plugin was given the mapping: {notes:?}"
    );
    Ok(())
}
