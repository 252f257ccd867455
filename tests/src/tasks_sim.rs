//! A simulated "Tasks" tracker, the one the `tasks` test plugin (`tests/plugins/tasks`,
//! contract 0.2.0) speaks to: stateful (issues that are `open` or `closed`, with an assignee),
//! recording (see [`crate::sim`]) and strict about the API token.
//!
//! * `GET /api/me` answers `{"id": 1, "login": "bot"}`.
//! * `PATCH /api/issues/{key}` with `{"state": "open"|"closed"}` sets the state.
//! * `PUT /api/issues/{key}/assignee` sets the assignee to the JSON body (`{"id": 42}` or
//!   `{"email": "..."}`); `DELETE /api/issues/{key}/assignee` clears it.
//! * Changes answer `{"changed": bool}`: false when the issue already was that way.
//! * Every route needs `Authorization: Bearer <token>` (401 otherwise); an unknown issue is
//!   404, a malformed body 400.
//! * [`TasksSim::hand_out_session`]: every authenticated answer carries `x-tasks-session`,
//!   which the plugin remembers (`secrets.remember`) and sends back with later calls.
//!
//! The `tasks-legacy` plugin (`tests/plugins/tasks-legacy`, contract 0.1.0) speaks the same
//! API: nothing here depends on which plugin calls.
//!
//! [`webhook`] and friends build deliveries signed the way Tasks signs them, for the host's
//! [`TASKS_WEBHOOK`] route (or [`TASKS_LEGACY_WEBHOOK`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::jwt;
use crate::sim::{RecordedRequest, Recorder, SimServer};

/// The `tasks` plugin's webhook route.
pub const TASKS_WEBHOOK: &str = "/extensions/tasks/webhook/";

/// The `tasks-legacy` plugin's webhook route (the same deliveries, to the 0.1.0 provider).
pub const TASKS_LEGACY_WEBHOOK: &str = "/extensions/tasks-legacy/webhook/";

/// `/api/issues/{key}`.
pub fn issue_path(key: &str) -> String {
    format!("/api/issues/{key}")
}

/// `/api/issues/{key}/assignee`.
pub fn assignee_path(key: &str) -> String {
    format!("/api/issues/{key}/assignee")
}

/// One issue as the simulator stores it.
#[derive(Clone, Debug, PartialEq)]
pub struct TasksIssue {
    /// `open` or `closed`.
    pub state: String,
    /// The body of the last `PUT .../assignee`, `None` when unassigned.
    pub assignee: Option<Value>,
}

#[derive(Default)]
struct TasksState {
    /// The accepted API token; `None` refuses every call.
    token: Option<String>,
    issues: BTreeMap<String, TasksIssue>,
    /// Sent as `x-tasks-session` with every authenticated answer, when set.
    session: Option<String>,
}

type Shared = Arc<Mutex<TasksState>>;

/// The simulator. Dropping it stops the server.
pub struct TasksSim {
    server: SimServer,
    state: Shared,
}

impl TasksSim {
    /// Start a simulator accepting `Authorization: Bearer <token>`, with no issues.
    pub async fn start(token: &str) -> anyhow::Result<TasksSim> {
        let state: Shared = Arc::new(Mutex::new(TasksState {
            token: Some(token.to_string()),
            ..Default::default()
        }));
        let router = Router::new()
            .route("/api/me", get(me))
            .route(
                "/api/maintenance",
                post(|| async { StatusCode::NO_CONTENT }),
            )
            .route("/api/issues/{key}", patch(set_state))
            .route(
                "/api/issues/{key}/assignee",
                put(set_assignee).delete(clear_assignee),
            )
            .fallback(not_found)
            .layer(middleware::from_fn_with_state(state.clone(), authenticate))
            .with_state(state.clone());
        let server = SimServer::start(router, Recorder::new()).await?;
        Ok(TasksSim { server, state })
    }

    /// `http://127.0.0.1:PORT` (the plugin's `base_url`).
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// `127.0.0.1:PORT`.
    pub fn authority(&self) -> String {
        self.server.authority()
    }

