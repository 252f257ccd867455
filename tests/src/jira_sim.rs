//! A simulated Jira Cloud REST API: stateful (statuses, issues, transitions, users), recording
//! (see [`crate::sim`]) and strict about authentication.
//!
//! Seeded from Sentry's Jira fixtures: statuses from `status_response.json` plus the statuses
//! the workflow's transitions lead to (`transition_response.json`: 11→10100 "To Do", 21→3
//! "In Progress", 31→10101 "Done", 61 "Kicked" without a target); issue `SEN-5` from
//! `get_issue_response.json` (project 10100, status 10100) and `APP-123` (project 10000,
//! status 10100); users `bob` (`deadbeef123`, `Bob@example.com`) and `jess`
//! (`jess-account`, `jess@sentry.io`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, body::Bytes};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::fixtures::fixture;
use crate::jwt;
use crate::sim::{Recorder, SimServer};

/// Account id of the seeded user Bob.
pub const BOB_ACCOUNT_ID: &str = "deadbeef123";
/// Email of the seeded user Bob as Jira stores it (note the capital B).
pub const BOB_JIRA_EMAIL: &str = "Bob@example.com";
/// Account id of the seeded user Jess.
pub const JESS_ACCOUNT_ID: &str = "jess-account";

/// Credentials the simulator accepts; anything else is answered 401.
#[derive(Clone, Debug, Default)]
pub struct JiraAuth {
    /// `Authorization: Basic base64(email:token)`.
    pub basic: Option<(String, String)>,
    /// `Authorization: Bearer <token>`.
    pub bearer: Option<String>,
    /// `Authorization: JWT <token>` signed by a Connect app.
    pub connect: Option<ConnectAuth>,
}

/// How the simulator checks Connect JWTs on incoming calls.
#[derive(Clone, Debug)]
pub struct ConnectAuth {
    pub shared_secret: String,
    /// The `iss` the token must carry (the app key), when set.
    pub issuer: Option<String>,
    /// Leeway for `exp`, in seconds.
    pub leeway_secs: i64,
}

impl JiraAuth {
    pub fn basic(email: &str, token: &str) -> JiraAuth {
        JiraAuth {
            basic: Some((email.into(), token.into())),
            ..Default::default()
        }
    }

    pub fn bearer(token: &str) -> JiraAuth {
        JiraAuth {
            bearer: Some(token.into()),
            ..Default::default()
        }
    }

    /// Connect JWTs signed with `shared_secret` and issued by `app_key`.
    pub fn connect(shared_secret: &str, app_key: &str) -> JiraAuth {
        JiraAuth {
            connect: Some(ConnectAuth {
                shared_secret: shared_secret.into(),
                issuer: Some(app_key.into()),
                leeway_secs: 30,
            }),
            ..Default::default()
        }
    }

    /// Check one request; `Err` holds the reason for the 401.
    fn check(
        &self,
        method: &str,
        path: &str,
        query: &str,
        authorization: Option<&str>,
    ) -> Result<(), String> {
        let Some(authorization) = authorization else {
            return Err("no Authorization header".into());
        };
        let (scheme, credentials) = authorization
            .split_once(' ')
            .ok_or_else(|| "malformed Authorization header".to_string())?;
        let credentials = credentials.trim();
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => {
                let (email, token) = self
                    .basic
                    .as_ref()
                    .ok_or_else(|| "basic auth not accepted".to_string())?;
                let decoded = STANDARD
                    .decode(credentials)
                    .map_err(|_| "basic credentials are not base64".to_string())?;
                if decoded == format!("{email}:{token}").as_bytes() {
                    Ok(())
                } else {
                    Err("wrong basic credentials".into())
                }
            }
            "bearer" => match &self.bearer {
                Some(token) if token == credentials => Ok(()),
                Some(_) => Err("wrong bearer token".into()),
                None => Err("bearer auth not accepted".into()),
            },
            "jwt" => {
                let connect = self
                    .connect
                    .as_ref()
                    .ok_or_else(|| "JWT auth not accepted".to_string())?;
                let claims = jwt::verify_hs256(
                    credentials,
                    connect.shared_secret.as_bytes(),
                    jwt::now_secs(),
                    connect.leeway_secs,
                )
                .map_err(|e| e.to_string())?;
                if let Some(expected) = &connect.issuer {
                    let got = claims.get("iss").and_then(Value::as_str).unwrap_or("");
                    if got != expected {
                        return Err(jwt::JwtError::WrongIssuer {
                            expected: expected.clone(),
                            got: got.into(),
                        }
                        .to_string());
                    }
                }
                let expected = jwt::qsh(method, path, query);
                let got = claims.get("qsh").and_then(Value::as_str).unwrap_or("");
                if got != expected {
                    return Err(jwt::JwtError::QshMismatch {
                        expected,
                        got: got.into(),
                    }
                    .to_string());
                }
                Ok(())
            }
            other => Err(format!("unknown auth scheme {other:?}")),
        }
    }
}

