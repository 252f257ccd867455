//! End-to-end tests of the Jira Cloud integration: the host in-process with the built Jira
//! plugin, driven only through its HTTP API and webhook route, against the Jira Cloud simulator.
//!
//! Every test has its own host, database and simulator. Outbound syncs and (possibly) inbound
//! processing run in the background, so tests wait for the effect with a deadline. Where a test
//! asserts that something did *not* happen after a webhook, it first sends a valid "barrier"
//! webhook with a different, visible effect and waits for that, so anything the first request
//! could have caused would have happened by then.

use anyhow::{Context as _, ensure};
use serde_json::{Value, json};
use trackbridge_e2e::jira_sim::{BOB_ACCOUNT_ID, JiraAuth, JiraSim};
use trackbridge_e2e::webhook::{ConnectToken, JIRA_ISSUE_UPDATED, hub_signature};
use trackbridge_e2e::{
    ApiClient, DEFAULT_WAIT, OrgWithMember, RawResponse, TestHost, fixture, id_of,
};

const CLIENT_KEY: &str = "testserver.jira:123";
const SHARED_SECRET: &str = "shared-super-secret";
const APP_KEY: &str = "trackbridge.jira";
const BOT_EMAIL: &str = "bot@example.com";
const API_TOKEN: &str = "tok";
const WEBHOOK_SECRET: &str = "hub-secret-for-admin-webhooks";
/// Bob's verified email in the host; Jira stores it as `Bob@example.com`.
const BOB_EMAIL: &str = "bob@example.com";

/// Issue linked to the group the inbound tests change.
const INBOUND_ISSUE: &str = "APP-123";
/// Issue linked to the group the outbound tests change (project 10100 has a status mapping).
const OUTBOUND_ISSUE: &str = "SEN-5";

const SEN5_TRANSITIONS: &str = "/rest/api/2/issue/SEN-5/transitions";
const SEN5_ASSIGNEE: &str = "/rest/api/2/issue/SEN-5/assignee";
const USER_EMAIL: &str = "/rest/api/3/user/email";

/// How Jira reaches the host, and with it how the integration is installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    /// Atlassian Connect: the plugin calls Jira with JWTs, Jira sends JWT-signed webhooks.
    Connect,
    /// API token for calls to Jira, admin webhooks signed with `X-Hub-Signature`.
    AdminWebhook,
}

/// One host + one simulator, set up as the brief describes.
struct Env {
    scheme: Scheme,
    host: TestHost,
    jira: JiraSim,
    org: i64,
    bob: i64,
    integration: Value,
    /// Linked to `APP-123`.
    inbound_group: i64,
    /// Linked to `SEN-5`.
    outbound_group: i64,
}

impl Env {
    async fn start(scheme: Scheme) -> anyhow::Result<Env> {
        let auth = match scheme {
            Scheme::Connect => JiraAuth::connect(SHARED_SECRET, APP_KEY),
            Scheme::AdminWebhook => JiraAuth::basic(BOT_EMAIL, API_TOKEN),
        };
        let jira = JiraSim::start(auth).await?;
        let host = TestHost::start().await?;
        let api = host.api().clone();

        let OrgWithMember {
            org,
            project,
            user: bob,
            ..
        } = api.org_with_member("bob", BOB_EMAIL).await?;

        let input = match scheme {
            Scheme::Connect => json!({
                "base_url": jira.base_url(),
                "credential": {
                    "type": "connect",
                    "client_key": CLIENT_KEY,
                    "shared_secret": SHARED_SECRET,
                    "app_key": APP_KEY
                }
            }),
            Scheme::AdminWebhook => json!({
                "base_url": jira.base_url(),
                "credential": {"type": "api_token", "email": BOT_EMAIL, "api_token": API_TOKEN},
                "webhook_secret": WEBHOOK_SECRET
            }),
        };
        let integration = api.install_integration(org, "jira", &input).await?;
        let integration_id = id_of(&integration)?;
        api.set_config(
            org,
            integration_id,
            &json!({
                "sync_status_forward": {"10100": {"on_resolve": "10101", "on_unresolve": "3"}},
                "sync_status_reverse": true,
                "sync_forward_assignment": true,
                "sync_reverse_assignment": true,
                "resolution_strategy": "resolve"
            }),
        )
        .await?;

        let inbound_group = id_of(&api.create_group(project, "TypeError in checkout").await?)?;
        api.link_external_issue(inbound_group, integration_id, INBOUND_ISSUE)
            .await?;
        let outbound_group = id_of(&api.create_group(project, "KeyError in billing").await?)?;
        api.link_external_issue(outbound_group, integration_id, OUTBOUND_ISSUE)
            .await?;

        Ok(Env {
            scheme,
            host,
            jira,
            org,
            bob,
            integration,
            inbound_group,
            outbound_group,
        })
    }

