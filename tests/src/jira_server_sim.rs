//! A simulated Jira Server / Data Center REST API: stateful (statuses, issues, transitions,
//! users, admin webhooks), recording (see [`crate::sim`]) and strict about authentication: every
//! request must carry an OAuth 1.0a RSA-SHA1 `Authorization` header from the configured consumer
//! and access token, whose signature verifies with the consumer's public key over the RFC 5849
//! signature base string; anything else is answered 401.
//!
//! Seeded from Sentry's fixtures: statuses from `jira/status_response.json` plus the statuses
//! the workflow's transitions lead to (`jira/transition_response.json`: 11→10100 "To Do",
//! 21→3 "In Progress", 31→10101 "Done", 61 "Kicked" without a target); issues `SEN-5`
//! (project 10100, status 10100) and `APP-1` (project 10000, status 10100); the user `bob`
//! ("Bobby", `bob@example.org`) of `jira_server/user_assignable_search_response.json`.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, put};
use axum::{Json, http::HeaderMap};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::Verifier as _;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{Value, json};
use sha1::Sha1;

use crate::fixtures::fixture;
use crate::jwt;
use crate::sim::{Recorder, SimServer};

/// The consumer's RSA private key the tests install with (the OAuth test cases' 1024-bit key).
pub const TEST_PRIVATE_KEY: &str =
    include_str!("../../plugins/jira-server/testdata/oauth-test-cases-key.pem");
/// The consumer key of the simulated application link.
pub const CONSUMER_KEY: &str = "sentry-bot";
/// The access token (and its secret) of the simulated OAuth dance.
pub const ACCESS_TOKEN: &str = "sim-access-token";
pub const ACCESS_TOKEN_SECRET: &str = "sim-access-token-secret";

/// How far `oauth_timestamp` may be from the simulator's clock.
const TIMESTAMP_WINDOW_SECS: i64 = 300;
/// The longest a hanging webhook registration hangs.
const MAX_HANG: Duration = Duration::from_secs(60);

/// The application link the simulator trusts.
#[derive(Clone, Debug)]
pub struct OAuthConsumer {
    pub consumer_key: String,
    pub public_key: RsaPublicKey,
    pub access_token: String,
}

impl OAuthConsumer {
    /// The consumer whose public key is derived from `private_key_pem` (PKCS#8).
    pub fn from_private_key(
        consumer_key: &str,
        private_key_pem: &str,
        access_token: &str,
    ) -> anyhow::Result<OAuthConsumer> {
        let key = RsaPrivateKey::from_pkcs8_pem(private_key_pem)?;
        Ok(OAuthConsumer {
            consumer_key: consumer_key.into(),
            public_key: key.to_public_key(),
            access_token: access_token.into(),
        })
    }

    /// [`CONSUMER_KEY`], [`TEST_PRIVATE_KEY`] and [`ACCESS_TOKEN`].
    pub fn test() -> OAuthConsumer {
        OAuthConsumer::from_private_key(CONSUMER_KEY, TEST_PRIVATE_KEY, ACCESS_TOKEN)
            .expect("the test key parses")
    }
}

/// How `POST /rest/webhooks/1.0/webhook` answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookMode {
    /// 201 with the created webhook.
    Create,
    /// 403 with `jira_server/create_webhook_403_response.json`.
    Forbidden,
    /// 502 with an HTML body, as a proxy in front of Jira would.
    BadGateway,
    /// No answer for this long (at most 60 s), then 502.
    Hang(Duration),
}

/// One registered admin webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisteredWebhook {
    pub id: u64,
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
}

/// One Jira Server user.
#[derive(Clone, Debug)]
pub struct ServerUser {
    pub name: String,
    pub display_name: String,
    /// Empty when hidden.
    pub email: String,
}

/// One issue's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssueState {
    pub key: String,
    pub id: String,
    pub project_id: String,
    pub status_id: String,
    /// The assignee's user name.
    pub assignee: Option<String>,
}

