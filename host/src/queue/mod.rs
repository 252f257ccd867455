//! The durable queue: verified webhooks come in through the [`Intake`], and
//! workers claim due jobs from the database, run them, and record the result
//! — done, retried on a schedule, or dead-lettered. The database is the
//! queue, so several host processes on one PostgreSQL share it, and a job
//! acknowledged to a tracker survives any crash of this process.

mod batch;
mod intake;
mod policy;
mod worker;

pub use intake::{Intake, IntakeError};
pub use policy::{Outcome, RetryPolicy};
pub use worker::{WorkerSettings, Workers, start};

use std::future::Future;

use sqlx::AnyConnection;

use crate::store::Job;

/// What runs claimed jobs, in two steps, so that a worker can write the
/// effects and results of a whole batch in one transaction. The domain
/// implements it.
pub trait Runner: Send + Sync + 'static {
    /// A job worked out but not yet written: its plugin calls are made and
    /// what it changes is decided.
    type Prepared: Send + 'static;
    /// What a committed job leaves to do in this process (wake workers, caches).
    type Committed: Send + 'static;

    /// Work out `job` without writing to the database (a job whose work is
    /// an outside call — a tracker update, a notification — makes it here).
    fn prepare(&self, job: Job) -> impl Future<Output = Self::Prepared> + Send;

    /// Write what `prepared` leads to in `tx`, the batch's transaction, and
    /// say how the job ended. `Err` undoes this job's writes alone (the rest
    /// of the batch stands) and records the outcome it carries.
    fn apply<'a>(
        &'a self,
        tx: &'a mut AnyConnection,
        prepared: Self::Prepared,
    ) -> impl Future<Output = Result<(Outcome, Self::Committed), Outcome>> + Send + 'a;

    /// The batch committed: act on what its jobs left to do.
    fn committed(&self, effects: Vec<Self::Committed>);

    /// Where a prepared job's writes fall (say, `integration/issue`): a batch
    /// writes its jobs in this order, so that two transactions (of two
    /// processes sharing PostgreSQL) lock the rows they share in the same
    /// order and never wait for each other in a circle.
    fn write_order(prepared: &Self::Prepared) -> String;
}