    /// The request log and the shared fault queue.
    pub fn recorder(&self) -> &Recorder {
        self.server.recorder()
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.recorder().requests()
    }

    /// Add (or reset) issue `key`: open and unassigned.
    pub fn put_issue(&self, key: &str) {
        self.set_issue(key, "open", None);
    }

    /// Add or overwrite issue `key`.
    pub fn set_issue(&self, key: &str, state: &str, assignee: Option<Value>) {
        self.state.lock().unwrap().issues.insert(
            key.to_string(),
            TasksIssue {
                state: state.to_string(),
                assignee,
            },
        );
    }

    /// `(state, assignee)` of issue `key`.
    pub fn issue(&self, key: &str) -> Option<(String, Option<Value>)> {
        self.state
            .lock()
            .unwrap()
            .issues
            .get(key)
            .map(|i| (i.state.clone(), i.assignee.clone()))
    }

    /// Delete issue `key`: later calls about it are 404.
    pub fn delete_issue(&self, key: &str) {
        self.state.lock().unwrap().issues.remove(key);
    }

    /// Accept `token` from now on (`None`: refuse everything, as after a revocation).
    pub fn set_token(&self, token: Option<&str>) {
        self.state.lock().unwrap().token = token.map(str::to_string);
    }

    /// Send `x-tasks-session: <session>` with every authenticated answer from now on
    /// (`None`: stop).
    pub fn hand_out_session(&self, session: Option<&str>) {
        self.state.lock().unwrap().session = session.map(str::to_string);
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not found")
}

/// `Authorization: Bearer <token>` on every route; the session header on the answers.
async fn authenticate(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let (expected, session) = {
        let s = state.lock().unwrap();
        (s.token.clone(), s.session.clone())
    };
    let given = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match (expected, given) {
        (Some(expected), Some(given)) if expected == given => {
            let mut response = next.run(request).await;
            if let Some(session) = session.and_then(|s| HeaderValue::from_str(&s).ok()) {
                response.headers_mut().insert("x-tasks-session", session);
            }
            response
        }
        _ => error(StatusCode::UNAUTHORIZED, "bad token"),
    }
}

async fn me() -> Response {
    Json(json!({"id": 1, "login": "bot"})).into_response()
}

fn changed(changed: bool) -> Response {
    Json(json!({"changed": changed})).into_response()
}

async fn set_state(State(state): State<Shared>, Path(key): Path<String>, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let Some(target) = body
        .get("state")
        .and_then(Value::as_str)
        .filter(|s| *s == "open" || *s == "closed")
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "state must be \"open\" or \"closed\"",
        );
    };
    let mut s = state.lock().unwrap();
    let Some(issue) = s.issues.get_mut(&key) else {
        return error(StatusCode::NOT_FOUND, "no such issue");
    };
    let was = std::mem::replace(&mut issue.state, target.to_string());
    changed(was != target)
}

async fn set_assignee(
    State(state): State<Shared>,
    Path(key): Path<String>,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if !body.is_object() {
        return error(
            StatusCode::BAD_REQUEST,
            "the assignee must be a JSON object",
        );
    }
    let mut s = state.lock().unwrap();
    let Some(issue) = s.issues.get_mut(&key) else {
        return error(StatusCode::NOT_FOUND, "no such issue");
    };
    let was = issue.assignee.replace(body.clone());
    changed(was.as_ref() != Some(&body))
}

async fn clear_assignee(State(state): State<Shared>, Path(key): Path<String>) -> Response {
    let mut s = state.lock().unwrap();
    let Some(issue) = s.issues.get_mut(&key) else {
        return error(StatusCode::NOT_FOUND, "no such issue");
    };
    changed(issue.assignee.take().is_some())
}

