//! Discord's REST API: the calls the notifier makes and how their failures
//! map onto the contract's errors.
//!
//! * 401/403/404 → `unauthorized`: the token was revoked, the bot lost access,
//!   the channel or webhook is gone. The host marks the installation broken and
//!   sends nothing more, which also keeps us far from Discord's ban after
//!   10,000 invalid requests in 10 minutes.
//! * 429 → `upstream` 429 with `retry-after-secs` from the body's `retry_after`
//!   (float seconds, rounded up), else `Retry-After`, else
//!   `X-RateLimit-Reset-After`. The wait is also cached, so a call made before
//!   it is over fails the same way without spending a request.
//! * anything else → `upstream` with Discord's `message` and `code`.

use std::time::Duration;

use serde_json::Value;
use trackbridge_plugin_sdk::http::{Method, Request, Response};
use trackbridge_plugin_sdk::{Error, Result, cache, clock};

use crate::config::{Target, is_snowflake};

/// Sentry's Discord client uses 5 s; below the host's per-call budget.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Cache key holding the epoch ms until which Discord asked us to wait.
const RATE_LIMIT_KEY: &str = "rate-limited-until-ms";

/// Discord's JSON error code for "Unknown Message".
pub const UNKNOWN_MESSAGE: u64 = 10008;

/// Discord asks for `DiscordBot ($url, $version)`.
const USER_AGENT: &str = concat!("DiscordBot (trackbridge, ", env!("CARGO_PKG_VERSION"), ")");

/// One Discord call, with the target's authentication.
fn request(target: &Target, method: Method, url: String) -> Request {
    let request = Request::new(method, url)
        .header("user-agent", USER_AGENT)
        .header("accept", "application/json")
        .timeout(TIMEOUT);
    match target {
        Target::Bot { token, .. } => request.header("authorization", format!("Bot {token}")),
        // The webhook's token is in its URL.
        Target::Webhook { .. } => request,
    }
}

/// Checks the credential at installation: reads the channel (bot) or the
/// webhook. Returns what Discord said about it.
pub fn check(target: &Target) -> Result<Value> {
    let (url, what) = match target {
        Target::Bot {
            api_base_url,
            channel_id,
            ..
        } => (
            format!("{api_base_url}/channels/{channel_id}"),
            format!("channel {channel_id}"),
        ),
        Target::Webhook {
            base_url,
            token,
            id,
            ..
        } => (
            Target::webhook_url(base_url, token),
            format!("webhook {id}"),
        ),
    };
    let response = request(target, Method::Get, url).send()?;
    if response.is_success() {
        return response.json();
    }
    Err(match (target, response.status) {
        (Target::Bot { .. }, 401) => Error::unauthorized(format!(
            "Discord refused the bot token (HTTP 401{})",
            reason_suffix(&response)
        )),
        (Target::Bot { .. }, 403) => Error::unauthorized(format!(
            "the bot may not see {what}: give it View Channel and Send Messages there (HTTP 403{})",
            reason_suffix(&response)
        )),
        (Target::Bot { .. }, 404) => Error::unauthorized(format!(
            "{what} does not exist or the bot is not in its server (HTTP 404{})",
            reason_suffix(&response)
        )),
        (Target::Webhook { .. }, 401 | 403 | 404) => Error::unauthorized(format!(
            "Discord does not know this {what}, or its token is wrong: it may have been deleted (HTTP {}{})",
            response.status,
            reason_suffix(&response)
        )),
        _ => failure(&response, &what),
    })
}

/// The body of a create-message call: the rendered message, plus for a bot a
/// nonce Discord deduplicates a retried create with.
pub fn create_body(target: &Target, mut message: Value, nonce: &str) -> Value {
    if matches!(target, Target::Bot { .. }) {
        message["nonce"] = Value::String(nonce.to_string());
        message["enforce_nonce"] = Value::Bool(true);
    }
    message
}

/// Posts a new message; returns its id.
pub fn create(target: &Target, body: &Value) -> Result<String> {
    let url = match target {
        Target::Bot {
            api_base_url,
            channel_id,
            ..
        } => format!("{api_base_url}/channels/{channel_id}/messages"),
        // Without `wait=true` Discord answers 204 and no message id to edit later.
        Target::Webhook {
            base_url, token, ..
        } => format!("{}?wait=true", Target::webhook_url(base_url, token)),
    };
    let response = send(request(target, Method::Post, url).json(body)?)?;
    message_id(&response)
}