    fn api(&self) -> &ApiClient {
        self.host.api()
    }

    fn integration_id(&self) -> i64 {
        id_of(&self.integration).expect("integration id")
    }

    /// POST `body` to the Jira webhook route with these headers.
    async fn post_webhook(
        &self,
        headers: Vec<(&str, String)>,
        body: Vec<u8>,
    ) -> anyhow::Result<RawResponse> {
        let mut all = vec![("content-type", "application/json".to_string())];
        all.extend(headers);
        self.host.post_raw(JIRA_ISSUE_UPDATED, &all, body).await
    }

    /// Deliver `payload` as a correctly signed webhook of this env's scheme.
    async fn deliver(&self, payload: &Value) -> anyhow::Result<RawResponse> {
        match self.scheme {
            Scheme::Connect => {
                let body = serde_json::to_vec(payload)?;
                self.post_webhook(vec![("authorization", valid_connect_header())], body)
                    .await
            }
            Scheme::AdminWebhook => {
                let body = serde_json::to_vec(&self.with_issue_self(payload.clone()))?;
                let signature = hub_signature(WEBHOOK_SECRET, &body);
                self.post_webhook(vec![("x-hub-signature", signature)], body)
                    .await
            }
        }
    }

    /// Deliver `payload` and require a 2xx answer.
    async fn deliver_ok(&self, payload: &Value) -> anyhow::Result<RawResponse> {
        let response = self.deliver(payload).await?;
        ensure!(
            (200..300).contains(&response.status),
            "webhook answered {}: {}",
            response.status,
            response.text()
        );
        Ok(response)
    }

    /// Admin webhooks name their site through `issue.self`.
    fn with_issue_self(&self, mut payload: Value) -> Value {
        payload["issue"]["self"] =
            json!(format!("{}/rest/api/2/issue/10000", self.jira.base_url()));
        payload
    }

    /// Send a valid "In Progress → Done" webhook for APP-123 and wait until the inbound group is
    /// resolved: everything delivered before it has been processed by then.
    async fn resolve_barrier(&self) -> anyhow::Result<()> {
        self.deliver_ok(&status_payload("3", "In Progress", "10101", "Done"))
            .await
            .context("barrier webhook")?;
        self.api()
            .wait_for_group(
                self.inbound_group,
                "resolved (barrier webhook)",
                DEFAULT_WAIT,
                |g| g["status"] == "resolved",
            )
            .await
            .context("the barrier webhook (status 3 -> 10101) was not applied")?;
        Ok(())
    }

    /// Assign `group` to bob through the API and wait for the group to show it.
    async fn assign_to_bob(&self, group: i64) -> anyhow::Result<()> {
        let response = self
            .api()
            .update_group(group, &json!({"assignedTo": format!("user:{}", self.bob)}))
            .await?;
        let body = response.expect(200)?;
        ensure!(
            body["assignee"] == json!({"type": "user", "id": self.bob}),
            "group not assigned to bob: {body}"
        );
        Ok(())
    }

    /// Set `group`'s status through the API.
    async fn set_status(&self, group: i64, status: &str) -> anyhow::Result<Value> {
        let body = self
            .api()
            .update_group(group, &json!({"status": status}))
            .await?
            .expect(200)?;
        ensure!(
            body["status"] == status,
            "group status not {status}: {body}"
        );
        Ok(body)
    }
}

fn valid_connect_header() -> String {
    ConnectToken::for_request(CLIENT_KEY, "POST", JIRA_ISSUE_UPDATED, "").header(SHARED_SECRET)
}

/// `edit_issue_assignee_payload.json` (APP-123) with the assignee's `emailAddress` set.
fn assignee_payload(email: &str) -> Value {
    let mut payload = fixture("sentry/jira/edit_issue_assignee_payload.json");
    payload["issue"]["fields"]["assignee"]["emailAddress"] = json!(email);
    payload
}

