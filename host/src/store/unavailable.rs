//! Telling the database failing as a whole (busy, timed out, unreachable,
//! out of space) from it refusing one statement: the same work succeeds once
//! the first passes, never after the second.

use sqlx::error::DatabaseError as _;

use super::StoreError;

impl StoreError {
    /// The database could not serve this call right now, whatever the call:
    /// a wait ran out, the connection failed, the disk is full.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Busy(_) => true,
            StoreError::Sql(err) => sql_unavailable(err),
            _ => false,
        }
    }
}

fn sql_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                postgres_unavailable(pg.code())
            } else if let Some(lite) = db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                lite.code()
                    .and_then(|code| code.parse::<i32>().ok())
                    .is_some_and(sqlite_unavailable)
            } else {
                false
            }
        }
        _ => false,
    }
}

/// SQLSTATE classes and codes of a server that is overloaded, going away or
/// out of resources (PostgreSQL's appendix A).
fn postgres_unavailable(sqlstate: &str) -> bool {
    matches!(
        sqlstate,
        // statement_timeout, lock_timeout, the server shutting down or starting
        "57014" | "55P03" | "57P01" | "57P02" | "57P03"
        // serialization failure, deadlock: the transaction lost a race
        | "40001" | "40P01"
    ) || sqlstate.starts_with("08") // connection exceptions
        || sqlstate.starts_with("53") // insufficient resources: disk full, out of memory
}

/// SQLite's primary result codes (the low byte of an extended code) for a
/// lock held elsewhere, an I/O failure and a full disk.
fn sqlite_unavailable(code: i32) -> bool {
    const BUSY: i32 = 5;
    const LOCKED: i32 = 6;
    const IOERR: i32 = 10;
    const FULL: i32 = 13;
    matches!(code & 0xff, BUSY | LOCKED | IOERR | FULL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Connection as _;

    async fn sqlite(path: &std::path::Path) -> sqlx::SqliteConnection {
        let url = format!("sqlite://{}?mode=rwc", path.display());
        sqlx::SqliteConnection::connect(&url).await.unwrap()
    }

    #[tokio::test]
    async fn a_lock_held_elsewhere_is_unavailability_and_a_constraint_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut holder = sqlite(&path).await;
        sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY)")
            .execute(&mut holder)
            .await
            .unwrap();
        sqlx::query("INSERT INTO t VALUES (1)")
            .execute(&mut holder)
            .await
            .unwrap();
        let mut other = sqlite(&path).await;
        sqlx::query("PRAGMA busy_timeout = 0")
            .execute(&mut other)
            .await
            .unwrap();

        let duplicate = sqlx::query("INSERT INTO t VALUES (1)")
            .execute(&mut other)
            .await
            .unwrap_err();
        assert!(!StoreError::Sql(duplicate).is_unavailable());

        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut holder)
            .await
            .unwrap();
        let locked = sqlx::query("INSERT INTO t VALUES (2)")
            .execute(&mut other)
            .await
            .unwrap_err();
        assert!(StoreError::Sql(locked).is_unavailable());
    }

    #[test]
    fn the_postgres_codes_of_an_overloaded_server() {
        assert!(postgres_unavailable("57014"));
        assert!(postgres_unavailable("53100"));
        assert!(postgres_unavailable("08006"));
        assert!(!postgres_unavailable("23505"), "a unique violation");
        assert!(!postgres_unavailable("42601"), "a syntax error");
    }

    #[test]
    fn other_store_errors_are_not() {
        assert!(StoreError::Busy("the turn to write".into()).is_unavailable());
        assert!(!StoreError::NotFound("group").is_unavailable());
        assert!(!StoreError::Sql(sqlx::Error::RowNotFound).is_unavailable());
    }
}
