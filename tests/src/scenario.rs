//! A ready-made setup for tests about delivery rather than about one tracker:
//! an organization with bob, a Jira Cloud installation using admin webhooks
//! (`X-Hub-Signature`) with every sync switch on, and helpers to sign the
//! assignee and status webhooks Jira would send.

use serde_json::{Value, json};

use crate::api::{ApiClient, OrgWithMember, id_of};
use crate::fixtures::fixture;
use crate::host::RawResponse;
use crate::jira_sim::JiraSim;
use crate::webhook::{JIRA_ISSUE_UPDATED, hub_signature};

pub const BOB_EMAIL: &str = "bob@example.com";
pub const WEBHOOK_SECRET: &str = "hub-secret-for-durability";
/// Jira project whose issues get the status mapping below.
pub const JIRA_PROJECT: &str = "10100";
/// The transition id that resolves (the mapping's `on_resolve`).
pub const RESOLVE_TRANSITION: &str = "10101";

/// What [`JiraScenario::setup`] made.
#[derive(Clone, Debug)]
pub struct JiraScenario {
    pub org: i64,
    pub project: i64,
    pub bob: i64,
    /// bob's team, with access to the project.
    pub team: i64,
    pub integration: i64,
    /// The simulator's base URL (webhooks name their site through it).
    pub jira_url: String,
}

impl JiraScenario {
    pub async fn setup(api: &ApiClient, jira: &JiraSim) -> anyhow::Result<JiraScenario> {
        JiraScenario::setup_with_token(api, jira, "tok").await
    }

    /// [`JiraScenario::setup`], installing with `api_token` (the simulator
    /// must expect it).
    pub async fn setup_with_token(
        api: &ApiClient,
        jira: &JiraSim,
        api_token: &str,
    ) -> anyhow::Result<JiraScenario> {
        let OrgWithMember {
            org,
            project,
            team,
            user: bob,
        } = api.org_with_member("bob", BOB_EMAIL).await?;
        let input = json!({
            "base_url": jira.base_url(),
            "credential": {"type": "api_token", "email": "bot@example.com", "api_token": api_token},
            "webhook_secret": WEBHOOK_SECRET
        });
        let integration = id_of(&api.install_integration(org, "jira", &input).await?)?;
        api.set_config(
            org,
            integration,
            &json!({
                "sync_status_forward": {JIRA_PROJECT: {"on_resolve": RESOLVE_TRANSITION, "on_unresolve": "3"}},
                "sync_status_reverse": true,
                "sync_forward_assignment": true,
                "sync_reverse_assignment": true,
                "resolution_strategy": "resolve"
            }),
        )
        .await?;
        Ok(JiraScenario {
            org,
            project,
            bob,
            team,
            integration,
            jira_url: jira.base_url(),
        })
    }

    /// A new group linked to the Jira issue `key`.
    pub async fn linked_group(&self, api: &ApiClient, key: &str) -> anyhow::Result<i64> {
        let group = id_of(
            &api.create_group(self.project, &format!("Error behind {key}"))
                .await?,
        )?;
        api.link_external_issue(group, self.integration, key)
            .await?;
        Ok(group)
    }

    /// Jira's "issue `key` is now assigned to `email`" (or to nobody), at `time_ms`.
    pub fn assignee_event(&self, key: &str, email: Option<&str>, time_ms: i64) -> Value {
        let mut payload = fixture("sentry/jira/edit_issue_assignee_payload.json");
        payload["issue"]["key"] = json!(key);
        match email {
            Some(email) => payload["issue"]["fields"]["assignee"]["emailAddress"] = json!(email),
            None => {
                payload["issue"]["fields"]["assignee"] = Value::Null;
                payload["changelog"]["items"][0]["to"] = Value::Null;
            }
        }
        self.stamped(payload, time_ms)
    }

