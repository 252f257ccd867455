//! Write transactions, and the turn this process's SQLite writers take.
//!
//! SQLite has one write lock per database, and a connection that finds it
//! taken polls for it in sleeps that grow to 100 ms (its busy handler), so
//! under concurrent writers a waiting commit is late by up to a tenth of a
//! second each time it looks. Writers of this process therefore queue for
//! the lock on an async mutex first, in arrival order, and reach SQLite one
//! at a time; the busy handler is left for other processes (the CLI's
//! `migrate`, say). PostgreSQL locks rows, so writers there run side by side.
//!
//! Every wait here is bounded by the store's timeout and ends in
//! [`StoreError::Busy`], never a hang: the turn, the connection, `BEGIN` and
//! `COMMIT`. A transaction is begun and ended with plain statements on a
//! pooled connection rather than sqlx's transaction manager, so that one
//! that did not end cleanly — its commit failed (a full disk), or the future
//! driving it was dropped (a client gone, a timeout) — never goes back to
//! the pool in an unknown state: its connection is closed (which rolls back)
//! before the turn passes on.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool};
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::{Backend, Result, Store, StoreError};
use crate::time::now_ms;

/// Where this process's SQLite writers wait their turn, and since when the
/// current one holds it (0: nobody), for readiness.
#[derive(Clone, Default)]
pub(super) struct WriteGate {
    lock: Arc<Mutex<()>>,
    held_since: Arc<AtomicI64>,
}

impl WriteGate {
    /// Since when (ms) the current writer has held the turn.
    pub(super) fn held_since(&self) -> Option<i64> {
        Some(self.held_since.load(Ordering::Relaxed)).filter(|t| *t > 0)
    }
}

/// One writer's turn; the next writer's when dropped.
pub(super) struct Turn {
    _guard: OwnedMutexGuard<()>,
    held_since: Arc<AtomicI64>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.held_since.store(0, Ordering::Relaxed);
    }
}

/// A write transaction; rolled back when dropped uncommitted.
pub struct WriteTx {
    conn: Option<PoolConnection<Any>>,
    /// A transaction may be open on the connection, or its state is unknown
    /// (a statement was interrupted): it must not return to the pool.
    dirty: bool,
    /// Held until the transaction has ended (SQLite only).
    turn: Option<Turn>,
    timeout: Duration,
}

impl WriteTx {
    /// Commit. When this fails the transaction is rolled back.
    pub async fn commit(mut self) -> Result<()> {
        let timeout = self.timeout;
        let conn: &mut AnyConnection = &mut self;
        bounded(timeout, "COMMIT", sqlx::query("COMMIT").execute(conn)).await?;
        self.dirty = false;
        Ok(())
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        if !self.dirty {
            return; // back to the pool, clean
        }
        // Closing the connection rolls back whatever it had open. Until it is
        // closed the database may still be locked by it, so the turn passes
        // on only then.
        let turn = self.turn.take();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let timeout = self.timeout;
                runtime.spawn(async move {
                    if tokio::time::timeout(timeout, conn.close()).await.is_err() {
                        tracing::warn!(
                            "closing a connection whose transaction did not end took too long"
                        );
                    }
                    drop(turn);
                });
            }
            Err(_) => conn.close_on_drop(),
        }
    }
}

impl Deref for WriteTx {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        self.conn
            .as_deref()
            .expect("a WriteTx holds its connection until dropped")
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        self.conn
            .as_deref_mut()
            .expect("a WriteTx holds its connection until dropped")
    }
}

/// `future`, or [`StoreError::Busy`] naming `what` when it takes longer than `limit`.
pub(super) async fn bounded<T, E: Into<StoreError>>(
    limit: Duration,
    what: &'static str,
    future: impl Future<Output = std::result::Result<T, E>>,
) -> Result<T> {
    match tokio::time::timeout(limit, future).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => Err(StoreError::Busy(format!(
            "{what} did not finish within {} ms",
            limit.as_millis()
        ))),
    }
}