/// One Jira user.
#[derive(Clone, Debug)]
pub struct JiraUser {
    pub account_id: String,
    pub display_name: String,
    pub email: String,
    /// False when the user's privacy settings hide the email (search answers `""`).
    pub email_visible: bool,
}

/// One Jira issue's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssueState {
    pub key: String,
    pub id: String,
    pub project_id: String,
    pub status_id: String,
    /// The assignee's account id.
    pub assignee: Option<String>,
}

#[derive(Default)]
struct JiraState {
    base_url: String,
    /// `GET /rest/api/2/status` entries.
    statuses: Vec<Value>,
    issues: BTreeMap<String, IssueState>,
    /// Per-issue transition lists (`transitions` array entries).
    transitions: BTreeMap<String, Vec<Value>>,
    default_transitions: Vec<Value>,
    users: Vec<JiraUser>,
    issue_template: Value,
}

type Shared = Arc<Mutex<JiraState>>;

/// The simulator. Dropping it stops the server.
pub struct JiraSim {
    server: SimServer,
    state: Shared,
}

impl JiraSim {
    /// Start a simulator that accepts `auth`, seeded as described in the module docs.
    pub async fn start(auth: JiraAuth) -> anyhow::Result<JiraSim> {
        JiraSim::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), auth).await
    }

    /// The simulator on a given address (e.g. a fixed port for the walk-through).
    pub async fn start_on(addr: SocketAddr, auth: JiraAuth) -> anyhow::Result<JiraSim> {
        let state: Shared = Arc::new(Mutex::new(seed_state()?));
        let router = Router::new()
            .route("/rest/api/2/serverInfo", get(server_info))
            .route("/rest/api/2/status", get(statuses))
            .route("/rest/api/2/issue/{key}", get(get_issue))
            .route(
                "/rest/api/2/issue/{key}/transitions",
                get(get_transitions).post(post_transition),
            )
            .route("/rest/api/2/issue/{key}/assignee", put(put_assignee))
            .route("/rest/api/2/user/assignable/search", get(assignable_search))
            .route("/rest/api/3/user/email", get(user_email))
            .fallback(not_found)
            .layer(middleware::from_fn_with_state(Arc::new(auth), authenticate))
            .with_state(state.clone());
        let recorder = Recorder::new();
        let server = SimServer::start_on(addr, router, recorder).await?;
        state.lock().unwrap().base_url = server.base_url();
        Ok(JiraSim { server, state })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// `127.0.0.1:PORT`: the external id of a non-Connect installation.
    pub fn authority(&self) -> String {
        self.server.authority()
    }

    /// The request log and fault queue.
    pub fn recorder(&self) -> &Recorder {
        self.server.recorder()
    }

    /// The state of issue `key`.
    pub fn issue(&self, key: &str) -> Option<IssueState> {
        self.state.lock().unwrap().issues.get(key).cloned()
    }

    /// Add (or replace) an issue; it gets the default transitions.
    pub fn add_issue(&self, key: &str, id: &str, project_id: &str, status_id: &str) {
        self.state.lock().unwrap().issues.insert(
            key.to_string(),
            IssueState {
                key: key.into(),
                id: id.into(),
                project_id: project_id.into(),
                status_id: status_id.into(),
                assignee: None,
            },
        );
    }

    /// Move issue `key` to status `status_id` directly (as a Jira user would).
    pub fn set_issue_status(&self, key: &str, status_id: &str) {
        let mut state = self.state.lock().unwrap();
        let issue = state.issues.get_mut(key).expect("unknown issue");
        issue.status_id = status_id.to_string();
    }

    /// Set issue `key`'s assignee directly.
    pub fn set_issue_assignee(&self, key: &str, account_id: Option<&str>) {
        let mut state = self.state.lock().unwrap();
        let issue = state.issues.get_mut(key).expect("unknown issue");
        issue.assignee = account_id.map(str::to_string);
    }

    /// Replace issue `key`'s transitions (entries shaped like `transition_response.json`'s).
    pub fn set_transitions(&self, key: &str, transitions: Vec<Value>) {
        self.state
            .lock()
            .unwrap()
            .transitions
            .insert(key.to_string(), transitions);
    }

    /// Add a user.
    pub fn add_user(&self, user: JiraUser) {
        self.state.lock().unwrap().users.push(user);
    }

    /// Hide or show a user's email in searches.
    pub fn set_email_visible(&self, account_id: &str, visible: bool) {
        let mut state = self.state.lock().unwrap();
        for user in state
            .users
            .iter_mut()
            .filter(|u| u.account_id == account_id)
        {
            user.email_visible = visible;
        }
    }

    /// Status ids whose category is `done`.
    pub fn done_status_ids(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .statuses
            .iter()
            .filter(|s| s["statusCategory"]["key"] == "done")
            .filter_map(|s| s["id"].as_str().map(str::to_string))
            .collect()
    }
}

