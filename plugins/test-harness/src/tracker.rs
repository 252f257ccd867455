//! [`FakeTracker`]: a scripted HTTP/1.1 server on loopback standing in for a
//! tracker's API.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::expect::{Expect, RecordedRequest, Reply};

/// The address the fake tracker listens on (and the harness lets plugins reach).
pub(crate) const LOOPBACK: [u8; 4] = [127, 0, 0, 1];

/// The status of the answer to a request no expectation matches: outside
/// every range a tracker uses, so a plugin reports it as an upstream error.
pub const UNEXPECTED_STATUS: u16 = 599;

struct Registered {
    expect: Expect,
    reply: Reply,
    times: usize,
    served: usize,
}

#[derive(Default)]
struct State {
    expectations: Vec<Registered>,
    requests: Vec<RecordedRequest>,
    /// Replies that could not be sent (a header the HTTP library refuses).
    broken_replies: Vec<String>,
}

type Shared = Arc<Mutex<State>>;

fn lock(shared: &Mutex<State>) -> MutexGuard<'_, State> {
    // A test that panicked while holding the lock left consistent data.
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A tracker API on `127.0.0.1` (a random port) answering what the test
/// scripts, and nothing else.
///
/// Expectations ([`FakeTracker::expect`]) are matched in the order they were
/// registered, among those not used up yet. A request no expectation matches
/// gets a [`UNEXPECTED_STATUS`] answer and is recorded as unexpected:
/// [`FakeTracker::verify`], and dropping the tracker, panic listing every
/// unexpected request and every expectation not met.
///
/// ```no_run
/// # async fn f() -> std::io::Result<()> {
/// use trackbridge_plugin_test::{Expect, FakeTracker, Reply};
///
/// let jira = FakeTracker::start().await?;
/// jira.expect(Expect::get("/rest/api/2/serverInfo"))
///     .respond(Reply::ok().json(&serde_json::json!({"version": "9.4.0"})));
/// // … drive the plugin against `jira.url()` …
/// jira.verify();
/// # Ok(()) }
/// ```
pub struct FakeTracker {
    addr: SocketAddr,
    shared: Shared,
    task: JoinHandle<()>,
}

impl FakeTracker {
    /// Listen on `127.0.0.1` on a free port. Must be called inside a tokio
    /// runtime, which serves the requests.
    pub async fn start() -> std::io::Result<FakeTracker> {
        let listener = TcpListener::bind(SocketAddr::from((LOOPBACK, 0))).await?;
        let addr = listener.local_addr()?;
        let shared: Shared = Arc::default();
        let task = tokio::spawn(accept(listener, shared.clone()));
        tracing::debug!(%addr, "fake tracker listening");
        Ok(FakeTracker { addr, shared, task })
    }

    /// `http://127.0.0.1:PORT`, without a trailing `/`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1:PORT`: the host an integration must be allowed to reach.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Expect a request; say how to answer it with
    /// [`respond`](PendingExpectation::respond).
    pub fn expect(&self, expect: Expect) -> PendingExpectation<'_> {
        PendingExpectation {
            tracker: self,
            expect,
            times: 1,
        }
    }

    /// Every request received so far, in order, expected or not.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared).requests.clone()
    }

    /// The requests no expectation matched.
    pub fn unexpected(&self) -> Vec<RecordedRequest> {
        lock(&self.shared)
            .requests
            .iter()
            .filter(|r| !r.was_expected())
            .cloned()
            .collect()
    }

    /// What is wrong so far: unexpected requests, expectations not met,
    /// replies that could not be sent. `None` when nothing is.
    pub fn problems(&self) -> Option<String> {
        let state = lock(&self.shared);
        let unexpected: Vec<&RecordedRequest> = state
            .requests
            .iter()
            .filter(|r| !r.was_expected())
            .collect();
        let unmet: Vec<(usize, &Registered)> = state
            .expectations
            .iter()
            .enumerate()
            .filter(|(_, r)| r.served < r.times)
            .collect();
        if unexpected.is_empty() && unmet.is_empty() && state.broken_replies.is_empty() {
            return None;
        }
        let mut report = format!("fake tracker {}:", self.url());
        if !unexpected.is_empty() {
            let _ = write!(
                report,
                "\n  {} unexpected request(s) (answered {UNEXPECTED_STATUS}):",
                unexpected.len()
            );
            for request in unexpected {
                let _ = write!(report, "\n    {request}");
            }
        }
        if !unmet.is_empty() {
            let _ = write!(report, "\n  {} expectation(s) not met:", unmet.len());
            for (i, r) in unmet {
                let _ = write!(
                    report,
                    "\n    #{i} {}: received {} of {} time(s)",
                    r.expect, r.served, r.times
                );
            }
        }
        for broken in &state.broken_replies {
            let _ = write!(report, "\n  a reply could not be sent: {broken}");
        }
        Some(report)
    }

    /// Panic when a request was unexpected or an expectation was not met,
    /// listing each.
    #[track_caller]
    pub fn verify(&self) {
        if let Some(report) = self.problems() {
            panic!("{report}");
        }
    }
}

