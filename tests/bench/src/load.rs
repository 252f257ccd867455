//! The load generator: hyper HTTP/1.1 client connections on loopback, each
//! sending its requests one after the other (keep-alive), bounded in count and
//! in time. It runs on a thread and runtime of its own so that it never takes a
//! turn on the runtime of the server it measures.
//!
//! - [`closed_loop`]: `connections` connections, each sending as soon as the
//!   previous answer arrived — the most a server acknowledges at that concurrency.
//! - [`open_model`]: requests scheduled at a fixed arrival rate whatever the
//!   server does; latency counts from the scheduled time, so a server that falls
//!   behind is charged for the wait (no coordinated omission).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Builds request number `n` of a run (so every request can carry its own
/// delivery id).
pub type MakeRequest =
    Arc<dyn Fn(u64) -> anyhow::Result<hyper::Request<Full<Bytes>>> + Send + Sync>;

/// A histogram of microseconds, from 1 µs to 10 minutes.
pub fn micros_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("constant histogram bounds are valid")
}

pub fn record(hist: &mut Histogram<u64>, took: Duration) {
    let micros = (took.as_micros() as u64).clamp(1, hist.high());
    let _ = hist.record(micros);
}

/// What a run did.
#[derive(Debug)]
pub struct LoadResult {
    /// Answered 2xx.
    pub ok: u64,
    /// Answered otherwise, by status.
    pub statuses: BTreeMap<u16, u64>,
    /// Connection or protocol errors.
    pub errors: u64,
    pub first_error: Option<String>,
    /// Scheduled requests never sent because the time bound ran out.
    pub unsent: u64,
    pub elapsed: Duration,
    /// Latency of every answered request, µs.
    pub latency: Histogram<u64>,
}

impl LoadResult {
    fn empty() -> LoadResult {
        LoadResult {
            ok: 0,
            statuses: BTreeMap::new(),
            errors: 0,
            first_error: None,
            unsent: 0,
            elapsed: Duration::ZERO,
            latency: micros_histogram(),
        }
    }

    fn merge(&mut self, other: LoadResult) {
        self.ok += other.ok;
        for (s, n) in other.statuses {
            *self.statuses.entry(s).or_default() += n;
        }
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.unsent += other.unsent;
        let _ = self.latency.add(&other.latency);
    }

    /// Requests that did not get a 2xx.
    pub fn failed(&self) -> u64 {
        self.statuses.values().sum::<u64>() + self.errors
    }

    /// 2xx answers per second of the run.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn p(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64
    }

    /// One line for the log.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} ok in {:.2} s ({:.0}/s), p50 {} µs, p99 {} µs, max {} µs",
            self.ok,
            self.elapsed.as_secs_f64(),
            self.rate(),
            self.p(0.5),
            self.p(0.99),
            self.latency.max()
        );
        if self.failed() > 0 {
            let _ = std::fmt::Write::write_fmt(
                &mut s,
                format_args!(
                    "; FAILED {} (statuses {:?}, connection errors {}; first: {})",
                    self.failed(),
                    self.statuses,
                    self.errors,
                    self.first_error.as_deref().unwrap_or("")
                ),
            );
        }
        if self.unsent > 0 {
            let _ = std::fmt::Write::write_fmt(
                &mut s,
                format_args!("; {} requests not sent before the time bound", self.unsent),
            );
        }
        s
    }
}

/// Run `make()` to completion on a new thread with a current-thread runtime.
pub async fn on_own_thread<F, Fut, T>(name: &str, make: F) -> anyhow::Result<T>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<T>>,
    T: Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("load generator runtime")
                .and_then(|rt| rt.block_on(make()));
            let _ = tx.send(result);
        })
        .context("spawning the load generator thread")?;
    rx.await.context("the load generator thread died")?
}

async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// Send one request on `sender` (reconnecting first when the connection was
/// closed) and read the whole answer; returns its status.
async fn send(
    addr: SocketAddr,
    sender: &mut Option<SendRequest<Full<Bytes>>>,
    request: anyhow::Result<hyper::Request<Full<Bytes>>>,
) -> anyhow::Result<u16> {
    let request = request?;
    if sender.as_ref().is_none_or(|s| s.is_closed()) {
        *sender = Some(connect(addr).await?);
    }
    let Some(s) = sender.as_mut() else {
        anyhow::bail!("no connection to {addr}");
    };
    let answer = async {
        s.ready().await?;
        let response = s.send_request(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok::<_, hyper::Error>((status, body))
    }
    .await;
    match answer {
        Ok((status, body)) => {
            if !(200..300).contains(&status) {
                let text: String = String::from_utf8_lossy(&body).chars().take(300).collect();
                anyhow::bail!(Refused(status, text));
            }
            Ok(status)
        }
        Err(e) => {
            *sender = None;
            Err(e.into())
        }
    }
}

/// A non-2xx answer, with the start of its body.
#[derive(Debug)]
struct Refused(u16, String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}: {}", self.0, self.1)
    }
}