struct ServerState {
    base_url: String,
    consumer: OAuthConsumer,
    seen_nonces: HashSet<(String, String)>,
    statuses: Vec<Value>,
    issues: BTreeMap<String, IssueState>,
    transitions: Vec<Value>,
    users: Vec<ServerUser>,
    webhooks: BTreeMap<u64, RegisteredWebhook>,
    next_webhook_id: u64,
    webhook_mode: WebhookMode,
}

type Shared = Arc<Mutex<ServerState>>;

/// The simulator. Dropping it stops the server.
pub struct JiraServerSim {
    server: SimServer,
    state: Shared,
}

impl JiraServerSim {
    /// Start a simulator trusting `consumer`, seeded as described in the module docs.
    pub async fn start(consumer: OAuthConsumer) -> anyhow::Result<JiraServerSim> {
        let state: Shared = Arc::new(Mutex::new(seed_state(consumer)?));
        let router = Router::new()
            .route("/rest/api/2/status", get(statuses))
            .route("/rest/api/2/issue/{key}", get(get_issue))
            .route(
                "/rest/api/2/issue/{key}/transitions",
                get(get_transitions).post(post_transition),
            )
            .route("/rest/api/2/issue/{key}/assignee", put(put_assignee))
            .route("/rest/api/2/user/assignable/search", get(assignable_search))
            .route(
                "/rest/webhooks/1.0/webhook",
                get(list_webhooks).post(create_webhook),
            )
            .route("/rest/webhooks/1.0/webhook/{id}", delete(delete_webhook))
            .fallback(not_found)
            .layer(middleware::from_fn_with_state(state.clone(), authenticate))
            .with_state(state.clone());
        let server = SimServer::start(router, Recorder::new()).await?;
        state.lock().unwrap().base_url = server.base_url();
        Ok(JiraServerSim { server, state })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// `127.0.0.1:PORT`.
    pub fn authority(&self) -> String {
        self.server.authority()
    }

    /// The request log and fault queue.
    pub fn recorder(&self) -> &Recorder {
        self.server.recorder()
    }

    /// Stop the server and wait (up to 10 s) until its port refuses connections.
    pub async fn stop(self) -> anyhow::Result<()> {
        let addr = self.server.addr();
        drop(self.server);
        let deadline = tokio::time::Instant::now() + crate::sim::DEFAULT_WAIT;
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_err() {
                return Ok(());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "the simulator on {addr} still accepts connections"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// How webhook registrations are answered from now on.
    pub fn set_webhook_mode(&self, mode: WebhookMode) {
        self.state.lock().unwrap().webhook_mode = mode;
    }

    /// The registered webhooks, by id.
    pub fn webhooks(&self) -> Vec<RegisteredWebhook> {
        self.state
            .lock()
            .unwrap()
            .webhooks
            .values()
            .cloned()
            .collect()
    }

    /// The state of issue `key`.
    pub fn issue(&self, key: &str) -> Option<IssueState> {
        self.state.lock().unwrap().issues.get(key).cloned()
    }

    /// Move issue `key` to status `status_id` directly (as a Jira user would).
    pub fn set_issue_status(&self, key: &str, status_id: &str) {
        let mut state = self.state.lock().unwrap();
        state.issues.get_mut(key).expect("unknown issue").status_id = status_id.to_string();
    }

    /// Add a user.
    pub fn add_user(&self, name: &str, display_name: &str, email: &str) {
        self.state.lock().unwrap().users.push(ServerUser {
            name: name.into(),
            display_name: display_name.into(),
            email: email.into(),
        });
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

fn seed_state(consumer: OAuthConsumer) -> anyhow::Result<ServerState> {
    let mut statuses: Vec<Value> =
        serde_json::from_value(fixture("sentry/jira/status_response.json"))?;
    let transitions: Vec<Value> = serde_json::from_value(
        fixture("sentry/jira/transition_response.json")["transitions"].clone(),
    )?;
    for t in &transitions {
        let to = &t["to"];
        if to.is_object() && !statuses.iter().any(|s| s["id"] == to["id"]) {
            statuses.push(to.clone());
        }
    }
    let mut issues = BTreeMap::new();
    for (key, id, project) in [("SEN-5", "10305", "10100"), ("APP-1", "10001", "10000")] {
        issues.insert(
            key.to_string(),
            IssueState {
                key: key.into(),
                id: id.into(),
                project_id: project.into(),
                status_id: "10100".into(),
                assignee: None,
            },
        );
    }
    let users = fixture("sentry/jira_server/user_assignable_search_response.json")
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|u| ServerUser {
            name: u["name"].as_str().unwrap_or_default().into(),
            display_name: u["displayName"].as_str().unwrap_or_default().into(),
            email: u["emailAddress"].as_str().unwrap_or_default().into(),
        })
        .collect();
    Ok(ServerState {
        base_url: String::new(),
        consumer,
        seen_nonces: HashSet::new(),
        statuses,
        issues,
        transitions,
        users,
        webhooks: BTreeMap::new(),
        next_webhook_id: 1,
        webhook_mode: WebhookMode::Create,
    })
}

// ---------------------------------------------------------------------------------------------
// OAuth 1.0a verification (RFC 5849 §3.4), written independently of the plugin.

/// RFC 3986 unreserved characters stay; everything else is `%XX`, upper-case.
pub fn oauth_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The signature base string of `method base_uri` with these decoded parameters.
pub fn signature_base_string(method: &str, base_uri: &str, params: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (oauth_encode(k), oauth_encode(v)))
        .collect();
    pairs.sort();
    let normalized = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        oauth_encode(base_uri),
        oauth_encode(&normalized)
    )
}

/// `OAuth k="v", ...` → decoded pairs.
fn parse_oauth_header(value: &str) -> Result<Vec<(String, String)>, String> {
    let (scheme, rest) = value
        .trim()
        .split_once(' ')
        .ok_or("malformed Authorization header")?;
    if !scheme.eq_ignore_ascii_case("oauth") {
        return Err(format!("auth scheme {scheme:?} is not OAuth"));
    }
    rest.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').ok_or("parameter without =")?;
            let v = v
                .trim()
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .ok_or("unquoted parameter value")?;
            Ok((jwt::percent_decode(k.trim()), jwt::percent_decode(v)))
        })
        .collect()
}

