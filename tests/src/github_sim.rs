//! A simulated GitHub REST API for one repository: stateful (the repository
//! webhook and its secret, issues with state and assignees, the issue events
//! trackbridge's own writes leave), recording (see [`crate::sim`]) and strict
//! about the token.
//!
//! Writes made through the API are recorded as issue events whose actor is
//! the token's owner [`BOT_LOGIN`], as GitHub does; [`GitHubSim::set_assignees`]
//! and [`GitHubSim::set_state`] are changes a person makes in GitHub, and
//! [`GitHubSim::delivery`] builds the signed `issues` webhook GitHub sends
//! for them, with the secret the plugin gave the hook.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::sim::{Recorder, SimServer};
use crate::webhook::hub_signature;

pub const OWNER: &str = "octo";
pub const REPO: &str = "hello";
pub const REPO_ID: u64 = 4242;
/// The token's owner: the `actor` of every write made through the API.
pub const BOT_LOGIN: &str = "tb-bot";
pub const HOOK_ID: u64 = 77;

/// A webhook delivery as GitHub sends it: (headers, body).
pub type Delivery = (Vec<(&'static str, String)>, Vec<u8>);

/// A GitHub user the repository knows (and who may be assigned).
#[derive(Clone, Debug)]
pub struct GitHubUser {
    pub login: String,
    pub id: u64,
}

#[derive(Clone, Debug, Default)]
pub struct IssueState {
    pub state: String,
    pub state_reason: Option<String>,
    /// Logins, in the order they were assigned.
    pub assignees: Vec<String>,
    pub events: Vec<Value>,
    pub updated: u64,
}

#[derive(Default)]
struct Inner {
    users: Vec<GitHubUser>,
    issues: BTreeMap<u64, IssueState>,
    hook_secret: Option<String>,
    clock: u64,
}

#[derive(Clone)]
struct Shared {
    token: String,
    inner: Arc<Mutex<Inner>>,
}

pub struct GitHubSim {
    server: SimServer,
    shared: Shared,
}

fn rfc3339(secs: u64) -> String {
    // Issues are stamped in 2024 plus a counter: order is all that matters.
    let (m, s) = (secs / 60 % 60, secs % 60);
    format!("2024-05-10T{:02}:{m:02}:{s:02}Z", 10 + secs / 3600 % 10)
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn user(&self, login: &str) -> Value {
        let inner = self.lock();
        let id = inner
            .users
            .iter()
            .find(|u| u.login.eq_ignore_ascii_case(login))
            .map_or(0, |u| u.id);
        json!({"login": login, "id": id, "type": "User"})
    }

    fn issue_json(&self, number: u64) -> Option<Value> {
        let issue = self.lock().issues.get(&number).cloned()?;
        Some(json!({
            "number": number,
            "id": 10_000 + number,
            "state": issue.state,
            "state_reason": issue.state_reason,
            "updated_at": rfc3339(issue.updated),
            "html_url": format!("https://github.com/{OWNER}/{REPO}/issues/{number}"),
            "assignees": issue.assignees.iter().map(|l| self.user(l)).collect::<Vec<_>>(),
        }))
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == format!("Bearer {}", self.token))
    }
}

fn refuse() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"message": "Bad credentials"})),
    )
        .into_response()
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"}))).into_response()
}

impl GitHubSim {
    /// A repository `octo/hello` whose API accepts `token` only.
    pub async fn start(token: &str) -> anyhow::Result<GitHubSim> {
        let shared = Shared {
            token: token.to_owned(),
            inner: Arc::default(),
        };
        let repo = format!("/repos/{OWNER}/{REPO}");
        let router = Router::new()
            .route("/user", get(user))
            .route(&repo, get(repository))
            .route(&format!("{repo}/hooks"), axum::routing::post(create_hook))
            .route(
                &format!("{repo}/hooks/{{id}}"),
                axum::routing::delete(delete_hook),
            )
            .route(
                &format!("{repo}/issues/{{n}}"),
                get(read_issue).patch(update_issue),
            )
            .route(&format!("{repo}/issues/{{n}}/events"), get(issue_events))
            .route(
                &format!("{repo}/issues/{{n}}/assignees"),
                axum::routing::post(add_assignees).delete(remove_assignees),
            )
            .route(&format!("{repo}/assignees/{{login}}"), get(assignable))
            .with_state(shared.clone());
        let server = SimServer::start(router, Recorder::new()).await?;
        Ok(GitHubSim { server, shared })
    }

