//! End-to-end tests of the Azure DevOps (VSTS) integration: the host in-process with the built
//! plugin, driven only through its HTTP API and webhook route, against the Azure DevOps
//! simulator (`trackbridge_e2e::vsts_sim`).
//!
//! Every test has its own host, database and simulator. Outbound syncs run in the background, so
//! tests wait for their effect at the simulator with a deadline. Where a test asserts that a
//! webhook did *not* change anything, it then sends a valid "barrier" webhook with a visible
//! effect and waits for that, so anything the first request could have caused has happened by
//! then.

use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context as _, ensure};
use serde_json::{Value, json};
use trackbridge_e2e::vsts_sim::{
    COLLECTION_ID, FTOTTEN_EMAIL, OUTBOUND_WORK_ITEM, PROJECT_ID, VstsAuth, VstsSim,
    graph_users_path, subscriptions_path, work_item_path, work_item_types_prefix,
};
use trackbridge_e2e::{ApiClient, DEFAULT_WAIT, RawResponse, TestHost, fixture, id_of};

const PAT: &str = "azure-devops-personal-access-token";
const WEBHOOK: &str = "/extensions/vsts/issue-updated/";
/// Sentry's refusal text, with our name.
const CANNOT_COMMUNICATE: &str = "trackbridge cannot communicate with this Azure DevOps organization.\nPlease ensure third-party app access via OAuth is enabled \nin the organization's security policy.";
/// The assignee of `workitem_updated_assigned.json`.
const LAURYN_EMAIL: &str = "lauryn@sentry.io";

/// One host + one simulator + an installed integration with every sync switched on.
struct Env {
    host: TestHost,
    sim: VstsSim,
    org: i64,
    lauryn: i64,
    ftotten: i64,
    integration: Value,
    /// Linked to work item 31 (`workitem_updated_assigned.json`).
    group_31: i64,
    /// Linked to work item 33 (`workitem_updated_unassigned.json`, `workitem_updated_status.json`).
    groups_33: Vec<i64>,
    /// Linked to [`OUTBOUND_WORK_ITEM`].
    outbound_group: i64,
}

impl Env {
    async fn start() -> anyhow::Result<Env> {
        let sim = VstsSim::start(VstsAuth::Pat(PAT.into())).await?;
        let host = TestHost::start().await?;
        let api = host.api().clone();

        let org = id_of(&api.create_organization("Acme").await?)?;
        let project = id_of(&api.create_project(org, "backend").await?)?;
        let lauryn = id_of(&api.create_user("lauryn", &[(LAURYN_EMAIL, true)]).await?)?;
        // Azure DevOps knows her as ftotten@vscsi.us; the host's email differs in case.
        let ftotten = id_of(
            &api.create_user("francis", &[("FTotten@vscsi.us", true)])
                .await?,
        )?;
        let team = id_of(&api.create_team(org, "core").await?)?;
        api.add_team_project(team, project).await?;
        for user in [lauryn, ftotten] {
            api.add_member(org, user).await?;
            api.add_team_member(team, user, true).await?;
        }

        let integration = api
            .install_integration(org, "vsts", &install_input(&sim))
            .await?;
        let integration_id = id_of(&integration)?;
        api.set_config(
            org,
            integration_id,
            &json!({
                "sync_status_forward": {PROJECT_ID: {"on_resolve": "Resolved", "on_unresolve": "Active"}},
                "sync_status_reverse": true,
                "sync_forward_assignment": true,
                "sync_reverse_assignment": true,
                "resolution_strategy": "resolve"
            }),
        )
        .await?;

        let group_31 = id_of(&api.create_group(project, "NameError in bitbucket").await?)?;
        api.link_external_issue(group_31, integration_id, "31")
            .await?;
        let mut groups_33 = Vec::new();
        for i in 0..3 {
            let group = id_of(
                &api.create_group(project, &format!("NotImplementedError {i}"))
                    .await?,
            )?;
            api.link_external_issue(group, integration_id, "33").await?;
            groups_33.push(group);
        }
        let outbound_group = id_of(&api.create_group(project, "KeyError in billing").await?)?;
        api.link_external_issue(
            outbound_group,
            integration_id,
            &OUTBOUND_WORK_ITEM.to_string(),
        )
        .await?;

        Ok(Env {
            host,
            sim,
            org,
            lauryn,
            ftotten,
            integration,
            group_31,
            groups_33,
            outbound_group,
        })
    }

