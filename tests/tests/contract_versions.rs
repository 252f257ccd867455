//! Contract 0.2.0 end to end: the built-in Jira Cloud provider (a workflow)
//! and the `tasks` test provider (open/closed, `tests/plugins/tasks`) in one
//! host, each through its webhook and outbound paths; people as
//! identities resolved by the host (verified email, else the operator's
//! mapping, else recorded as unmatched); secrets a 0.2.0 plugin uses through
//! handles without ever seeing them; and the open/closed status model, which
//! needs no mapping.

use std::time::Duration;

use anyhow::{Context, ensure};
use serde_json::{Value, json};
use trackbridge_e2e::host::everything_stored;
use trackbridge_e2e::jira_sim::{JiraAuth, JiraSim};
use trackbridge_e2e::scenario::{BOB_EMAIL, JiraScenario, signed_webhook, wait_queue_idle};
use trackbridge_e2e::tasks_sim::{
    TASKS_WEBHOOK, TasksSim, assignee_path, event_body, issue_path, jwt_webhook, tasks_user,
    webhook,
};
use trackbridge_e2e::test_plugins::{plugins_dir_with, test_plugin};
use trackbridge_e2e::webhook::JIRA_ISSUE_UPDATED;
use trackbridge_e2e::{RawResponse, TestHost, id_of};
use trackbridge_host::store::sealing::SecretKeys;

const CANARY_TOKEN: &str = "canary-tasks-token-7d2e91c4";
const CANARY_HOOK_SECRET: &str = "canary-tasks-hook-secret-41b7a0";
const WORKSPACE: &str = "acme";
const QUEUE_WAIT: Duration = Duration::from_secs(20);
const SEN5_TRANSITIONS: &str = "/rest/api/2/issue/SEN-5/transitions";

/// A host serving the built-in plugins and `tasks`; an organization with bob
/// and both a Jira Cloud and a Tasks installation, every sync switch on.
struct World {
    host: TestHost,
    _plugins: tempfile::TempDir,
    jira: JiraSim,
    tasks: TasksSim,
    scenario: JiraScenario,
    tasks_integration: i64,
}

impl World {
    async fn start() -> anyhow::Result<World> {
        let wasm =
            tokio::task::spawn_blocking(|| test_plugin("trackbridge-test-plugin-tasks")).await?;
        let plugins = tokio::task::spawn_blocking(move || plugins_dir_with(&[wasm])).await??;
        let dir = plugins.path().to_path_buf();
        // Secrets sealed at rest, so the database is one place a canary must not be found.
        let host = TestHost::start_with(move |s| {
            s.plugins_dir = dir;
            s.secret_keys = SecretKeys::from_bytes(&[[5; 32]]);
        })
        .await?;
        let jira = JiraSim::start(JiraAuth::basic("bot@example.com", "tok")).await?;
        let tasks = TasksSim::start(CANARY_TOKEN).await?;
        let api = host.api();
        let scenario = JiraScenario::setup(api, &jira).await?;
        let input = json!({
            "base_url": tasks.base_url(),
            "api_token": CANARY_TOKEN,
            "workspace": WORKSPACE,
            "webhook_secret": CANARY_HOOK_SECRET,
        });
        let tasks_integration = id_of(
            &api.install_integration(scenario.org, "tasks", &input)
                .await?,
        )?;
        api.set_config(
            scenario.org,
            tasks_integration,
            &json!({
                "sync_status_forward": true,
                "sync_status_reverse": true,
                "sync_forward_assignment": true,
                "sync_reverse_assignment": true,
            }),
        )
        .await?;
        Ok(World {
            host,
            _plugins: plugins,
            jira,
            tasks,
            scenario,
            tasks_integration,
        })
    }

    /// A group linked to the Tasks issue `key` (which the tracker has, open).
    async fn tasks_group(&self, key: &str) -> anyhow::Result<i64> {
        let api = self.host.api();
        let group = id_of(&api.create_group(self.scenario.project, key).await?)?;
        api.link_external_issue(group, self.tasks_integration, key)
            .await?;
        self.tasks.put_issue(key);
        Ok(group)
    }