/// A delivery of event `issues` for `workspace`, signed with `secret`: its headers
/// (`x-tasks-workspace`, `x-tasks-delivery`, `x-tasks-event`, `x-tasks-signature:
/// sha256=<hex HMAC-SHA256 of the body>`, `content-type`) and its body.
pub fn webhook(
    secret: &str,
    workspace: &str,
    delivery: &str,
    body: &Value,
) -> (Vec<(String, String)>, Vec<u8>) {
    webhook_event(secret, workspace, delivery, "issues", body)
}

/// [`webhook`] with another `x-tasks-event` (e.g. `ping`).
pub fn webhook_event(
    secret: &str,
    workspace: &str,
    delivery: &str,
    event: &str,
    body: &Value,
) -> (Vec<(String, String)>, Vec<u8>) {
    let body = serde_json::to_vec(body).expect("a JSON value serialises");
    let signature = format!(
        "sha256={}",
        jwt::hex(&jwt::hmac_sha256(secret.as_bytes(), &body))
    );
    let mut headers = base_headers(workspace, delivery, event);
    headers.push(("x-tasks-signature".into(), signature));
    (headers, body)
}

/// A delivery authenticated by `Authorization: JWT <HS256 token of claims, signed with
/// secret>` instead of a signature (the plugin wants `"iss": "tasks"`; `exp`/`nbf` are
/// checked by the host).
pub fn jwt_webhook(
    secret: &str,
    workspace: &str,
    delivery: &str,
    claims: &Value,
    body: &Value,
) -> (Vec<(String, String)>, Vec<u8>) {
    let body = serde_json::to_vec(body).expect("a JSON value serialises");
    let token = jwt::encode_hs256(claims, secret.as_bytes());
    let mut headers = base_headers(workspace, delivery, "issues");
    headers.push(("authorization".into(), format!("JWT {token}")));
    (headers, body)
}

fn base_headers(workspace: &str, delivery: &str, event: &str) -> Vec<(String, String)> {
    vec![
        ("content-type".into(), "application/json".into()),
        ("x-tasks-workspace".into(), workspace.into()),
        ("x-tasks-delivery".into(), delivery.into()),
        ("x-tasks-event".into(), event.into()),
    ]
}

/// A webhook body: `{"action", "issue": {"key"}, "assignee", "updated_at_ms"}`.
pub fn event_body(action: &str, key: &str, assignee: Option<Value>, updated_at_ms: u64) -> Value {
    json!({
        "action": action,
        "issue": {"key": key},
        "assignee": assignee,
        "updated_at_ms": updated_at_ms,
    })
}

/// An `assignee` object of a webhook body, the way Tasks sends one.
pub fn tasks_user(id: u64, login: &str, name: &str, email: Option<&str>, verified: bool) -> Value {
    json!({
        "id": id,
        "login": login,
        "name": name,
        "email": email,
        "email_verified": verified,
        "bot": false,
    })
}