fn check_oauth(
    state: &mut ServerState,
    method: &str,
    path: &str,
    query: &str,
    authorization: Option<&str>,
) -> Result<(), String> {
    let header = authorization.ok_or("no Authorization header")?;
    let oauth = parse_oauth_header(header)?;
    let get = |name: &str| {
        oauth
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if get("oauth_signature_method") != Some("RSA-SHA1") {
        return Err("oauth_signature_method must be RSA-SHA1".into());
    }
    if get("oauth_consumer_key") != Some(state.consumer.consumer_key.as_str()) {
        return Err("unknown oauth_consumer_key".into());
    }
    if get("oauth_token") != Some(state.consumer.access_token.as_str()) {
        return Err("unknown oauth_token".into());
    }
    if get("oauth_version").is_some_and(|v| v != "1.0") {
        return Err("oauth_version must be 1.0".into());
    }
    let timestamp: i64 = get("oauth_timestamp")
        .and_then(|t| t.parse().ok())
        .ok_or("oauth_timestamp missing or not a number")?;
    if (timestamp - jwt::now_secs()).abs() > TIMESTAMP_WINDOW_SECS {
        return Err(format!("oauth_timestamp {timestamp} is too far from now"));
    }
    let nonce = get("oauth_nonce")
        .filter(|n| !n.is_empty())
        .ok_or("oauth_nonce missing")?;
    let signature = get("oauth_signature").ok_or("oauth_signature missing")?;
    let signature = STANDARD
        .decode(signature)
        .map_err(|_| "oauth_signature is not base64")?;

    let mut params = jwt::parse_query(query);
    params.extend(
        oauth
            .iter()
            .filter(|(k, _)| k != "oauth_signature" && k != "realm")
            .cloned(),
    );
    let base_uri = format!("{}{path}", state.base_url);
    let base_string = signature_base_string(method, &base_uri, &params);
    let signature =
        Signature::try_from(signature.as_slice()).map_err(|_| "malformed RSA signature")?;
    VerifyingKey::<Sha1>::new(state.consumer.public_key.clone())
        .verify(base_string.as_bytes(), &signature)
        .map_err(|_| format!("oauth_signature does not verify over {base_string}"))?;
    // Only a verified request uses up its nonce.
    if !state
        .seen_nonces
        .insert((timestamp.to_string(), nonce.to_string()))
    {
        return Err("oauth_nonce was already used".into());
    }
    Ok(())
}

/// A Jira-style error answer.
fn jira_error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"errorMessages": [message.into()], "errors": {}})),
    )
        .into_response()
}

