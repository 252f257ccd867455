//! `tasks`: a provider for a tiny fake tracker with open/closed issues and
//! numeric user ids, written directly against contract 0.2.0 (no SDK), so the
//! tests exercise what 0.2.0 added: `identity` records in and `user-ref`s out,
//! `secret` handles (HMAC and JWT verification, stand-ins for the API token,
//! an RSA request signature, a remembered session token) and the `open-closed`
//! status model.
//!
//! The tracker's API (see `tests/src/tasks_sim.rs`): `GET /api/me`,
//! `PATCH /api/issues/{key}` with `{"state": "open"|"closed"}`, and
//! `PUT`/`DELETE /api/issues/{key}/assignee`, all with `Authorization: Bearer
//! <api_token>`; changes answer `{"changed": bool}`. When an answer carries
//! `x-tasks-session`, the plugin remembers it as the secret `session_token`
//! and sends it back (as a stand-in) with later calls. Its upkeep (`maintain`,
//! every second) is a `POST /api/maintenance`.

mod http;

wit_bindgen::generate!({
    path: "../../../wit/v0.2.0",
    world: "provider-plugin",
});

use serde_json::{Value, json};

use exports::trackbridge::plugin::provider::Guest;
use trackbridge::plugin::host::{self, Level};
use trackbridge::plugin::provider_types::{
    Change, ExternalIssue, InboundEvent, IncomingRequest, IntegrationData, ProviderInfo, Rejection,
    Route, StatusAction, StatusChange, StatusMapping, StatusModel, SyncOutcome, UserRef,
    VerifiedWebhook,
};
use trackbridge::plugin::secrets::{self, HeaderFormat, JwtError, RsaHash};
use trackbridge::plugin::types::{Identity, PluginError, UpstreamError};

const WEBHOOK_ROUTE: &str = "/extensions/tasks/webhook/";
/// How long a session token the tracker hands out is kept.
const SESSION_TTL_SECS: u32 = 300;

const CONFIG_SCHEMA: &str = r#"{
  "type": "object",
  "required": ["base_url", "api_token", "workspace"],
  "properties": {
    "base_url": {"type": "string", "format": "uri", "title": "Tasks URL"},
    "api_token": {"type": "string", "title": "API token"},
    "workspace": {"type": "string", "title": "Workspace"},
    "webhook_secret": {"type": "string", "title": "Webhook secret (generated when empty)"},
    "signing_key": {"type": "string", "title": "RSA private key (PEM) for request signatures"}
  }
}"#;

struct Tasks;

