//! Group commit of verified webhooks. Each delivery must be committed before
//! its 2xx, and a commit costs an fsync; one task stores whatever deliveries
//! are waiting in one transaction, so concurrent requests share a commit.
//! Nothing waits for a batch to fill: a lone delivery is committed at once,
//! and under load the batch is what arrived during the previous commit.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::monitor::Monitor;
use crate::store::{Enqueued, NewJob, Store, StoreError};
use crate::time::now_ms;

/// The most deliveries in one transaction.
const MAX_BATCH: usize = 64;
/// Deliveries waiting for the intake before senders wait too.
const QUEUE: usize = 1024;

/// Why a delivery was not stored.
#[derive(Clone, Debug, thiserror::Error)]
pub enum IntakeError {
    #[error(transparent)]
    Store(Arc<StoreError>),
    #[error("the webhook intake has stopped")]
    Stopped,
}

/// Where verified webhooks go to be stored.
#[derive(Clone)]
pub struct Intake {
    send: mpsc::Sender<Delivery>,
}

struct Delivery {
    job: NewJob,
    stored: oneshot::Sender<Result<Enqueued, IntakeError>>,
}

impl Intake {
    /// Start the task that commits; it ends when every `Intake` is dropped.
    /// Whether its batches commit is told to `monitor` (readiness).
    pub fn start(store: Store, monitor: Arc<Monitor>) -> Intake {
        let (send, receive) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, monitor, receive));
        Intake { send }
    }

    /// Store `job`; returns once it is committed (or could not be).
    pub async fn store(&self, job: NewJob) -> Result<Enqueued, IntakeError> {
        let (stored, answer) = oneshot::channel();
        self.send
            .send(Delivery { job, stored })
            .await
            .map_err(|_| IntakeError::Stopped)?;
        answer.await.map_err(|_| IntakeError::Stopped)?
    }
}

async fn run(store: Store, monitor: Arc<Monitor>, mut receive: mpsc::Receiver<Delivery>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while receive.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (jobs, answers): (Vec<NewJob>, Vec<_>) =
            batch.drain(..).map(|d| (d.job, d.stored)).unzip();
        tracing::trace!(deliveries = jobs.len(), "committing webhooks");
        match store.enqueue_webhooks(&jobs, now_ms()).await {
            Ok(stored) => {
                monitor.intake_committed();
                for (answer, stored) in answers.into_iter().zip(stored) {
                    let _ = answer.send(Ok(stored));
                }
            }
            // One delivery the database refuses (its integration deleted
            // meanwhile, say) must not fail the others: each on its own.
            Err(err) if jobs.len() > 1 && refuses_a_row(&err) => {
                for (answer, job) in answers.into_iter().zip(&jobs) {
                    let stored = store
                        .enqueue_webhook(job, now_ms())
                        .await
                        .map_err(|e| IntakeError::Store(Arc::new(e)));
                    let _ = answer.send(stored);
                }
            }
            // The database is away or failing: nobody is acknowledged.
            Err(err) => {
                monitor.intake_failed(&err.to_string());
                let err = IntakeError::Store(Arc::new(err));
                for answer in answers {
                    let _ = answer.send(Err(err.clone()));
                }
            }
        }
    }
}

/// A constraint the database holds against one row, as opposed to the
/// database failing (unreachable, locked, full), which every row would meet.
fn refuses_a_row(err: &StoreError) -> bool {
    matches!(err, StoreError::Sql(sqlx::Error::Database(db))
        if !matches!(db.kind(), sqlx::error::ErrorKind::Other))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(integration: Option<i64>) -> NewJob {
        NewJob {
            kind: "webhook",
            integration_id: integration,
            payload: "{}".into(),
            ..NewJob::default()
        }
    }

    #[tokio::test]
    async fn a_delivery_the_database_refuses_fails_alone_in_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = Store::connect(&url).await.unwrap();
        let intake = Intake::start(store, Arc::default());
        // On this single-threaded runtime all three are queued before the
        // intake task runs, so one transaction takes them together; the middle
        // one names an integration that does not exist (a foreign key).
        let (first, refused, last) = tokio::join!(
            intake.store(delivery(None)),
            intake.store(delivery(Some(424_242))),
            intake.store(delivery(None)),
        );
        assert!(matches!(first, Ok(Enqueued::Stored(_))), "{first:?}");
        assert!(matches!(refused, Err(IntakeError::Store(_))), "{refused:?}");
        assert!(matches!(last, Ok(Enqueued::Stored(_))), "{last:?}");
    }
}
