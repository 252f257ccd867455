//! The GitHub REST client: the headers every call carries, the credential,
//! and how GitHub's errors (rate limits above all) become the SDK's.

use serde_json::Value;
use trackbridge_plugin_sdk::http::{Method, Request, Response};
use trackbridge_plugin_sdk::{Error, Result, clock};

/// The REST API version pinned (spec §3).
pub const API_VERSION: &str = "2022-11-28";
/// Well under the host's per-call budget, so a hanging GitHub is explained.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(8);
/// Backoff for a secondary rate limit that names no time (GitHub: "at least a minute").
const SECONDARY_LIMIT_BACKOFF_SECS: u32 = 60;

/// Produces a fresh `Authorization` value after GitHub answered 401 (an
/// installation token that expired early); `None` when there is nothing to refresh.
pub type Refresh = fn() -> Result<Option<String>>;

/// One API base URL with one `Authorization` value.
#[derive(Clone)]
pub struct Client {
    api_url: String,
    authorization: String,
    refresh: Option<Refresh>,
}

impl Client {
    /// `authorization` is a header value: a stand-in after installation, the
    /// operator's own credential during it.
    pub fn new(api_url: &str, authorization: String) -> Client {
        Client {
            api_url: api_url.trim_end_matches('/').to_string(),
            authorization,
            refresh: None,
        }
    }

    pub fn with_refresh(mut self, refresh: Refresh) -> Client {
        self.refresh = Some(refresh);
        self
    }

    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    fn request(&self, method: Method, path: &str, authorization: &str) -> Request {
        Request::new(method, format!("{}{path}", self.api_url))
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", API_VERSION)
            .header(
                "user-agent",
                concat!("trackbridge-plugin-github/", env!("CARGO_PKG_VERSION")),
            )
            .header("authorization", authorization)
            .timeout(TIMEOUT)
    }

    /// Sends and returns whatever GitHub answered, except that a rate-limit
    /// answer is always an error: callers interpret the other statuses.
    pub fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Response> {
        let build = |authorization: &str| -> Result<Request> {
            let request = self.request(method, path, authorization);
            match body {
                Some(body) => request.json(body),
                None => Ok(request),
            }
        };
        let mut response = build(&self.authorization)?.send()?;
        if response.status == 401
            && let Some(refresh) = self.refresh
            && let Some(fresh) = refresh()?
        {
            response = build(&fresh)?.send()?;
        }
        if let Some(limited) = rate_limited(&response) {
            return Err(limited);
        }
        Ok(response)
    }

    /// [`Client::send`], failing on any status ≥ 400 with GitHub's reason.
    pub fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let response = self.send(method, path, body)?;
        check(response, &format!("{} {path}", method.as_str()))?.json()
    }

    pub fn get(&self, path: &str) -> Result<Value> {
        self.call(Method::Get, path, None)
    }
}

/// A primary or secondary rate limit (spec §4) as a retry-after error:
/// 403/429 with `retry-after`, with `x-ratelimit-remaining: 0`, or naming a
/// rate limit. A 403 without those signals is a permission error.
pub fn rate_limited(response: &Response) -> Option<Error> {
    if response.status != 403 && response.status != 429 {
        return None;
    }
    let reason = response.error_reason();
    let exhausted = response.header("x-ratelimit-remaining").map(str::trim) == Some("0");
    let wait = if let Some(secs) = response.retry_after_secs() {
        secs
    } else if exhausted {
        let reset: u64 = response
            .header("x-ratelimit-reset")
            .and_then(|r| r.trim().parse().ok())
            .unwrap_or(0);
        u32::try_from(reset.saturating_sub(clock::now_secs()))
            .unwrap_or(u32::MAX)
            .max(1)
    } else if reason.to_ascii_lowercase().contains("rate limit") {
        SECONDARY_LIMIT_BACKOFF_SECS
    } else {
        return None;
    };
    Some(Error::Upstream {
        status: Some(response.status),
        message: format!(
            "GitHub rate limit (HTTP {}): {reason}; retry in {wait} s",
            response.status
        ),
        retry_after_secs: Some(wait),
    })
}