impl Guest for Tasks {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            name: "tasks".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            display_name: "Tasks".into(),
            routes: vec![Route {
                method: "POST".into(),
                path: WEBHOOK_ROUTE.into(),
            }],
            config_schema: CONFIG_SCHEMA.into(),
            url_fields: vec!["base_url".into()],
            allowed_host_patterns: vec![],
            status_model: StatusModel::OpenClosed,
            // Every second: often enough for a test to see several.
            maintenance_interval_secs: Some(1),
        }
    }

    fn build_integration(input: String) -> Result<IntegrationData, PluginError> {
        let input: Value = serde_json::from_str(&input)
            .map_err(|e| invalid(format!("the installation input is not JSON: {e}")))?;
        let required = |name: &str| {
            input
                .get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| invalid(format!("`{name}` is required (a string)")))
        };
        let optional = |name: &str| match input.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid(format!("`{name}` must be a string"))),
        };
        let base_url = required("base_url")?.trim_end_matches('/');
        let api_token = required("api_token")?;
        let workspace = required("workspace")?;
        let webhook_secret =
            optional("webhook_secret")?.unwrap_or_else(|| hex(&http::random_bytes(32)));
        let signing_key = optional("signing_key")?;

        // No integration exists yet, so there is no secret handle: the token
        // from the input goes out as it is.
        let headers = vec![("authorization".to_string(), format!("Bearer {api_token}"))];
        check(
            send("GET", &format!("{base_url}/api/me"), &headers, None)?,
            false,
        )?;

        let mut secrets = json!({"api_token": api_token, "webhook_secret": webhook_secret});
        if let Some(key) = signing_key {
            secrets["signing_key"] = json!(key);
        }
        Ok(IntegrationData {
            external_id: workspace.to_string(),
            name: format!("Tasks {workspace}"),
            metadata: json!({"base_url": base_url}).to_string(),
            secrets: secrets.to_string(),
            extra_hosts: vec![],
        })
    }

    fn uninstall() -> Result<(), PluginError> {
        Ok(())
    }

    /// Upkeep: tell the tracker we are here (`POST /api/maintenance`).
    fn maintain() -> Result<(), PluginError> {
        Api::current()?.call("POST", "/api/maintenance", Vec::new(), None)?;
        Ok(())
    }

    fn verify_webhook(request: IncomingRequest) -> Result<VerifiedWebhook, Rejection> {
        let workspace = header(&request, "x-tasks-workspace")
            .ok_or_else(|| reject(400, "missing x-tasks-workspace header"))?;
        host::select_integration(workspace).ok_or_else(|| reject(404, "unknown workspace"))?;
        let secret = secrets::get("webhook_secret").ok_or_else(|| reject(401, "bad signature"))?;

        if let Some(token) = header(&request, "authorization").and_then(|v| v.strip_prefix("JWT "))
        {
            let claims = secrets::jwt_hs256_verify(&secret, token)
                .map_err(|e| reject(401, &format!("jwt: {}", jwt_error(&e))))?;
            let claims: Value = serde_json::from_str(&claims).unwrap_or(Value::Null);
            if claims.get("iss").and_then(Value::as_str) != Some("tasks") {
                return Err(reject(401, "jwt: wrong issuer"));
            }
        } else if let Some(token) = header(&request, "x-tasks-token") {
            // The secret itself, as some trackers send it.
            if !secrets::matches(&secret, token.as_bytes()) {
                return Err(reject(401, "bad token"));
            }
        } else {
            let mac = header(&request, "x-tasks-signature")
                .and_then(|v| v.strip_prefix("sha256="))
                .and_then(from_hex)
                .ok_or_else(|| reject(401, "bad signature"))?;
            if !secrets::hmac_sha256_verify(&secret, &request.body, &mac) {
                return Err(reject(401, "bad signature"));
            }
        }

        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        Ok(VerifiedWebhook {
            integration: workspace.to_string(),
            delivery_id: header(&request, "x-tasks-delivery").map(str::to_string),
            event_time: body.get("updated_at_ms").and_then(Value::as_u64),
            ignore: header(&request, "x-tasks-event") == Some("ping"),
        })
    }

    fn handle_webhook(request: IncomingRequest) -> Result<Vec<InboundEvent>, PluginError> {
        let body: Value = serde_json::from_slice(&request.body)
            .map_err(|e| invalid(format!("the webhook body is not JSON: {e}")))?;
        let key = body
            .pointer("/issue/key")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("the webhook has no `issue.key`"))?;
        let status = |from: &str, to: &str, action| {
            Change::Status(StatusChange {
                from: Some(from.into()),
                to: Some(to.into()),
                action,
            })
        };
        let change = match body.get("action").and_then(Value::as_str) {
            Some("assigned") => {
                let assignee = body
                    .get("assignee")
                    .filter(|a| a.is_object())
                    .ok_or_else(|| invalid("an `assigned` webhook has no `assignee`"))?;
                Some(Change::Assignee(Some(identity(assignee)?)))
            }
            Some("unassigned") => Some(Change::Assignee(None)),
            Some("closed") => Some(status("open", "closed", StatusAction::Resolve)),
            Some("reopened") => Some(status("closed", "open", StatusAction::Unresolve)),
            Some("inspect") => {
                inspect();
                None
            }
            _ => None,
        };
        let events: Vec<InboundEvent> = change
            .into_iter()
            .map(|change| InboundEvent {
                external_issue: key.to_string(),
                change,
                event_time: body.get("updated_at_ms").and_then(Value::as_u64),
                delivery_id: header(&request, "x-tasks-delivery").map(str::to_string),
            })
            .collect();
        host::log(
            Level::Info,
            &format!("tasks: {} event(s) for {key}", events.len()),
        );
        Ok(events)
    }

    fn sync_status(
        issue: ExternalIssue,
        resolve: bool,
        mappings: Vec<StatusMapping>,
    ) -> Result<SyncOutcome, PluginError> {
        let api = Api::current()?;
        let state = if resolve { "closed" } else { "open" };
        let path = format!("/api/issues/{}", segment(&issue.key));
        let mut extra = Vec::new();
        if let Some(key) = secrets::get("signing_key") {
            let message = format!("PATCH {path}");
            let signature = secrets::rsa_sign(&key, RsaHash::Sha256, message.as_bytes())
                .map_err(|e| PluginError::Internal(format!("rsa-sign: {e}")))?;
            extra.push(("x-tasks-request-signature".to_string(), base64(&signature)));
        }
        let answer = api.call("PATCH", &path, extra, Some(json!({"state": state})))?;
        let mut outcome = outcome(&answer, &format!("already {state}"));
        if !mappings.is_empty() {
            let note = format!("mappings: {}", mappings.len());
            outcome.note = Some(match outcome.note {
                Some(n) => format!("{n}; {note}"),
                None => note,
            });
        }
        Ok(outcome)
    }

    fn sync_assignee(
        issue: ExternalIssue,
        user: Option<UserRef>,
    ) -> Result<SyncOutcome, PluginError> {
        let path = format!("/api/issues/{}/assignee", segment(&issue.key));
        let body = match &user {
            None => None,
            Some(user) => match (user.identities.first(), user.emails.first()) {
                (Some(identity), _) => Some(match identity.id.parse::<u64>() {
                    Ok(n) => json!({"id": n}),
                    Err(_) => json!({"id": identity.id}),
                }),
                (None, Some(email)) => Some(json!({"email": email})),
                (None, None) => {
                    return Ok(SyncOutcome {
                        changed: false,
                        note: Some("no tasks user is known for this user".into()),
                    });
                }
            },
        };
        let api = Api::current()?;
        Ok(match body {
            Some(body) => outcome(
                &api.call("PUT", &path, vec![], Some(body))?,
                "already assigned to that user",
            ),
            None => outcome(
                &api.call("DELETE", &path, vec![], None)?,
                "already unassigned",
            ),
        })
    }
}