async fn authenticate(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let authorization = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let uri = request.uri().clone();
    let checked = check_oauth(
        &mut state.lock().unwrap(),
        request.method().as_str(),
        uri.path(),
        uri.query().unwrap_or(""),
        authorization.as_deref(),
    );
    match checked {
        Ok(()) => next.run(request).await,
        Err(reason) => jira_error(
            StatusCode::UNAUTHORIZED,
            format!("OAuth authentication failed: {reason}"),
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// REST resources

async fn not_found() -> Response {
    jira_error(StatusCode::NOT_FOUND, "No such resource in the simulator.")
}

async fn statuses(State(state): State<Shared>) -> Json<Value> {
    Json(Value::Array(state.lock().unwrap().statuses.clone()))
}

fn user_json(user: &ServerUser, base: &str) -> Value {
    json!({
        "self": format!("{base}/rest/api/2/user?username={}", user.name),
        "key": user.name.to_lowercase(),
        "name": user.name,
        "displayName": user.display_name,
        "emailAddress": user.email,
        "active": true,
        "timeZone": "UTC"
    })
}

fn issue_json(state: &ServerState, issue: &IssueState) -> Value {
    let base = &state.base_url;
    let status = state
        .statuses
        .iter()
        .find(|s| s["id"] == json!(issue.status_id))
        .cloned()
        .unwrap_or_else(|| json!({"id": issue.status_id, "name": issue.status_id}));
    let assignee = issue.assignee.as_ref().map(|name| {
        state
            .users
            .iter()
            .find(|u| &u.name == name)
            .map(|u| user_json(u, base))
            .unwrap_or_else(|| json!({"name": name}))
    });
    json!({
        "id": issue.id,
        "key": issue.key,
        "self": format!("{base}/rest/api/2/issue/{}", issue.id),
        "fields": {
            "project": {
                "id": issue.project_id,
                "key": issue.key.split('-').next().unwrap_or(""),
                "self": format!("{base}/rest/api/2/project/{}", issue.project_id)
            },
            "status": status,
            "assignee": assignee,
            "summary": format!("Simulated issue {}", issue.key)
        }
    })
}

fn no_issue() -> Response {
    jira_error(
        StatusCode::NOT_FOUND,
        "Issue Does Not Exist or you do not have permission to see it.",
    )
}

async fn get_issue(State(state): State<Shared>, Path(key): Path<String>) -> Response {
    let state = state.lock().unwrap();
    match state.issues.get(&key) {
        Some(issue) => Json(issue_json(&state, issue)).into_response(),
        None => no_issue(),
    }
}

async fn get_transitions(State(state): State<Shared>, Path(key): Path<String>) -> Response {
    let state = state.lock().unwrap();
    if !state.issues.contains_key(&key) {
        return no_issue();
    }
    Json(json!({"expand": "transitions", "transitions": state.transitions})).into_response()
}

async fn post_transition(
    State(state): State<Shared>,
    Path(key): Path<String>,
    body: Bytes,
) -> Response {
    let mut state = state.lock().unwrap();
    if !state.issues.contains_key(&key) {
        return no_issue();
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return jira_error(StatusCode::BAD_REQUEST, "Request body is not valid JSON.");
    };
    let id = match &body["transition"]["id"] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return jira_error(StatusCode::BAD_REQUEST, "Missing 'transition' identifier."),
    };
    let Some(transition) = state.transitions.iter().find(|t| t["id"] == json!(id)) else {
        return jira_error(
            StatusCode::BAD_REQUEST,
            format!("Transition id '{id}' is not valid for this issue."),
        );
    };
    if let Some(to) = transition["to"]["id"].as_str().map(str::to_string) {
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
        return no_issue();
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return jira_error(StatusCode::BAD_REQUEST, "Request body is not valid JSON.");
    };
    let Some(name) = body.as_object().and_then(|o| o.get("name")) else {
        return jira_error(StatusCode::BAD_REQUEST, "name is required.");
    };
    let assignee = match name {
        Value::Null => None,
        Value::String(n) if state.users.iter().any(|u| &u.name == n) => Some(n.clone()),
        Value::String(n) => {
            return jira_error(
                StatusCode::BAD_REQUEST,
                format!("User '{n}' cannot be assigned issues."),
            );
        }
        _ => return jira_error(StatusCode::BAD_REQUEST, "name must be a string or null."),
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
    // Server matches `username` against user name, display name and email.
    let query = params
        .get("username")
        .map(|q| q.to_lowercase())
        .unwrap_or_default();
    let found: Vec<Value> = state
        .users
        .iter()
        .filter(|u| {
            [&u.name, &u.display_name, &u.email]
                .iter()
                .any(|f| f.to_lowercase().contains(&query))
        })
        .map(|u| user_json(u, &state.base_url))
        .collect();
    Json(Value::Array(found)).into_response()
}

fn webhook_json(base: &str, w: &RegisteredWebhook) -> Value {
    json!({
        "self": format!("{base}/rest/webhooks/1.0/webhook/{}", w.id),
        "name": w.name,
        "url": w.url,
        "events": w.events,
        "filters": {"issue-related-events-section": ""},
        "excludeBody": false,
        "enabled": true,
        "lastUpdatedUser": CONSUMER_KEY
    })
}

async fn list_webhooks(State(state): State<Shared>) -> Json<Value> {
    let state = state.lock().unwrap();
    Json(Value::Array(
        state
            .webhooks
            .values()
            .map(|w| webhook_json(&state.base_url, w))
            .collect(),
    ))
}

async fn create_webhook(State(state): State<Shared>, _headers: HeaderMap, body: Bytes) -> Response {
    let mode = state.lock().unwrap().webhook_mode;
    match mode {
        WebhookMode::Create => {}
        WebhookMode::Forbidden => {
            return (
                StatusCode::FORBIDDEN,
                Json(fixture(
                    "sentry/jira_server/create_webhook_403_response.json",
                )),
            )
                .into_response();
        }
        WebhookMode::BadGateway => {
            return (
                StatusCode::BAD_GATEWAY,
                "<html><body><h1>502 Bad Gateway</h1></body></html>",
            )
                .into_response();
        }
        WebhookMode::Hang(duration) => {
            tokio::time::sleep(duration.min(MAX_HANG)).await;
            return (StatusCode::BAD_GATEWAY, "<html>gave up</html>").into_response();
        }
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return jira_error(StatusCode::BAD_REQUEST, "Request body is not valid JSON.");
    };
    let (Some(name), Some(url), Some(events)) = (
        body["name"].as_str(),
        body["url"].as_str(),
        body["events"].as_array(),
    ) else {
        return jira_error(
            StatusCode::BAD_REQUEST,
            "name, url and events are required.",
        );
    };
    let mut state = state.lock().unwrap();
    let id = state.next_webhook_id;
    state.next_webhook_id += 1;
    let webhook = RegisteredWebhook {
        id,
        name: name.into(),
        url: url.into(),
        events: events
            .iter()
            .filter_map(|e| e.as_str().map(str::to_string))
            .collect(),
    };
    let answer = webhook_json(&state.base_url, &webhook);
    state.webhooks.insert(id, webhook);
    (StatusCode::CREATED, Json(answer)).into_response()
}

async fn delete_webhook(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    let mut state = state.lock().unwrap();
    match id
        .parse::<u64>()
        .ok()
        .and_then(|id| state.webhooks.remove(&id))
    {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => jira_error(StatusCode::NOT_FOUND, format!("No webhook with id {id}.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1v15::SigningKey;
    use rsa::signature::{SignatureEncoding, Signer};

    /// Sign like an OAuth client would, for the simulator's own test.
    fn authorization(method: &str, base: &str, path: &str, query: &str, nonce: &str) -> String {
        let ts = jwt::now_secs().to_string();
        let oauth = vec![
            ("oauth_consumer_key".to_string(), CONSUMER_KEY.to_string()),
            ("oauth_nonce".to_string(), nonce.to_string()),
            ("oauth_signature_method".to_string(), "RSA-SHA1".to_string()),
            ("oauth_timestamp".to_string(), ts),
            ("oauth_token".to_string(), ACCESS_TOKEN.to_string()),
            ("oauth_version".to_string(), "1.0".to_string()),
        ];
        let mut params = jwt::parse_query(query);
        params.extend(oauth.clone());
        let base_string = signature_base_string(method, &format!("{base}{path}"), &params);
        let key = RsaPrivateKey::from_pkcs8_pem(TEST_PRIVATE_KEY).unwrap();
        let signature = SigningKey::<Sha1>::new(key).sign(base_string.as_bytes());
        let mut fields: Vec<String> = oauth
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", oauth_encode(v)))
            .collect();
        fields.push(format!(
            "oauth_signature=\"{}\"",
            oauth_encode(&STANDARD.encode(signature.to_bytes()))
        ));
        format!("OAuth {}", fields.join(", "))
    }

    #[test]
    fn rfc5849_base_string_example() {
        // RFC 5849 §3.4.1.1, with the body parameters added to the query for this check.
        let params = jwt::parse_query(
            "b5=%3D%253D&a3=a&c%40=&a2=r%20b&c2&a3=2+q&oauth_consumer_key=9djdj82h48djs9d2&oauth_token=kkk9d7dh3k39sjv7&oauth_signature_method=HMAC-SHA1&oauth_timestamp=137131201&oauth_nonce=7d8f3e4a",
        );
        assert_eq!(
            signature_base_string("POST", "http://example.com/request", &params),
            "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7"
        );
    }

    #[tokio::test]
    async fn simulator_verifies_rsa_sha1_signatures() {
        let sim = JiraServerSim::start(OAuthConsumer::test()).await.unwrap();
        let http = reqwest::Client::new();
        let base = sim.base_url();
        let path = "/rest/api/2/user/assignable/search";
        let query = "issueKey=APP-1&username=bob%40example.org";
        let url = format!("{base}{path}?{query}");

        let good = authorization("GET", &base, path, query, "n1");
        let ok = http
            .get(&url)
            .header("authorization", &good)
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
        let users: Value = ok.json().await.unwrap();
        assert_eq!(users[0]["name"], "bob");

        // The same nonce again, a signature over another query, no header, wrong scheme.
        let replay = good.clone();
        let other_query = authorization("GET", &base, path, "issueKey=APP-1", "n2");
        for bad in [
            Some(replay),
            Some(other_query),
            None,
            Some("Bearer x".into()),
        ] {
            let mut r = http.get(&url);
            if let Some(h) = bad {
                r = r.header("authorization", h);
            }
            assert_eq!(r.send().await.unwrap().status(), 401);
        }

        // Webhook registration, then deletion (404 the second time).
        let hooks = format!("{base}/rest/webhooks/1.0/webhook");
        let created = http
            .post(&hooks)
            .header(
                "authorization",
                authorization("POST", &base, "/rest/webhooks/1.0/webhook", "", "n3"),
            )
            .json(&json!({"name": "x", "url": "http://h/x", "events": ["jira:issue_updated"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        assert_eq!(sim.webhooks().len(), 1);
        for (nonce, status) in [("n4", 204), ("n5", 404)] {
            let path = "/rest/webhooks/1.0/webhook/1";
            let r = http
                .delete(format!("{base}{path}"))
                .header(
                    "authorization",
                    authorization("DELETE", &base, path, "", nonce),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), status);
        }
        assert!(sim.webhooks().is_empty());
        assert_eq!(sim.recorder().requests().len(), 8);
    }
}