/// Any status ≥ 400 as an error naming the call; 401/403 say what GitHub
/// wants (`x-accepted-github-permissions`, `x-accepted-oauth-scopes`).
pub fn check(response: Response, what: &str) -> Result<Response> {
    if response.status < 400 {
        return Ok(response);
    }
    let reason = response.error_reason();
    let needs = [
        ("x-accepted-github-permissions", "permissions"),
        ("x-accepted-oauth-scopes", "scopes"),
    ]
    .iter()
    .filter_map(|(header, label)| {
        response
            .header(header)
            .filter(|v| !v.trim().is_empty())
            .map(|v| format!("; GitHub wants {label}: {v}"))
    })
    .collect::<String>();
    let message = format!(
        "GitHub refused {what} (HTTP {}): {reason}{needs}",
        response.status
    );
    match response.status {
        401 | 403 => Err(Error::Unauthorized(message)),
        status => Err(Error::Upstream {
            status: Some(status),
            message,
            retry_after_secs: response.retry_after_secs(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use trackbridge_plugin_sdk::testing;

    #[test]
    fn every_call_carries_githubs_headers() {
        testing::reset();
        testing::on_http(|_| Ok(Response::json_body(200, &json!({"ok": true}))));
        let client = Client::new("https://api.github.com/", "Bearer t".into());
        assert_eq!(client.get("/repos/o/r").unwrap()["ok"], true);
        let sent = &testing::requests()[0];
        assert_eq!(sent.url, "https://api.github.com/repos/o/r");
        assert_eq!(
            sent.header_value("accept"),
            Some("application/vnd.github+json")
        );
        assert_eq!(sent.header_value("x-github-api-version"), Some(API_VERSION));
        assert!(
            sent.header_value("user-agent")
                .unwrap()
                .starts_with("trackbridge")
        );
        assert_eq!(sent.header_value("authorization"), Some("Bearer t"));
    }

    fn retry(e: Option<Error>) -> Option<u32> {
        match e {
            Some(Error::Upstream {
                retry_after_secs, ..
            }) => retry_after_secs,
            _ => None,
        }
    }

    #[test]
    fn rate_limits_become_retry_after_errors() {
        testing::reset();
        testing::set_now_ms(1_700_000_000_000);
        let throttled =
            Response::new(429, "{\"message\":\"slow\"}").with_header("retry-after", "30");
        assert_eq!(retry(rate_limited(&throttled)), Some(30));
        let primary = Response::new(403, "{\"message\":\"API rate limit exceeded\"}")
            .with_header("x-ratelimit-remaining", "0")
            .with_header("x-ratelimit-reset", "1700000125");
        assert_eq!(retry(rate_limited(&primary)), Some(125));
        let secondary = Response::new(
            403,
            "{\"message\":\"You have exceeded a secondary rate limit\"}",
        );
        assert_eq!(retry(rate_limited(&secondary)), Some(60));
        let permission = Response::new(403, "{\"message\":\"Resource not accessible\"}")
            .with_header("x-ratelimit-remaining", "4999");
        assert!(rate_limited(&permission).is_none());
        assert!(matches!(
            check(permission, "GET /x"),
            Err(Error::Unauthorized(m)) if m.contains("Resource not accessible")
        ));
    }

    #[test]
    fn a_401_is_retried_once_with_a_refreshed_credential() {
        testing::reset();
        testing::on_http(|r| {
            Ok(match r.header_value("authorization") {
                Some("Bearer fresh") => Response::json_body(200, &json!({"n": 1})),
                _ => Response::new(401, "{\"message\":\"Bad credentials\"}"),
            })
        });
        let client = Client::new("https://api.github.com", "Bearer old".into())
            .with_refresh(|| Ok(Some("Bearer fresh".into())));
        assert_eq!(client.get("/x").unwrap()["n"], 1);
        assert_eq!(testing::requests().len(), 2);
        let stale = Client::new("https://api.github.com", "Bearer old".into());
        assert!(matches!(stale.get("/x"), Err(Error::Unauthorized(_))));
    }
}
