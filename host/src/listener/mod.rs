//! The HTTP listener: accepts connections up to a cap (over it, `503` and
//! close), serves each with header, body and idle timeouts, and stops
//! gracefully — no new connections, requests in flight finish, idle
//! connections close — within a deadline, past which what is left is cut.

mod body;
mod connection;
mod stream;

pub use body::body_deadline;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::metrics::Metrics;

/// Timeouts and the connection cap.
#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    /// From a request's first byte to the end of its headers.
    pub header_timeout: Duration,
    /// From the end of a request's headers to the end of its body.
    pub body_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Connections open at once; more are answered 503 and closed.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> HttpLimits {
        HttpLimits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
        }
    }
}

/// File descriptors kept for everything but client connections: the
/// database, plugin modules, outbound calls, logs.
const RESERVED_FILES: u64 = 128;

/// The connection cap this process can honour: `wanted`, lowered to what
/// its open-file limit leaves after [`RESERVED_FILES`] (the soft limit is
/// raised to the hard one first).
pub fn effective_max_connections(wanted: usize) -> usize {
    #[cfg(unix)]
    {
        let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
        let room = limit.saturating_sub(RESERVED_FILES).max(1);
        if (wanted as u64) > room {
            tracing::warn!(
                wanted,
                open_file_limit = limit,
                using = room,
                "the open-file limit does not leave room for --max-connections; using fewer"
            );
            return room as usize;
        }
    }
    wanted
}

/// Serve `app` on `listener` until `stopping` turns true, then drain until
/// `deadline_of` (called at that moment) gives the time left.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    metrics: Arc<Metrics>,
    mut stopping: watch::Receiver<bool>,
    grace: Duration,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    // Refusing takes a socket and a second at most; bounded too.
    let refusals = Arc::new(Semaphore::new(64));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    match slots.clone().try_acquire_owned() {
                        Ok(slot) => {
                            let (app, metrics, stopping) = (app.clone(), metrics.clone(), stopping.clone());
                            connections.spawn(async move {
                                metrics.http_connections_open.inc();
                                connection::serve(stream, app, limits, metrics.clone(), stopping).await;
                                metrics.http_connections_open.dec();
                                drop(slot);
                            });
                        }
                        Err(_) => {
                            metrics.http_connections_refused.inc();
                            if let Ok(turn) = refusals.clone().try_acquire_owned() {
                                let max = limits.max_connections;
                                tokio::spawn(async move {
                                    connection::refuse(stream, max).await;
                                    drop(turn);
                                });
                            }
                        }
                    }
                }
                // Out of file descriptors, most likely: wait for some to close
                // rather than spin on a listener that keeps failing.
                Err(err) => {
                    tracing::warn!(error = %err, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            // Reap finished connections as they end, so the set stays small.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            changed = stopping.changed() => {
                if changed.is_err() || *stopping.borrow() {
                    break;
                }
            }
        }
    }
    drop(listener);
    // Every connection was told (`stopping`): idle ones close now, busy ones
    // after their response.
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            "connections still open at the end of the shutdown grace are closed"
        );
        connections.shutdown().await;
    }
}