/// Edits message `id`. `Ok(None)` when Discord no longer has the message
/// (deleted in the channel): the caller posts a new one.
pub fn edit(target: &Target, id: &str, body: &Value) -> Result<Option<String>> {
    let url = match target {
        Target::Bot {
            api_base_url,
            channel_id,
            ..
        } => format!("{api_base_url}/channels/{channel_id}/messages/{id}"),
        Target::Webhook {
            base_url, token, ..
        } => format!("{}/messages/{id}", Target::webhook_url(base_url, token)),
    };
    match send(request(target, Method::Patch, url).json(body)?) {
        Ok(response) => message_id(&response).map(Some),
        Err(SendError::UnknownMessage) => Ok(None),
        Err(SendError::Failed(e)) => Err(e),
    }
}

enum SendError {
    UnknownMessage,
    Failed(Error),
}

impl From<Error> for SendError {
    fn from(e: Error) -> Self {
        SendError::Failed(e)
    }
}

impl From<SendError> for Error {
    fn from(e: SendError) -> Self {
        match e {
            SendError::Failed(e) => e,
            SendError::UnknownMessage => {
                Error::unauthorized("Discord no longer has the message (HTTP 404, Unknown Message)")
            }
        }
    }
}

/// Sends a message call, honouring and recording rate limits.
fn send(request: Request) -> std::result::Result<Response, SendError> {
    let now = clock::now_ms();
    if let Some(until) = cache::get_json::<u64>(RATE_LIMIT_KEY).filter(|u| *u > now) {
        let secs = (until - now).div_ceil(1000).max(1);
        return Err(Error::Upstream {
            status: Some(429),
            message: format!("rate limited by Discord for {secs} s more (not sent)"),
            retry_after_secs: u32::try_from(secs).ok(),
        }
        .into());
    }
    let response = request.send()?;
    remember_rate_limit(&response, now);
    if response.is_success() {
        return Ok(response);
    }
    if response.status == 404 && discord_code(&response) == Some(UNKNOWN_MESSAGE) {
        return Err(SendError::UnknownMessage);
    }
    Err(match response.status {
        401 => Error::unauthorized(format!(
            "Discord refused the credentials (HTTP 401{}); install the integration again with a valid token",
            reason_suffix(&response)
        )),
        403 => Error::unauthorized(format!(
            "Discord forbids posting there (HTTP 403{}); check the bot's permissions in the channel",
            reason_suffix(&response)
        )),
        404 => Error::unauthorized(format!(
            "the channel or webhook no longer exists (HTTP 404{})",
            reason_suffix(&response)
        )),
        _ => failure(&response, "message"),
    }
    .into())
}

/// Caches how long Discord wants us to wait: after a 429, or when a bucket
/// has no requests left.
fn remember_rate_limit(response: &Response, now: u64) {
    let wait = if response.status == 429 {
        retry_after(response)
    } else if response.header("x-ratelimit-remaining").map(str::trim) == Some("0") {
        response
            .header("x-ratelimit-reset-after")
            .and_then(parse_secs)
    } else {
        None
    };
    if let Some(secs) = wait.filter(|s| *s > 0.0) {
        let ms = (secs * 1000.0).ceil() as u64;
        let ttl = u32::try_from(ms.div_ceil(1000)).unwrap_or(u32::MAX).max(1);
        cache::set_json(RATE_LIMIT_KEY, &(now + ms), ttl);
    }
}

fn parse_secs(s: &str) -> Option<f64> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|f| f.is_finite() && *f >= 0.0)
}

/// Seconds to wait after a 429: the body's `retry_after`, else `Retry-After`,
/// else `X-RateLimit-Reset-After`.
fn retry_after(response: &Response) -> Option<f64> {
    let body: Option<Value> = serde_json::from_slice(&response.body).ok();
    body.as_ref()
        .and_then(|b| b.get("retry_after"))
        .and_then(Value::as_f64)
        .filter(|f| f.is_finite() && *f >= 0.0)
        .or_else(|| response.header("retry-after").and_then(parse_secs))
        .or_else(|| {
            response
                .header("x-ratelimit-reset-after")
                .and_then(parse_secs)
        })
}

/// Whole seconds, rounded up, at least 1.
fn ceil_secs(secs: f64) -> u32 {
    let s = secs.ceil();
    if s >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        (s as u32).max(1)
    }
}

