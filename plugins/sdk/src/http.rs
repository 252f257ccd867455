//! A small blocking HTTP client over `wasi:http/outgoing-handler`.
//!
//! The host only lets a call reach the hosts of its integration's URL fields;
//! anything else fails with an [`Error::Upstream`] without a status.
//!
//! ```no_run
//! use trackbridge_plugin_sdk::http::{Method, Request};
//! # fn f() -> trackbridge_plugin_sdk::Result<()> {
//! let info: serde_json::Value = Request::new(Method::Get, "https://example.atlassian.net/rest/api/2/serverInfo")
//!     .header("accept", "application/json")
//!     .send()?
//!     .error_for_status()?
//!     .json()?;
//! # Ok(()) }
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::url::{Url, encode_component};

/// The request methods trackers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Head,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Head => "HEAD",
        }
    }
}

/// An outgoing request, built fluently and sent with [`Request::send`].
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// The URL as given, possibly with a query string of its own.
    pub url: String,
    /// Header fields in order; names as given.
    pub headers: Vec<(String, String)>,
    /// Query parameters appended to the URL (decoded form).
    pub query: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    /// Gives up when connecting, the first response byte, or any later gap
    /// between bytes takes longer than this; `None` leaves it to the host.
    /// Set it below the host's per-call time budget so that a hanging tracker
    /// becomes an [`Error::Upstream`] the plugin can explain, not a timeout of
    /// the whole call.
    pub timeout: Option<std::time::Duration>,
}

impl Request {
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            query: Vec::new(),
            body: None,
            timeout: None,
        }
    }

    pub fn get(url: impl Into<String>) -> Self {
        Self::new(Method::Get, url)
    }

    pub fn post(url: impl Into<String>) -> Self {
        Self::new(Method::Post, url)
    }

    pub fn put(url: impl Into<String>) -> Self {
        Self::new(Method::Put, url)
    }

    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Appends a query parameter; it is percent-encoded when sent.
    pub fn query(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((name.into(), value.into()));
        self
    }

    /// See [`Request::timeout`](struct.Request.html#structfield.timeout).
    pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets a JSON body and `content-type: application/json`.
    pub fn json<T: Serialize + ?Sized>(self, value: &T) -> Result<Self> {
        let bytes = serde_json::to_vec(value)?;
        Ok(self.body(bytes, "application/json"))
    }

    /// Sets a raw body with its content type.
    pub fn body(mut self, bytes: Vec<u8>, content_type: &str) -> Self {
        self.headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case("content-type"));
        self.headers
            .push(("content-type".to_string(), content_type.to_string()));
        self.body = Some(bytes);
        self
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The URL with the query parameters appended, as it goes on the wire.
    pub fn full_url(&self) -> String {
        if self.query.is_empty() {
            return self.url.clone();
        }
        let extra = self
            .query
            .iter()
            .map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v)))
            .collect::<Vec<_>>()
            .join("&");
        // A fragment never reaches the server, so it is dropped rather than
        // ending up in front of the appended parameters.
        let base = self
            .url
            .split_once('#')
            .map_or(self.url.as_str(), |(b, _)| b);
        if base.contains('?') {
            let sep = if base.ends_with('?') || base.ends_with('&') {
                ""
            } else {
                "&"
            };
            format!("{base}{sep}{extra}")
        } else {
            format!("{base}?{extra}")
        }
    }

    /// Parses [`Request::full_url`]; fails with an internal error for a URL the
    /// plugin built wrongly.
    pub fn parsed_url(&self) -> Result<Url> {
        Url::parse(&self.full_url())
            .map_err(|e| Error::internal(format!("bad request URL: {}", e.message())))
    }

    /// Sends the request and reads the whole response. Transport failures
    /// (including destinations outside the integration's allowed hosts) become
    /// [`Error::Upstream`] with `status: None`; HTTP error statuses do not fail
    /// here, see [`Response::error_for_status`].
    pub fn send(self) -> Result<Response> {
        crate::sys::http_send(&self)
    }
}

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Header fields in order, names lower-case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// A response with a JSON body, handy for fakes in tests.
    pub fn json_body(status: u16, value: &serde_json::Value) -> Self {
        Response {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: value.to_string().into_bytes(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Deserializes the body; an empty body (e.g. 204) reads as JSON `null`.
    /// A body that does not match is the tracker's fault, hence an upstream error.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        let body: &[u8] = if self.body.iter().all(u8::is_ascii_whitespace) {
            b"null"
        } else {
            &self.body
        };
        serde_json::from_slice(body).map_err(|e| Error::Upstream {
            status: Some(self.status),
            message: format!("unexpected response body: {e}"),
            retry_after_secs: None,
        })
    }

    /// `Retry-After` in seconds, when given as a number.
    pub fn retry_after_secs(&self) -> Option<u32> {
        self.header("retry-after")?.trim().parse().ok()
    }

    /// Passes 1xx-3xx through; 401/403 become [`Error::Unauthorized`], any
    /// other status ≥ 400 [`Error::Upstream`] carrying the tracker's own reason.
    pub fn error_for_status(self) -> Result<Response> {
        if self.status < 400 {
            return Ok(self);
        }
        let reason = self.error_reason();
        let message = if reason.is_empty() {
            format!("HTTP {}", self.status)
        } else {
            format!("HTTP {}: {reason}", self.status)
        };
        if self.status == 401 || self.status == 403 {
            return Err(Error::Unauthorized(message));
        }
        Err(Error::Upstream {
            status: Some(self.status),
            message,
            retry_after_secs: self.retry_after_secs(),
        })
    }

    /// The tracker's explanation of an error: Jira-style `errorMessages`,
    /// `errors`, `message(s)`, `error` fields when the body is JSON, else the
    /// body text, truncated.
    pub fn error_reason(&self) -> String {
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&self.body) {
            let mut parts: Vec<String> = Vec::new();
            for key in ["errorMessages", "messages"] {
                if let Some(list) = value.get(key).and_then(|v| v.as_array()) {
                    parts.extend(list.iter().map(json_text));
                }
            }
            if let Some(errors) = value.get("errors").and_then(|v| v.as_object()) {
                parts.extend(errors.iter().map(|(k, v)| format!("{k}: {}", json_text(v))));
            }
            for key in ["message", "errorMessage", "error"] {
                if let Some(v) = value.get(key).filter(|v| !v.is_null()) {
                    parts.push(json_text(v));
                }
            }
            parts.retain(|p| !p.is_empty());
            if !parts.is_empty() {
                return truncate(&parts.join("; "), 500);
            }
        }
        truncate(self.text().trim(), 300)
    }
}

fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

pub(crate) fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn query_is_appended_and_encoded() {
        let r = Request::get("https://x.test/a?b=1")
            .query("query", "bob smith@example.com")
            .query("k", "a/b");
        assert_eq!(
            r.full_url(),
            "https://x.test/a?b=1&query=bob%20smith%40example.com&k=a%2Fb"
        );
        assert_eq!(
            Request::get("https://x.test/a").query("a", "1").full_url(),
            "https://x.test/a?a=1"
        );
    }

    #[test]
    fn json_sets_content_type() {
        let r = Request::put("https://x.test/")
            .header("Content-Type", "text/plain")
            .json(&json!({"accountId": null}))
            .unwrap();
        assert_eq!(r.header_value("content-type"), Some("application/json"));
        assert_eq!(r.body.as_deref(), Some(&b"{\"accountId\":null}"[..]));
    }

    #[test]
    fn error_mapping() {
        let e = Response::json_body(401, &json!({"errorMessages": ["bad token"]}))
            .error_for_status()
            .unwrap_err();
        assert_eq!(e, Error::Unauthorized("HTTP 401: bad token".into()));
        assert!(matches!(
            Response::new(403, "").error_for_status(),
            Err(Error::Unauthorized(_))
        ));
        let e = Response::json_body(
            400,
            &json!({"errorMessages": [], "errors": {"assignee": "cannot be assigned"}}),
        )
        .error_for_status()
        .unwrap_err();
        assert_eq!(e.status(), Some(400));
        assert_eq!(e.message(), "HTTP 400: assignee: cannot be assigned");
        let e = Response::new(429, "slow down")
            .with_header("Retry-After", "17")
            .error_for_status()
            .unwrap_err();
        assert_eq!(
            e,
            Error::Upstream {
                status: Some(429),
                message: "HTTP 429: slow down".into(),
                retry_after_secs: Some(17)
            }
        );
        let long = "x".repeat(1000);
        let e = Response::new(500, long).error_for_status().unwrap_err();
        assert!(e.message().len() < 320);
        assert!(Response::new(204, "").error_for_status().is_ok());
    }

    #[test]
    fn empty_body_is_null() {
        let v: serde_json::Value = Response::new(204, "").json().unwrap();
        assert!(v.is_null());
        let e = Response::new(200, "<html>")
            .json::<serde_json::Value>()
            .unwrap_err();
        assert_eq!(e.status(), Some(200));
    }
}