fn seed_state() -> anyhow::Result<JiraState> {
    let mut statuses: Vec<Value> =
        serde_json::from_value(fixture("sentry/jira/status_response.json"))?;
    let transitions_doc = fixture("sentry/jira/transition_response.json");
    let default_transitions: Vec<Value> =
        serde_json::from_value(transitions_doc["transitions"].clone())?;
    // The workflow's target statuses must be known to GET /rest/api/2/status too.
    for t in &default_transitions {
        let to = &t["to"];
        if to.is_object() && !statuses.iter().any(|s| s["id"] == to["id"]) {
            statuses.push(to.clone());
        }
    }
    let issue_template = fixture("sentry/jira/get_issue_response.json");
    let mut issues = BTreeMap::new();
    let sen = IssueState {
        key: issue_template["key"]
            .as_str()
            .unwrap_or("SEN-5")
            .to_string(),
        id: issue_template["id"].as_str().unwrap_or("10305").to_string(),
        project_id: issue_template["fields"]["project"]["id"]
            .as_str()
            .unwrap_or("10100")
            .to_string(),
        status_id: issue_template["fields"]["status"]["id"]
            .as_str()
            .unwrap_or("10100")
            .to_string(),
        assignee: None,
    };
    issues.insert(sen.key.clone(), sen);
    issues.insert(
        "APP-123".to_string(),
        IssueState {
            key: "APP-123".into(),
            id: "101".into(),
            project_id: "10000".into(),
            status_id: "10100".into(),
            assignee: None,
        },
    );
    let users = vec![
        JiraUser {
            account_id: BOB_ACCOUNT_ID.into(),
            display_name: "Bob".into(),
            email: BOB_JIRA_EMAIL.into(),
            email_visible: true,
        },
        JiraUser {
            account_id: JESS_ACCOUNT_ID.into(),
            display_name: "Jess MacQueen".into(),
            email: "jess@sentry.io".into(),
            email_visible: true,
        },
    ];
    Ok(JiraState {
        base_url: String::new(),
        statuses,
        issues,
        transitions: BTreeMap::new(),
        default_transitions,
        users,
        issue_template,
    })
}

/// A Jira-style error answer.
fn jira_error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"errorMessages": [message.into()], "errors": {}})),
    )
        .into_response()
}

async fn authenticate(State(auth): State<Arc<JiraAuth>>, request: Request, next: Next) -> Response {
    let authorization = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    let uri = request.uri();
    match auth.check(
        request.method().as_str(),
        uri.path(),
        uri.query().unwrap_or(""),
        authorization,
    ) {
        Ok(()) => next.run(request).await,
        Err(reason) => jira_error(StatusCode::UNAUTHORIZED, format!("Unauthorized: {reason}")),
    }
}

async fn not_found() -> Response {
    jira_error(StatusCode::NOT_FOUND, "No such resource in the simulator.")
}

async fn server_info(State(state): State<Shared>) -> Json<Value> {
    let base = state.lock().unwrap().base_url.clone();
    Json(json!({
        "baseUrl": base,
        "version": "1001.0.0-SNAPSHOT",
        "versionNumbers": [1001, 0, 0],
        "deploymentType": "Cloud",
        "buildNumber": 100_000,
        "serverTitle": "Jira (simulated)"
    }))
}

async fn statuses(State(state): State<Shared>) -> Json<Value> {
    Json(Value::Array(state.lock().unwrap().statuses.clone()))
}

fn user_json(user: &JiraUser, base: &str) -> Value {
    json!({
        "self": format!("{base}/rest/api/2/user?accountId={}", user.account_id),
        "accountId": user.account_id,
        "displayName": user.display_name,
        "emailAddress": if user.email_visible { user.email.clone() } else { String::new() },
        "active": true,
        "accountType": "atlassian",
        "timeZone": "UTC"
    })
}