/// An error answer other than 401/403/404.
fn failure(response: &Response, what: &str) -> Error {
    let status = response.status;
    if status == 429 {
        let global = serde_json::from_slice::<Value>(&response.body)
            .ok()
            .and_then(|b| b.get("global").and_then(Value::as_bool))
            .unwrap_or(false)
            || response.header("x-ratelimit-global").map(str::trim) == Some("true");
        let scope = response
            .header("x-ratelimit-scope")
            .map(|s| format!(", scope {s}"))
            .unwrap_or_default();
        return Error::Upstream {
            status: Some(429),
            message: format!(
                "Discord rate limit{}{scope} (HTTP 429{})",
                if global { " (global)" } else { "" },
                reason_suffix(response)
            ),
            retry_after_secs: retry_after(response).map(ceil_secs),
        };
    }
    Error::Upstream {
        status: Some(status),
        message: format!(
            "Discord failed the {what} call (HTTP {status}{})",
            reason_suffix(response)
        ),
        retry_after_secs: response
            .header("retry-after")
            .and_then(parse_secs)
            .map(ceil_secs),
    }
}

/// Discord's JSON error `code`, if it sent one.
fn discord_code(response: &Response) -> Option<u64> {
    serde_json::from_slice::<Value>(&response.body)
        .ok()?
        .get("code")?
        .as_u64()
}

/// `": <message> (code N)"` from Discord's error body, or `""`.
fn reason_suffix(response: &Response) -> String {
    let Ok(body) = serde_json::from_slice::<Value>(&response.body) else {
        return String::new();
    };
    let message = body
        .get("message")
        .and_then(Value::as_str)
        .map(|m| m.chars().take(200).collect::<String>());
    match (message, body.get("code").and_then(Value::as_u64)) {
        (Some(m), Some(c)) if c != 0 => format!(": {m} (code {c})"),
        (Some(m), _) => format!(": {m}"),
        (None, Some(c)) => format!(": code {c}"),
        (None, None) => String::new(),
    }
}

/// The `id` of the message in a successful answer.
fn message_id(response: &Response) -> Result<String> {
    let body: Value = response.json()?;
    match body.get("id") {
        Some(Value::String(id)) if is_snowflake(id) => Ok(id.clone()),
        Some(Value::Number(n)) if n.is_u64() => Ok(n.to_string()),
        _ => Err(Error::Upstream {
            status: Some(response.status),
            message: format!(
                "Discord answered HTTP {} without a message id",
                response.status
            ),
            retry_after_secs: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn retry_after_prefers_the_body_and_rounds_up() {
        let r = Response::json_body(429, &json!({"retry_after": 0.2, "global": false}))
            .with_header("Retry-After", "7");
        assert_eq!(retry_after(&r).map(ceil_secs), Some(1));
        let r = Response::json_body(429, &json!({"retry_after": 2.5}));
        assert_eq!(retry_after(&r).map(ceil_secs), Some(3));
        let r = Response::new(429, "").with_header("Retry-After", "4");
        assert_eq!(retry_after(&r).map(ceil_secs), Some(4));
        let r = Response::new(429, "").with_header("X-RateLimit-Reset-After", "1.25");
        assert_eq!(retry_after(&r).map(ceil_secs), Some(2));
        assert_eq!(retry_after(&Response::new(429, "")), None);
    }

    #[test]
    fn failures_carry_discords_reason() {
        let r = Response::json_body(
            429,
            &json!({"message": "You are being rate limited.", "retry_after": 1.0, "global": true}),
        )
        .with_header("X-RateLimit-Scope", "global");
        let e = failure(&r, "message");
        assert_eq!(e.status(), Some(429));
        assert!(e.message().contains("(global), scope global"), "{e}");
        assert!(matches!(
            e,
            Error::Upstream {
                retry_after_secs: Some(1),
                ..
            }
        ));
        let r = Response::json_body(400, &json!({"message": "Invalid Form Body", "code": 50035}));
        assert_eq!(
            failure(&r, "message").message(),
            "Discord failed the message call (HTTP 400: Invalid Form Body (code 50035))"
        );
        assert_eq!(
            failure(&Response::new(502, "<html>"), "x").status(),
            Some(502)
        );
    }

    #[test]
    fn message_ids_are_checked() {
        assert_eq!(
            message_id(&Response::json_body(200, &json!({"id": "123"}))).unwrap(),
            "123"
        );
        assert!(message_id(&Response::new(204, "")).is_err());
        assert!(message_id(&Response::json_body(200, &json!({"id": "../x"}))).is_err());
    }
}