impl std::error::Error for Refused {}

fn tally(result: &mut LoadResult, outcome: anyhow::Result<u16>, took: Duration) {
    match outcome {
        Ok(_) => {
            result.ok += 1;
            record(&mut result.latency, took);
        }
        Err(e) if e.downcast_ref::<Refused>().is_some() => {
            if let Some(Refused(status, _)) = e.downcast_ref::<Refused>() {
                *result.statuses.entry(*status).or_default() += 1;
            }
            if result.first_error.is_none() {
                result.first_error = Some(e.to_string());
            }
            record(&mut result.latency, took);
        }
        Err(e) => {
            result.errors += 1;
            if result.first_error.is_none() {
                result.first_error = Some(format!("{e:#}"));
            }
        }
    }
}

/// Whether request `n` may be sent now (else the lane waits a millisecond and
/// asks again).
pub type Gate = Arc<dyn Fn(u64) -> bool + Send + Sync>;

/// `connections` connections sending back to back until `count` requests were
/// sent or `duration` passed, whichever comes first.
pub async fn closed_loop(
    addr: SocketAddr,
    connections: usize,
    count: u64,
    duration: Duration,
    make: MakeRequest,
) -> anyhow::Result<LoadResult> {
    gated_loop(addr, connections, count, duration, make, Arc::new(|_| true)).await
}

/// [`closed_loop`], each request held back until `gate` lets it go.
pub async fn gated_loop(
    addr: SocketAddr,
    connections: usize,
    count: u64,
    duration: Duration,
    make: MakeRequest,
    gate: Gate,
) -> anyhow::Result<LoadResult> {
    on_own_thread("load-closed", move || async move {
        let next = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let deadline = started + duration;
        let mut lanes = Vec::with_capacity(connections);
        for _ in 0..connections {
            let (next, make, gate) = (next.clone(), make.clone(), gate.clone());
            lanes.push(tokio::spawn(async move {
                let mut result = LoadResult::empty();
                let mut sender = None;
                while Instant::now() < deadline {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= count {
                        break;
                    }
                    while !gate(n) && Instant::now() < deadline {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    if Instant::now() >= deadline {
                        result.unsent += 1;
                        break;
                    }
                    let sent = Instant::now();
                    let outcome = send(addr, &mut sender, make(n)).await;
                    tally(&mut result, outcome, sent.elapsed());
                }
                result
            }));
        }
        let mut total = LoadResult::empty();
        for lane in lanes {
            total.merge(lane.await.context("a load lane panicked")?);
        }
        total.elapsed = started.elapsed();
        Ok(total)
    })
    .await
}

/// `rate` requests per second for `duration`, spread over `connections`
/// connections (request `n` on connection `n % connections`). Latency counts
/// from each request's scheduled time. Requests still unsent `grace` after
/// the end are given up and counted as unsent.
pub async fn open_model(
    addr: SocketAddr,
    connections: usize,
    rate: f64,
    duration: Duration,
    make: MakeRequest,
) -> anyhow::Result<LoadResult> {
    let total = (rate * duration.as_secs_f64()).round().max(1.0) as u64;
    let grace = Duration::from_secs(10);
    on_own_thread("load-open", move || async move {
        let lanes_n = connections.max(1) as u64;
        let interval = Duration::from_secs_f64(1.0 / rate.max(1e-6));
        let start = tokio::time::Instant::now() + Duration::from_millis(20);
        let give_up = start + duration + grace;
        let mut lanes = Vec::with_capacity(connections);
        for lane in 0..lanes_n {
            let make = make.clone();
            lanes.push(tokio::spawn(async move {
                let mut result = LoadResult::empty();
                let mut sender = Some(connect(addr).await?);
                let mut n = lane;
                while n < total {
                    let scheduled = start + interval.mul_f64(n as f64);
                    if tokio::time::Instant::now() >= give_up {
                        result.unsent += (total - n).div_ceil(lanes_n);
                        break;
                    }
                    tokio::time::sleep_until(scheduled).await;
                    let outcome = send(addr, &mut sender, make(n)).await;
                    tally(&mut result, outcome, scheduled.elapsed());
                    n += lanes_n;
                }
                Ok::<_, anyhow::Error>(result)
            }));
        }
        let mut all = LoadResult::empty();
        for lane in lanes {
            all.merge(lane.await.context("a load lane panicked")??);
        }
        all.elapsed = start.elapsed();
        Ok(all)
    })
    .await
}

/// A POST with these headers and body, with `Host` set (hyper's connection-level
/// client sends only what it is given).
pub fn post(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, String)],
    body: Bytes,
) -> anyhow::Result<hyper::Request<Full<Bytes>>> {
    let mut builder = hyper::Request::post(path).header(hyper::header::HOST, addr.to_string());
    for (name, value) in headers {
        builder = builder.header(*name, value);
    }
    Ok(builder.body(Full::new(body))?)
}
