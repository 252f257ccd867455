//! Registering the issue webhook at Jira (sentry-flows §6.1): done by
//! installation before anything is stored.

use serde_json::{Value, json};
use trackbridge_plugin_sdk::http::Response;
use trackbridge_plugin_sdk::{Error, Result, integration, warn};

use crate::WEBHOOK_NAME;
use crate::client::Client;
use crate::install::Input;

/// What webhook registration subscribes to.
pub const WEBHOOK_EVENTS: [&str; 2] = ["jira:issue_created", "jira:issue_updated"];

/// Sentry's message for a failed registration: the first value of
/// `messages[0]` in Jira's error answer, or nothing.
pub fn webhook_error_details(response: &Response) -> String {
    let Ok(body) = serde_json::from_slice::<Value>(&response.body) else {
        return String::new();
    };
    match body.get("messages").and_then(|m| m.get(0)) {
        Some(Value::Object(first)) => first
            .values()
            .next()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .unwrap_or_default(),
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    }
}

pub const WEBHOOK_ERROR: &str = "Could not create issue webhook in Jira.";

/// The webhook's id from Jira's answer: the last segment of `self`, else `id`.
pub fn webhook_id(created: &Value) -> Option<String> {
    created
        .get("self")
        .and_then(Value::as_str)
        .and_then(|s| s.trim_end_matches('/').rsplit('/').next())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .or_else(|| created.get("id").and_then(crate::client::id_string))
}

/// Creates the issue webhook; its id, for uninstall.
pub fn create_issue_webhook(client: &Client, input: &Input) -> Result<Option<String>> {
    let body = json!({
        "name": WEBHOOK_NAME,
        "url": input.webhook_url(&integration::public_url()),
        "events": WEBHOOK_EVENTS,
    });
    let response = client.create_webhook(&body).map_err(|e| Error::Upstream {
        status: e.status(),
        message: format!("{WEBHOOK_ERROR} {}", e.message()),
        retry_after_secs: None,
    })?;
    if !response.is_success() {
        let message = format!("{WEBHOOK_ERROR} {}", webhook_error_details(&response));
        return Err(match response.status {
            401 | 403 => Error::Unauthorized(message),
            status => Error::Upstream {
                status: Some(status),
                message,
                retry_after_secs: response.retry_after_secs(),
            },
        });
    }
    let created: Value = response.json().unwrap_or(Value::Null);
    let id = webhook_id(&created);
    if id.is_none() {
        warn!("Jira created the issue webhook but named no id; uninstall cannot remove it");
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_error_details_take_the_first_message() {
        let r = Response::json_body(
            403,
            &json!({"messages": [{"key": "You do not have permission to create WebHook 'Sentry Issue Sync'."}]}),
        );
        assert_eq!(
            webhook_error_details(&r),
            "You do not have permission to create WebHook 'Sentry Issue Sync'."
        );
        assert_eq!(webhook_error_details(&Response::new(502, "<html>")), "");
        assert_eq!(
            webhook_error_details(&Response::json_body(400, &json!({"messages": []}))),
            ""
        );
        assert_eq!(
            webhook_id(&json!({"self": "https://j/rest/webhooks/1.0/webhook/17"})).as_deref(),
            Some("17")
        );
        assert_eq!(webhook_id(&json!({"id": 5})).as_deref(), Some("5"));
        assert_eq!(webhook_id(&json!({})), None);
    }
}
