//! End-to-end tests of the Jira Server / Data Center integration: the host in-process with the
//! built `jira-server` plugin, driven only through its HTTP API and the webhook route, against
//! the Jira Server simulator (which checks the OAuth 1.0a RSA-SHA1 signature of every request).
//!
//! Every test has its own host, database and simulator. Outbound syncs run in the background, so
//! tests wait for their effect with a deadline. Where a test asserts that a webhook changed
//! nothing, it then sends a valid "barrier" webhook with a visible effect and waits for it.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use serde_json::{Value, json};
use sha1::{Digest as _, Sha1};
use trackbridge_e2e::jira_server_sim::{
    ACCESS_TOKEN, ACCESS_TOKEN_SECRET, CONSUMER_KEY, JiraServerSim, OAuthConsumer,
    TEST_PRIVATE_KEY, WebhookMode,
};
use trackbridge_e2e::jwt;
use trackbridge_e2e::{
    ApiClient, DEFAULT_WAIT, OrgWithMember, RawResponse, TestHost, fixture, id_of,
};

const PROVIDER: &str = "jira-server";
const WEBHOOK_PREFIX: &str = "/extensions/jira-server/issue-updated/";
/// Bob's verified email in the host, and his `emailAddress` in Jira.
const BOB_EMAIL: &str = "bob@example.org";
/// Bob's Jira user name.
const BOB_NAME: &str = "bob";

/// Linked to the inbound group; the fixtures' issue.
const INBOUND_ISSUE: &str = "APP-1";
/// Linked to the outbound group; project 10100 has a status mapping.
const OUTBOUND_ISSUE: &str = "SEN-5";
const SEN5_TRANSITIONS: &str = "/rest/api/2/issue/SEN-5/transitions";
const SEN5_ASSIGNEE: &str = "/rest/api/2/issue/SEN-5/assignee";
const ASSIGNABLE_SEARCH: &str = "/rest/api/2/user/assignable/search";
const WEBHOOKS: &str = "/rest/webhooks/1.0/webhook";

/// The installation input for `sim`.
fn install_input(sim: &JiraServerSim, consumer_key: &str, private_key: &str) -> Value {
    json!({
        "base_url": format!("{}/", sim.base_url()),
        "verify_ssl": false,
        "consumer_key": consumer_key,
        "private_key": private_key,
        "access_token": ACCESS_TOKEN,
        "access_token_secret": ACCESS_TOKEN_SECRET
    })
}

/// The webhook secret the plugin derives: SHA-1 hex of the private key text.
fn webhook_secret() -> String {
    jwt::hex(&Sha1::digest(TEST_PRIVATE_KEY.as_bytes()))
}

/// The POST answer of an installation attempt.
async fn try_install(host: &TestHost, org: i64, input: &Value) -> anyhow::Result<(u16, Value)> {
    let r = host
        .api()
        .post(
            &format!("/api/organizations/{org}/integrations"),
            &json!({"provider": PROVIDER, "input": input}),
        )
        .await?;
    Ok((r.status, r.body))
}

/// The organization's integrations.
async fn integrations(host: &TestHost, org: i64) -> anyhow::Result<Value> {
    host.api()
        .get(&format!("/api/organizations/{org}/integrations"))
        .await?
        .expect(200)
}

/// One host, one simulator, an installed integration with sync switched on.
struct Env {
    host: TestHost,
    jira: JiraServerSim,
    org: i64,
    bob: i64,
    integration: Value,
    /// Linked to `APP-1`.
    inbound_group: i64,
    /// Linked to `SEN-5`.
    outbound_group: i64,
}