/// `edit_issue_status_payload.json` (APP-123) moving from `from` to `to`.
fn status_payload(from: &str, from_name: &str, to: &str, to_name: &str) -> Value {
    let mut payload = fixture("sentry/jira/edit_issue_status_payload.json");
    let item = &mut payload["changelog"]["items"][0];
    item["from"] = json!(from);
    item["fromString"] = json!(from_name);
    item["to"] = json!(to);
    item["toString"] = json!(to_name);
    payload
}

fn bob_assignee(env: &Env) -> Value {
    json!({"type": "user", "id": env.bob})
}

/// After a webhook that must have changed nothing: the inbound group is still unassigned and
/// unresolved right away, and once a barrier webhook went through, its only activity and history
/// are the barrier's resolve; the simulator saw no email lookup and no write.
async fn assert_inbound_group_untouched(env: &Env) -> anyhow::Result<()> {
    let api = env.api();
    let group = api.group(env.inbound_group).await?;
    ensure!(group["assignee"].is_null(), "group was assigned: {group}");
    ensure!(
        group["status"] == "unresolved",
        "group status changed: {group}"
    );
    env.resolve_barrier().await?;
    let group = api.group(env.inbound_group).await?;
    ensure!(group["assignee"].is_null(), "group was assigned: {group}");
    let activity = api.activity_types(env.inbound_group).await?;
    ensure!(
        activity == ["set_resolved"],
        "unexpected activity: {activity:?}"
    );
    let history = api.history_statuses(env.inbound_group).await?;
    ensure!(history == ["resolved"], "unexpected history: {history:?}");
    let recorder = env.jira.recorder();
    ensure!(
        recorder.calls("GET", USER_EMAIL).is_empty(),
        "the plugin looked up an email for a refused webhook:\n{}",
        recorder.describe()
    );
    ensure!(
        recorder
            .matching(|r| r.method == "PUT" || r.method == "POST")
            .is_empty(),
        "the simulator received writes:\n{}",
        recorder.describe()
    );
    Ok(())
}

/// A webhook payload that, if processed, would look up the assignee's hidden email (the
/// simulator would record it) and assign the inbound group to bob.
fn hidden_email_assignee_payload() -> Value {
    assignee_payload("")
}