#[cfg(target_arch = "wasm32")]
export!(Tasks);

/// The current integration's API: its base URL and its token as a stand-in.
struct Api {
    base_url: String,
}

impl Api {
    fn current() -> Result<Api, PluginError> {
        let integration = host::current_integration()
            .ok_or_else(|| PluginError::Internal("no current integration".into()))?;
        let metadata: Value = serde_json::from_str(&integration.metadata).unwrap_or(Value::Null);
        let base_url = metadata
            .get("base_url")
            .and_then(Value::as_str)
            .ok_or_else(|| PluginError::Internal("the integration has no base_url".into()))?;
        Ok(Api {
            base_url: base_url.trim_end_matches('/').to_string(),
        })
    }

    /// `method path` with the stand-in `Authorization` (and session) header;
    /// remembers a session token the answer hands out.
    fn call(
        &self,
        method: &str,
        path: &str,
        mut headers: Vec<(String, String)>,
        body: Option<Value>,
    ) -> Result<Value, PluginError> {
        let token = secrets::get("api_token")
            .ok_or_else(|| PluginError::Internal("the integration has no api_token".into()))?;
        let authorization = secrets::stand_in(&token, &HeaderFormat::Prefixed("Bearer ".into()));
        headers.push(("authorization".into(), authorization));
        if let Some(session) = secrets::get("session_token") {
            headers.push((
                "x-tasks-session".into(),
                secrets::stand_in(&session, &HeaderFormat::Raw),
            ));
        }
        let body = body.map(|b| {
            headers.push(("content-type".into(), "application/json".into()));
            b.to_string().into_bytes()
        });
        let url = format!("{}{path}", self.base_url);
        let response = check(send(method, &url, &headers, body.as_deref())?, true)?;
        if let Some(session) = response.header("x-tasks-session") {
            secrets::remember("session_token", session.as_bytes(), SESSION_TTL_SECS);
        }
        Ok(serde_json::from_slice(&response.body).unwrap_or(Value::Null))
    }
}

