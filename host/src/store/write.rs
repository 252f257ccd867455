//! Write transactions. SQLite has one write lock per database, and a
//! connection that finds it taken polls for it in sleeps that grow to 100 ms
//! (its busy handler), so under concurrent writers a waiting commit is late by
//! up to a tenth of a second each time it looks. Writers of this process
//! therefore queue for the lock on an async mutex first, in arrival order, and
//! reach SQLite one at a time; the busy handler is left for other processes
//! (the CLI's `migrate`, say). PostgreSQL locks rows, so writers there run
//! side by side.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::{Backend, Result, Store};

/// A write transaction; rolled back when dropped uncommitted.
pub struct WriteTx {
    tx: Transaction<'static, Any>,
    /// Held until the transaction ends (SQLite only).
    _turn: Option<OwnedMutexGuard<()>>,
}

/// Where this process's SQLite writers wait their turn.
pub(super) type WriteGate = Arc<Mutex<()>>;

impl WriteTx {
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

impl Deref for WriteTx {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.tx
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}

impl Store {
    /// A transaction that will write. On SQLite it waits for this process's
    /// other writers, then takes the write lock up front (`BEGIN IMMEDIATE`):
    /// a deferred transaction that reads and then writes can fail with
    /// SQLITE_BUSY instead of waiting.
    pub async fn begin_write(&self) -> Result<WriteTx> {
        let turn = self.write_turn().await;
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(WriteTx { tx, _turn: turn })
    }

    /// This process's turn to write: waited for on SQLite, none on PostgreSQL.
    async fn write_turn(&self) -> Option<OwnedMutexGuard<()>> {
        match self.backend {
            Backend::Sqlite => Some(self.write_gate.clone().lock_owned().await),
            Backend::Postgres => None,
        }
    }
}

/// A connection for writes outside a transaction (one statement each); on
/// SQLite it holds this process's turn to write, like a [`WriteTx`].
pub struct WriteConn {
    conn: PoolConnection<Any>,
    _turn: Option<OwnedMutexGuard<()>>,
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
        let turn = self.write_turn().await;
        Ok(WriteConn {
            conn: pool.acquire().await?,
            _turn: turn,
        })
    }
}