    /// Deliver a signed Tasks webhook.
    async fn deliver(&self, delivery: &str, body: &Value) -> anyhow::Result<RawResponse> {
        let (headers, body) = webhook(CANARY_HOOK_SECRET, WORKSPACE, delivery, body);
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
        self.host.post_raw(TASKS_WEBHOOK, &headers, body).await
    }

    /// A member `name` of the organization who can see its project, with a
    /// verified email `<name>@example.com`.
    async fn member(&self, name: &str) -> anyhow::Result<i64> {
        let api = self.host.api();
        let email = format!("{name}@example.com");
        let user = id_of(&api.create_user(name, &[(&email, true)]).await?)?;
        api.add_member(self.scenario.org, user).await?;
        api.add_team_member(self.scenario.team, user, true).await?;
        Ok(user)
    }

    /// Map the Tasks user `external` to `user`.
    async fn map(&self, external: &str, login: &str, user: i64) -> anyhow::Result<()> {
        self.host
            .api()
            .post(
                &format!("/api/organizations/{}/identities", self.scenario.org),
                &json!({"integration_id": self.tasks_integration, "external_id": external,
                        "user_id": user, "login": login}),
            )
            .await?
            .expect(201)?;
        Ok(())
    }

    /// The finished webhook jobs of the Tasks integration, newest first.
    async fn webhook_notes(&self) -> anyhow::Result<Vec<String>> {
        let jobs = self
            .host
            .api()
            .get(&format!(
                "/api/jobs?integration={}&limit=100",
                self.tasks_integration
            ))
            .await?
            .expect(200)?;
        Ok(jobs
            .as_array()
            .context("jobs")?
            .iter()
            .filter(|j| j["kind"] == "webhook")
            .filter_map(|j| j["note"].as_str().map(str::to_owned))
            .collect())
    }
}