    fn api(&self) -> &ApiClient {
        self.host.api()
    }

    fn integration_id(&self) -> i64 {
        id_of(&self.integration).expect("integration id")
    }

    fn integration_path(&self) -> String {
        format!(
            "/api/organizations/{}/integrations/{}",
            self.org,
            self.integration_id()
        )
    }

    /// The secret the simulator's subscription sends in `shared-secret`.
    fn shared_secret(&self) -> anyhow::Result<String> {
        let subscriptions = self.sim.subscriptions();
        let body = subscriptions
            .values()
            .next()
            .context("the simulator has no subscription")?;
        let header = body["consumerInputs"]["httpHeaders"]
            .as_str()
            .context("no httpHeaders")?;
        Ok(header
            .strip_prefix("shared-secret:")
            .context("httpHeaders is not shared-secret:…")?
            .to_string())
    }

    /// POST raw `body` to the webhook route with these headers.
    async fn post_webhook(
        &self,
        headers: Vec<(&str, String)>,
        body: Vec<u8>,
    ) -> anyhow::Result<RawResponse> {
        let mut all = vec![("content-type", "application/json".to_string())];
        all.extend(headers);
        self.host.post_raw(WEBHOOK, &all, body).await
    }

    /// Deliver `payload` as the subscription would: with the right shared secret.
    async fn deliver(&self, payload: &Value) -> anyhow::Result<RawResponse> {
        let secret = self.shared_secret()?;
        self.post_webhook(
            vec![("shared-secret", secret)],
            serde_json::to_vec(payload)?,
        )
        .await
    }

    /// Deliver `payload` and require a 200 answer.
    async fn deliver_ok(&self, payload: &Value) -> anyhow::Result<RawResponse> {
        let response = self.deliver(payload).await?;
        ensure!(
            response.status == 200,
            "webhook answered {}: {}",
            response.status,
            response.text()
        );
        Ok(response)
    }

    /// Deliver "work item 33: Active → Resolved" and wait until its groups are resolved:
    /// everything delivered before has been processed by then.
    async fn resolve_barrier(&self) -> anyhow::Result<()> {
        self.deliver_ok(&status_payload(Some("Active"), "Resolved"))
            .await
            .context("barrier webhook")?;
        for group in &self.groups_33 {
            self.api()
                .wait_for_group(*group, "resolved (barrier webhook)", DEFAULT_WAIT, |g| {
                    g["status"] == "resolved"
                })
                .await
                .context("the barrier webhook (Active -> Resolved) was not applied")?;
        }
        Ok(())
    }

    async fn set_status(&self, group: i64, status: &str) -> anyhow::Result<()> {
        let body = self
            .api()
            .update_group(group, &json!({"status": status}))
            .await?
            .expect(200)?;
        ensure!(
            body["status"] == status,
            "group status not {status}: {body}"
        );
        Ok(())
    }

    async fn assign(&self, group: i64, user: Option<i64>) -> anyhow::Result<()> {
        let assigned_to = user.map(|u| format!("user:{u}"));
        let body = self
            .api()
            .update_group(group, &json!({"assignedTo": assigned_to}))
            .await?
            .expect(200)?;
        let expected = user.map_or(Value::Null, |u| json!({"type": "user", "id": u}));
        ensure!(body["assignee"] == expected, "group assignee: {body}");
        Ok(())
    }
}

