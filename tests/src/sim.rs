//! Machinery shared by every tracker simulator: a loopback HTTP server, a recorder of every
//! request it received (in arrival order), fault injection, and deadline-bounded waits.
//!
//! A simulator is an axum [`Router`] wrapped by [`SimServer::start`], which puts the recording and
//! fault-injection layer outermost: every request is recorded, even ones a fault or the
//! simulator's own auth check answered.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long the `wait_*` helpers wait by default before failing.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// How often the `wait_*` helpers look again.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// One request as the simulator received it, and how it was answered.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// Arrival order, from 0.
    pub seq: usize,
    pub method: String,
    pub path: String,
    /// The raw query string, without `?` (empty when none).
    pub query: String,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status answered; `None` while the request is still being handled.
    pub status: Option<u16>,
    /// True when an injected fault answered it.
    pub faulted: bool,
    /// When it arrived.
    pub received_at: std::time::Instant,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Decoded query parameters, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        crate::jwt::parse_query(&self.query)
    }

    /// The first decoded value of query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// The body parsed as JSON (`Value::Null` when it is empty or not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// True for `method path` (path compared exactly, without the query).
    pub fn is(&self, method: &str, path: &str) -> bool {
        self.method.eq_ignore_ascii_case(method) && self.path == path
    }

    /// True once the simulator answered the request.
    pub fn completed(&self) -> bool {
        self.status.is_some()
    }

    /// One line for failure messages.
    pub fn summary(&self) -> String {
        let query = if self.query.is_empty() {
            String::new()
        } else {
            format!("?{}", self.query)
        };
        let body = String::from_utf8_lossy(&self.body);
        let body: String = body.chars().take(200).collect();
        format!(
            "#{} {} {}{} -> {}{} {}",
            self.seq,
            self.method,
            self.path,
            query,
            self.status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "pending".into()),
            if self.faulted { " (fault)" } else { "" },
            body
        )
    }
}

/// An injected fault: the next `remaining` matching requests get this answer instead of the
/// simulator's.
#[derive(Clone, Debug)]
pub struct Fault {
    pub remaining: usize,
    pub status: u16,
    /// `Retry-After` in seconds, when set.
    pub retry_after_secs: Option<u32>,
    /// JSON body of the answer.
    pub body: Value,
    /// Only requests with this method (case-insensitive), when set.
    pub method: Option<String>,
    /// Only requests whose path starts with this, when set.
    pub path_prefix: Option<String>,
    /// Hold the request this long before answering (a tracker that hangs).
    pub delay: Option<Duration>,
}

impl Fault {
    /// The next `n` requests are answered with `status` and a Jira-style error body.
    pub fn status(n: usize, status: u16) -> Fault {
        Fault {
            remaining: n,
            status,
            retry_after_secs: None,
            body: serde_json::json!({"errorMessages": [format!("injected fault: HTTP {status}")], "errors": {}}),
            method: None,
            path_prefix: None,
            delay: None,
        }
    }

    /// The next `n` requests are held for `delay`, then answered `504`.
    pub fn hang(n: usize, delay: Duration) -> Fault {
        Fault {
            delay: Some(delay),
            ..Fault::status(n, 504)
        }
    }

    /// The next `n` requests are answered `429 Too Many Requests` with `Retry-After: secs`.
    pub fn rate_limit(n: usize, secs: u32) -> Fault {
        Fault {
            retry_after_secs: Some(secs),
            body: serde_json::json!({"errorMessages": ["Rate limit exceeded."], "errors": {}}),
            ..Fault::status(n, 429)
        }
    }

    /// Restrict the fault to `method` requests whose path starts with `path_prefix`.
    pub fn only(mut self, method: &str, path_prefix: &str) -> Fault {
        self.method = Some(method.to_string());
        self.path_prefix = Some(path_prefix.to_string());
        self
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.remaining > 0
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|p| path.starts_with(p))
    }
}

#[derive(Default)]
struct RecorderInner {
    requests: Mutex<Vec<RecordedRequest>>,
    faults: Mutex<Vec<Fault>>,
    /// Added before every answer that is not a fault.
    latency: Mutex<Duration>,
}