fn issue_json(state: &JiraState, issue: &IssueState) -> Value {
    let base = &state.base_url;
    let mut doc = state.issue_template.clone();
    doc["key"] = json!(issue.key);
    doc["id"] = json!(issue.id);
    doc["self"] = json!(format!("{base}/rest/api/2/issue/{}", issue.id));
    let project_key = issue.key.split('-').next().unwrap_or("").to_string();
    let fields = &mut doc["fields"];
    fields["project"]["id"] = json!(issue.project_id);
    fields["project"]["key"] = json!(project_key);
    fields["project"]["self"] = json!(format!("{base}/rest/api/2/project/{}", issue.project_id));
    fields["status"] = state
        .statuses
        .iter()
        .find(|s| s["id"] == json!(issue.status_id))
        .cloned()
        .unwrap_or_else(|| json!({"id": issue.status_id, "name": issue.status_id}));
    fields["assignee"] = match &issue.assignee {
        Some(id) => state
            .users
            .iter()
            .find(|u| &u.account_id == id)
            .map(|u| user_json(u, base))
            .unwrap_or_else(|| json!({"accountId": id})),
        None => Value::Null,
    };
    doc
}

async fn get_issue(State(state): State<Shared>, Path(key): Path<String>) -> Response {
    let state = state.lock().unwrap();
    match state.issues.get(&key) {
        Some(issue) => Json(issue_json(&state, issue)).into_response(),
        None => jira_error(
            StatusCode::NOT_FOUND,
            "Issue does not exist or you do not have permission to see it.",
        ),
    }
}

fn transitions_of(state: &JiraState, key: &str) -> Vec<Value> {
    state
        .transitions
        .get(key)
        .cloned()
        .unwrap_or_else(|| state.default_transitions.clone())
}

async fn get_transitions(State(state): State<Shared>, Path(key): Path<String>) -> Response {
    let state = state.lock().unwrap();
    if !state.issues.contains_key(&key) {
        return jira_error(
            StatusCode::NOT_FOUND,
            "Issue does not exist or you do not have permission to see it.",
        );
    }
    Json(json!({"expand": "transitions", "transitions": transitions_of(&state, &key)}))
        .into_response()
}