    /// `http://127.0.0.1:PORT`: the installation's `api_url`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    pub fn recorder(&self) -> &Recorder {
        self.server.recorder()
    }

    pub fn add_user(&self, login: &str, id: u64) {
        self.shared.lock().users.push(GitHubUser {
            login: login.to_owned(),
            id,
        });
    }

    /// An open, unassigned issue.
    pub fn add_issue(&self, number: u64) {
        let mut inner = self.shared.lock();
        inner.clock += 1;
        let updated = inner.clock;
        inner.issues.insert(
            number,
            IssueState {
                state: "open".into(),
                updated,
                ..IssueState::default()
            },
        );
    }

    pub fn issue(&self, number: u64) -> Option<IssueState> {
        self.shared.lock().issues.get(&number).cloned()
    }

    /// A person in GitHub sets the assignees.
    pub fn set_assignees(&self, number: u64, logins: &[&str]) {
        let mut inner = self.shared.lock();
        inner.clock += 1;
        let now = inner.clock;
        if let Some(issue) = inner.issues.get_mut(&number) {
            issue.assignees = logins.iter().map(|l| l.to_string()).collect();
            issue.updated = now;
        }
    }

    /// A person in GitHub closes or reopens the issue.
    pub fn set_state(&self, number: u64, state: &str) {
        let mut inner = self.shared.lock();
        inner.clock += 1;
        let now = inner.clock;
        if let Some(issue) = inner.issues.get_mut(&number) {
            issue.state = state.to_owned();
            issue.updated = now;
        }
    }

    /// The secret the plugin gave the repository hook, once it made one.
    pub fn hook_secret(&self) -> Option<String> {
        self.shared.lock().hook_secret.clone()
    }

    /// The signed `issues` delivery GitHub sends for `action` on issue
    /// `number`, as it is now.
    pub fn delivery(&self, action: &str, number: u64, guid: &str) -> anyhow::Result<Delivery> {
        let secret = self
            .hook_secret()
            .ok_or_else(|| anyhow::anyhow!("no hook was created"))?;
        let issue = self
            .shared
            .issue_json(number)
            .ok_or_else(|| anyhow::anyhow!("no issue {number}"))?;
        let payload = json!({
            "action": action,
            "issue": issue,
            "repository": {"id": REPO_ID, "full_name": format!("{OWNER}/{REPO}"), "url": format!("{}/repos/{OWNER}/{REPO}", self.base_url())},
            "sender": {"login": "octocat", "id": 1},
        });
        let body = serde_json::to_vec(&payload)?;
        let headers = vec![
            ("content-type", "application/json".to_owned()),
            ("x-github-event", "issues".to_owned()),
            ("x-github-delivery", guid.to_owned()),
            ("x-github-hook-id", HOOK_ID.to_string()),
            ("x-hub-signature-256", hub_signature(&secret, &body)),
        ];
        Ok((headers, body))
    }
}

async fn user(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if !s.authorized(&headers) {
        return refuse();
    }
    Json(json!({"login": BOT_LOGIN, "id": 900, "type": "User"})).into_response()
}

async fn repository(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if !s.authorized(&headers) {
        return refuse();
    }
    Json(json!({"id": REPO_ID, "full_name": format!("{OWNER}/{REPO}"), "has_issues": true, "permissions": {"admin": true, "push": true}})).into_response()
}