fn assignee_of(group: &Value) -> Value {
    group["assignee"]["id"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_and_an_open_closed_provider_sync_one_group_both_ways() -> anyhow::Result<()> {
    let w = World::start().await?;
    let api = w.host.api();
    let plugins = api.get("/api/plugins").await?.expect(200)?;
    let contract = |name: &str| {
        plugins
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == name))
            .map(|p| p["contract"].clone())
    };
    // Both on 0.2.0 since the built-in plugins moved; a 0.1.0 component
    // beside a 0.2.0 one is `contract_v0_1_0.rs`'s test.
    ensure!(
        contract("jira") == Some(json!("trackbridge:plugin@0.2.0"))
            && contract("tasks") == Some(json!("trackbridge:plugin@0.2.0")),
        "{plugins}"
    );

    // One group, linked to a Jira issue and a Tasks issue.
    let group = w.scenario.linked_group(api, "SEN-5").await?;
    api.link_external_issue(group, w.tasks_integration, "T-1")
        .await?;
    w.tasks.put_issue("T-1");

    // Open/closed inbound → workflow outbound: Tasks closes T-1; the group
    // resolves and Jira (with the project's status mapping) is moved, Tasks
    // is not echoed.
    let closed = w
        .deliver("d-close", &event_body("closed", "T-1", None, 1_000))
        .await?;
    ensure!(closed.status == 200, "{} {}", closed.status, closed.text());
    api.wait_for_group(group, "resolved", QUEUE_WAIT, |g| g["status"] == "resolved")
        .await?;
    let transition = w
        .jira
        .recorder()
        .wait_for_call("POST", SEN5_TRANSITIONS)
        .await?;
    ensure!(transition.completed(), "{}", transition.summary());
    wait_queue_idle(api, QUEUE_WAIT).await?;
    ensure!(
        w.tasks
            .recorder()
            .calls("PATCH", &issue_path("T-1"))
            .is_empty(),
        "no echo to the tracker the change came from"
    );

    // Jira inbound (a verified email) → Tasks outbound: Jira assigns SEN-5
    // to bob; Tasks gets bob as the identity an operator mapped for him there.
    w.map("42", "bobcat", w.scenario.bob).await?;
    let payload = w.scenario.assignee_event("SEN-5", Some(BOB_EMAIL), 2_000);
    let (headers, body) = signed_webhook(&payload, "jira-assign-1");
    let headers: Vec<(&str, String)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    let assigned = w.host.post_raw(JIRA_ISSUE_UPDATED, &headers, body).await?;
    ensure!(assigned.status == 200, "{}", assigned.text());
    api.wait_for_group(group, "assigned to bob", QUEUE_WAIT, |g| {
        assignee_of(g) == json!(w.scenario.bob)
    })
    .await?;
    let put = w
        .tasks
        .recorder()
        .wait_for_call("PUT", &assignee_path("T-1"))
        .await?;
    ensure!(put.json() == json!({"id": 42}), "{}", put.json());
    ensure!(
        put.header("authorization") == Some(&format!("Bearer {CANARY_TOKEN}")),
        "the stand-in became the token on the way to the tracker"
    );
    ensure!(
        w.tasks.issue("T-1").and_then(|(_, a)| a) == Some(json!({"id": 42})),
        "the tracker's issue is bob's"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_less_assignee_is_matched_through_a_mapping_and_an_unmatched_one_changes_nothing()
-> anyhow::Result<()> {
    let w = World::start().await?;
    let api = w.host.api();
    let carol = w.member("carol").await?;
    w.map("77", "carol-t", carol).await?;
    let group = w.tasks_group("T-2").await?;

    // Tasks names a user by id only: the mapping finds carol.
    let no_email = tasks_user(77, "carol-t", "Carol", None, false);
    let r = w
        .deliver("d-1", &event_body("assigned", "T-2", Some(no_email), 1_000))
        .await?;
    ensure!(r.status == 200, "{}", r.text());
    api.wait_for_group(group, "carol's", QUEUE_WAIT, |g| {
        assignee_of(g) == json!(carol)
    })
    .await?;

    // Someone nobody mapped, then bob's address unverified by the tracker:
    // neither resolves, and neither unassigns.
    let stranger = tasks_user(99, "stranger", "Stranger", None, false);
    let unverified = tasks_user(55, "bob-t", "Bob", Some(BOB_EMAIL), false);
    for (delivery, person, time) in [("d-2", stranger, 2_000), ("d-3", unverified, 3_000)] {
        let r = w
            .deliver(delivery, &event_body("assigned", "T-2", Some(person), time))
            .await?;
        ensure!(r.status == 200, "{}", r.text());
        // One at a time: were the newer applied first, the older would be stale.
        wait_queue_idle(api, QUEUE_WAIT).await?;
    }
    let now = api.group(group).await?;
    ensure!(assignee_of(&now) == json!(carol), "still carol's: {now}");
    let unmatched: Vec<Value> = api
        .activity(group)
        .await?
        .into_iter()
        .filter(|a| a["type"] == "assignee_unmatched")
        .collect();
    ensure!(
        unmatched.len() == 2
            && unmatched
                .iter()
                .any(|a| a["data"]["externalUser"] == "99" && a["data"]["login"] == "stranger"),
        "{unmatched:?}"
    );
    let notes = w.webhook_notes().await?;
    ensure!(
        notes
            .iter()
            .any(|n| n.contains("assignee not matched") && n.contains("99 (stranger)")),
        "the job says who was not matched: {notes:?}"
    );

    // The same address, verified by the tracker: bob.
    let verified = tasks_user(56, "bob-t", "Bob", Some(BOB_EMAIL), true);
    w.deliver("d-4", &event_body("assigned", "T-2", Some(verified), 4_000))
        .await?;
    api.wait_for_group(group, "bob's", QUEUE_WAIT, |g| {
        assignee_of(g) == json!(w.scenario.bob)
    })
    .await?;
    // An unassignment is one when the tracker says so.
    w.deliver("d-5", &event_body("unassigned", "T-2", None, 5_000))
        .await?;
    api.wait_for_group(group, "unassigned", QUEUE_WAIT, |g| g["assignee"].is_null())
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolving_and_unresolving_reach_an_open_closed_tracker_without_any_mapping()
-> anyhow::Result<()> {
    let w = World::start().await?;
    let api = w.host.api();
    let config_path = format!(
        "/api/organizations/{}/integrations/{}/config",
        w.scenario.org, w.tasks_integration
    );
    // A mapping table means nothing to open/closed issues.
    let refused = api
        .put(
            &config_path,
            &json!({"sync_status_forward": {"P": {"on_resolve": "a", "on_unresolve": "b"}}}),
        )
        .await?;
    ensure!(
        refused.status == 400 && refused.text.contains("open or closed"),
        "{} {}",
        refused.status,
        refused.text
    );
    let config = api.put(&config_path, &json!({})).await?.expect(200)?;
    ensure!(config["sync_status_forward"] == true, "{config}");

    let group = w.tasks_group("T-3").await?;
    for (status, state) in [("resolved", "closed"), ("unresolved", "open")] {
        api.update_group(group, &json!({"status": status}))
            .await?
            .expect(200)?;
        w.tasks
            .recorder()
            .wait_for(&format!("PATCH to {state}"), QUEUE_WAIT, |r| {
                r.is("PATCH", &issue_path("T-3")) && r.json()["state"] == state && r.completed()
            })
            .await?;
        ensure!(
            w.tasks.issue("T-3").map(|(s, _)| s).as_deref() == Some(state),
            "T-3 is {state}"
        );
    }
    wait_queue_idle(api, QUEUE_WAIT).await?;
    let jobs = api
        .get(&format!(
            "/api/jobs?integration={}&limit=100",
            w.tasks_integration
        ))
        .await?
        .expect(200)?;
    let notes: Vec<&str> = jobs
        .as_array()
        .context("jobs")?
        .iter()
        .filter(|j| j["kind"] == "sync_status")
        .filter_map(|j| j["note"].as_str())
        .collect();
    ensure!(
        notes.len() == 2 && notes.iter().all(|n| !n.contains("mappings")),
        "the plugin was given no mapping: {notes:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_0_2_0_plugin_uses_its_secrets_without_seeing_them_and_they_reach_only_its_tracker()
-> anyhow::Result<()> {
    trackbridge_e2e::logs::init();
    let w = World::start().await?;
    let api = w.host.api();
    let group = w.tasks_group("T-4").await?;

    // HMAC verification through a handle: one altered byte is refused.
    let body = event_body("closed", "T-4", None, 1_000);
    let (headers, mut bytes) = webhook(CANARY_HOOK_SECRET, WORKSPACE, "s-1", &body);
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
    // JWT verification through a handle: an expired token is refused, a fresh one taken.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let expired = jwt_webhook(
        CANARY_HOOK_SECRET,
        WORKSPACE,
        "s-2",
        &json!({"iss": "tasks", "exp": now - 600}),
        &body,
    );
    let refused = w.post(expired.0, expired.1).await?;
    ensure!(
        refused.status == 401 && refused.text().contains("expired"),
        "{} {}",
        refused.status,
        refused.text()
    );
    let fresh = jwt_webhook(
        CANARY_HOOK_SECRET,
        WORKSPACE,
        "s-3",
        &json!({"iss": "tasks", "exp": now + 600}),
        &body,
    );
    let taken = w.post(fresh.0, fresh.1).await?;
    ensure!(taken.status == 200, "{} {}", taken.status, taken.text());
    // The secret sent as it is, compared through its handle.
    let plain = |token: &str, delivery: &str| {
        let (mut headers, bytes) = webhook("not-the-secret", WORKSPACE, delivery, &body);
        headers.retain(|(k, _)| k != "x-tasks-signature");
        headers.push(("x-tasks-token".into(), token.into()));
        (headers, bytes)
    };
    let (h, b) = plain(&format!("{CANARY_HOOK_SECRET}x"), "s-5");
    let wrong = w.post(h, b).await?;
    ensure!(wrong.status == 401, "{} {}", wrong.status, wrong.text());
    let (h, b) = plain(CANARY_HOOK_SECRET, "s-6");
    let right = w.post(h, b).await?;
    ensure!(right.status == 200, "{} {}", right.status, right.text());
    api.wait_for_group(group, "resolved", QUEUE_WAIT, |g| g["status"] == "resolved")
        .await?;

    // The plugin logs all it can see of its integration and its secrets.
    let inspect = w
        .deliver("s-4", &event_body("inspect", "T-4", None, 2_000))
        .await?;
    ensure!(inspect.status == 200, "{}", inspect.text());
    // Outbound: the token goes to the tracker, through a stand-in.
    api.update_group(group, &json!({"status": "unresolved"}))
        .await?
        .expect(200)?;
    let patch = w
        .tasks
        .recorder()
        .wait_for_call("PATCH", &issue_path("T-4"))
        .await?;
    ensure!(
        patch.header("authorization") == Some(&format!("Bearer {CANARY_TOKEN}")),
        "{}",
        patch.summary()
    );
    wait_queue_idle(api, QUEUE_WAIT).await?;
    let seen_by_plugin = trackbridge_e2e::logs::lines_with("inspect:");
    ensure!(
        seen_by_plugin
            .iter()
            .any(|l| l.contains("secret api_token stand-in tbsecret-"))
            && seen_by_plugin
                .iter()
                .any(|l| l.contains("current integration Some")),
        "the plugin logged what it sees: {seen_by_plugin:?}"
    );
    let uses = trackbridge_e2e::logs::lines_with("plugin used a secret");
    ensure!(
        uses.iter().any(|l| l.contains("hmac-sha256-verify"))
            && uses.iter().any(|l| l.contains("jwt-hs256-verify"))
            && uses
                .iter()
                .any(|l| l.contains("\"matches\"") || l.contains("=matches"))
            && uses.iter().any(|l| l.contains("stand-in")),
        "each secret operation is logged: {uses:?}"
    );

    let mut seen = vec![(
        "the host's log, the plugin's lines among them".to_owned(),
        trackbridge_e2e::logs::lines_with("").join("\n"),
    )];
    for path in [
        format!("/api/organizations/{}/integrations", w.scenario.org),
        format!("/api/jobs?integration={}&limit=100", w.tasks_integration),
        "/api/plugins".to_owned(),
    ] {
        seen.push((path.clone(), api.get(&path).await?.text));
    }
    seen.push(("/metrics".into(), api.metrics().await?));
    let database = w.host.stop().await;
    let stored = everything_stored(&database).await?;
    ensure!(stored.contains("T-4"), "the search reads the stored rows");
    seen.push(("the database".into(), stored));
    for (place, text) in &seen {
        for canary in [CANARY_TOKEN, CANARY_HOOK_SECRET] {
            ensure!(!text.contains(canary), "{canary} found in {place}");
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_asking_for_upkeep_gets_one_maintain_call_per_interval_until_uninstalled()
-> anyhow::Result<()> {
    let w = World::start().await?;
    let api = w.host.api();
    let upkeep = |r: &trackbridge_e2e::RecordedRequest| r.is("POST", "/api/maintenance");
    // `tasks` asks for upkeep every second: calls come about a second apart.
    let calls = w
        .tasks
        .recorder()
        .wait_for_count("three upkeep calls", 3, QUEUE_WAIT, upkeep)
        .await?;
    for pair in calls.windows(2) {
        let gap = pair[1].received_at - pair[0].received_at;
        ensure!(
            gap >= Duration::from_millis(200),
            "one call per interval, not more: {gap:?} apart"
        );
    }
    ensure!(
        calls
            .iter()
            .all(|c| c.header("authorization") == Some(&format!("Bearer {CANARY_TOKEN}"))),
        "upkeep acts for the integration, with its credentials"
    );
    let jobs = api
        .get(&format!(
            "/api/jobs?integration={}&kind=maintain&limit=100",
            w.tasks_integration
        ))
        .await?
        .expect(200)?;
    ensure!(
        jobs.as_array().is_some_and(|j| j
            .iter()
            .any(|j| j["state"] == "done" && j["note"] == "upkeep done")),
        "each upkeep is a job: {jobs}"
    );
    // The other providers (Jira) ask for none.
    let all = api
        .get("/api/jobs?kind=maintain&limit=1000")
        .await?
        .expect(200)?;
    ensure!(
        all.as_array()
            .is_some_and(|j| j.iter().all(|j| j["integration_id"] == w.tasks_integration)),
        "{all}"
    );

    // Uninstalled, the integration gets no more upkeep.
    let path = format!(
        "/api/organizations/{}/integrations/{}",
        w.scenario.org, w.tasks_integration
    );
    let removed = api.request(reqwest::Method::DELETE, &path, None).await?;
    ensure!(
        removed.status == 204 || removed.status == 200,
        "{} {}",
        removed.status,
        removed.text
    );
    wait_queue_idle(api, QUEUE_WAIT).await?;
    let before = w.tasks.recorder().matching(upkeep).len();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let after = w.tasks.recorder().matching(upkeep).len();
    ensure!(
        after == before,
        "{} upkeep calls after uninstalling",
        after - before
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_sharing_postgresql_run_each_upkeep_interval_once() -> anyhow::Result<()> {
    use trackbridge_e2e::process::HostProcess;
    use trackbridge_e2e::scenario::jobs;
    // Several processes need PostgreSQL, whatever database the run uses.
    let database = trackbridge_e2e::TestDatabase::postgres().await?;
    let wasm = tokio::task::spawn_blocking(|| test_plugin("trackbridge-test-plugin-tasks")).await?;
    let plugins = tokio::task::spawn_blocking(move || plugins_dir_with(&[wasm])).await??;
    let env = [
        ("TB_PLUGINS_DIR", plugins.path().display().to_string()),
        ("TB_JOB_POLL_SECS", "0.05".to_owned()),
    ];
    let binary = env!("CARGO_BIN_EXE_host-process");
    let a = HostProcess::start(binary, database.url(), &env).await?;
    let b = HostProcess::start(binary, database.url(), &env).await?;
    let api = a.api().clone();
    let tasks = TasksSim::start(CANARY_TOKEN).await?;
    let org = api.org_with_member("bob", BOB_EMAIL).await?.org;
    let input = json!({"base_url": tasks.base_url(), "api_token": CANARY_TOKEN,
                       "workspace": WORKSPACE, "webhook_secret": CANARY_HOOK_SECRET});
    let integration = id_of(&api.install_integration(org, "tasks", &input).await?)?;

    let upkeep = |r: &trackbridge_e2e::RecordedRequest| r.is("POST", "/api/maintenance");
    let started = std::time::Instant::now();
    let first = tasks
        .recorder()
        .wait_for_count("an upkeep call", 1, QUEUE_WAIT, upkeep)
        .await?;
    let from = first[0].received_at;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let calls: Vec<_> = tasks
        .recorder()
        .matching(upkeep)
        .into_iter()
        .filter(|r| r.received_at >= from)
        .collect();
    let window = started.elapsed().as_secs() + 1;
    // Both processes schedule every second; each interval is one job.
    ensure!(
        calls.len() >= 3 && calls.len() as u64 <= window,
        "{} upkeep calls in about {window} intervals",
        calls.len()
    );
    let written = jobs(&api, &format!("kind=maintain&integration={integration}")).await?;
    let mut keys: Vec<&str> = written
        .iter()
        .filter_map(|j| j["dedup_key"].as_str())
        .collect();
    let total = keys.len();
    keys.sort_unstable();
    keys.dedup();
    ensure!(
        keys.len() == total && total >= calls.len(),
        "one job per interval: {written:?}"
    );
    drop((a, b));
    Ok(())
}