    /// A host user `name` (verified email `<name>@example.com`) who can be
    /// assigned the project's groups, known to Jira as account `acct-<name>`
    /// whose email Jira hides from webhooks (the plugin must look it up).
    pub async fn hidden_email_user(
        &self,
        api: &ApiClient,
        jira: &JiraSim,
        name: &str,
    ) -> anyhow::Result<(i64, String)> {
        let email = format!("{name}@example.com");
        let user = id_of(&api.create_user(name, &[(&email, true)]).await?)?;
        api.add_member(self.org, user).await?;
        api.add_team_member(self.team, user, true).await?;
        let account = format!("acct-{name}");
        jira.add_user(crate::jira_sim::JiraUser {
            account_id: account.clone(),
            display_name: name.to_owned(),
            email,
            email_visible: false,
        });
        Ok((user, account))
    }

    /// Jira's "issue `key` is now assigned to `account`", email hidden.
    pub fn assignee_account_event(&self, key: &str, account: &str, time_ms: i64) -> Value {
        let mut payload = self.assignee_event(key, Some(""), time_ms);
        payload["issue"]["fields"]["assignee"]["accountId"] = json!(account);
        payload
    }

    /// Jira's "issue `key` moved from status `from` to `to`" (ids), at `time_ms`.
    pub fn status_event(&self, key: &str, from: &str, to: &str, time_ms: i64) -> Value {
        let mut payload = fixture("sentry/jira/edit_issue_status_payload.json");
        payload["issue"]["key"] = json!(key);
        let item = &mut payload["changelog"]["items"][0];
        item["from"] = json!(from);
        item["to"] = json!(to);
        self.stamped(payload, time_ms)
    }

    fn stamped(&self, mut payload: Value, time_ms: i64) -> Value {
        payload["timestamp"] = json!(time_ms);
        payload["webhookEvent"] = json!("jira:issue_updated");
        payload["issue"]["self"] = json!(format!("{}/rest/api/2/issue/10000", self.jira_url));
        payload
    }
}

/// The request Jira sends for `payload`: signed, with `delivery_id` as
/// `X-Atlassian-Webhook-Identifier` (stable across Jira's retries).
pub fn signed_webhook(payload: &Value, delivery_id: &str) -> (Vec<(String, String)>, Vec<u8>) {
    let body = serde_json::to_vec(payload).unwrap_or_default();
    let headers = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        (
            "x-hub-signature".to_owned(),
            hub_signature(WEBHOOK_SECRET, &body),
        ),
        (
            "x-atlassian-webhook-identifier".to_owned(),
            delivery_id.to_owned(),
        ),
    ];
    (headers, body)
}

/// POST a signed Jira webhook to the host at `base_url`.
pub async fn deliver(
    http: &reqwest::Client,
    base_url: &str,
    payload: &Value,
    delivery_id: &str,
) -> anyhow::Result<RawResponse> {
    let (headers, body) = signed_webhook(payload, delivery_id);
    let mut request = http
        .post(format!("{base_url}{JIRA_ISSUE_UPDATED}"))
        .body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    RawResponse::read(request.send().await?).await
}

/// A client for webhook senders: no proxy, bounded time.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap_or_default()
}

/// Wait until no job is pending or running (every stored webhook and every
/// call it led to has finished), within `timeout`.
pub async fn wait_queue_idle(api: &ApiClient, timeout: std::time::Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let stats = api.get("/api/queue").await?.expect(200)?;
        let busy: i64 = stats
            .as_array()
            .map(|all| all.iter().filter_map(|q| q["depth"].as_i64()).sum())
            .unwrap_or(0);
        if busy == 0 {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            let mut unfinished = jobs(api, "state=running").await?;
            unfinished.extend(jobs(api, "state=pending").await?);
            anyhow::bail!(
                "the queue is still busy after {timeout:?}: {stats}; unfinished jobs: {unfinished:?}"
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// The jobs the API lists for a query string such as `kind=webhook&state=dead`.
pub async fn jobs(api: &ApiClient, query: &str) -> anyhow::Result<Vec<Value>> {
    let list = api
        .get(&format!("/api/jobs?limit=1000&{query}"))
        .await?
        .expect(200)?;
    Ok(list.as_array().cloned().unwrap_or_default())
}
