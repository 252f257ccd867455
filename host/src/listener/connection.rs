//! One HTTP/1.1 connection, served by hyper under a watchdog: a request's
//! headers must arrive within the header timeout of its first byte (else
//! `408` and close), and a kept-alive connection may sit idle for the idle
//! timeout (then it is closed). The body timeout is the router's
//! ([`super::body`]); what a request does once its headers are in is bounded
//! by the waits it makes (the database's, a plugin call's).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tower::ServiceExt as _;

use super::HttpLimits;
use super::stream::SharedStream;
use crate::metrics::Metrics;

/// Why the watchdog closed a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expired {
    /// Part of a request arrived, its headers did not complete in time.
    Headers,
    /// Nothing arrived since the last response for the idle timeout.
    Idle,
}

/// Serve `stream` until the client closes it, a timeout closes it, or
/// `stopping` turns true (then the request in flight finishes first).
pub async fn serve(
    stream: TcpStream,
    app: Router,
    limits: HttpLimits,
    metrics: Arc<Metrics>,
    mut stopping: watch::Receiver<bool>,
) {
    let shared = SharedStream::new(stream);
    // Requests whose headers are in and whose response is not yet made.
    let busy = Arc::new(AtomicUsize::new(0));
    let counted = busy.clone();
    let app = app.map_request(move |request: http::Request<hyper::body::Incoming>| {
        counted.fetch_add(1, Ordering::AcqRel);
        request
    });
    let done = busy.clone();
    let app = app.map_response(move |response| {
        done.fetch_sub(1, Ordering::AcqRel);
        response
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .keep_alive(true)
        // The watchdog times headers (hyper's own timer would close silently).
        .header_read_timeout(None)
        .max_buf_size(64 << 10)
        .max_headers(100);
    let connection =
        builder.serve_connection(TokioIo::new(shared.clone()), TowerToHyperService::new(app));
    tokio::pin!(connection);
    let watchdog = watch_connection(&shared, &busy, limits);
    tokio::pin!(watchdog);
    let mut stop_asked = *stopping.borrow();
    if stop_asked {
        connection.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            ended = connection.as_mut() => {
                if let Err(err) = ended {
                    tracing::debug!(error = %err, "HTTP connection ended with an error");
                }
                return;
            }
            expired = &mut watchdog => {
                if expired == Expired::Headers {
                    metrics.http_timeouts.get_or_create(&crate::metrics::PhaseLabels { phase: "headers".into() }).inc();
                    shared.say(&timeout_response(limits.header_timeout)).await;
                }
                return; // dropping hyper's side and ours closes the socket
            }
            changed = stopping.changed(), if !stop_asked => {
                stop_asked = true;
                if changed.is_err() || *stopping.borrow() {
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Resolves when the connection has outstayed its welcome.
async fn watch_connection(
    shared: &SharedStream,
    busy: &AtomicUsize,
    limits: HttpLimits,
) -> Expired {
    let started = shared.started();
    let at = |ms: u64| started + Duration::from_millis(ms);
    loop {
        let activity = shared.activity();
        if busy.load(Ordering::Acquire) > 0 {
            // A request is being handled: its own limits apply.
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        let (deadline, why) = if activity.request_begun() {
            (
                at(activity.first_byte_ms()) + limits.header_timeout,
                Expired::Headers,
            )
        } else {
            let since = activity.last_write_ms().max(activity.last_read_ms());
            (at(since) + limits.idle_timeout, Expired::Idle)
        };
        if tokio::time::Instant::now() >= deadline {
            return why;
        }
        tokio::time::sleep_until(deadline).await;
    }
}

/// `408` with a JSON body and `Connection: close`.
fn timeout_response(limit: Duration) -> Vec<u8> {
    let body = serde_json::json!({
        "error": format!("the request's headers did not arrive within {} ms", limit.as_millis())
    })
    .to_string();
    format!(
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Answer a connection over the cap with `503` and close it, without
/// reading its request beyond what it has sent within a second.
pub async fn refuse(mut stream: TcpStream, max: usize) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let body = serde_json::json!({
        "error": format!("the server has {max} connections open, its limit; retry shortly")
    })
    .to_string();
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let answer = async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await?;
        // Closing with the request unread would reset the connection and
        // could destroy the answer before the client reads it.
        let mut sink = [0u8; 4096];
        let mut read = 0;
        while read < 64 << 10 {
            match stream.read(&mut sink).await? {
                0 => break,
                n => read += n,
            }
        }
        Ok::<_, std::io::Error>(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), answer).await;
}