async fn post_transition(
    State(state): State<Shared>,
    Path(key): Path<String>,
    body: Bytes,
) -> Response {
    let mut state = state.lock().unwrap();
    if !state.issues.contains_key(&key) {
        return jira_error(
            StatusCode::NOT_FOUND,
            "Issue does not exist or you do not have permission to see it.",
        );
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return jira_error(StatusCode::BAD_REQUEST, "Request body is not valid JSON.");
    };
    let id = match &body["transition"]["id"] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return jira_error(StatusCode::BAD_REQUEST, "Missing 'transition' identifier."),
    };
    let transitions = transitions_of(&state, &key);
    let Some(transition) = transitions.iter().find(|t| t["id"] == json!(id)) else {
        return jira_error(
            StatusCode::BAD_REQUEST,
            format!("Transition id '{id}' is not valid for this issue."),
        );
    };
    if let Some(to) = transition["to"]["id"].as_str() {
        let to = to.to_string();
        state.issues.get_mut(&key).expect("checked").status_id = to;
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn put_assignee(
    State(state): State<Shared>,
    Path(key): Path<String>,
    body: Bytes,
) -> Response {
    let mut state = state.lock().unwrap();
    if !state.issues.contains_key(&key) {
        return jira_error(
            StatusCode::NOT_FOUND,
            "Issue does not exist or you do not have permission to see it.",
        );
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return jira_error(StatusCode::BAD_REQUEST, "Request body is not valid JSON.");
    };
    let Some(account) = body.as_object().and_then(|o| o.get("accountId")) else {
        return jira_error(StatusCode::BAD_REQUEST, "accountId is required.");
    };
    let assignee = match account {
        Value::Null => None,
        Value::String(id) if state.users.iter().any(|u| &u.account_id == id) => Some(id.clone()),
        Value::String(id) => {
            return jira_error(
                StatusCode::BAD_REQUEST,
                format!("User '{id}' cannot be assigned issues."),
            );
        }
        _ => {
            return jira_error(
                StatusCode::BAD_REQUEST,
                "accountId must be a string or null.",
            );
        }
    };
    state.issues.get_mut(&key).expect("checked").assignee = assignee;
    StatusCode::NO_CONTENT.into_response()
}

async fn assignable_search(
    State(state): State<Shared>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    let state = state.lock().unwrap();
    let Some(issue_key) = params.get("issueKey") else {
        return jira_error(
            StatusCode::BAD_REQUEST,
            "One of 'issueKey' or 'project' is required.",
        );
    };
    if !state.issues.contains_key(issue_key) {
        return jira_error(
            StatusCode::NOT_FOUND,
            format!("Issue '{issue_key}' not found."),
        );
    }
    let query = params
        .get("query")
        .map(|q| q.to_lowercase())
        .unwrap_or_default();
    let found: Vec<Value> = state
        .users
        .iter()
        .filter(|u| {
            u.email.to_lowercase().contains(&query)
                || u.display_name.to_lowercase().contains(&query)
        })
        .map(|u| user_json(u, &state.base_url))
        .collect();
    Json(Value::Array(found)).into_response()
}

async fn user_email(
    State(state): State<Shared>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    let state = state.lock().unwrap();
    let Some(account_id) = params.get("accountId") else {
        return jira_error(StatusCode::BAD_REQUEST, "accountId is required.");
    };
    match state.users.iter().find(|u| &u.account_id == account_id) {
        Some(user) => {
            Json(json!({"accountId": user.account_id, "email": user.email})).into_response()
        }
        None => jira_error(
            StatusCode::NOT_FOUND,
            format!("User '{account_id}' not found."),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn simulator_applies_transitions_and_checks_auth() {
        let sim = JiraSim::start(JiraAuth::basic("bot@example.com", "tok"))
            .await
            .unwrap();
        let http = reqwest::Client::new();
        let url = format!("{}/rest/api/2/issue/SEN-5/transitions", sim.base_url());

        let denied = http
            .post(&url)
            .json(&json!({"transition": {"id": "31"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(denied.status(), 401);

        let ok = http
            .post(&url)
            .basic_auth("bot@example.com", Some("tok"))
            .json(&json!({"transition": {"id": "31"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 204);
        assert_eq!(sim.issue("SEN-5").unwrap().status_id, "10101");

        let bad = http
            .post(&url)
            .basic_auth("bot@example.com", Some("tok"))
            .json(&json!({"transition": {"id": "99"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 400);
        let body: Value = bad.json().await.unwrap();
        assert!(body["errorMessages"][0].as_str().unwrap().contains("99"));

        sim.recorder().rate_limit_next(1, 7);
        let limited = http
            .get(format!("{}/rest/api/2/status", sim.base_url()))
            .basic_auth("bot@example.com", Some("tok"))
            .send()
            .await
            .unwrap();
        assert_eq!(limited.status(), 429);
        assert_eq!(limited.headers()["retry-after"], "7");

        let done = sim.done_status_ids();
        assert!(done.contains(&"10101".to_string()));
        assert!(!done.contains(&"3".to_string()));
        assert_eq!(sim.recorder().requests().len(), 4);
    }

    #[tokio::test]
    async fn simulator_verifies_connect_jwt_with_qsh() {
        let sim = JiraSim::start(JiraAuth::connect("s3cret", "app.key"))
            .await
            .unwrap();
        let http = reqwest::Client::new();
        let now = jwt::now_secs();
        let token = |qsh: String, iss: &str, secret: &[u8]| {
            jwt::encode_hs256(
                &json!({"iss": iss, "iat": now, "exp": now + 180, "qsh": qsh}),
                secret,
            )
        };
        let path = "/rest/api/2/user/assignable/search";
        let query = "issueKey=SEN-5&query=bob%40example.com";
        let good = token(jwt::qsh("GET", path, query), "app.key", b"s3cret");
        let url = format!("{}{path}?{query}", sim.base_url());
        let ok = http
            .get(&url)
            .header("authorization", format!("JWT {good}"))
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
        let users: Value = ok.json().await.unwrap();
        assert_eq!(users[0]["accountId"], BOB_ACCOUNT_ID);

        let wrong_qsh = token(jwt::qsh("GET", path, ""), "app.key", b"s3cret");
        let wrong_iss = token(jwt::qsh("GET", path, query), "other", b"s3cret");
        let wrong_key = token(jwt::qsh("GET", path, query), "app.key", b"nope");
        for bad in [wrong_qsh, wrong_iss, wrong_key] {
            let r = http
                .get(&url)
                .header("authorization", format!("JWT {bad}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401);
        }
    }
}