impl Drop for FakeTracker {
    fn drop(&mut self) {
        self.task.abort();
        if std::thread::panicking() {
            return;
        }
        if let Some(report) = self.problems() {
            panic!("{report}");
        }
    }
}

/// An expectation waiting for its reply.
#[must_use = "an expectation is registered only by `respond`"]
pub struct PendingExpectation<'t> {
    tracker: &'t FakeTracker,
    expect: Expect,
    times: usize,
}

impl<'t> PendingExpectation<'t> {
    /// Expect the request `n` times (once by default); each is answered alike.
    pub fn times(mut self, n: usize) -> Self {
        self.times = n;
        self
    }

    /// Register the expectation, answered with `reply`.
    pub fn respond(self, reply: Reply) -> Expectation<'t> {
        let mut state = lock(&self.tracker.shared);
        state.expectations.push(Registered {
            expect: self.expect,
            reply,
            times: self.times,
            served: 0,
        });
        Expectation {
            tracker: self.tracker,
            index: state.expectations.len() - 1,
        }
    }
}

/// A registered expectation.
pub struct Expectation<'t> {
    tracker: &'t FakeTracker,
    index: usize,
}

impl Expectation<'_> {
    /// Expect the request `n` times in all.
    pub fn times(self, n: usize) -> Self {
        if let Some(r) = lock(&self.tracker.shared).expectations.get_mut(self.index) {
            r.times = n;
        }
        self
    }

    /// How many requests it answered so far.
    pub fn served(&self) -> usize {
        lock(&self.tracker.shared)
            .expectations
            .get(self.index)
            .map_or(0, |r| r.served)
    }

    /// Its number, in order of registration from 0 (as in
    /// [`RecordedRequest::expectation`]).
    pub fn index(&self) -> usize {
        self.index
    }
}

async fn accept(listener: TcpListener, shared: Shared) {
    // Owned here: when the tracker is dropped (this task aborted), every
    // connection is dropped with it.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve(stream, shared.clone()));
                }
                Err(err) => {
                    tracing::warn!(error = %err, "fake tracker: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve(stream: TcpStream, shared: Shared) {
    let service = service_fn(move |request| answer(shared.clone(), request));
    if let Err(err) = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(error = %err, "fake tracker: connection ended with an error");
    }
}

async fn answer(
    shared: Shared,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(err) => {
            tracing::warn!(error = %err, "fake tracker: reading a request body failed");
            Vec::new()
        }
    };
    let mut recorded = RecordedRequest {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or("").to_owned(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
        expectation: None,
    };
    let reply = {
        let mut state = lock(&shared);
        let found = state
            .expectations
            .iter_mut()
            .enumerate()
            .find(|(_, r)| r.served < r.times && r.expect.matches(&recorded));
        let reply = found.map(|(i, r)| {
            r.served += 1;
            (i, r.reply.clone())
        });
        recorded.expectation = reply.as_ref().map(|(i, _)| *i);
        state.requests.push(recorded.clone());
        reply
    };
    let Some((index, reply)) = reply else {
        tracing::warn!(request = %recorded, "fake tracker: unexpected request");
        return Ok(plain(
            UNEXPECTED_STATUS,
            unexpected_answer(&shared, &recorded),
        ));
    };
    tracing::debug!(expectation = index, method = %recorded.method, path = %recorded.path, status = reply.status, "fake tracker: answered");
    if let Some(delay) = reply.delay {
        tokio::time::sleep(delay).await;
    }
    let mut response = Response::builder().status(reply.status);
    for (k, v) in &reply.headers {
        response = response.header(k.as_str(), v.as_str());
    }
    Ok(match response.body(Full::new(Bytes::from(reply.body))) {
        Ok(response) => response,
        Err(err) => {
            let what = format!("expectation #{index}: {err}");
            lock(&shared).broken_replies.push(what.clone());
            plain(500, format!("trackbridge-plugin-test: {what}"))
        }
    })
}

