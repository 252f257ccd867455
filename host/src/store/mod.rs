//! SQL state through sqlx's `Any` driver, so the same queries run on SQLite
//! (default) and PostgreSQL. Queries use `$n` placeholders, which both accept.

mod claims;
mod console_queries;
mod directory;
mod groups;
mod identities;
pub mod integration_cache;
mod integrations;
mod jobs;
mod plugins;
pub mod sealing;
mod secrets_at_rest;
pub mod slug;
pub mod snowflake;
mod unavailable;
mod write;

pub use claims::*;
pub use console_queries::*;
pub use directory::*;
pub use groups::*;
pub use identities::*;
pub use integrations::*;
pub use jobs::*;
pub use plugins::*;
pub use write::WriteTx;

use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::{AnyPoolOptions, install_default_drivers};

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("stored JSON is invalid: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Snowflake(#[from] snowflake::SnowflakeError),
    #[error(transparent)]
    Sealed(#[from] sealing::SealError),
    /// A wait on the database ran out: the turn to write, a connection, a
    /// statement, a commit.
    #[error("the database is busy: {0}")]
    Busy(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The database: a connection pool and the dialect it speaks.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// Where job leases are written: on SQLite, connections whose commits are
    /// not fsynced ([`sqlite_lease_pragmas`]); elsewhere the same pool.
    leases: AnyPool,
    /// For the background figures of `/metrics` ([`Store::queue_stats_snapshot`]):
    /// on SQLite a connection of their own; elsewhere the same pool.
    stats: AnyPool,
    backend: Backend,
    /// The region segment of snowflake ids made by this process.
    region: u16,
    write_gate: write::WriteGate,
    /// The longest any single wait on the database may take ([`StoreError::Busy`] after).
    timeout: Duration,
    /// Integrations read before, while none changed.
    integrations: std::sync::Arc<integration_cache::IntegrationCache>,
    /// What seals integration secrets at rest (none: stored plain).
    secret_keys: std::sync::Arc<sealing::SecretKeys>,
}

/// How long a wait on the database may take by default: for a connection,
/// a turn to write, a lock, a statement.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Attempts at inserting a row under a fresh snowflake id before giving up
/// (Sentry's `MAX_REDIS_SNOWFLAKE_RETRY_COUNTER`).
const MAX_ID_ATTEMPTS: usize = 5;

/// Insert a row under a fresh snowflake id, in a write transaction that also
/// runs `$body` (which must execute the insert with `$id` and may do more).
/// A collision on the id (another process, a clock step back) retries with a
/// new id; any other unique violation is a conflict about `$what`.
macro_rules! insert_with_snowflake {
    ($store:expr, $table:literal, $what:expr, |$tx:ident, $id:ident| $body:block) => {{
        let mut outcome = Err($crate::store::StoreError::Conflict(
            "Max allowed ID retry reached. Please try again in a second".into(),
        ));
        for _ in 0..$crate::store::MAX_ID_ATTEMPTS {
            let mut $tx = $store.begin_write().await?;
            let $id = $crate::store::snowflake::next_id(
                &mut $tx,
                $crate::time::now_ms() / 1000,
                $store.region,
            )
            .await?;
            let result: Result<_, sqlx::Error> = async { $body }.await;
            match result {
                Ok(value) => {
                    $tx.commit().await?;
                    outcome = Ok(($id, value));
                    break;
                }
                Err(err) if $crate::store::is_unique_violation(&err) => {
                    drop($tx);
                    let taken: i64 = sqlx::query_scalar(concat!(
                        "SELECT COUNT(*) FROM ",
                        $table,
                        " WHERE id = $1"
                    ))
                    .bind($id)
                    .fetch_one(&$store.pool)
                    .await?;
                    if taken == 0 {
                        outcome = Err($crate::store::conflict_or_sql(err, $what));
                        break;
                    }
                }
                Err(err) => {
                    outcome = Err($crate::store::conflict_or_sql(err, $what));
                    break;
                }
            }
        }
        outcome
    }};
}
pub(crate) use insert_with_snowflake;

pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

impl Store {
    /// Connect and run the embedded migrations, with [`DEFAULT_TIMEOUT`].
    pub async fn connect(url: &str) -> Result<Store> {
        Store::connect_with_timeout(url, DEFAULT_TIMEOUT).await
    }

    /// Connect and run the embedded migrations; `timeout` bounds every wait
    /// on the database: for a connection, a turn to write, a lock (SQLite's
    /// busy timeout), a statement (PostgreSQL's `statement_timeout`).
    pub async fn connect_with_timeout(url: &str, timeout: Duration) -> Result<Store> {
        install_default_drivers();
        let backend = if url.starts_with("postgres") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        };
        // A database that is away must turn into 503s within seconds, not
        // hold every request for sqlx's default 30 s.
        let options = |max| {
            AnyPoolOptions::new()
                .acquire_timeout(timeout)
                .max_connections(max)
        };
        let busy_ms = timeout.as_millis().max(1);
        let (pool, leases, stats) = match backend {
            Backend::Sqlite => (
                options(8)
                    .after_connect(move |conn, _| {
                        Box::pin(sqlite_setup(conn, "PRAGMA synchronous=FULL", busy_ms))
                    })
                    .connect(url)
                    .await?,
                // Job leases: a commit is not fsynced (it reaches the disk
                // with the next durable commit). A lease lost to a power cut
                // only means its job runs again, which at-least-once
                // processing allows, and on SQLite every lease is released at
                // start anyway; the claim is on the way of every job, and an
                // fsync is most of its cost.
                options(3)
                    .after_connect(move |conn, _| {
                        Box::pin(sqlite_setup(conn, "PRAGMA synchronous=NORMAL", busy_ms))
                    })
                    .connect(url)
                    .await?,
                options(1)
                    .after_connect(move |conn, _| {
                        Box::pin(sqlite_setup(conn, "PRAGMA synchronous=FULL", busy_ms))
                    })
                    .connect(url)
                    .await?,
            ),
            Backend::Postgres => {
                let pool = options(16)
                    .after_connect(move |conn, _| {
                        Box::pin(async move {
                            // A lock or a statement that waits forever would
                            // hold its caller (and a pooled connection) forever.
                            let set = format!("SET statement_timeout = {busy_ms}");
                            sqlx::query(&set).execute(&mut *conn).await?;
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await?;
                (pool.clone(), pool.clone(), pool)
            }
        };
        let store = Store {
            pool,
            leases,
            stats,
            backend,
            region: 0,
            write_gate: write::WriteGate::default(),
            timeout,
            integrations: Default::default(),
            secret_keys: Default::default(),
        };
        store.migrate().await?;
        // What the cache starts from: a change after this is seen.
        store.check_integration_cache().await;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&self.pool)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    /// Use `region` as the region segment of the snowflake ids this process makes.
    pub fn with_region(mut self, region: u16) -> Store {
        self.region = region;
        self
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The longest a single wait on the database may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// WAL lets readers run beside the single writer; synchronous=FULL (the
/// main pool) makes each commit survive power loss, which "stored before
/// acknowledged" needs.
async fn sqlite_setup(
    conn: &mut sqlx::AnyConnection,
    synchronous: &str,
    busy_ms: u128,
) -> Result<(), sqlx::Error> {
    let busy = format!("PRAGMA busy_timeout={busy_ms}");
    for pragma in [
        "PRAGMA journal_mode=WAL",
        synchronous,
        "PRAGMA foreign_keys=ON",
        busy.as_str(),
    ] {
        sqlx::query(pragma).execute(&mut *conn).await?;
    }
    Ok(())
}

pub(crate) fn conflict_or_sql(err: sqlx::Error, what: &str) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(format!("{what} already exists"))
        }
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            StoreError::Conflict(format!("{what} refers to a missing row"))
        }
        _ => StoreError::Sql(err),
    }
}
