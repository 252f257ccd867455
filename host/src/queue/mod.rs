//! The durable queue: verified webhooks come in through the [`Intake`], and
//! workers claim due jobs from the database, run them, and record the result
//! — done, retried on a schedule, or dead-lettered. The database is the
//! queue, so several host processes on one PostgreSQL share it, and a job
//! acknowledged to a tracker survives any crash of this process.

mod intake;
mod policy;
mod worker;

pub use intake::{Intake, IntakeError};
pub use policy::{Outcome, RetryPolicy};
pub use worker::{WorkerSettings, Workers, start};

use std::future::Future;

use crate::store::Job;

/// What runs a claimed job. The domain implements it.
pub trait Runner: Send + Sync + 'static {
    fn run(&self, job: Job) -> impl Future<Output = Outcome> + Send;
}