/// The body of the answer to an unexpected request: what was received, and
/// what is still expected, so the plugin's error tells the story.
fn unexpected_answer(shared: &Mutex<State>, request: &RecordedRequest) -> String {
    let mut text = format!(
        "trackbridge-plugin-test: the fake tracker expected no {} {}",
        request.method, request.path
    );
    if !request.query.is_empty() {
        let _ = write!(text, "?{}", request.query);
    }
    let state = lock(shared);
    let waiting: Vec<String> = state
        .expectations
        .iter()
        .enumerate()
        .filter(|(_, r)| r.served < r.times)
        .map(|(i, r)| format!("#{i} {}", r.expect))
        .collect();
    if waiting.is_empty() {
        text.push_str("; nothing more is expected");
    } else {
        let _ = write!(text, "; still expected: {}", waiting.join("; "));
    }
    text
}

fn plain(status: u16, text: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text)));
    if let Ok(status) = hyper::StatusCode::from_u16(status) {
        *response.status_mut() = status;
    }
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use std::panic::{AssertUnwindSafe, catch_unwind};

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// One request over a fresh connection; the status and body of the answer.
    async fn send(tracker: &FakeTracker, method: &str, target: &str, body: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(tracker.addr()).await.unwrap();
        let request = format!(
            "{method} {target} HTTP/1.1\r\nhost: {}\r\nx-test: yes\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            tracker.authority(),
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        let status = answer[9..12].parse().unwrap();
        let body = answer.split_once("\r\n\r\n").unwrap().1.to_owned();
        (status, body)
    }

    fn panic_message(f: impl FnOnce()) -> String {
        let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("it panics");
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn expected_requests_are_answered_in_order_of_registration() {
        let tracker = FakeTracker::start().await.unwrap();
        tracker
            .expect(Expect::get("/a"))
            .respond(Reply::status(201).body("first"))
            .times(2);
        tracker
            .expect(Expect::get("/a"))
            .respond(Reply::ok().body("then"));

        assert_eq!(send(&tracker, "GET", "/a", "").await, (201, "first".into()));
        assert_eq!(send(&tracker, "GET", "/a", "").await, (201, "first".into()));
        assert_eq!(send(&tracker, "GET", "/a", "").await, (200, "then".into()));
        let requests = tracker.requests();
        assert_eq!(
            requests.iter().map(|r| r.expectation).collect::<Vec<_>>(),
            [Some(0), Some(0), Some(1)]
        );
        assert_eq!(requests[0].header("X-Test"), Some("yes"));
        tracker.verify();
    }

    #[tokio::test]
    async fn an_unexpected_request_is_answered_599_recorded_and_reported() {
        let tracker = FakeTracker::start().await.unwrap();
        tracker
            .expect(Expect::post("/issues").body_contains("wanted"))
            .respond(Reply::status(204));

        let (status, body) = send(&tracker, "POST", "/issues?x=1", "{\"not\": \"it\"}").await;

        assert_eq!(status, UNEXPECTED_STATUS);
        assert!(body.contains("expected no POST /issues?x=1"), "{body}");
        assert!(
            body.contains("still expected: #0 POST /issues where body contains"),
            "{body}"
        );
        assert_eq!(tracker.unexpected().len(), 1);
        let report = panic_message(|| tracker.verify());
        for part in [
            "1 unexpected request(s)",
            "POST /issues?x=1",
            "x-test: yes",
            r#"body: {"not": "it"}"#,
            "1 expectation(s) not met",
            "#0 POST /issues where body contains \"wanted\": received 0 of 1 time(s)",
        ] {
            assert!(report.contains(part), "{part:?} missing from:\n{report}");
        }
        // Dropping it reports the same.
        let report = panic_message(move || drop(tracker));
        assert!(report.contains("1 unexpected request(s)"), "{report}");
    }

    #[tokio::test]
    async fn an_expectation_not_met_fails_on_drop() {
        let tracker = FakeTracker::start().await.unwrap();
        tracker
            .expect(Expect::delete("/hooks/1"))
            .respond(Reply::ok());

        let report = panic_message(move || drop(tracker));

        assert!(
            report.contains("#0 DELETE /hooks/1: received 0 of 1 time(s)"),
            "{report}"
        );
    }

    #[tokio::test]
    async fn a_met_script_passes() {
        let tracker = FakeTracker::start().await.unwrap();
        let expectation = tracker.expect(Expect::put("/x")).respond(Reply::ok());
        assert_eq!(send(&tracker, "PUT", "/x", "").await.0, 200);
        assert_eq!(expectation.served(), 1);
        assert!(tracker.problems().is_none());
    }
}