fn install_input(sim: &VstsSim) -> Value {
    json!({
        "organization_url": sim.org_url(),
        "graph_url": sim.org_url(),
        "credential": {"type": "pat", "token": PAT}
    })
}

/// A fresh event id per delivery, so no two test deliveries look like retries of each other.
fn fresh_event_id(mut payload: Value) -> Value {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    payload["id"] = json!(format!("00000000-0000-4000-8000-{n:012}"));
    payload
}

/// `workitem_updated_status.json` (work item 33) with `System.State` from `old` to `new`.
fn status_payload(old: Option<&str>, new: &str) -> Value {
    let mut payload = fixture("sentry/vsts/workitem_updated_status.json");
    let mut change = json!({"newValue": new});
    if let Some(old) = old {
        change["oldValue"] = json!(old);
    }
    payload["resource"]["fields"]["System.State"] = change;
    fresh_event_id(payload)
}

fn user(id: i64) -> Value {
    json!({"type": "user", "id": id})
}

/// After a refused or ignored webhook: the groups of work item 33 are still unresolved and
/// unassigned, and once the barrier went through their only activity is its resolve; the
/// simulator saw no states lookup before the barrier and no write at all.
async fn assert_groups_33_untouched(env: &Env) -> anyhow::Result<()> {
    let api = env.api();
    for group in &env.groups_33 {
        let g = api.group(*group).await?;
        ensure!(g["status"] == "unresolved", "group status changed: {g}");
        ensure!(g["assignee"].is_null(), "group was assigned: {g}");
    }
    let recorder = env.sim.recorder();
    ensure!(
        recorder
            .matching(|r| r.path.starts_with(&work_item_types_prefix(PROJECT_ID)))
            .is_empty(),
        "the plugin read states for a webhook it should not process:\n{}",
        recorder.describe()
    );
    env.resolve_barrier().await?;
    for group in &env.groups_33 {
        let activity = api.activity_types(*group).await?;
        ensure!(
            activity == ["set_resolved"],
            "unexpected activity: {activity:?}"
        );
    }
    ensure!(
        recorder.matching(|r| r.method == "PATCH").is_empty(),
        "the simulator received writes:\n{}",
        recorder.describe()
    );
    Ok(())
}