/// The DER `DigestInfo` prefix of a SHA-256 hash in an RSASSA-PKCS1-v1_5 signature (RFC 8017,
/// 9.2 note 1), so checking a signature needs no OID support from `sha2`.
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// Whether `header` (the base64 `x-tasks-request-signature`) is the RSASSA-PKCS1-v1_5
/// SHA-256 signature of `message` (`PATCH /api/issues/{key}`) by `private_key_pem`
/// (PKCS#8 or PKCS#1).
pub fn request_signature_valid(
    private_key_pem: &str,
    message: &str,
    header: &str,
) -> anyhow::Result<bool> {
    use rsa::pkcs1::DecodeRsaPrivateKey as _;
    use rsa::pkcs8::DecodePrivateKey as _;
    use rsa::{Pkcs1v15Sign, RsaPrivateKey};

    let key = RsaPrivateKey::from_pkcs8_pem(private_key_pem)
        .or_else(|_| RsaPrivateKey::from_pkcs1_pem(private_key_pem))?;
    let signature = STANDARD.decode(header.trim())?;
    let digest_info = [
        &SHA256_DIGEST_INFO[..],
        &Sha256::digest(message.as_bytes())[..],
    ]
    .concat();
    Ok(key
        .to_public_key()
        .verify(Pkcs1v15Sign::new_unprefixed(), &digest_info, &signature)
        .is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn issues_change_state_and_assignee_with_the_token() {
        let sim = TasksSim::start("tok").await.unwrap();
        sim.put_issue("T-1");
        let http = reqwest::Client::new();
        let url = |path: &str| format!("{}{path}", sim.base_url());

        let denied = http.get(url("/api/me")).send().await.unwrap();
        assert_eq!(denied.status(), 401);
        let me: Value = http
            .get(url("/api/me"))
            .bearer_auth("tok")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(me, json!({"id": 1, "login": "bot"}));

        let patch = |state: &str| {
            http.patch(url(&issue_path("T-1")))
                .bearer_auth("tok")
                .json(&json!({"state": state}))
                .send()
        };
        let first: Value = patch("closed").await.unwrap().json().await.unwrap();
        assert_eq!(first, json!({"changed": true}));
        let again: Value = patch("closed").await.unwrap().json().await.unwrap();
        assert_eq!(again, json!({"changed": false}));
        assert_eq!(sim.issue("T-1").unwrap().0, "closed");
        assert_eq!(patch("done").await.unwrap().status(), 400);
        let unknown = http
            .patch(url(&issue_path("T-9")))
            .bearer_auth("tok")
            .json(&json!({"state": "open"}))
            .send()
            .await
            .unwrap();
        assert_eq!(unknown.status(), 404);

        sim.hand_out_session(Some("sess-1"));
        let assigned = http
            .put(url(&assignee_path("T-1")))
            .bearer_auth("tok")
            .json(&json!({"id": 42}))
            .send()
            .await
            .unwrap();
        assert_eq!(assigned.headers()["x-tasks-session"], "sess-1");
        assert_eq!(
            assigned.json::<Value>().await.unwrap(),
            json!({"changed": true})
        );
        assert_eq!(sim.issue("T-1").unwrap().1, Some(json!({"id": 42})));
        let cleared: Value = http
            .delete(url(&assignee_path("T-1")))
            .bearer_auth("tok")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(cleared, json!({"changed": true}));
        assert_eq!(sim.issue("T-1").unwrap().1, None);

        sim.set_token(None);
        let revoked = http
            .get(url("/api/me"))
            .bearer_auth("tok")
            .send()
            .await
            .unwrap();
        assert_eq!(revoked.status(), 401);
        assert_eq!(sim.requests().len(), 9);
    }

    #[test]
    fn deliveries_are_signed() {
        let body = event_body("closed", "T-1", None, 7);
        let (headers, bytes) = webhook("s3cret", "acme", "d-1", &body);
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(get("x-tasks-workspace"), "acme");
        assert_eq!(get("x-tasks-delivery"), "d-1");
        assert_eq!(get("x-tasks-event"), "issues");
        assert_eq!(
            get("x-tasks-signature"),
            format!("sha256={}", jwt::hex(&jwt::hmac_sha256(b"s3cret", &bytes)))
        );
        assert_eq!(serde_json::from_slice::<Value>(&bytes).unwrap(), body);
    }

    #[test]
    fn request_signatures_verify() {
        use rsa::pkcs8::DecodePrivateKey as _;
        use rsa::{Pkcs1v15Sign, RsaPrivateKey};

        let pem = crate::jira_server_sim::TEST_PRIVATE_KEY;
        let key = RsaPrivateKey::from_pkcs8_pem(pem).unwrap();
        let message = "PATCH /api/issues/T-1";
        let digest_info = [
            &SHA256_DIGEST_INFO[..],
            &Sha256::digest(message.as_bytes())[..],
        ]
        .concat();
        let signature = key
            .sign(Pkcs1v15Sign::new_unprefixed(), &digest_info)
            .unwrap();
        let header = STANDARD.encode(signature);
        assert!(request_signature_valid(pem, message, &header).unwrap());
        assert!(!request_signature_valid(pem, "PATCH /api/issues/T-2", &header).unwrap());
        assert!(request_signature_valid(pem, message, "not base64!").is_err());
    }
}
