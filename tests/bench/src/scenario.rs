//! What every figure sets up: an organization whose user Jess
//! (`jess@sentry.io`, the assignee of the full-size fixture) can be assigned
//! its project's groups, a Jira Cloud installation through Atlassian Connect
//! (webhooks signed with a JWT carrying the query-string hash, as
//! `tests/tests/jira_cloud.rs` does), and the signed webhooks themselves.

use std::net::SocketAddr;

use anyhow::Context as _;
use bytes::Bytes;
use serde_json::{Value, json};
use trackbridge_e2e::jira_sim::{JiraAuth, JiraSim};
use trackbridge_e2e::webhook::{ConnectToken, JIRA_ISSUE_UPDATED};
use trackbridge_e2e::{ApiClient, OrgWithMember, fixture_bytes, id_of};

use crate::load::{MakeRequest, post};

pub const CLIENT_KEY: &str = "bench.jira:1";
pub const SHARED_SECRET: &str = "bench-shared-secret";
const APP_KEY: &str = "trackbridge.bench";
/// The assignee of the fixture.
pub const JESS_EMAIL: &str = "jess@sentry.io";
/// The full-size Jira Cloud `issue_updated` delivery (~7 KB).
pub const FIXTURE: &str = "composed/jira_cloud_issue_updated_full.json";

/// Stand-ins replaced per request in [`Payloads`].
const KEY_MARK: &str = "BENCH-KEY-MARK";
const TIME_MARK: i64 = 4_444_444_444_444;

pub struct Scenario {
    pub org: i64,
    pub project: i64,
    pub integration: i64,
    /// The Jira Cloud the installation checked its credential against, kept
    /// running for as long as the installation is used.
    _jira: JiraSim,
}

impl Scenario {
    /// Set up the organization and the Connect installation with the sync
    /// switches on.
    pub async fn setup(api: &ApiClient) -> anyhow::Result<Scenario> {
        let jira = JiraSim::start(JiraAuth::connect(SHARED_SECRET, APP_KEY)).await?;
        let OrgWithMember { org, project, .. } = api.org_with_member("jess", JESS_EMAIL).await?;
        let input = json!({
            "base_url": jira.base_url(),
            "credential": {
                "type": "connect",
                "client_key": CLIENT_KEY,
                "shared_secret": SHARED_SECRET,
                "app_key": APP_KEY
            }
        });
        let integration = id_of(&api.install_integration(org, "jira", &input).await?)
            .context("installing Jira Cloud (Connect)")?;
        api.set_config(org, integration, &sync_config()).await?;
        Ok(Scenario {
            org,
            project,
            integration,
            _jira: jira,
        })
    }

    /// `count` groups, group `i` linked to the Jira Cloud issue `issue_key(i)`;
    /// made 8 at a time.
    pub async fn linked_groups(&self, api: &ApiClient, count: usize) -> anyhow::Result<Vec<i64>> {
        let mut groups = Vec::with_capacity(count);
        for chunk in (0..count).collect::<Vec<_>>().chunks(8) {
            let made = chunk.iter().map(|&i| async move {
                let group = id_of(
                    &api.create_group(self.project, &format!("Error {i}"))
                        .await?,
                )?;
                api.link_external_issue(group, self.integration, &issue_key(i))
                    .await?;
                Ok::<i64, anyhow::Error>(group)
            });
            for group in futures::future::join_all(made).await {
                groups.push(group?);
            }
        }
        Ok(groups)
    }
}

/// Every sync switch on: inbound assignee and status, outbound too (for the
/// fan-out to other trackers).
pub fn sync_config() -> Value {
    json!({
        "sync_status_reverse": true,
        "sync_forward_assignment": true,
        "sync_reverse_assignment": true
    })
}

/// The Jira issue of group `i`.
pub fn issue_key(i: usize) -> String {
    format!("SEN-{}", i + 1)
}

/// `Authorization` of a Connect webhook to the Jira route: a JWT with the
/// query-string hash of `POST /extensions/jira/issue-updated/`, valid 180 s.
pub fn connect_authorization() -> String {
    ConnectToken::for_request(CLIENT_KEY, "POST", JIRA_ISSUE_UPDATED, "").header(SHARED_SECRET)
}