async fn create_hook(
    State(s): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if !s.authorized(&headers) {
        return refuse();
    }
    let valid = body["name"] == "web"
        && body["events"] == json!(["issues"])
        && body["config"]["content_type"] == "json";
    let Some(secret) = body["config"]["secret"].as_str().filter(|_| valid) else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"message": "Validation Failed"})),
        )
            .into_response();
    };
    s.lock().hook_secret = Some(secret.to_owned());
    (
        StatusCode::CREATED,
        Json(json!({"id": HOOK_ID, "name": "web", "active": true, "events": ["issues"]})),
    )
        .into_response()
}

async fn delete_hook(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if !s.authorized(&headers) {
        return refuse();
    }
    s.lock().hook_secret = None;
    StatusCode::NO_CONTENT.into_response()
}

async fn read_issue(State(s): State<Shared>, headers: HeaderMap, Path(n): Path<u64>) -> Response {
    if !s.authorized(&headers) {
        return refuse();
    }
    s.issue_json(n)
        .map_or_else(not_found, |i| Json(i).into_response())
}

async fn update_issue(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(n): Path<u64>,
    Json(body): Json<Value>,
) -> Response {
    if !s.authorized(&headers) {
        return refuse();
    }
    {
        let mut inner = s.lock();
        inner.clock += 1;
        let now = inner.clock;
        let Some(issue) = inner.issues.get_mut(&n) else {
            return not_found();
        };
        if let Some(state) = body["state"].as_str() {
            issue.state = state.to_owned();
            issue.state_reason = body["state_reason"].as_str().map(str::to_owned);
            issue.events.push(json!({"event": if state == "closed" {"closed"} else {"reopened"}, "actor": {"login": BOT_LOGIN}}));
        }
        issue.updated = now;
    }
    s.issue_json(n)
        .map_or_else(not_found, |i| Json(i).into_response())
}

async fn issue_events(State(s): State<Shared>, headers: HeaderMap, Path(n): Path<u64>) -> Response {
    if !s.authorized(&headers) {
        return refuse();
    }
    match s.lock().issues.get(&n) {
        Some(issue) => Json(Value::Array(issue.events.clone())).into_response(),
        None => not_found(),
    }
}

fn logins(body: &Value) -> Vec<String> {
    body["assignees"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn change_assignees(
    s: Shared,
    headers: HeaderMap,
    n: u64,
    body: Value,
    add: bool,
) -> Response {
    if !s.authorized(&headers) {
        return refuse();
    }
    {
        let mut inner = s.lock();
        inner.clock += 1;
        let now = inner.clock;
        let Some(issue) = inner.issues.get_mut(&n) else {
            return not_found();
        };
        for login in logins(&body) {
            let present = issue
                .assignees
                .iter()
                .any(|a| a.eq_ignore_ascii_case(&login));
            if add && !present {
                issue.assignees.push(login.clone());
            } else if !add && present {
                issue.assignees.retain(|a| !a.eq_ignore_ascii_case(&login));
            } else {
                continue;
            }
            let event = if add { "assigned" } else { "unassigned" };
            issue.events.push(json!({"event": event, "actor": {"login": BOT_LOGIN}, "assignee": {"login": login}}));
        }
        issue.updated = now;
    }
    let status = if add {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    s.issue_json(n)
        .map_or_else(not_found, |i| (status, Json(i)).into_response())
}

async fn add_assignees(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(n): Path<u64>,
    Json(body): Json<Value>,
) -> Response {
    change_assignees(s, headers, n, body, true).await
}

async fn remove_assignees(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(n): Path<u64>,
    Json(body): Json<Value>,
) -> Response {
    change_assignees(s, headers, n, body, false).await
}

async fn assignable(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(login): Path<String>,
) -> Response {
    if !s.authorized(&headers) {
        return refuse();
    }
    let known = s
        .lock()
        .users
        .iter()
        .any(|u| u.login.eq_ignore_ascii_case(&login));
    if known {
        StatusCode::NO_CONTENT.into_response()
    } else {
        not_found()
    }
}
