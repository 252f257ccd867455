//! `tasks-legacy`: the provider for the fake "Tasks" tracker (see
//! `tests/src/tasks_sim.rs`) written directly against the frozen contract
//! 0.1.0 (no SDK), so that a 0.1.0 component stays in the tests after the SDK
//! and the built-in plugins move on. It does everything the 0.1.0 way:
//!
//! - its secrets come as a JSON object in the integration record: it checks
//!   the webhook signature (HMAC-SHA256 over the body, constant-time) and
//!   sends `Authorization: Bearer <api_token>` itself;
//! - a person is an email address: an assignment without one is no event;
//!   `sync-assignee` gets the user's verified emails;
//! - its status model is a workflow: without a status mapping it does not
//!   sync (it only needs one to exist; the project key and the mapped status
//!   names are not used, Tasks issues being `open` or `closed`).
//!
//! The tracker's API: `GET /api/me`, `PATCH /api/issues/{key}` with
//! `{"state": "open"|"closed"}`, `PUT`/`DELETE /api/issues/{key}/assignee`;
//! changes answer `{"changed": bool}`.

mod http;

wit_bindgen::generate!({
    path: "../../../wit/v0.1.0",
    world: "provider-plugin",
});

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use exports::trackbridge::plugin::provider::Guest;
use trackbridge::plugin::host::{self, Level};
use trackbridge::plugin::provider_types::{
    Change, ExternalIssue, InboundEvent, IncomingRequest, IntegrationData, ProviderInfo, Rejection,
    Route, StatusAction, StatusChange, StatusMapping, SyncOutcome, VerifiedWebhook,
};
use trackbridge::plugin::types::{Integration, PluginError, UpstreamError};

const WEBHOOK_ROUTE: &str = "/extensions/tasks-legacy/webhook/";

const CONFIG_SCHEMA: &str = r#"{
  "type": "object",
  "required": ["base_url", "api_token", "workspace"],
  "properties": {
    "base_url": {"type": "string", "format": "uri", "title": "Tasks URL"},
    "api_token": {"type": "string", "title": "API token"},
    "workspace": {"type": "string", "title": "Workspace"},
    "webhook_secret": {"type": "string", "title": "Webhook secret (generated when empty)"}
  }
}"#;

struct TasksLegacy;

impl Guest for TasksLegacy {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            name: "tasks-legacy".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            display_name: "Tasks (contract 0.1.0)".into(),
            routes: vec![Route {
                method: "POST".into(),
                path: WEBHOOK_ROUTE.into(),
            }],
            config_schema: CONFIG_SCHEMA.into(),
            url_fields: vec!["base_url".into()],
            allowed_host_patterns: vec![],
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
        let base_url = required("base_url")?.trim_end_matches('/');
        let api_token = required("api_token")?;
        let workspace = required("workspace")?;
        let webhook_secret = match input.get("webhook_secret") {
            None | Some(Value::Null) => hex(&http::random_bytes(32)),
            Some(Value::String(s)) if s.is_empty() => hex(&http::random_bytes(32)),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(invalid("`webhook_secret` must be a string")),
        };

        let api = Api {
            base_url: base_url.to_string(),
            token: api_token.to_string(),
        };
        api.call("GET", "/api/me", None, false)?;

        Ok(IntegrationData {
            external_id: workspace.to_string(),
            name: format!("Tasks {workspace} (0.1.0)"),
            metadata: json!({"base_url": base_url}).to_string(),
            secrets: json!({"api_token": api_token, "webhook_secret": webhook_secret}).to_string(),
            extra_hosts: vec![],
        })
    }

    fn uninstall() -> Result<(), PluginError> {
        Ok(())
    }

    fn verify_webhook(request: IncomingRequest) -> Result<VerifiedWebhook, Rejection> {
        let workspace = header(&request, "x-tasks-workspace")
            .ok_or_else(|| reject(400, "missing x-tasks-workspace header"))?;
        let integration =
            host::select_integration(workspace).ok_or_else(|| reject(404, "unknown workspace"))?;
        // 0.1.0: the secret is in the record, in plain text.
        let secret = secret(&integration, "webhook_secret")
            .ok_or_else(|| reject(401, "no webhook secret is configured"))?;
        let signature = header(&request, "x-tasks-signature")
            .and_then(|v| v.strip_prefix("sha256="))
            .and_then(from_hex)
            .ok_or_else(|| reject(401, "bad signature"))?;
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
            .map_err(|_| reject(401, "bad signature"))?;
        mac.update(&request.body);
        // Constant time.
        mac.verify_slice(&signature)
            .map_err(|_| reject(401, "bad signature"))?;

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
                // 0.1.0 names a person by email only: without one there is
                // nobody to name, and no event.
                assignee
                    .get("email")
                    .and_then(Value::as_str)
                    .filter(|e| !e.is_empty())
                    .map(|email| Change::Assignee(Some(email.to_string())))
            }
            Some("unassigned") => Some(Change::Assignee(None)),
            Some("closed") => Some(status("open", "closed", StatusAction::Resolve)),
            Some("reopened") => Some(status("closed", "open", StatusAction::Unresolve)),
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
            &format!("tasks-legacy: {} event(s) for {key}", events.len()),
        );
        Ok(events)
    }

    fn sync_status(
        issue: ExternalIssue,
        resolve: bool,
        mappings: Vec<StatusMapping>,
    ) -> Result<SyncOutcome, PluginError> {
        // A workflow provider: no mapping, no sync.
        if mappings.is_empty() {
            return Ok(SyncOutcome {
                changed: false,
                note: Some("no status mapping".into()),
            });
        }
        let state = if resolve { "closed" } else { "open" };
        let answer = Api::current()?.call(
            "PATCH",
            &format!("/api/issues/{}", segment(&issue.key)),
            Some(json!({"state": state})),
            true,
        )?;
        Ok(outcome(&answer, &format!("already {state}")))
    }

    fn sync_assignee(
        issue: ExternalIssue,
        emails: Option<Vec<String>>,
    ) -> Result<SyncOutcome, PluginError> {
        let path = format!("/api/issues/{}/assignee", segment(&issue.key));
        let api = Api::current()?;
        match emails {
            None => Ok(outcome(
                &api.call("DELETE", &path, None, true)?,
                "already unassigned",
            )),
            Some(emails) => match emails.first() {
                Some(email) => Ok(outcome(
                    &api.call("PUT", &path, Some(json!({"email": email})), true)?,
                    "already assigned to that user",
                )),
                None => Ok(SyncOutcome {
                    changed: false,
                    note: Some("the user has no verified email".into()),
                }),
            },
        }
    }
}