fn send(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Option<&[u8]>,
) -> Result<http::Response, PluginError> {
    http::send(method, url, headers, body).map_err(|message| {
        PluginError::Upstream(UpstreamError {
            status: None,
            message,
            retry_after_secs: None,
        })
    })
}

/// A 2xx answer, or the plugin error for it (404 is "no such issue" when
/// `issue_call`).
fn check(response: http::Response, issue_call: bool) -> Result<http::Response, PluginError> {
    let status = response.status;
    match status {
        200..=299 => Ok(response),
        401 | 403 => Err(PluginError::Unauthorized(format!(
            "Tasks refused the API token (HTTP {status})"
        ))),
        404 if issue_call => Err(PluginError::Rejected("no such issue".into())),
        _ => {
            let text: String = String::from_utf8_lossy(&response.body)
                .chars()
                .take(200)
                .collect();
            Err(PluginError::Upstream(UpstreamError {
                status: Some(status),
                message: format!("Tasks answered HTTP {status}: {text}"),
                retry_after_secs: response
                    .header("retry-after")
                    .and_then(|v| v.trim().parse().ok()),
            }))
        }
    }
}

/// `{"changed": false}` is success without a change.
fn outcome(answer: &Value, unchanged: &str) -> SyncOutcome {
    let changed = answer.get("changed").and_then(Value::as_bool) != Some(false);
    SyncOutcome {
        changed,
        note: (!changed).then(|| unchanged.to_string()),
    }
}

fn identity(assignee: &Value) -> Result<Identity, PluginError> {
    let text = |name: &str| {
        assignee
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let id = match assignee.get("id") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(invalid("the assignee has no `id`")),
    };
    let flag = |name: &str| assignee.get(name).and_then(Value::as_bool).unwrap_or(false);
    Ok(Identity {
        id,
        login: text("login"),
        display_name: text("name"),
        email: text("email"),
        email_verified: flag("email_verified"),
        bot: flag("bot"),
    })
}

fn jwt_error(e: &JwtError) -> String {
    match e {
        JwtError::Malformed(why) => format!("malformed ({why})"),
        JwtError::WrongAlgorithm(alg) => format!("wrong-algorithm ({alg})"),
        JwtError::BadSignature => "bad-signature".into(),
        JwtError::Expired => "expired".into(),
        JwtError::NotYetValid => "not-yet-valid".into(),
    }
}

fn header<'a>(request: &'a IncomingRequest, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn invalid(message: impl Into<String>) -> PluginError {
    PluginError::InvalidInput(message.into())
}

fn reject(status: u16, message: &str) -> Rejection {
    Rejection {
        status,
        message: message.into(),
    }
}

/// A path segment, percent-encoded beyond the unreserved characters.
fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Log everything of the integration a 0.2.0 plugin can see, so a test can
/// search it for secrets: the integration record, and what its secret
/// handles give (their names, a stand-in, a signature).
fn inspect() {
    let current = host::current_integration();
    host::log(
        Level::Info,
        &format!("inspect: current integration {current:?}"),
    );
    if let Some(i) = &current {
        host::log(
            Level::Info,
            &format!(
                "inspect: looked up {:?}",
                host::lookup_integration(&i.external_id)
            ),
        );
    }
    for name in ["api_token", "webhook_secret"] {
        match secrets::get(name) {
            Some(secret) => {
                let stand_in = secrets::stand_in(&secret, &HeaderFormat::Raw);
                let mac = secrets::hmac_sha256_sign(&secret, b"inspect");
                host::log(
                    Level::Info,
                    &format!(
                        "inspect: secret {} stand-in {stand_in} mac {}",
                        secret.name(),
                        hex(&mac)
                    ),
                );
            }
            None => host::log(Level::Info, &format!("inspect: no secret {name}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(from_hex("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(from_hex("0g"), None);
        assert_eq!(from_hex("abc"), None);
        assert_eq!(segment("T-1"), "T-1");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }
}
