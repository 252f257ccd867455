//! Snowflake ids for organizations, projects and teams, with Sentry's 53-bit
//! layout (spec §8.3), most significant first:
//! version 5 bits | seconds since 2022-08-08 32 bits | region 12 bits | sequence 4 bits.
//!
//! The per-second sequence lives in the database (`snowflake_counters`), not in
//! process memory, so several host processes sharing one database never hand out
//! the same id. A second's 16 sequence numbers can be borrowed from any of the
//! past 300 seconds, as Sentry does.

use sqlx::AnyConnection;

/// 2022-08-08T00:00:00Z.
pub const EPOCH_START_SECS: i64 = 1_659_916_800;
/// `SNOWFLAKE_VERSION_ID` 1 written as its 5-bit binary reversed: `0b10000`.
pub const VERSION_SEGMENT: i64 = 0b10000;
const TIME_BITS: u32 = 32;
const REGION_BITS: u32 = 12;
const SEQUENCE_BITS: u32 = 4;
/// How far back unused sequence numbers may be borrowed, in seconds.
const MAX_BORROW_SECS: i64 = 300;

#[derive(Debug, thiserror::Error)]
pub enum SnowflakeError {
    #[error("No available ID")]
    Exhausted,
    #[error("{0} exceed max bit value of {1}")]
    Segment(&'static str, u32),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

/// Compose an id from its segments, checking each fits its width.
pub fn compose(time_diff: i64, region: i64, sequence: i64) -> Result<i64, SnowflakeError> {
    for (name, value, bits) in [
        ("Time difference", time_diff, TIME_BITS),
        ("Region ID", region, REGION_BITS),
        ("Region sequence", sequence, SEQUENCE_BITS),
    ] {
        if !(0..(1 << bits)).contains(&value) {
            return Err(SnowflakeError::Segment(name, bits));
        }
    }
    Ok(
        (VERSION_SEGMENT << (TIME_BITS + REGION_BITS + SEQUENCE_BITS))
            | (time_diff << (REGION_BITS + SEQUENCE_BITS))
            | (region << SEQUENCE_BITS)
            | sequence,
    )
}

/// The region segment of an id.
pub fn region_of(id: i64) -> i64 {
    (id >> SEQUENCE_BITS) & ((1 << REGION_BITS) - 1)
}

/// The next id at `now_secs` for `region`. Run it inside the transaction that
/// inserts the row: on SQLite the write lock serializes it; on PostgreSQL the
/// counter upsert is atomic per row.
pub async fn next_id(
    conn: &mut AnyConnection,
    now_secs: i64,
    region: u16,
) -> Result<i64, SnowflakeError> {
    let time_diff = now_secs - EPOCH_START_SECS;
    for i in 0..time_diff.min(MAX_BORROW_SECS) {
        let ts = time_diff - i;
        let value: i64 = sqlx::query_scalar(
            "INSERT INTO snowflake_counters (ts, value) VALUES ($1, 1) \
             ON CONFLICT (ts) DO UPDATE SET value = snowflake_counters.value + 1 \
             RETURNING value",
        )
        .bind(ts)
        .fetch_one(&mut *conn)
        .await?;
        let sequence = value - 1;
        if sequence == 0 {
            // A new second started: counters outside the window are dead weight.
            sqlx::query("DELETE FROM snowflake_counters WHERE ts < $1")
                .bind(time_diff - MAX_BORROW_SECS)
                .execute(&mut *conn)
                .await?;
        }
        if sequence < (1 << SEQUENCE_BITS) {
            return compose(ts, i64::from(region), sequence);
        }
    }
    Err(SnowflakeError::Exhausted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Connection;

    async fn memory_db() -> AnyConnection {
        sqlx::any::install_default_drivers();
        let mut conn = AnyConnection::connect("sqlite::memory:").await.unwrap();
        sqlx::query(
            "CREATE TABLE snowflake_counters (ts BIGINT PRIMARY KEY, value BIGINT NOT NULL)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        conn
    }

    // A frozen clock: 2023-01-01T00:00:00Z.
    const NOW: i64 = 1_672_531_200;

    #[tokio::test]
    async fn first_ids_of_a_second_then_borrowing_from_the_previous_one() {
        let mut conn = memory_db().await;
        let time_diff = NOW - EPOCH_START_SECS;
        let first = next_id(&mut conn, NOW, 0).await.unwrap();
        assert_eq!(first, (16 << 48) + (time_diff << 16));
        for k in 1..16 {
            assert_eq!(next_id(&mut conn, NOW, 0).await.unwrap(), first + k);
        }
        let seventeenth = next_id(&mut conn, NOW, 0).await.unwrap();
        assert_eq!(seventeenth, (16 << 48) + ((time_diff - 1) << 16));
        assert!(first < 1 << 53, "ids stay JavaScript-safe");
    }

    #[tokio::test]
    async fn exhausted_when_every_counter_of_the_window_is_used() {
        let mut conn = memory_db().await;
        let time_diff = NOW - EPOCH_START_SECS;
        for i in 0..MAX_BORROW_SECS {
            sqlx::query("INSERT INTO snowflake_counters (ts, value) VALUES ($1, 16)")
                .bind(time_diff - i)
                .execute(&mut conn)
                .await
                .unwrap();
        }
        let err = next_id(&mut conn, NOW, 0).await.unwrap_err();
        assert_eq!(err.to_string(), "No available ID");
    }

    #[tokio::test]
    async fn the_region_is_recoverable_from_bits_4_to_15() {
        let mut conn = memory_db().await;
        for region in [1u16, 2] {
            let id = next_id(&mut conn, NOW, region).await.unwrap();
            assert_eq!(region_of(id), i64::from(region));
        }
    }

    #[test]
    fn segments_must_fit_their_width() {
        assert_eq!(
            compose(0, 4096, 0).unwrap_err().to_string(),
            "Region ID exceed max bit value of 12"
        );
        assert_eq!(
            compose(1 << 32, 0, 0).unwrap_err().to_string(),
            "Time difference exceed max bit value of 32"
        );
    }
}