// ---------------------------------------------------------------------------------------------
// Inbound, Atlassian Connect JWT

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_webhook_assignee_with_email_assigns_group_to_bob() -> anyhow::Result<()> {
    let env = Env::start(Scheme::Connect).await?;
    env.deliver_ok(&assignee_payload(BOB_EMAIL)).await?;

    let api = env.api();
    api.wait_for_group(env.inbound_group, "assigned to bob", DEFAULT_WAIT, |g| {
        g["assignee"] == bob_assignee(&env)
    })
    .await?;
    let activity = api.activity_types(env.inbound_group).await?;
    ensure!(activity == ["assigned"], "activity: {activity:?}");
    let history = api.history_statuses(env.inbound_group).await?;
    ensure!(history == ["assigned"], "history: {history:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_webhook_assignee_with_hidden_email_looks_it_up_and_assigns_bob()
-> anyhow::Result<()> {
    let env = Env::start(Scheme::Connect).await?;
    env.deliver_ok(&assignee_payload("")).await?;

    let lookup = env.jira.recorder().wait_for_call("GET", USER_EMAIL).await?;
    ensure!(
        lookup.query_param("accountId").as_deref() == Some(BOB_ACCOUNT_ID),
        "email looked up for the wrong account: {}",
        lookup.summary()
    );
    ensure!(
        lookup.status == Some(200),
        "email lookup was refused: {}",
        lookup.summary()
    );
    let api = env.api();
    api.wait_for_group(env.inbound_group, "assigned to bob", DEFAULT_WAIT, |g| {
        g["assignee"] == bob_assignee(&env)
    })
    .await?;
    let activity = api.activity_types(env.inbound_group).await?;
    ensure!(activity == ["assigned"], "activity: {activity:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_webhook_null_assignee_deassigns_group() -> anyhow::Result<()> {
    let env = Env::start(Scheme::Connect).await?;
    env.assign_to_bob(env.inbound_group).await?;
    env.deliver_ok(&fixture("sentry/jira/edit_issue_no_assignee_payload.json"))
        .await?;

    let api = env.api();
    api.wait_for_group(env.inbound_group, "unassigned", DEFAULT_WAIT, |g| {
        g["assignee"].is_null()
    })
    .await?;
    let activity = api.activity_types(env.inbound_group).await?;
    ensure!(
        activity == ["assigned", "unassigned"],
        "activity: {activity:?}"
    );
    let history = api.history_statuses(env.inbound_group).await?;
    ensure!(
        history == ["assigned", "unassigned"],
        "history: {history:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_webhook_missing_assignee_deassigns_group() -> anyhow::Result<()> {
    let env = Env::start(Scheme::Connect).await?;
    env.assign_to_bob(env.inbound_group).await?;
    env.deliver_ok(&fixture(
        "sentry/jira/edit_issue_assignee_missing_payload.json",
    ))
    .await?;

    let api = env.api();
    api.wait_for_group(env.inbound_group, "unassigned", DEFAULT_WAIT, |g| {
        g["assignee"].is_null()
    })
    .await?;
    let activity = api.activity_types(env.inbound_group).await?;
    ensure!(
        activity == ["assigned", "unassigned"],
        "activity: {activity:?}"
    );
    let history = api.history_statuses(env.inbound_group).await?;
    ensure!(
        history == ["assigned", "unassigned"],
        "history: {history:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_webhook_status_done_to_in_progress_unresolves_group() -> anyhow::Result<()> {
    let env = Env::start(Scheme::Connect).await?;
    env.set_status(env.inbound_group, "resolved").await?;
    // The fixture as recorded: 10101 "Done" -> 3 "In Progress".
    env.deliver_ok(&fixture("sentry/jira/edit_issue_status_payload.json"))
        .await?;

    let api = env.api();
    api.wait_for_group(env.inbound_group, "unresolved", DEFAULT_WAIT, |g| {
        g["status"] == "unresolved"
    })
    .await?;
    let activity = api.activity_types(env.inbound_group).await?;
    ensure!(
        activity == ["set_resolved", "set_unresolved"],
        "activity: {activity:?}"
    );
    let history = api.history_statuses(env.inbound_group).await?;
    ensure!(
        history == ["resolved", "unresolved"],
        "history: {history:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_webhook_status_in_progress_to_done_resolves_group() -> anyhow::Result<()> {
    let env = Env::start(Scheme::Connect).await?;
    env.deliver_ok(&status_payload("3", "In Progress", "10101", "Done"))
        .await?;

    let api = env.api();
    api.wait_for_group(env.inbound_group, "resolved", DEFAULT_WAIT, |g| {
        g["status"] == "resolved"
    })
    .await?;
    let activity = api.activity_types(env.inbound_group).await?;
    ensure!(activity == ["set_resolved"], "activity: {activity:?}");
    let history = api.history_statuses(env.inbound_group).await?;
    ensure!(history == ["resolved"], "history: {history:?}");
    // The plugin learnt that 10101 is "done" from the status list.
    env.jira
        .recorder()
        .wait_for_call("GET", "/rest/api/2/status")
        .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Inbound, admin webhooks with X-Hub-Signature

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_webhook_full_payload_assigns_group_to_bob() -> anyhow::Result<()> {
    let env = Env::start(Scheme::AdminWebhook).await?;
    // A full-size Jira Cloud delivery for SEN-5, assigned to Jess; make the assignee Bob.
    let mut payload = fixture("composed/jira_cloud_issue_updated_full.json");
    payload["issue"]["fields"]["assignee"]["emailAddress"] = json!(BOB_EMAIL);
    payload["issue"]["fields"]["assignee"]["accountId"] = json!(BOB_ACCOUNT_ID);
    env.deliver_ok(&payload).await?;

    let api = env.api();
    api.wait_for_group(env.outbound_group, "assigned to bob", DEFAULT_WAIT, |g| {
        g["assignee"] == bob_assignee(&env)
    })
    .await?;
    let activity = api.activity_types(env.outbound_group).await?;
    ensure!(activity == ["assigned"], "activity: {activity:?}");
    let history = api.history_statuses(env.outbound_group).await?;
    ensure!(history == ["assigned"], "history: {history:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_webhook_null_assignee_deassigns_group() -> anyhow::Result<()> {
    let env = Env::start(Scheme::AdminWebhook).await?;
    env.assign_to_bob(env.inbound_group).await?;
    env.deliver_ok(&fixture("sentry/jira/edit_issue_no_assignee_payload.json"))
        .await?;

    let api = env.api();
    api.wait_for_group(env.inbound_group, "unassigned", DEFAULT_WAIT, |g| {
        g["assignee"].is_null()
    })
    .await?;
    let activity = api.activity_types(env.inbound_group).await?;
    ensure!(
        activity == ["assigned", "unassigned"],
        "activity: {activity:?}"
    );
    let history = api.history_statuses(env.inbound_group).await?;
    ensure!(
        history == ["assigned", "unassigned"],
        "history: {history:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_webhook_status_in_progress_to_done_resolves_group() -> anyhow::Result<()> {
    let env = Env::start(Scheme::AdminWebhook).await?;
    env.deliver_ok(&status_payload("3", "In Progress", "10101", "Done"))
        .await?;

    let api = env.api();
    api.wait_for_group(env.inbound_group, "resolved", DEFAULT_WAIT, |g| {
        g["status"] == "resolved"
    })
    .await?;
    let activity = api.activity_types(env.inbound_group).await?;
    ensure!(activity == ["set_resolved"], "activity: {activity:?}");
    let history = api.history_statuses(env.inbound_group).await?;
    ensure!(history == ["resolved"], "history: {history:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_webhook_status_done_to_in_progress_unresolves_group() -> anyhow::Result<()> {
    let env = Env::start(Scheme::AdminWebhook).await?;
    env.set_status(env.inbound_group, "resolved").await?;
    env.deliver_ok(&fixture("sentry/jira/edit_issue_status_payload.json"))
        .await?;

    let api = env.api();
    api.wait_for_group(env.inbound_group, "unresolved", DEFAULT_WAIT, |g| {
        g["status"] == "unresolved"
    })
    .await?;
    let activity = api.activity_types(env.inbound_group).await?;
    ensure!(
        activity == ["set_resolved", "set_unresolved"],
        "activity: {activity:?}"
    );
    let history = api.history_statuses(env.inbound_group).await?;
    ensure!(
        history == ["resolved", "unresolved"],
        "history: {history:?}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Inbound, refused or ignored deliveries

/// Send the hidden-email assignee payload with `authorization` and expect a 409 JSON answer.
async fn expect_connect_refusal(env: &Env, authorization: Option<String>) -> anyhow::Result<()> {
    let body = serde_json::to_vec(&hidden_email_assignee_payload())?;
    let headers = authorization
        .map(|a| vec![("authorization", a)])
        .unwrap_or_default();
    let response = env.post_webhook(headers, body).await?;
    ensure!(
        response.status == 409,
        "expected 409, got {}: {}",
        response.status,
        response.text()
    );
    ensure!(
        response.json().is_some(),
        "the 409 answer is not JSON: {:?}",
        response.text()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_webhook_with_bad_signature_is_refused_with_409() -> anyhow::Result<()> {
    let env = Env::start(Scheme::Connect).await?;
    let token = ConnectToken::for_request(CLIENT_KEY, "POST", JIRA_ISSUE_UPDATED, "");
    expect_connect_refusal(&env, Some(token.header("not-the-shared-secret"))).await?;
    assert_inbound_group_untouched(&env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_webhook_with_wrong_qsh_is_refused_with_409() -> anyhow::Result<()> {
    let env = Env::start(Scheme::Connect).await?;
    // Signed correctly, but for a GET of another path.
    let token = ConnectToken::for_request(CLIENT_KEY, "GET", "/extensions/jira/configure/", "a=1");
    expect_connect_refusal(&env, Some(token.header(SHARED_SECRET))).await?;
    assert_inbound_group_untouched(&env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_webhook_with_expired_token_is_refused_with_409() -> anyhow::Result<()> {
    let env = Env::start(Scheme::Connect).await?;
    let mut token = ConnectToken::for_request(CLIENT_KEY, "POST", JIRA_ISSUE_UPDATED, "");
    // Expired ten minutes ago: well beyond a 60 s leeway.
    token.iat -= 780;
    token.exp = token.iat + 180;
    expect_connect_refusal(&env, Some(token.header(SHARED_SECRET))).await?;
    assert_inbound_group_untouched(&env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_webhook_from_unknown_issuer_is_refused_with_409() -> anyhow::Result<()> {
    let env = Env::start(Scheme::Connect).await?;
    let token = ConnectToken::for_request("someone-else.jira:999", "POST", JIRA_ISSUE_UPDATED, "");
    expect_connect_refusal(&env, Some(token.header(SHARED_SECRET))).await?;
    assert_inbound_group_untouched(&env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_webhook_without_token_is_refused_with_409() -> anyhow::Result<()> {
    let env = Env::start(Scheme::Connect).await?;
    // The Connect path is chosen by the Authorization header; one without a token.
    expect_connect_refusal(&env, Some("JWT".to_string())).await?;
    assert_inbound_group_untouched(&env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_webhook_with_bad_signature_is_refused_with_401() -> anyhow::Result<()> {
    let env = Env::start(Scheme::AdminWebhook).await?;
    let body = serde_json::to_vec(&env.with_issue_self(hidden_email_assignee_payload()))?;
    let signature = hub_signature("not-the-webhook-secret", &body);
    let response = env
        .post_webhook(vec![("x-hub-signature", signature)], body)
        .await?;
    ensure!(
        response.status == 401,
        "expected 401, got {}: {}",
        response.status,
        response.text()
    );
    assert_inbound_group_untouched(&env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_webhook_with_malformed_json_is_refused_with_400() -> anyhow::Result<()> {
    let env = Env::start(Scheme::Connect).await?;
    let body = br#"{"changelog": {"items": [{"field": "assignee""#.to_vec();
    let response = env
        .post_webhook(vec![("authorization", valid_connect_header())], body)
        .await?;
    ensure!(
        response.status == 400,
        "expected 400, got {}: {}",
        response.status,
        response.text()
    );
    assert_inbound_group_untouched(&env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_webhook_with_empty_body_is_refused_with_400() -> anyhow::Result<()> {
    let env = Env::start(Scheme::Connect).await?;
    let response = env
        .post_webhook(vec![("authorization", valid_connect_header())], Vec::new())
        .await?;
    ensure!(
        response.status == 400,
        "expected 400, got {}: {}",
        response.status,
        response.text()
    );
    assert_inbound_group_untouched(&env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_webhook_without_changelog_answers_200_and_changes_nothing() -> anyhow::Result<()> {
    let env = Env::start(Scheme::Connect).await?;
    let response = env
        .post_webhook(
            vec![("authorization", valid_connect_header())],
            serde_json::to_vec(&fixture("sentry/jira/changelog_missing.json"))?,
        )
        .await?;
    ensure!(
        response.status == 200,
        "expected 200, got {}: {}",
        response.status,
        response.text()
    );
    assert_inbound_group_untouched(&env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_assignee_without_project_access_is_not_assigned() -> anyhow::Result<()> {
    let env = Env::start(Scheme::Connect).await?;
    let api = env.api();
    // Carol has a verified email and is an organization member, but no team gives her access
    // to the project.
    let carol = id_of(
        &api.create_user("carol", &[("carol@example.com", true)])
            .await?,
    )?;
    api.add_member(env.org, carol).await?;

    env.deliver_ok(&assignee_payload("carol@example.com"))
        .await?;
    env.resolve_barrier().await?;

    let group = api.group(env.inbound_group).await?;
    ensure!(group["assignee"].is_null(), "group was assigned: {group}");
    // No assignment: the activity says only that Jira's user matched no one here.
    let activity = api.activity_types(env.inbound_group).await?;
    ensure!(
        activity == ["assignee_unmatched", "set_resolved"],
        "activity: {activity:?}"
    );
    let history = api.history_statuses(env.inbound_group).await?;
    ensure!(history == ["resolved"], "history: {history:?}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Outbound: group changes through the API reach Jira

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_resolve_transitions_jira_issue_to_done() -> anyhow::Result<()> {
    let env = Env::start(Scheme::Connect).await?;
    env.set_status(env.outbound_group, "resolved").await?;

    let post = env
        .jira
        .recorder()
        .wait_for_call("POST", SEN5_TRANSITIONS)
        .await?;
    ensure!(
        post.status == Some(204),
        "transition refused: {}",
        post.summary()
    );
    ensure!(
        post.json() == json!({"transition": {"id": "31"}}),
        "wrong transition: {}",
        post.summary()
    );
    let issue = env.jira.issue(OUTBOUND_ISSUE).context("SEN-5")?;
    ensure!(
        issue.status_id == "10101",
        "SEN-5 is in status {}",
        issue.status_id
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_unresolve_transitions_jira_issue_to_in_progress() -> anyhow::Result<()> {
    let env = Env::start(Scheme::Connect).await?;
    let recorder = env.jira.recorder();
    env.set_status(env.outbound_group, "resolved").await?;
    recorder.wait_for_call("POST", SEN5_TRANSITIONS).await?;
    env.set_status(env.outbound_group, "unresolved").await?;

    let posts = recorder
        .wait_for_count("two transition POSTs", 2, DEFAULT_WAIT, |r| {
            r.is("POST", SEN5_TRANSITIONS)
        })
        .await?;
    ensure!(posts.len() == 2, "transitions:\n{}", recorder.describe());
    ensure!(
        posts[1].status == Some(204),
        "transition refused: {}",
        posts[1].summary()
    );
    ensure!(
        posts[1].json() == json!({"transition": {"id": "21"}}),
        "wrong transition: {}",
        posts[1].summary()
    );
    let issue = env.jira.issue(OUTBOUND_ISSUE).context("SEN-5")?;
    ensure!(
        issue.status_id == "3",
        "SEN-5 is in status {}",
        issue.status_id
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_resolve_when_issue_already_done_posts_no_transition() -> anyhow::Result<()> {
    let env = Env::start(Scheme::Connect).await?;
    let recorder = env.jira.recorder();
    env.jira.set_issue_status(OUTBOUND_ISSUE, "10101");

    env.set_status(env.outbound_group, "resolved").await?;
    // The sync read the issue (and found it already done)...
    recorder
        .wait_for_call("GET", "/rest/api/2/issue/SEN-5")
        .await?;
    // ...then unresolving must transition (21); by the time that POST arrives, a transition the
    // first sync wrongly made would have arrived before it.
    env.set_status(env.outbound_group, "unresolved").await?;
    recorder.wait_for_call("POST", SEN5_TRANSITIONS).await?;

    let ids: Vec<Value> = recorder
        .calls("POST", SEN5_TRANSITIONS)
        .iter()
        .map(|r| r.json()["transition"]["id"].clone())
        .collect();
    ensure!(
        ids == [json!("21")],
        "expected only transition 21, got {ids:?}:\n{}",
        recorder.describe()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_assign_puts_bobs_account_id_matching_email_case_insensitively() -> anyhow::Result<()> {
    let env = Env::start(Scheme::Connect).await?;
    env.assign_to_bob(env.outbound_group).await?;

    let recorder = env.jira.recorder();
    let put = recorder.wait_for_call("PUT", SEN5_ASSIGNEE).await?;
    ensure!(
        put.status == Some(204),
        "assignment refused: {}",
        put.summary()
    );
    ensure!(
        put.json() == json!({"accountId": BOB_ACCOUNT_ID}),
        "wrong assignee body: {}",
        put.summary()
    );
    // Jira knows Bob as "Bob@example.com"; the host's verified email is "bob@example.com".
    let searches = recorder.calls("GET", "/rest/api/2/user/assignable/search");
    ensure!(
        searches.iter().any(|s| {
            s.query_param("issueKey").as_deref() == Some(OUTBOUND_ISSUE)
                && s.query_param("query").as_deref() == Some(BOB_EMAIL)
        }),
        "no assignable-user search for SEN-5 with bob's email:\n{}",
        recorder.describe()
    );
    let issue = env.jira.issue(OUTBOUND_ISSUE).context("SEN-5")?;
    ensure!(
        issue.assignee.as_deref() == Some(BOB_ACCOUNT_ID),
        "SEN-5 assignee: {:?}",
        issue.assignee
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_assign_with_hidden_jira_email_uses_the_email_api() -> anyhow::Result<()> {
    let env = Env::start(Scheme::Connect).await?;
    env.jira.set_email_visible(BOB_ACCOUNT_ID, false);
    env.assign_to_bob(env.outbound_group).await?;

    let recorder = env.jira.recorder();
    let put = recorder.wait_for_call("PUT", SEN5_ASSIGNEE).await?;
    ensure!(
        put.json() == json!({"accountId": BOB_ACCOUNT_ID}),
        "wrong assignee body: {}",
        put.summary()
    );
    let lookups = recorder.calls("GET", USER_EMAIL);
    ensure!(
        lookups
            .iter()
            .any(|l| l.seq < put.seq
                && l.query_param("accountId").as_deref() == Some(BOB_ACCOUNT_ID)),
        "no email lookup for {BOB_ACCOUNT_ID} before the PUT:\n{}",
        recorder.describe()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_unassign_puts_null_account_id() -> anyhow::Result<()> {
    let env = Env::start(Scheme::Connect).await?;
    let recorder = env.jira.recorder();
    env.assign_to_bob(env.outbound_group).await?;
    recorder.wait_for_call("PUT", SEN5_ASSIGNEE).await?;

    let body = env
        .api()
        .update_group(env.outbound_group, &json!({"assignedTo": null}))
        .await?
        .expect(200)?;
    ensure!(body["assignee"].is_null(), "group still assigned: {body}");

    let puts = recorder
        .wait_for_count("two assignee PUTs", 2, DEFAULT_WAIT, |r| {
            r.is("PUT", SEN5_ASSIGNEE)
        })
        .await?;
    ensure!(
        puts[1].json() == json!({"accountId": null}),
        "wrong unassign body: {}",
        puts[1].summary()
    );
    ensure!(
        puts[1].status == Some(204),
        "unassign refused: {}",
        puts[1].summary()
    );
    let issue = env.jira.issue(OUTBOUND_ISSUE).context("SEN-5")?;
    ensure!(
        issue.assignee.is_none(),
        "SEN-5 assignee: {:?}",
        issue.assignee
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_token_integration_transitions_issue_with_basic_auth() -> anyhow::Result<()> {
    let env = Env::start(Scheme::AdminWebhook).await?;
    env.set_status(env.outbound_group, "resolved").await?;

    let post = env
        .jira
        .recorder()
        .wait_for_call("POST", SEN5_TRANSITIONS)
        .await?;
    ensure!(
        post.status == Some(204),
        "transition refused: {}",
        post.summary()
    );
    ensure!(
        post.header("authorization")
            .is_some_and(|a| a.starts_with("Basic ")),
        "not basic auth: {:?}",
        post.header("authorization")
    );
    ensure!(
        post.json() == json!({"transition": {"id": "31"}}),
        "wrong transition: {}",
        post.summary()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_outbound_sync_does_not_fail_the_group_change() -> anyhow::Result<()> {
    let env = Env::start(Scheme::Connect).await?;
    let recorder = env.jira.recorder();
    recorder.rate_limit_next(1, 1);

    env.set_status(env.outbound_group, "resolved").await?;
    // The outbound sync ran into the 429...
    let limited = recorder
        .wait_for("a rate-limited request", DEFAULT_WAIT, |r| r.faulted)
        .await?;
    ensure!(limited.status == Some(429), "{}", limited.summary());
    // ...and the group change stands. (Retry behaviour is not specified yet.)
    let group = env.api().group(env.outbound_group).await?;
    ensure!(group["status"] == "resolved", "group: {group}");
    let activity = env.api().activity_types(env.outbound_group).await?;
    ensure!(activity == ["set_resolved"], "activity: {activity:?}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Admin API and installation

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_requires_the_admin_token() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let api = host.api();
    let org = json!({"name": "Acme", "slug": "acme"});

    for (what, client) in [
        ("no token", api.without_token()),
        ("wrong token", api.with_token("not-the-admin-token")),
    ] {
        let response = client.post("/api/organizations", &org).await?;
        ensure!(
            response.status == 401,
            "{what}: expected 401, got {}: {}",
            response.status,
            response.text
        );
        ensure!(
            response.body["error"].is_string(),
            "{what}: no error message: {}",
            response.text
        );
    }
    // Nothing was created: no organization 1, and the slug is still free.
    let first = api.get("/api/organizations/1").await?;
    ensure!(first.status == 404, "organization 1 exists: {}", first.text);
    let created = api.post("/api/organizations", &org).await?.expect(201)?;
    ensure!(created["slug"] == "acme", "created: {created}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installations_store_their_external_id_and_never_return_secrets() -> anyhow::Result<()> {
    let connect = Env::start(Scheme::Connect).await?;
    ensure!(
        connect.integration["external_id"] == CLIENT_KEY,
        "Connect install: {}",
        connect.integration
    );
    let admin = Env::start(Scheme::AdminWebhook).await?;
    ensure!(
        admin.integration["external_id"] == json!(admin.jira.authority()),
        "API-token install: {}",
        admin.integration
    );
    for env in [&connect, &admin] {
        let path = format!(
            "/api/organizations/{}/integrations/{}",
            env.org,
            env.integration_id()
        );
        let fetched = env.api().get(&path).await?;
        ensure!(fetched.status == 200, "GET {path}: {}", fetched.text);
        for secret in [SHARED_SECRET, WEBHOOK_SECRET, "\"tok\""] {
            ensure!(
                !fetched.text.contains(secret) && !env.integration.to_string().contains(secret),
                "a secret is returned: {}",
                fetched.text
            );
        }
    }
    Ok(())
}