/// The request log and fault queue of one simulator. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct Recorder {
    inner: Arc<RecorderInner>,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder::default()
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.inner.requests.lock().unwrap().clone()
    }

    /// Completed requests matching `pred`, in arrival order.
    pub fn matching(&self, pred: impl Fn(&RecordedRequest) -> bool) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.completed() && pred(r))
            .collect()
    }

    /// Completed `method path` requests, in arrival order.
    pub fn calls(&self, method: &str, path: &str) -> Vec<RecordedRequest> {
        self.matching(|r| r.is(method, path))
    }

    /// Forget every recorded request.
    pub fn clear(&self) {
        self.inner.requests.lock().unwrap().clear();
    }

    /// Forget every fault not used up yet: the tracker recovered.
    pub fn clear_faults(&self) {
        self.inner.faults.lock().unwrap().clear();
    }

    /// Answer every request (faults aside) only after `latency`.
    pub fn set_latency(&self, latency: Duration) {
        *self.inner.latency.lock().unwrap() = latency;
    }

    /// Queue a fault; faults are consumed in the order they were added.
    pub fn inject(&self, fault: Fault) {
        self.inner.faults.lock().unwrap().push(fault);
    }

    /// Answer the next `n` requests with `status`.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.inject(Fault::status(n, status));
    }

    /// Answer the next `n` requests with `429` and `Retry-After: secs`.
    pub fn rate_limit_next(&self, n: usize, secs: u32) {
        self.inject(Fault::rate_limit(n, secs));
    }

    /// Faults not yet used up.
    pub fn pending_faults(&self) -> usize {
        self.inner
            .faults
            .lock()
            .unwrap()
            .iter()
            .map(|f| f.remaining)
            .sum()
    }

    /// One line per request, for failure messages.
    pub fn describe(&self) -> String {
        let requests = self.requests();
        if requests.is_empty() {
            return "  (no requests)".to_string();
        }
        requests
            .iter()
            .map(|r| format!("  {}", r.summary()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Wait (up to `timeout`) until a completed request matches `pred`; returns the first one.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&RecordedRequest) -> bool,
    ) -> anyhow::Result<RecordedRequest> {
        self.wait_for_count(what, 1, timeout, pred)
            .await
            .map(|mut v| v.remove(0))
    }

    /// Wait (up to `timeout`) until at least `n` completed requests match `pred`; returns them.
    pub async fn wait_for_count(
        &self,
        what: &str,
        n: usize,
        timeout: Duration,
        pred: impl Fn(&RecordedRequest) -> bool,
    ) -> anyhow::Result<Vec<RecordedRequest>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let found = self.matching(&pred);
            if found.len() >= n {
                return Ok(found);
            }
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!(
                    "timed out after {timeout:?} waiting for {what} ({} of {n} seen); requests received:\n{}",
                    found.len(),
                    self.describe()
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Wait until a completed `method path` request arrives.
    pub async fn wait_for_call(&self, method: &str, path: &str) -> anyhow::Result<RecordedRequest> {
        self.wait_for(&format!("{method} {path}"), DEFAULT_WAIT, |r| {
            r.is(method, path)
        })
        .await
    }

    fn take_fault(&self, method: &str, path: &str) -> Option<Fault> {
        let mut faults = self.inner.faults.lock().unwrap();
        let fault = faults.iter_mut().find(|f| f.matches(method, path))?;
        fault.remaining -= 1;
        let taken = fault.clone();
        faults.retain(|f| f.remaining > 0);
        Some(taken)
    }

    fn push(&self, mut request: RecordedRequest) -> usize {
        let mut requests = self.inner.requests.lock().unwrap();
        request.seq = requests.len();
        let seq = request.seq;
        requests.push(request);
        seq
    }

    fn complete(&self, seq: usize, status: u16, faulted: bool) {
        let mut requests = self.inner.requests.lock().unwrap();
        if let Some(r) = requests.iter_mut().find(|r| r.seq == seq) {
            r.status = Some(status);
            r.faulted = faulted;
        }
    }
}

/// Largest request body a simulator accepts.
const MAX_BODY: usize = 16 * 1024 * 1024;

async fn record_and_inject(
    State(recorder): State<Recorder>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    let method = parts.method.to_string();
    let path = parts.uri.path().to_string();
    let seq = recorder.push(RecordedRequest {
        seq: 0,
        method: method.clone(),
        path: path.clone(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
        status: None,
        faulted: false,
        received_at: std::time::Instant::now(),
    });

    if let Some(fault) = recorder.take_fault(&method, &path) {
        if let Some(delay) = fault.delay {
            tokio::time::sleep(delay).await;
        }
        let status =
            StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(fault.body)).into_response();
        if let Some(secs) = fault.retry_after_secs {
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from(secs));
        }
        recorder.complete(seq, fault.status, true);
        return response;
    }

    let latency = *recorder.inner.latency.lock().unwrap();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    recorder.complete(seq, response.status().as_u16(), false);
    response
}

/// A simulator listening on `127.0.0.1:<ephemeral port>`; stops when dropped.
pub struct SimServer {
    addr: SocketAddr,
    recorder: Recorder,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl SimServer {
    /// Serve `router` on a free loopback port, recording every request into `recorder`.
    pub async fn start(router: Router, recorder: Recorder) -> anyhow::Result<SimServer> {
        SimServer::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), router, recorder).await
    }

    /// Serve `router` on `addr` (the walk-through's fixed ports), recording every request.
    pub async fn start_on(
        addr: SocketAddr,
        router: Router,
        recorder: Recorder,
    ) -> anyhow::Result<SimServer> {
        let app = router.layer(middleware::from_fn_with_state(
            recorder.clone(),
            record_and_inject,
        ));
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(SimServer {
            addr,
            recorder,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1:PORT`.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }

    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
