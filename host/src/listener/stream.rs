//! A TCP stream hyper reads and writes through while the connection's
//! watchdog keeps a handle on it too: to see when bytes last moved, and to
//! answer `408` itself when hyper gives up on a request's headers.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// What the watchdog knows of a connection: when it last read or wrote, and
/// whether bytes arrived since the last response went out (a request begun).
#[derive(Debug, Default)]
pub struct Activity {
    /// Milliseconds since the connection's start, at the last read.
    last_read: AtomicU64,
    /// Milliseconds since the connection's start, at the last write.
    last_write: AtomicU64,
    /// Bytes read since the last write.
    unanswered: AtomicU64,
    /// Milliseconds since the connection's start, at the first of those bytes.
    first_byte: AtomicU64,
}

impl Activity {
    pub fn last_read_ms(&self) -> u64 {
        self.last_read.load(Ordering::Relaxed)
    }

    pub fn last_write_ms(&self) -> u64 {
        self.last_write.load(Ordering::Relaxed)
    }

    /// When the first byte not yet answered arrived.
    pub fn first_byte_ms(&self) -> u64 {
        self.first_byte.load(Ordering::Relaxed)
    }

    /// Whether part of a request has arrived and nothing was answered since.
    pub fn request_begun(&self) -> bool {
        self.unanswered.load(Ordering::Relaxed) > 0
    }
}

/// The stream and its activity, shared by hyper and the watchdog.
#[derive(Clone)]
pub struct SharedStream {
    stream: Arc<TcpStream>,
    activity: Arc<Activity>,
    started: tokio::time::Instant,
}

impl SharedStream {
    pub fn new(stream: TcpStream) -> SharedStream {
        SharedStream {
            stream: Arc::new(stream),
            activity: Arc::default(),
            started: tokio::time::Instant::now(),
        }
    }

    pub fn activity(&self) -> &Activity {
        &self.activity
    }

    /// When the connection started.
    pub fn started(&self) -> tokio::time::Instant {
        self.started
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Write `bytes` as far as the socket takes them now, without waiting:
    /// a last word before closing (a `408`, a `503`).
    pub async fn say(&self, bytes: &[u8]) {
        let write = async {
            let mut sent = 0;
            while sent < bytes.len() {
                self.stream.writable().await?;
                match self.stream.try_write(&bytes[sent..]) {
                    Ok(n) => sent += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                }
            }
            Ok::<_, io::Error>(())
        };
        // A client that reads nothing is not waited for.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), write).await;
    }
}

impl AsyncRead for SharedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.stream.poll_read_ready(cx))?;
            match self.stream.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    if n > 0 {
                        let now = self.now_ms();
                        self.activity.last_read.store(now, Ordering::Relaxed);
                        if self
                            .activity
                            .unanswered
                            .fetch_add(n as u64, Ordering::Relaxed)
                            == 0
                        {
                            self.activity.first_byte.store(now, Ordering::Relaxed);
                        }
                    }
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for SharedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.stream.poll_write_ready(cx))?;
            match self.stream.try_write(buf) {
                Ok(n) => {
                    self.activity
                        .last_write
                        .store(self.now_ms(), Ordering::Relaxed);
                    self.activity.unanswered.store(0, Ordering::Relaxed);
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// The socket closes when the last handle goes (right after hyper is done).
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