impl Store {
    /// A transaction that will write. On SQLite it waits for this process's
    /// other writers, then takes the write lock up front (`BEGIN IMMEDIATE`):
    /// a deferred transaction that reads and then writes can fail with
    /// SQLITE_BUSY instead of waiting.
    pub async fn begin_write(&self) -> Result<WriteTx> {
        let turn = self.write_turn().await?;
        let conn = self.pool.acquire().await?;
        let mut tx = WriteTx {
            conn: Some(conn),
            dirty: true,
            turn,
            timeout: self.timeout,
        };
        let begin = match self.backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        };
        bounded(self.timeout, "BEGIN", sqlx::query(begin).execute(&mut *tx)).await?;
        Ok(tx)
    }

    /// A write transaction whose commit need not reach the disk before it
    /// returns: for what workers derive from jobs already stored durably (a
    /// delivery's effects and the jobs' results, written together). If a
    /// power cut takes such a commit back, its jobs are still stored as
    /// running and run again — at least once, which every effect allows —
    /// while the fsync it skips is most of what one costs. On SQLite the
    /// connection's `synchronous=NORMAL` (the lease pool), on PostgreSQL
    /// `synchronous_commit = off` for this transaction.
    pub async fn begin_derived_write(&self) -> Result<WriteTx> {
        let turn = self.write_turn().await?;
        let pool = match self.backend {
            Backend::Sqlite => &self.leases,
            Backend::Postgres => &self.pool,
        };
        let conn = pool.acquire().await?;
        let mut tx = WriteTx {
            conn: Some(conn),
            dirty: true,
            turn,
            timeout: self.timeout,
        };
        match self.backend {
            Backend::Sqlite => {
                bounded(
                    self.timeout,
                    "BEGIN",
                    sqlx::query("BEGIN IMMEDIATE").execute(&mut *tx),
                )
                .await?;
            }
            Backend::Postgres => {
                bounded(
                    self.timeout,
                    "BEGIN",
                    sqlx::query("BEGIN").execute(&mut *tx),
                )
                .await?;
                bounded(
                    self.timeout,
                    "SET LOCAL",
                    sqlx::query("SET LOCAL synchronous_commit = off").execute(&mut *tx),
                )
                .await?;
            }
        }
        Ok(tx)
    }

    /// This process's turn to write: waited for on SQLite (at most the
    /// store's timeout), none on PostgreSQL.
    async fn write_turn(&self) -> Result<Option<Turn>> {
        if self.backend == Backend::Postgres {
            return Ok(None);
        }
        let gate = &self.write_gate;
        let guard = bounded(self.timeout, "waiting for a turn to write", async {
            Ok::<_, StoreError>(gate.lock.clone().lock_owned().await)
        })
        .await?;
        gate.held_since.store(now_ms().max(1), Ordering::Relaxed);
        Ok(Some(Turn {
            _guard: guard,
            held_since: gate.held_since.clone(),
        }))
    }
}

/// A connection for writes outside a transaction (one statement each); on
/// SQLite it holds this process's turn to write, like a [`WriteTx`].
pub struct WriteConn {
    conn: PoolConnection<Any>,
    _turn: Option<Turn>,
}

impl Deref for WriteConn {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.conn
    }
}

impl DerefMut for WriteConn {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }
}

impl Store {
    /// A connection to write through, in turn with this process's other
    /// writers on SQLite.
    pub async fn writer(&self) -> Result<WriteConn> {
        self.writer_from(&self.pool).await
    }

    /// [`Self::writer`] for job leases, whose commits need not be durable.
    pub(super) async fn lease_writer(&self) -> Result<WriteConn> {
        self.writer_from(&self.leases).await
    }

    async fn writer_from(&self, pool: &AnyPool) -> Result<WriteConn> {
        let turn = self.write_turn().await?;
        Ok(WriteConn {
            conn: pool.acquire().await?,
            _turn: turn,
        })
    }

    /// Since when (ms) this process's current SQLite writer has held its
    /// turn, if one does.
    pub fn write_turn_held_since(&self) -> Option<i64> {
        self.write_gate.held_since()
    }
}