fn expect_status(response: &RawResponse, status: u16) -> anyhow::Result<()> {
    ensure!(
        response.status == status,
        "expected {status}, got {}: {}",
        response.status,
        response.text()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Installation

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_creates_the_subscription_with_sentrys_body_and_a_hex_secret() -> anyhow::Result<()>
{
    let env = Env::start().await?;
    let recorder = env.sim.recorder();
    let posts = recorder.calls("POST", &subscriptions_path());
    ensure!(
        posts.len() == 1,
        "subscription POSTs:\n{}",
        recorder.describe()
    );
    let secret = env.shared_secret()?;
    ensure!(
        secret.len() == 64
            && secret
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "the secret is not 64 lowercase hex characters: {secret:?}"
    );
    let expected = json!({
        "publisherId": "tfs",
        "eventType": "workitem.updated",
        "resourceVersion": "1.0",
        "consumerId": "webHooks",
        "consumerActionId": "httpRequest",
        "consumerInputs": {
            "url": format!("{}/extensions/vsts/issue-updated/", env.host.base_url()),
            "resourceDetailsToSend": "all",
            "httpHeaders": format!("shared-secret:{secret}")
        }
    });
    ensure!(
        posts[0].json() == expected,
        "subscription body: {}",
        posts[0].summary()
    );
    for (name, value) in [
        ("accept", "application/json; api-version=4.1"),
        ("content-type", "application/json"),
        ("x-http-method-override", "POST"),
        ("x-tfs-fedauthredirect", "Suppress"),
    ] {
        ensure!(
            posts[0].header(name) == Some(value),
            "{name}: {:?}",
            posts[0].header(name)
        );
    }

    let subscription_id = env
        .sim
        .subscriptions()
        .keys()
        .next()
        .cloned()
        .context("id")?;
    let fetched = env.api().get(&env.integration_path()).await?;
    ensure!(fetched.status == 200, "GET integration: {}", fetched.text);
    ensure!(
        fetched.body["external_id"] == COLLECTION_ID && fetched.body["name"] == "acme",
        "integration: {}",
        fetched.text
    );
    ensure!(
        fetched.body["metadata"]["domain_name"] == env.sim.org_url()
            && fetched.body["metadata"]["subscription"] == json!({"id": subscription_id}),
        "metadata: {}",
        fetched.body["metadata"]
    );
    for text in [&fetched.text, &env.integration.to_string()] {
        ensure!(
            !text.contains(&secret) && !text.contains(PAT),
            "a secret is returned: {text}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reinstalling_reuses_the_existing_subscription_with_a_new_secret() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let old_secret = env.shared_secret()?;
    let api = env.api();
    let other_org = id_of(&api.create_organization("Other").await?)?;
    let again = api
        .install_integration(other_org, "vsts", &install_input(&env.sim))
        .await?;
    ensure!(
        id_of(&again)? == env.integration_id(),
        "a second integration was created: {again}"
    );
    let recorder = env.sim.recorder();
    ensure!(
        recorder.calls("POST", &subscriptions_path()).len() == 1,
        "a second subscription was created:\n{}",
        recorder.describe()
    );
    ensure!(
        again["metadata"]["subscription"] == env.integration["metadata"]["subscription"],
        "subscription changed: {} vs {}",
        again["metadata"],
        env.integration["metadata"]
    );
    let subscription = env.integration["metadata"]["subscription"]["id"]
        .as_str()
        .context("no subscription id")?;
    ensure!(
        recorder
            .calls("PUT", &format!("{}/{subscription}", subscriptions_path()))
            .len()
            == 1,
        "the subscription was not replaced:\n{}",
        recorder.describe()
    );
    // A plugin never sees a stored secret (contract 0.2.0), so the reused
    // subscription got a new one; it authenticates deliveries, the old one
    // no longer does.
    let new_secret = env.shared_secret()?;
    ensure!(new_secret != old_secret, "the subscription kept its secret");
    let refused = env
        .post_webhook(
            vec![("shared-secret", old_secret)],
            serde_json::to_vec(&status_payload(Some("Active"), "Resolved"))?,
        )
        .await?;
    ensure!(
        refused.status == 401,
        "the old secret was accepted: {}",
        refused.status
    );
    env.resolve_barrier().await
}

async fn refused_subscription(status: u16) -> anyhow::Result<()> {
    let sim = VstsSim::start(VstsAuth::Pat(PAT.into())).await?;
    sim.refuse_next_subscription(status);
    let host = TestHost::start().await?;
    let api = host.api();
    let org = id_of(&api.create_organization("Acme").await?)?;
    let response = api
        .post(
            &format!("/api/organizations/{org}/integrations"),
            &json!({"provider": "vsts", "input": install_input(&sim)}),
        )
        .await?;
    ensure!(
        response.status == 502,
        "expected 502, got {}: {}",
        response.status,
        response.text
    );
    let error = response.body["error"].as_str().unwrap_or("");
    ensure!(
        error.contains(CANNOT_COMMUNICATE),
        "not the clear error: {error:?}"
    );
    let refused = sim.recorder().calls("POST", &subscriptions_path());
    ensure!(
        refused.len() == 1 && refused[0].status == Some(status),
        "subscription calls:\n{}",
        sim.recorder().describe()
    );
    let listed = api
        .get(&format!("/api/organizations/{org}/integrations"))
        .await?
        .expect(200)?;
    ensure!(listed == json!([]), "something was stored: {listed}");
    ensure!(sim.subscriptions().is_empty(), "a subscription exists");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_refused_with_401_gives_the_clear_error_and_stores_nothing() -> anyhow::Result<()> {
    refused_subscription(401).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_refused_with_403_gives_the_clear_error_and_stores_nothing() -> anyhow::Result<()> {
    refused_subscription(403).await
}

// ---------------------------------------------------------------------------------------------
// Inbound webhooks

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_assigned_fixture_assigns_the_group_to_lauryn() -> anyhow::Result<()> {
    let env = Env::start().await?;
    env.deliver_ok(&fixture("sentry/vsts/workitem_updated_assigned.json"))
        .await?;
    let api = env.api();
    api.wait_for_group(env.group_31, "assigned to lauryn", DEFAULT_WAIT, |g| {
        g["assignee"] == user(env.lauryn)
    })
    .await?;
    let activity = api.activity_types(env.group_31).await?;
    ensure!(activity == ["assigned"], "activity: {activity:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_unassigned_fixture_unassigns_the_groups() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let group = env.groups_33[0];
    env.assign(group, Some(env.lauryn)).await?;
    env.deliver_ok(&fixture("sentry/vsts/workitem_updated_unassigned.json"))
        .await?;
    let api = env.api();
    api.wait_for_group(group, "unassigned", DEFAULT_WAIT, |g| {
        g["assignee"].is_null()
    })
    .await?;
    let activity = api.activity_types(group).await?;
    ensure!(
        activity == ["assigned", "unassigned"],
        "activity: {activity:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_status_active_to_resolved_resolves_every_linked_group() -> anyhow::Result<()> {
    let env = Env::start().await?;
    env.deliver_ok(&status_payload(Some("Active"), "Resolved"))
        .await?;
    let api = env.api();
    for group in &env.groups_33 {
        api.wait_for_group(*group, "resolved", DEFAULT_WAIT, |g| {
            g["status"] == "resolved"
        })
        .await?;
        let activity = api.activity_types(*group).await?;
        ensure!(activity == ["set_resolved"], "activity: {activity:?}");
    }
    let recorder = env.sim.recorder();
    let states = recorder.matching(|r| r.path.starts_with(&work_item_types_prefix(PROJECT_ID)));
    ensure!(
        states.first().is_some_and(|r| r
            .header("accept")
            .is_some_and(|a| a == "application/json; api-version=4.1-preview.1")
            && r.path.ends_with("/Bug/states")),
        "no preview states call for Bug:\n{}",
        recorder.describe()
    );
    let other = api.group(env.group_31).await?;
    ensure!(
        other["status"] == "unresolved",
        "another issue's group changed: {other}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_status_resolved_to_active_unresolves_the_groups() -> anyhow::Result<()> {
    let env = Env::start().await?;
    for group in &env.groups_33 {
        env.set_status(*group, "resolved").await?;
    }
    env.deliver_ok(&status_payload(Some("Resolved"), "Active"))
        .await?;
    let api = env.api();
    for group in &env.groups_33 {
        api.wait_for_group(*group, "unresolved", DEFAULT_WAIT, |g| {
            g["status"] == "unresolved"
        })
        .await?;
        let activity = api.activity_types(*group).await?;
        ensure!(
            activity == ["set_resolved", "set_unresolved"],
            "activity: {activity:?}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_new_work_item_leaves_an_unresolved_group_unchanged() -> anyhow::Result<()> {
    let env = Env::start().await?;
    // A new work item: no oldValue, state "New" (Sentry: UNRESOLVE, a no-op here).
    env.deliver_ok(&status_payload(None, "New")).await?;
    let api = env.api();
    for group in &env.groups_33 {
        let g = api.group(*group).await?;
        ensure!(g["status"] == "unresolved", "group changed: {g}");
    }
    env.resolve_barrier().await?;
    for group in &env.groups_33 {
        let activity = api.activity_types(*group).await?;
        ensure!(activity == ["set_resolved"], "activity: {activity:?}");
        let history = api.history_statuses(*group).await?;
        ensure!(history == ["resolved"], "history: {history:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_states_api_failure_turns_active_to_resolved_into_unresolve() -> anyhow::Result<()>
{
    let env = Env::start().await?;
    let group = env.groups_33[0];
    env.set_status(group, "resolved").await?;
    env.sim.fail_states(PROJECT_ID, 1);
    env.deliver_ok(&status_payload(Some("Active"), "Resolved"))
        .await?;
    env.api()
        .wait_for_group(group, "unresolved", DEFAULT_WAIT, |g| {
            g["status"] == "unresolved"
        })
        .await?;
    ensure!(
        env.sim.recorder().pending_faults() == 0,
        "the states call was not made"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_of_another_event_type_is_acknowledged_and_ignored() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let mut payload = status_payload(Some("Active"), "Resolved");
    payload["eventType"] = json!("workitem.created");
    // Nothing else is checked: not the collection, not the secret.
    payload["resourceContainers"]["collection"]["id"] = json!("some-other-collection");
    let response = env
        .post_webhook(vec![], serde_json::to_vec(&payload)?)
        .await?;
    expect_status(&response, 200)?;
    assert_groups_33_untouched(&env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_without_event_type_or_collection_is_refused_with_400() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let mut no_type = status_payload(Some("Active"), "Resolved");
    no_type
        .as_object_mut()
        .context("object")?
        .remove("eventType");
    let mut no_collection = status_payload(Some("Active"), "Resolved");
    no_collection["resourceContainers"]
        .as_object_mut()
        .context("object")?
        .remove("collection");
    for payload in [no_type, no_collection] {
        let response = env.deliver(&payload).await?;
        expect_status(&response, 400)?;
    }
    assert_groups_33_untouched(&env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_for_an_unknown_collection_is_refused_with_400() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let mut payload = status_payload(Some("Active"), "Resolved");
    payload["resourceContainers"]["collection"]["id"] = json!("not-an-installed-collection");
    let response = env.deliver(&payload).await?;
    expect_status(&response, 400)?;
    ensure!(
        response
            .json()
            .is_some_and(|b| b["error"] == "Integration does not exist."),
        "message: {}",
        response.text()
    );
    assert_groups_33_untouched(&env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_with_missing_or_wrong_shared_secret_is_refused_with_401() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let body = serde_json::to_vec(&status_payload(Some("Active"), "Resolved"))?;
    let mut wrong = env.shared_secret()?;
    wrong.replace_range(0..1, if wrong.starts_with('0') { "1" } else { "0" });
    for headers in [
        vec![],
        vec![("shared-secret", wrong)],
        vec![("shared-secret", String::new())],
    ] {
        let response = env.post_webhook(headers, body.clone()).await?;
        expect_status(&response, 401)?;
    }
    assert_groups_33_untouched(&env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_with_a_malformed_body_is_refused_with_400() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let secret = env.shared_secret()?;
    for body in [
        br#"{"eventType": "workitem.updated", "resourceContainers": "#.to_vec(),
        Vec::new(),
        b"[1, 2]".to_vec(),
    ] {
        let response = env
            .post_webhook(vec![("shared-secret", secret.clone())], body)
            .await?;
        expect_status(&response, 400)?;
    }
    assert_groups_33_untouched(&env).await
}

// ---------------------------------------------------------------------------------------------
// Outbound: group changes through the API reach Azure DevOps

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_resolve_patches_the_work_item_with_test_and_replace() -> anyhow::Result<()> {
    let env = Env::start().await?;
    env.set_status(env.outbound_group, "resolved").await?;
    let recorder = env.sim.recorder();
    let patch = recorder
        .wait_for_call("PATCH", &work_item_path(OUTBOUND_WORK_ITEM))
        .await?;
    ensure!(
        patch.json()
            == json!([
                {"op": "test", "path": "/rev", "value": 1},
                {"op": "replace", "path": "/fields/System.State", "value": "Resolved"}
            ]),
        "patch: {}",
        patch.summary()
    );
    ensure!(
        patch.status == Some(200),
        "patch refused: {}",
        patch.summary()
    );
    ensure!(
        patch.header("content-type") == Some("application/json-patch+json"),
        "content type: {:?}",
        patch.header("content-type")
    );
    let item = env.sim.work_item(OUTBOUND_WORK_ITEM).context("work item")?;
    ensure!(item.state == "Resolved", "work item: {item:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_resolve_after_a_concurrent_edit_replans_and_lands_in_the_right_state()
-> anyhow::Result<()> {
    let env = Env::start().await?;
    env.sim.bump_rev_before_next_patch(OUTBOUND_WORK_ITEM);
    env.set_status(env.outbound_group, "resolved").await?;
    let recorder = env.sim.recorder();
    let path = work_item_path(OUTBOUND_WORK_ITEM);
    let patches = recorder
        .wait_for_count("two PATCHes", 2, DEFAULT_WAIT, |r| r.is("PATCH", &path))
        .await?;
    ensure!(
        patches[0].status == Some(412)
            && patches[0].json()[0] == json!({"op": "test", "path": "/rev", "value": 1}),
        "first patch: {}",
        patches[0].summary()
    );
    ensure!(
        patches[1].status == Some(200)
            && patches[1].json()[0] == json!({"op": "test", "path": "/rev", "value": 2}),
        "second patch: {}",
        patches[1].summary()
    );
    let reads = recorder.calls("GET", &path);
    ensure!(
        reads.len() == 2 && reads[1].seq > patches[0].seq && reads[1].seq < patches[1].seq,
        "the work item was not read again between the patches:\n{}",
        recorder.describe()
    );
    let item = env.sim.work_item(OUTBOUND_WORK_ITEM).context("work item")?;
    ensure!(
        item.state == "Resolved" && item.rev == 3,
        "work item: {item:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_resolve_when_already_resolved_sends_no_patch() -> anyhow::Result<()> {
    let env = Env::start().await?;
    env.sim
        .edit_work_item(OUTBOUND_WORK_ITEM, Some("Resolved"), None);
    let recorder = env.sim.recorder();
    let path = work_item_path(OUTBOUND_WORK_ITEM);
    env.set_status(env.outbound_group, "resolved").await?;
    recorder.wait_for_call("GET", &path).await?;
    // Unresolving must patch; a PATCH the first sync wrongly made would have come first.
    env.set_status(env.outbound_group, "unresolved").await?;
    recorder.wait_for_call("PATCH", &path).await?;
    let values: Vec<Value> = recorder
        .calls("PATCH", &path)
        .iter()
        .map(|r| r.json()[1]["value"].clone())
        .collect();
    ensure!(values == [json!("Active")], "patches: {values:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_assign_patches_the_graph_users_mail_address() -> anyhow::Result<()> {
    let env = Env::start().await?;
    env.assign(env.outbound_group, Some(env.ftotten)).await?;
    let recorder = env.sim.recorder();
    let patch = recorder
        .wait_for_call("PATCH", &work_item_path(OUTBOUND_WORK_ITEM))
        .await?;
    ensure!(
        patch.json()
            == json!([{"op": "replace", "path": "/fields/System.AssignedTo", "value": FTOTTEN_EMAIL}]),
        "patch: {}",
        patch.summary()
    );
    let lookups = recorder.calls("GET", &graph_users_path());
    ensure!(
        lookups.len() == 1
            && lookups[0].query_param("continuationToken").is_none()
            && lookups[0].header("accept") == Some("application/json; api-version=4.1-preview.1"),
        "graph lookups:\n{}",
        recorder.describe()
    );
    let item = env.sim.work_item(OUTBOUND_WORK_ITEM).context("work item")?;
    ensure!(
        item.assigned_to.as_deref() == Some(FTOTTEN_EMAIL),
        "work item: {item:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_assign_pages_graph_users_with_continuation_tokens() -> anyhow::Result<()> {
    let env = Env::start().await?;
    env.sim.set_graph_page_size(2);
    env.assign(env.outbound_group, Some(env.ftotten)).await?;
    let recorder = env.sim.recorder();
    let patch = recorder
        .wait_for_call("PATCH", &work_item_path(OUTBOUND_WORK_ITEM))
        .await?;
    ensure!(
        patch.json()[0]["value"] == FTOTTEN_EMAIL,
        "patch: {}",
        patch.summary()
    );
    let lookups = recorder.calls("GET", &graph_users_path());
    ensure!(
        lookups.len() == 2
            && lookups[0].query_param("continuationToken").is_none()
            && lookups[1].query_param("continuationToken").as_deref() == Some("page:2"),
        "graph lookups:\n{}",
        recorder.describe()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_unassign_patches_a_remove_op() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let recorder = env.sim.recorder();
    let path = work_item_path(OUTBOUND_WORK_ITEM);
    env.assign(env.outbound_group, Some(env.ftotten)).await?;
    recorder.wait_for_call("PATCH", &path).await?;
    env.assign(env.outbound_group, None).await?;
    let patches = recorder
        .wait_for_count("two PATCHes", 2, DEFAULT_WAIT, |r| r.is("PATCH", &path))
        .await?;
    ensure!(
        patches[1].json() == json!([{"op": "remove", "path": "/fields/System.AssignedTo"}]),
        "patch: {}",
        patches[1].summary()
    );
    ensure!(
        patches[1].status == Some(200),
        "refused: {}",
        patches[1].summary()
    );
    let item = env.sim.work_item(OUTBOUND_WORK_ITEM).context("work item")?;
    ensure!(item.assigned_to.is_none(), "work item: {item:?}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Uninstallation

async fn delete(env: &Env, query: &str) -> anyhow::Result<trackbridge_e2e::ApiResponse> {
    env.api()
        .request(
            reqwest::Method::DELETE,
            &format!("{}{query}", env.integration_path()),
            None,
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uninstall_deletes_the_subscription() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let id = env
        .sim
        .subscriptions()
        .keys()
        .next()
        .cloned()
        .context("id")?;
    let response = delete(&env, "").await?;
    ensure!(
        response.status == 204,
        "uninstall: {} {}",
        response.status,
        response.text
    );
    let recorder = env.sim.recorder();
    let deletes = recorder.calls("DELETE", &format!("{}/{id}", subscriptions_path()));
    ensure!(
        deletes.len() == 1 && deletes[0].status == Some(204),
        "subscription DELETEs:\n{}",
        recorder.describe()
    );
    ensure!(
        env.sim.subscriptions().is_empty(),
        "the subscription still exists"
    );
    let fetched = env.api().get(&env.integration_path()).await?;
    ensure!(
        fetched.status == 404,
        "integration still there: {}",
        fetched.text
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uninstall_with_the_tracker_down_is_502_and_kept_unless_forced() -> anyhow::Result<()> {
    let mut env = Env::start().await?;
    env.sim.shutdown();
    let response = delete(&env, "").await?;
    ensure!(
        response.status == 502,
        "uninstall: {} {}",
        response.status,
        response.text
    );
    let fetched = env.api().get(&env.integration_path()).await?;
    ensure!(fetched.status == 200, "integration gone: {}", fetched.text);

    let forced = delete(&env, "?force=true").await?;
    ensure!(
        forced.status == 204,
        "forced uninstall: {} {}",
        forced.status,
        forced.text
    );
    let fetched = env.api().get(&env.integration_path()).await?;
    ensure!(
        fetched.status == 404,
        "integration still there: {}",
        fetched.text
    );
    Ok(())
}