impl Env {
    async fn start() -> anyhow::Result<Env> {
        let jira = JiraServerSim::start(OAuthConsumer::test()).await?;
        let host = TestHost::start().await?;
        let api = host.api().clone();

        let OrgWithMember {
            org,
            project,
            user: bob,
            ..
        } = api.org_with_member("bob", BOB_EMAIL).await?;

        let integration = api
            .install_integration(
                org,
                PROVIDER,
                &install_input(&jira, CONSUMER_KEY, TEST_PRIVATE_KEY),
            )
            .await?;
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

    fn external_id(&self) -> String {
        format!("{}:{CONSUMER_KEY}", self.jira.authority())
    }

    /// The path of the webhook URL the plugin registered in Jira.
    fn webhook_path(&self) -> anyhow::Result<String> {
        let hooks = self.jira.webhooks();
        ensure!(hooks.len() == 1, "registered webhooks: {hooks:?}");
        hooks[0]
            .url
            .strip_prefix(&self.host.base_url())
            .map(str::to_string)
            .with_context(|| format!("webhook URL {} is not on the host", hooks[0].url))
    }

    /// POST `body` to the route with this token.
    async fn post_with_token(&self, token: &str, body: Vec<u8>) -> anyhow::Result<RawResponse> {
        self.host
            .post_raw(
                &format!("{WEBHOOK_PREFIX}{token}/"),
                &[("content-type", "application/json".to_string())],
                body,
            )
            .await
    }

    /// Deliver `payload` to the registered webhook URL and require a 2xx answer.
    async fn deliver_ok(&self, payload: &Value) -> anyhow::Result<RawResponse> {
        let response = self
            .host
            .post_raw(
                &self.webhook_path()?,
                &[("content-type", "application/json".to_string())],
                serde_json::to_vec(payload)?,
            )
            .await?;
        ensure!(
            (200..300).contains(&response.status),
            "webhook answered {}: {}",
            response.status,
            response.text()
        );
        Ok(response)
    }

    /// A valid "In Progress → Done" webhook for APP-1, waited for until the inbound group is
    /// resolved: everything delivered before it has been processed by then.
    async fn resolve_barrier(&self) -> anyhow::Result<()> {
        self.deliver_ok(&status_payload("3", "10101"))
            .await
            .context("barrier webhook")?;
        self.api()
            .wait_for_group(
                self.inbound_group,
                "resolved (barrier)",
                DEFAULT_WAIT,
                |g| g["status"] == "resolved",
            )
            .await?;
        Ok(())
    }

    async fn assign_to_bob(&self, group: i64) -> anyhow::Result<()> {
        let body = self
            .api()
            .update_group(group, &json!({"assignedTo": format!("user:{}", self.bob)}))
            .await?
            .expect(200)?;
        ensure!(
            body["assignee"] == json!({"type": "user", "id": self.bob}),
            "group not assigned to bob: {body}"
        );
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

    fn bob_assignee(&self) -> Value {
        json!({"type": "user", "id": self.bob})
    }
}

/// `jira_server/webhook_issue_updated_status.json` (APP-1) moving from `from` to `to`.
fn status_payload(from: &str, to: &str) -> Value {
    let mut payload = fixture("sentry/jira_server/webhook_issue_updated_status.json");
    let item = &mut payload["changelog"]["items"][0];
    item["from"] = json!(from);
    item["to"] = json!(to);
    fresh_change(payload)
}

fn assignee_payload() -> Value {
    fresh_change(fixture(
        "sentry/jira_server/webhook_issue_updated_assignee.json",
    ))
}

/// A changelog id of its own, as every change in Jira has: Data Center sends no
/// delivery id, so the host tells deliveries apart by event, issue, time and
/// changelog id, and two test deliveries must not look like retries of each other.
fn fresh_change(mut payload: Value) -> Value {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(20_000);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    payload["changelog"]["id"] = json!(n.to_string());
    payload
}

/// After a refused or ignored webhook carrying the assignee payload: the inbound group is
/// unchanged, and after a barrier its only activity is the barrier's resolve.
async fn assert_inbound_group_untouched(env: &Env) -> anyhow::Result<()> {
    let api = env.api();
    let group = api.group(env.inbound_group).await?;
    ensure!(group["assignee"].is_null(), "group was assigned: {group}");
    ensure!(group["status"] == "unresolved", "status changed: {group}");
    env.resolve_barrier().await?;
    let group = api.group(env.inbound_group).await?;
    ensure!(group["assignee"].is_null(), "group was assigned: {group}");
    let activity = api.activity_types(env.inbound_group).await?;
    ensure!(activity == ["set_resolved"], "activity: {activity:?}");
    Ok(())
}

async fn expect_status(response: RawResponse, status: u16) -> anyhow::Result<()> {
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
async fn installation_stores_metadata_and_registers_a_webhook_named_by_a_jwt() -> anyhow::Result<()>
{
    let env = Env::start().await?;
    let i = &env.integration;
    ensure!(i["provider"] == PROVIDER, "integration: {i}");
    ensure!(i["name"] == CONSUMER_KEY, "integration: {i}");
    ensure!(
        i["external_id"] == json!(env.external_id()),
        "integration: {i}"
    );
    let metadata = &i["metadata"];
    ensure!(
        metadata["domain_name"] == json!(env.jira.authority())
            && metadata["base_url"] == json!(env.jira.base_url())
            && metadata["verify_ssl"] == json!(false),
        "metadata: {metadata}"
    );
    let fetched = env
        .api()
        .get(&format!(
            "/api/organizations/{}/integrations/{}",
            env.org,
            env.integration_id()
        ))
        .await?;
    ensure!(fetched.status == 200, "GET integration: {}", fetched.text);
    // The access token is OAuth 1.0a's token identifier, not a secret: it
    // travels in clear in every request's Authorization header, a signature
    // needs the private key, and the plugin must read it to build each base
    // string (contract 0.2.0 shows a plugin no secret).
    ensure!(
        metadata["access_token"] == json!(ACCESS_TOKEN),
        "metadata: {metadata}"
    );
    for secret in ["PRIVATE KEY", ACCESS_TOKEN_SECRET, &webhook_secret()] {
        ensure!(
            !fetched.text.contains(secret) && !i.to_string().contains(secret),
            "a secret is returned: {}",
            fetched.text
        );
    }

    let created = env.jira.recorder().calls("POST", WEBHOOKS);
    ensure!(
        created.len() == 1 && created[0].status == Some(201),
        "webhook registration:\n{}",
        env.jira.recorder().describe()
    );
    let body = created[0].json();
    ensure!(
        body["events"] == json!(["jira:issue_created", "jira:issue_updated"]),
        "webhook body: {body}"
    );
    let url = body["url"].as_str().context("webhook url")?;
    ensure!(
        url.starts_with(&format!("{}{WEBHOOK_PREFIX}", env.host.base_url())) && url.ends_with('/'),
        "webhook url: {url}"
    );
    let segments: Vec<&str> = url.split('/').collect();
    let token = segments[segments.len() - 2];
    // Byte-exact: header {"typ":"JWT","alg":"HS256"}, claims exactly {"id": external id},
    // HS256 with the SHA-1 hex of the private key.
    let expected = jwt::encode_hs256(
        &json!({"id": env.external_id()}),
        webhook_secret().as_bytes(),
    );
    ensure!(token == expected, "token {token} is not {expected}");
    let (_, claims) = jwt::decode_unverified(token).map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(
        claims == json!({"id": env.external_id()}),
        "claims: {claims}"
    );
    ensure!(
        metadata["webhook_id"] == json!(env.jira.webhooks()[0].id.to_string()),
        "metadata: {metadata}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_consumer_key_gives_an_external_id_of_64_characters() -> anyhow::Result<()> {
    let key = "a-very-long-consumer-key-that-when-combined-with-the-domain-name-is-more-than-64-characters";
    let jira = JiraServerSim::start(OAuthConsumer::from_private_key(
        key,
        TEST_PRIVATE_KEY,
        ACCESS_TOKEN,
    )?)
    .await?;
    let host = TestHost::start().await?;
    let org = id_of(&host.api().create_organization("Acme").await?)?;
    let integration = host
        .api()
        .install_integration(org, PROVIDER, &install_input(&jira, key, TEST_PRIVATE_KEY))
        .await?;
    let expected: String = format!("{}:{key}", jira.authority())
        .chars()
        .take(64)
        .collect();
    ensure!(expected.len() == 64);
    ensure!(
        integration["external_id"] == json!(expected),
        "integration: {integration}"
    );
    ensure!(integration["name"] == key, "integration: {integration}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installation_with_a_bad_private_key_is_refused_with_400() -> anyhow::Result<()> {
    let jira = JiraServerSim::start(OAuthConsumer::test()).await?;
    let host = TestHost::start().await?;
    let org = id_of(&host.api().create_organization("Acme").await?)?;
    let bad = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----";
    let (status, body) = try_install(&host, org, &install_input(&jira, CONSUMER_KEY, bad)).await?;
    ensure!(status == 400, "expected 400, got {status}: {body}");
    let error = body["error"].as_str().unwrap_or_default();
    ensure!(
        error.contains("private_key") && error.contains("not a PEM-encoded RSA private key"),
        "error: {error}"
    );
    ensure!(
        integrations(&host, org).await? == json!([]),
        "something was stored"
    );
    ensure!(
        jira.recorder().requests().is_empty(),
        "Jira was called:\n{}",
        jira.recorder().describe()
    );
    Ok(())
}

/// Install against a simulator in `mode`; returns the host's answer after checking nothing was
/// stored.
async fn failed_install(mode: WebhookMode) -> anyhow::Result<(u16, String)> {
    let jira = JiraServerSim::start(OAuthConsumer::test()).await?;
    jira.set_webhook_mode(mode);
    let host = TestHost::start().await?;
    let org = id_of(&host.api().create_organization("Acme").await?)?;
    let (status, body) = try_install(
        &host,
        org,
        &install_input(&jira, CONSUMER_KEY, TEST_PRIVATE_KEY),
    )
    .await?;
    ensure!(
        integrations(&host, org).await? == json!([]),
        "an integration was stored"
    );
    // Counted whether answered or not: a hanging registration is still pending.
    let attempts = jira
        .recorder()
        .requests()
        .iter()
        .filter(|r| r.is("POST", WEBHOOKS))
        .count();
    ensure!(
        attempts == 1,
        "webhook registration attempts:\n{}",
        jira.recorder().describe()
    );
    Ok((
        status,
        body["error"].as_str().unwrap_or_default().to_string(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_403_fails_the_installation_with_jiras_reason() -> anyhow::Result<()> {
    let (status, error) = failed_install(WebhookMode::Forbidden).await?;
    ensure!(status == 502, "expected 502, got {status}: {error}");
    ensure!(
        error.contains(
            "Could not create issue webhook in Jira. You do not have permission to create WebHook 'Sentry Issue Sync'."
        ),
        "error: {error}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_502_fails_the_installation_naming_the_webhook() -> anyhow::Result<()> {
    let (status, error) = failed_install(WebhookMode::BadGateway).await?;
    ensure!(status == 502, "expected 502, got {status}: {error}");
    ensure!(error.contains("webhook"), "error: {error}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_webhook_registration_fails_the_installation_naming_the_webhook()
-> anyhow::Result<()> {
    // The plugin gives up after its 6 s request timeout, within the host's 10 s call budget.
    let started = std::time::Instant::now();
    let (status, error) = failed_install(WebhookMode::Hang(Duration::from_secs(30))).await?;
    ensure!(status == 502, "expected 502, got {status}: {error}");
    ensure!(error.contains("webhook"), "error: {error}");
    ensure!(
        started.elapsed() < Duration::from_secs(25),
        "took {:?}",
        started.elapsed()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Inbound webhooks

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_assignee_assigns_group_to_bob() -> anyhow::Result<()> {
    let env = Env::start().await?;
    env.deliver_ok(&assignee_payload()).await?;
    let api = env.api();
    api.wait_for_group(env.inbound_group, "assigned to bob", DEFAULT_WAIT, |g| {
        g["assignee"] == env.bob_assignee()
    })
    .await?;
    let activity = api.activity_types(env.inbound_group).await?;
    ensure!(activity == ["assigned"], "activity: {activity:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_null_assignee_deassigns_group() -> anyhow::Result<()> {
    let env = Env::start().await?;
    env.assign_to_bob(env.inbound_group).await?;
    let mut payload = assignee_payload();
    payload["issue"]["fields"]["assignee"] = Value::Null;
    env.deliver_ok(&payload).await?;
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
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_status_into_done_resolves_group() -> anyhow::Result<()> {
    let env = Env::start().await?;
    // The fixture's ids adapted to the simulator's workflow: 3 "In Progress" -> 10101 "Done".
    env.deliver_ok(&status_payload("3", "10101")).await?;
    let api = env.api();
    api.wait_for_group(env.inbound_group, "resolved", DEFAULT_WAIT, |g| {
        g["status"] == "resolved"
    })
    .await?;
    let activity = api.activity_types(env.inbound_group).await?;
    ensure!(activity == ["set_resolved"], "activity: {activity:?}");
    let lookup = env
        .jira
        .recorder()
        .wait_for_call("GET", "/rest/api/2/status")
        .await?;
    ensure!(lookup.status == Some(200), "{}", lookup.summary());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_status_out_of_done_unresolves_group() -> anyhow::Result<()> {
    let env = Env::start().await?;
    env.set_status(env.inbound_group, "resolved").await?;
    env.deliver_ok(&status_payload("10101", "3")).await?;
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
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_with_blank_token_is_refused_with_400() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let response = env
        .post_with_token("%20", serde_json::to_vec(&assignee_payload())?)
        .await?;
    expect_status(response, 400).await?;
    assert_inbound_group_untouched(&env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_with_token_without_id_is_refused_with_400() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let token = jwt::encode_hs256(&json!({"sub": "x"}), webhook_secret().as_bytes());
    let response = env
        .post_with_token(&token, serde_json::to_vec(&assignee_payload())?)
        .await?;
    expect_status(response, 400).await?;
    assert_inbound_group_untouched(&env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_with_token_signed_with_a_bad_secret_is_refused_with_400() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let token = jwt::encode_hs256(&json!({"id": env.external_id()}), b"bad-secret");
    let response = env
        .post_with_token(&token, serde_json::to_vec(&assignee_payload())?)
        .await?;
    expect_status(response, 400).await?;
    assert_inbound_group_untouched(&env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_with_malformed_body_is_refused_with_400() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let response = env
        .host
        .post_raw(
            &env.webhook_path()?,
            &[("content-type", "application/json".to_string())],
            br#"{"changelog": {"items": [{"field": "assignee""#.to_vec(),
        )
        .await?;
    expect_status(response, 400).await?;
    assert_inbound_group_untouched(&env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_without_changelog_answers_200_and_changes_nothing() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let mut payload = assignee_payload();
    payload
        .as_object_mut()
        .context("object")?
        .remove("changelog");
    let response = env
        .host
        .post_raw(
            &env.webhook_path()?,
            &[("content-type", "application/json".to_string())],
            serde_json::to_vec(&payload)?,
        )
        .await?;
    expect_status(response, 200).await?;
    assert_inbound_group_untouched(&env).await
}

// ---------------------------------------------------------------------------------------------
// Outbound

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_resolve_transitions_the_issue_to_done() -> anyhow::Result<()> {
    let env = Env::start().await?;
    env.set_status(env.outbound_group, "resolved").await?;
    let post = env
        .jira
        .recorder()
        .wait_for_call("POST", SEN5_TRANSITIONS)
        .await?;
    ensure!(post.status == Some(204), "refused: {}", post.summary());
    ensure!(
        post.json() == json!({"transition": {"id": "31"}}),
        "wrong transition: {}",
        post.summary()
    );
    ensure!(
        post.header("authorization")
            .is_some_and(|a| a.starts_with("OAuth ") && a.contains("RSA-SHA1")),
        "not OAuth 1.0a RSA-SHA1: {:?}",
        post.header("authorization")
    );
    let issue = env.jira.issue(OUTBOUND_ISSUE).context("SEN-5")?;
    ensure!(
        issue.status_id == "10101",
        "SEN-5 status {}",
        issue.status_id
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_unresolve_transitions_the_issue_to_in_progress() -> anyhow::Result<()> {
    let env = Env::start().await?;
    env.jira.set_issue_status(OUTBOUND_ISSUE, "10101");
    env.set_status(env.outbound_group, "resolved").await?;
    // Already done: the first sync only reads the issue.
    env.jira
        .recorder()
        .wait_for_call("GET", "/rest/api/2/issue/SEN-5")
        .await?;
    env.set_status(env.outbound_group, "unresolved").await?;
    let post = env
        .jira
        .recorder()
        .wait_for_call("POST", SEN5_TRANSITIONS)
        .await?;
    ensure!(post.status == Some(204), "refused: {}", post.summary());
    ensure!(
        post.json() == json!({"transition": {"id": "21"}}),
        "wrong transition: {}",
        post.summary()
    );
    let issue = env.jira.issue(OUTBOUND_ISSUE).context("SEN-5")?;
    ensure!(issue.status_id == "3", "SEN-5 status {}", issue.status_id);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_assign_puts_bobs_user_name() -> anyhow::Result<()> {
    let env = Env::start().await?;
    env.assign_to_bob(env.outbound_group).await?;
    let recorder = env.jira.recorder();
    let put = recorder.wait_for_call("PUT", SEN5_ASSIGNEE).await?;
    ensure!(put.status == Some(204), "refused: {}", put.summary());
    ensure!(
        put.json() == json!({"name": BOB_NAME}),
        "wrong body: {}",
        put.summary()
    );
    ensure!(
        recorder.calls("GET", ASSIGNABLE_SEARCH).iter().any(|s| {
            s.query_param("issueKey").as_deref() == Some(OUTBOUND_ISSUE)
                && s.query_param("username").as_deref() == Some(BOB_EMAIL)
        }),
        "no search by username=bob's email:\n{}",
        recorder.describe()
    );
    let issue = env.jira.issue(OUTBOUND_ISSUE).context("SEN-5")?;
    ensure!(
        issue.assignee.as_deref() == Some(BOB_NAME),
        "assignee {:?}",
        issue.assignee
    );

    // Unassigning puts a null name.
    env.api()
        .update_group(env.outbound_group, &json!({"assignedTo": null}))
        .await?
        .expect(200)?;
    let puts = recorder
        .wait_for_count("two assignee PUTs", 2, DEFAULT_WAIT, |r| {
            r.is("PUT", SEN5_ASSIGNEE)
        })
        .await?;
    ensure!(
        puts[1].json() == json!({"name": null}),
        "wrong body: {}",
        puts[1].summary()
    );
    ensure!(
        env.jira
            .issue(OUTBOUND_ISSUE)
            .context("SEN-5")?
            .assignee
            .is_none()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_assign_with_several_users_and_no_matching_email_puts_nothing() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let api = env.api();
    let recorder = env.jira.recorder();
    // Carol's search finds two Jira users, neither with her exact email.
    let carol = id_of(
        &api.create_user("carol", &[("carol@example.org", true)])
            .await?,
    )?;
    api.add_member(env.org, carol).await?;
    let team = id_of(&api.create_team(env.org, "carol-team").await?)?;
    let project = api.group(env.outbound_group).await?["project_id"]
        .as_i64()
        .context("project id")?;
    api.add_team_project(team, project).await?;
    api.add_team_member(team, carol, true).await?;
    env.jira
        .add_user("carol-uk", "Carol UK", "carol@example.org.uk");
    env.jira
        .add_user("carol-au", "Carol AU", "carol@example.org.au");

    api.update_group(
        env.outbound_group,
        &json!({"assignedTo": format!("user:{carol}")}),
    )
    .await?
    .expect(200)?;
    let search = recorder
        .wait_for("carol's assignable search", DEFAULT_WAIT, |r| {
            r.is("GET", ASSIGNABLE_SEARCH)
                && r.query_param("username").as_deref() == Some("carol@example.org")
        })
        .await?;
    ensure!(search.status == Some(200), "{}", search.summary());
    // Barrier: assigning bob searches and PUTs; a PUT for carol would have come first.
    env.assign_to_bob(env.outbound_group).await?;
    recorder.wait_for_call("PUT", SEN5_ASSIGNEE).await?;
    let bodies: Vec<Value> = recorder
        .calls("PUT", SEN5_ASSIGNEE)
        .iter()
        .map(|r| r.json())
        .collect();
    ensure!(
        bodies == [json!({"name": BOB_NAME})],
        "assignee PUTs: {bodies:?}\n{}",
        recorder.describe()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Uninstall

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uninstall_deletes_the_webhook_in_jira() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let id = env.jira.webhooks()[0].id;
    let path = format!(
        "/api/organizations/{}/integrations/{}",
        env.org,
        env.integration_id()
    );
    let r = env
        .api()
        .request(reqwest::Method::DELETE, &path, None)
        .await?;
    ensure!(r.status == 204, "DELETE answered {}: {}", r.status, r.text);
    let deleted = env
        .jira
        .recorder()
        .calls("DELETE", &format!("{WEBHOOKS}/{id}"));
    ensure!(
        deleted.len() == 1 && deleted[0].status == Some(204),
        "webhook deletion:\n{}",
        env.jira.recorder().describe()
    );
    ensure!(env.jira.webhooks().is_empty(), "webhooks left in Jira");
    ensure!(
        integrations(&env.host, env.org).await? == json!([]),
        "integration kept"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uninstall_with_jira_down_answers_502_and_force_deletes() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let Env {
        host,
        jira,
        org,
        integration,
        ..
    } = env;
    let path = format!(
        "/api/organizations/{org}/integrations/{}",
        id_of(&integration)?
    );
    jira.stop().await?;

    let r = host
        .api()
        .request(reqwest::Method::DELETE, &path, None)
        .await?;
    ensure!(r.status == 502, "DELETE answered {}: {}", r.status, r.text);
    ensure!(
        r.text.contains("force=true") && r.text.contains("webhook"),
        "answer: {}",
        r.text
    );
    let kept = integrations(&host, org).await?;
    ensure!(
        kept.as_array().is_some_and(|a| a.len() == 1),
        "integration not kept: {kept}"
    );

    let r = host
        .api()
        .request(reqwest::Method::DELETE, &format!("{path}?force=true"), None)
        .await?;
    ensure!(
        r.status == 204,
        "forced DELETE answered {}: {}",
        r.status,
        r.text
    );
    ensure!(
        integrations(&host, org).await? == json!([]),
        "integration kept"
    );
    Ok(())
}