/// The fixture as it is on disk (the body figure 1 sends unchanged).
pub fn fixture_body() -> Bytes {
    Bytes::from(fixture_bytes(FIXTURE))
}

/// The headers of a signed delivery with its own delivery id.
pub fn webhook_headers(authorization: &str, delivery: &str) -> Vec<(&'static str, String)> {
    vec![
        ("content-type", "application/json".to_owned()),
        ("authorization", authorization.to_owned()),
        ("x-atlassian-webhook-identifier", delivery.to_owned()),
    ]
}

/// The fixture with its issue key and timestamp replaced per delivery, and the
/// assignee either Jess (as in the fixture) or nobody.
pub struct Payloads {
    assigned: String,
    unassigned: String,
}

impl Payloads {
    pub fn new() -> anyhow::Result<Payloads> {
        let mut payload: Value = serde_json::from_slice(&fixture_bytes(FIXTURE))?;
        payload["issue"]["key"] = json!(KEY_MARK);
        payload["timestamp"] = json!(TIME_MARK);
        let assigned = serde_json::to_string(&payload)?;
        payload["issue"]["fields"]["assignee"] = Value::Null;
        payload["changelog"]["items"][0]["to"] = Value::Null;
        payload["changelog"]["items"][0]["toString"] = Value::Null;
        let unassigned = serde_json::to_string(&payload)?;
        Ok(Payloads {
            assigned,
            unassigned,
        })
    }

    /// The delivery for `key` at `time_ms`.
    pub fn body(&self, key: &str, time_ms: i64, assigned: bool) -> Bytes {
        let template = if assigned {
            &self.assigned
        } else {
            &self.unassigned
        };
        Bytes::from(template.replacen(KEY_MARK, key, 1).replacen(
            &TIME_MARK.to_string(),
            &time_ms.to_string(),
            1,
        ))
    }
}

/// Which linked issue each delivery of a run is about.
#[derive(Clone, Copy, Debug)]
pub struct Rotation {
    /// Issues `issue_key(0..groups)`, each linked to a group.
    pub groups: usize,
    /// Deliveries numbered from here (a later run continues an earlier one).
    pub first: u64,
    /// Event time of delivery 0.
    pub base_ms: i64,
}

impl Rotation {
    pub fn new(groups: usize) -> Rotation {
        Rotation {
            groups: groups.max(1),
            first: 0,
            base_ms: trackbridge_host::time::now_ms(),
        }
    }

    /// The same rotation, numbering from `first`.
    pub fn from(self, first: u64) -> Rotation {
        Rotation { first, ..self }
    }

    /// Delivery `n`: issue `n % groups`, the assignee alternating per round
    /// (so every delivery changes its group), the event time increasing (so
    /// none is older than the last one applied).
    pub fn delivery(&self, n: u64) -> (String, i64, bool) {
        let n = self.first + n;
        let groups = self.groups as u64;
        (
            issue_key((n % groups) as usize),
            self.base_ms + n as i64,
            (n / groups).is_multiple_of(2),
        )
    }
}

/// Requests for [`crate::load`]: delivery `n` of a run named `run` (the name
/// keeps delivery ids unique), the fixture unchanged or rotating over linked
/// issues.
pub fn webhook_requests(
    addr: SocketAddr,
    run: &str,
    rotation: Option<Rotation>,
) -> anyhow::Result<MakeRequest> {
    let authorization = connect_authorization();
    let run = run.to_owned();
    let payloads = Payloads::new()?;
    let fixture = fixture_body();
    Ok(std::sync::Arc::new(move |n| {
        let body = match rotation {
            None => fixture.clone(),
            Some(rotation) => {
                let (key, time, assigned) = rotation.delivery(n);
                payloads.body(&key, time, assigned)
            }
        };
        post(
            addr,
            JIRA_ISSUE_UPDATED,
            &webhook_headers(&authorization, &format!("{run}-{n}")),
            body,
        )
    }))
}
