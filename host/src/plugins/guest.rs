//! Where guest code runs. wasmtime runs a guest on the thread that polls its
//! call, and a guest that computes never returns to the executor by itself:
//! on the runtime that serves HTTP it would hold a worker thread for its
//! whole budget, and two of them would stop the host.
//!
//! So every call yields back to the executor at each epoch tick (10 ms of
//! guest computing), and a call still running at its first tick moves to a
//! runtime of its own, whose threads run nothing but such calls. A call that
//! finishes inside its first tick (nearly all of them: tens of microseconds)
//! never leaves the caller's task and pays for no hand-over; a call that
//! loops, allocates without end or waits on a slow tracker costs the serving
//! runtime at most one tick, once, whatever it does afterwards.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use tokio::task::JoinHandle;

/// The runtime long calls move to.
pub struct GuestRuntime {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
}

impl GuestRuntime {
    /// A runtime of `threads` threads named `plugin-guest`.
    pub fn new(threads: usize) -> std::io::Result<GuestRuntime> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("plugin-guest")
            .enable_all()
            .build()?;
        Ok(GuestRuntime {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        })
    }

    /// Run `call`: here, until `moved` says it has used its first tick; then
    /// on the guest runtime. Dropping the returned future drops the call
    /// wherever it runs (the guest is stopped at its next yield).
    pub async fn run<T: Send + 'static>(
        &self,
        moved: Arc<AtomicBool>,
        call: impl Future<Output = T> + Send + 'static,
    ) -> T {
        let mut call = Box::pin(call);
        let inline = std::future::poll_fn(|cx| match call.as_mut().poll(cx) {
            Poll::Ready(value) => Poll::Ready(Some(value)),
            Poll::Pending if moved.load(Ordering::Acquire) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        })
        .await;
        if let Some(value) = inline {
            return value;
        }
        let mut task = AbortOnDrop(self.handle.spawn(call));
        match (&mut task.0).await {
            Ok(value) => value,
            // A panic of the host code around the guest (a trap is an error,
            // not a panic): the same as had it happened here.
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(err) => panic!("a plugin call was cancelled on the guest runtime: {err}"),
        }
    }
}

impl Drop for GuestRuntime {
    fn drop(&mut self) {
        // Dropping a runtime blocks until its threads end, which an async
        // context may not do; calls still there are dropped at their next yield.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A task that is aborted when whoever waits for it gives up.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