#[cfg(target_arch = "wasm32")]
export!(TasksLegacy);

/// The string `name` of the integration's secrets (a JSON object in 0.1.0).
fn secret(integration: &Integration, name: &str) -> Option<String> {
    let secrets: Value = serde_json::from_str(&integration.secrets).ok()?;
    secrets
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// An integration's API: its base URL and its token, in plain text.
struct Api {
    base_url: String,
    token: String,
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
        let token = secret(&integration, "api_token")
            .ok_or_else(|| PluginError::Internal("the integration has no api_token".into()))?;
        Ok(Api {
            base_url: base_url.trim_end_matches('/').to_string(),
            token,
        })
    }

    /// `method path` with `Authorization: Bearer <api_token>`; the answer's
    /// JSON (null when it has none). 404 is "no such issue" when `issue_call`.
    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        issue_call: bool,
    ) -> Result<Value, PluginError> {
        let mut headers = vec![(
            "authorization".to_string(),
            format!("Bearer {}", self.token),
        )];
        let body = body.map(|b| {
            headers.push(("content-type".into(), "application/json".into()));
            b.to_string().into_bytes()
        });
        let url = format!("{}{path}", self.base_url);
        let response = http::send(method, &url, &headers, body.as_deref()).map_err(|message| {
            PluginError::Upstream(UpstreamError {
                status: None,
                message,
                retry_after_secs: None,
            })
        })?;
        let status = response.status;
        match status {
            200..=299 => Ok(serde_json::from_slice(&response.body).unwrap_or(Value::Null)),
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
}

/// `{"changed": false}` is success without a change.
fn outcome(answer: &Value, unchanged: &str) -> SyncOutcome {
    let changed = answer.get("changed").and_then(Value::as_bool) != Some(false);
    SyncOutcome {
        changed,
        note: (!changed).then(|| unchanged.to_string()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        assert_eq!(from_hex("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(from_hex("0g"), None);
        assert_eq!(from_hex("abc"), None);
        assert_eq!(hex(&[0, 255, 16]), "00ff10");
        assert_eq!(segment("T-1"), "T-1");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn secrets_are_read_from_the_record() {
        let record = |secrets: &str| Integration {
            id: 1,
            external_id: "legacy".into(),
            name: "Tasks legacy".into(),
            metadata: "{}".into(),
            secrets: secrets.into(),
        };
        let i = record(r#"{"api_token": "t", "webhook_secret": "s", "empty": ""}"#);
        assert_eq!(secret(&i, "webhook_secret").as_deref(), Some("s"));
        assert_eq!(secret(&i, "api_token").as_deref(), Some("t"));
        assert_eq!(secret(&i, "empty"), None);
        assert_eq!(secret(&i, "missing"), None);
        assert_eq!(secret(&record("not json"), "api_token"), None);
    }

    #[test]
    fn without_a_status_mapping_nothing_is_synced() {
        // Returns before any import is called (natively they do not exist).
        let issue = ExternalIssue {
            key: "L-1".into(),
            metadata: "{}".into(),
        };
        let outcome = TasksLegacy::sync_status(issue, true, Vec::new()).unwrap();
        assert!(!outcome.changed);
        assert_eq!(outcome.note.as_deref(), Some("no status mapping"));
    }
}
