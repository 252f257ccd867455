//! What a [`FakeTracker`](crate::FakeTracker) expects ([`Expect`]), how it
//! answers ([`Reply`]), and what it received ([`RecordedRequest`]).

use std::fmt;
use std::time::Duration;

use serde_json::Value;

/// Longest body shown in a failure report.
const MAX_SHOWN_BODY: usize = 4096;

/// One request the fake tracker received.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// The raw query string, without the `?`.
    pub query: String,
    /// Header names are lower-case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The number (in order of registration, from 0) of the expectation that
    /// answered it; `None` for an unexpected request.
    pub expectation: Option<usize>,
}

impl RecordedRequest {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first value of query parameter `name`, form-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON, when it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// Whether an expectation answered it.
    pub fn was_expected(&self) -> bool {
        self.expectation.is_some()
    }
}

impl fmt::Display for RecordedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)?;
        if !self.query.is_empty() {
            write!(f, "?{}", self.query)?;
        }
        for (k, v) in &self.headers {
            write!(f, "\n      {k}: {v}")?;
        }
        let text = self.body_text();
        if text.is_empty() {
            write!(f, "\n      (no body)")
        } else if text.len() > MAX_SHOWN_BODY {
            let mut cut = MAX_SHOWN_BODY;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            write!(f, "\n      body: {}… ({} bytes)", &text[..cut], text.len())
        } else {
            write!(f, "\n      body: {text}")
        }
    }
}

#[derive(Clone, Debug)]
enum Matcher {
    QueryContains(String),
    QueryParam(String, String),
    BodyContains(String),
    BodyJson(Value),
    BodyJsonExact(Value),
    Header(String, String),
    HeaderContains(String, String),
}

impl Matcher {
    fn matches(&self, request: &RecordedRequest) -> bool {
        match self {
            Matcher::QueryContains(s) => request.query.contains(s.as_str()),
            Matcher::QueryParam(k, v) => url::form_urlencoded::parse(request.query.as_bytes())
                .any(|(name, value)| name == k.as_str() && value == v.as_str()),
            Matcher::BodyContains(s) => request.body_text().contains(s.as_str()),
            Matcher::BodyJson(subset) => request.json().is_some_and(|b| json_contains(&b, subset)),
            Matcher::BodyJsonExact(value) => request.json().is_some_and(|b| b == *value),
            Matcher::Header(k, v) => request.header(k) == Some(v.as_str()),
            Matcher::HeaderContains(k, s) => {
                request.header(k).is_some_and(|v| v.contains(s.as_str()))
            }
        }
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Matcher::QueryContains(s) => write!(f, "query contains {s:?}"),
            Matcher::QueryParam(k, v) => write!(f, "query {k}={v:?}"),
            Matcher::BodyContains(s) => write!(f, "body contains {s:?}"),
            Matcher::BodyJson(v) => write!(f, "body JSON contains {v}"),
            Matcher::BodyJsonExact(v) => write!(f, "body JSON is {v}"),
            Matcher::Header(k, v) => write!(f, "header {k}: {v:?}"),
            Matcher::HeaderContains(k, s) => write!(f, "header {k} contains {s:?}"),
        }
    }
}

/// Whether `actual` holds `expected`: every member of an expected object is
/// in the actual one (recursively), arrays match element by element and have
/// the same length, anything else is equal.
fn json_contains(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => e
            .iter()
            .all(|(k, ev)| a.get(k).is_some_and(|av| json_contains(av, ev))),
        (Value::Array(a), Value::Array(e)) => {
            a.len() == e.len() && a.iter().zip(e).all(|(av, ev)| json_contains(av, ev))
        }
        _ => actual == expected,
    }
}

/// A request the fake tracker expects: a method and an exact path, and
/// optionally conditions on the query, headers and body. All must hold.
///
/// ```
/// use trackbridge_plugin_test::Expect;
///
/// let expect = Expect::new("POST", "/rest/api/2/issue/APP-1/transitions")
///     .header("content-type", "application/json")
///     .body_json(serde_json::json!({"transition": {"id": "31"}}));
/// # let _ = expect;
/// ```
#[derive(Clone, Debug)]
#[must_use = "an expectation does nothing until given to `FakeTracker::expect`"]
pub struct Expect {
    method: String,
    path: String,
    matchers: Vec<Matcher>,
}

impl Expect {
    /// `method` (any case) to exactly `path` (no query string).
    pub fn new(method: impl Into<String>, path: impl Into<String>) -> Self {
        Expect {
            method: method.into(),
            path: path.into(),
            matchers: Vec::new(),
        }
    }

    pub fn get(path: impl Into<String>) -> Self {
        Expect::new("GET", path)
    }

    pub fn post(path: impl Into<String>) -> Self {
        Expect::new("POST", path)
    }

    pub fn put(path: impl Into<String>) -> Self {
        Expect::new("PUT", path)
    }

    pub fn patch(path: impl Into<String>) -> Self {
        Expect::new("PATCH", path)
    }

    pub fn delete(path: impl Into<String>) -> Self {
        Expect::new("DELETE", path)
    }

    /// The raw query string contains `text`.
    pub fn query_contains(mut self, text: impl Into<String>) -> Self {
        self.matchers.push(Matcher::QueryContains(text.into()));
        self
    }

    /// The query has parameter `name` with `value` (form-decoded).
    pub fn query_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.matchers
            .push(Matcher::QueryParam(name.into(), value.into()));
        self
    }

    /// The body, as text, contains `text`.
    pub fn body_contains(mut self, text: impl Into<String>) -> Self {
        self.matchers.push(Matcher::BodyContains(text.into()));
        self
    }

    /// The body is JSON containing `subset`: each member of an object in
    /// `subset` is there with a matching value; arrays match element-wise.
    pub fn body_json(mut self, subset: Value) -> Self {
        self.matchers.push(Matcher::BodyJson(subset));
        self
    }

    /// The body is JSON equal to `value`.
    pub fn body_json_exact(mut self, value: Value) -> Self {
        self.matchers.push(Matcher::BodyJsonExact(value));
        self
    }

    /// Header `name` (any case) has exactly `value`.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.matchers
            .push(Matcher::Header(name.into(), value.into()));
        self
    }

    /// Header `name` (any case) contains `text`.
    pub fn header_contains(mut self, name: impl Into<String>, text: impl Into<String>) -> Self {
        self.matchers
            .push(Matcher::HeaderContains(name.into(), text.into()));
        self
    }

    pub(crate) fn matches(&self, request: &RecordedRequest) -> bool {
        self.method.eq_ignore_ascii_case(&request.method)
            && self.path == request.path
            && self.matchers.iter().all(|m| m.matches(request))
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method.to_ascii_uppercase(), self.path)?;
        for (i, m) in self.matchers.iter().enumerate() {
            write!(f, "{}{m}", if i == 0 { " where " } else { ", " })?;
        }
        Ok(())
    }
}

/// How the fake tracker answers a request it expected.
///
/// ```
/// use trackbridge_plugin_test::Reply;
///
/// let reply = Reply::status(429).header("Retry-After", "7").json(&serde_json::json!({"errorMessages": ["slow down"]}));
/// # let _ = reply;
/// ```
#[derive(Clone, Debug)]
pub struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    pub(crate) delay: Option<Duration>,
}

impl Reply {
    /// An answer with this status and no body.
    pub fn status(status: u16) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: None,
        }
    }

    /// `200 OK`, no body.
    pub fn ok() -> Self {
        Reply::status(200)
    }

    /// Add a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// A JSON body, with `content-type: application/json` unless a content
    /// type is set already.
    pub fn json(mut self, value: &Value) -> Self {
        self.body = value.to_string().into_bytes();
        if !self
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            self.headers
                .push(("content-type".into(), "application/json".into()));
        }
        self
    }

    /// A raw body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Wait this long before answering (for time budgets and timeouts).
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(query: &str, body: &str) -> RecordedRequest {
        RecordedRequest {
            method: "post".into(),
            path: "/x".into(),
            query: query.into(),
            headers: vec![("authorization".into(), "Basic abc".into())],
            body: body.as_bytes().to_vec(),
            expectation: None,
        }
    }

    #[test]
    fn json_subsets() {
        let actual = json!({"a": {"b": 1, "c": [1, {"d": 2, "e": 3}]}, "f": null});
        assert!(json_contains(&actual, &json!({"a": {"c": [1, {"d": 2}]}})));
        assert!(json_contains(&actual, &json!({"f": null})));
        assert!(!json_contains(&actual, &json!({"a": {"c": [1]}})));
        assert!(!json_contains(&actual, &json!({"g": null})));
        assert!(!json_contains(&actual, &json!({"a": {"b": "1"}})));
    }

    #[test]
    fn every_condition_must_hold() {
        let r = request("issueKey=APP-1&query=a%40b.test", r#"{"k": "v", "n": 1}"#);
        let e = Expect::post("/x");
        assert!(e.clone().matches(&r));
        assert!(e.clone().query_param("query", "a@b.test").matches(&r));
        assert!(e.clone().query_contains("issueKey=APP-1").matches(&r));
        assert!(e.clone().header("Authorization", "Basic abc").matches(&r));
        assert!(
            e.clone()
                .header_contains("authorization", "Basic")
                .matches(&r)
        );
        assert!(e.clone().body_json(json!({"k": "v"})).matches(&r));
        assert!(!e.clone().body_json_exact(json!({"k": "v"})).matches(&r));
        assert!(!e.clone().header("authorization", "Basic").matches(&r));
        assert!(!e.clone().query_param("query", "a").matches(&r));
        assert!(!Expect::get("/x").matches(&r));
        assert!(!Expect::post("/x/").matches(&r));
    }
}
