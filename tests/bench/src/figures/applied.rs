//! Figure 2, applied events: signed webhooks turned into committed assignments
//! per second — ingress (verify, store), a worker claims the stored delivery,
//! the wasm plugin turns it into events, the domain commits the assignment —
//! on SQLite and on PostgreSQL, the host with its default settings (4
//! workers). Each delivery is about one of many linked issues, with an event
//! time later than the last one's, so each one is applied.
//!
//! Two ways: steady, the senders holding back while 64 stored deliveries wait
//! to be applied (the pipeline's own rate, with a short queue); and a burst sent at once, the
//! clock running until the last one is applied (what a backlog does to it).
//! Baseline: the same database taking one durable single-row INSERT
//! transaction (the 7 KB body) at a time from 64 writers — what one commit
//! per event would allow.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor as _};

use crate::ctx::Ctx;
use crate::host::{BenchDatabase, BenchHost};
use crate::load;
use crate::report::{Row, Target};
use crate::scenario::{Rotation, Scenario, fixture_body, webhook_requests};

const FIGURE: &str = "2. Applied events";
const CONNECTIONS: usize = 64;

pub async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let sqlite = BenchDatabase::sqlite()?;
    let mut rows = measure(ctx, &sqlite, "SQLite").await?;
    rows[0].target = Some(Target::AtLeast(5000.0));
    drop(sqlite);
    match BenchDatabase::postgres(&ctx.postgres_admin).await {
        Ok(pg) => rows.extend(measure(ctx, &pg, "PostgreSQL").await?),
        Err(e) => rows.push(Row::failed(
            FIGURE,
            "webhooks → committed assignments/s, PostgreSQL",
            &format!("no PostgreSQL at {}: {e:#}", ctx.postgres_admin),
        )),
    }
    Ok(rows)
}

/// Webhook jobs finished (done or dead-lettered). It counts every finished
/// row, so it is read only at the edges of a measurement.
pub(crate) async fn finished(pool: &AnyPool) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM jobs WHERE kind = 'webhook' AND state IN ('done', 'dead')",
    )
    .fetch_one(pool)
    .await?)
}

/// Webhook jobs stored and not finished: cheap while the queue is short
/// (the `jobs_ready` index), so this is what is polled.
pub(crate) async fn unfinished(pool: &AnyPool) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM jobs WHERE state IN ('pending', 'running') AND kind = 'webhook'",
    )
    .fetch_one(pool)
    .await?)
}

/// Until every stored webhook is finished.
pub(crate) async fn wait_idle(pool: &AnyPool, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = unfinished(pool).await?;
        if left == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{left} webhook jobs still unfinished after {timeout:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// How often the queue is looked at: often enough for the window, rarely
/// enough that looking costs the host next to nothing.
const POLL: Duration = Duration::from_millis(20);

/// Stored deliveries waiting to be applied, at most, in the steady run.
const WINDOW: i64 = 64;

async fn measure(ctx: &Ctx, db: &BenchDatabase, backend: &str) -> anyhow::Result<Vec<Row>> {
    let groups = ctx.pick(1000, 256);
    let host = BenchHost::start(db, &ctx.plugins_dir, |_| {}).await?;
    let scenario = Scenario::setup(&host.api).await?;
    scenario.linked_groups(&host.api, groups).await?;
    let pool = AnyPoolOptions::new()
        .max_connections(2)
        .connect(db.url())
        .await?;

    // One round over every group first: instances, caches and pages warm.
    let rotation = Rotation::new(groups);
    let warm = webhook_requests(host.addr, "warm", Some(rotation))?;
    load::closed_loop(
        host.addr,
        CONNECTIONS,
        groups as u64,
        Duration::from_secs(120),
        warm,
    )
    .await?;
    wait_idle(&pool, Duration::from_secs(120)).await?;

    // Steady: senders hold back while WINDOW stored deliveries wait to be
    // applied, so the queue stays short and the rate is the pipeline's own.
    let base = finished(&pool).await?;
    let queued = Arc::new(AtomicI64::new(0));
    let watching = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (pool, queued, watching) = (pool.clone(), queued.clone(), watching.clone());
        tokio::spawn(async move {
            while watching.load(Ordering::Relaxed) {
                if let Ok(n) = unfinished(&pool).await {
                    queued.store(n, Ordering::Relaxed);
                }
                tokio::time::sleep(POLL).await;
            }
        })
    };
    let gate: load::Gate = {
        let queued = queued.clone();
        Arc::new(move |_| queued.load(Ordering::Relaxed) < WINDOW)
    };
    let make = webhook_requests(host.addr, "steady", Some(rotation.from(groups as u64)))?;
    let period = ctx.period(20.0, 3.0);
    let started = Instant::now();
    let steady = load::gated_loop(host.addr, CONNECTIONS, u64::MAX, period, make, gate).await?;
    let applied = finished(&pool).await? - base;
    let steady_rate = applied as f64 / started.elapsed().as_secs_f64();
    watching.store(false, Ordering::Relaxed);
    let _ = watcher.await;
    let after_steady = base + steady.ok as i64;
    wait_idle(&pool, Duration::from_secs(300)).await?;
    ctx.say(format!(
        "  [2] {backend} steady (senders hold back at {WINDOW} queued): {applied} applied in {:.1} s \
         ({steady_rate:.0}/s); ingress {}",
        period.as_secs_f64(),
        steady.summary()
    ));

    // Burst: every delivery sent at once, then the clock runs until the last
    // one is applied.
    let burst_n = ctx.pick(1500u64, 300);
    let first = groups as u64 + steady.ok + steady.unsent + CONNECTIONS as u64;
    let make = webhook_requests(host.addr, "burst", Some(rotation.from(first)))?;
    let started = Instant::now();
    let burst = load::closed_loop(
        host.addr,
        CONNECTIONS,
        burst_n,
        Duration::from_secs(300),
        make,
    )
    .await?;
    let acked = started.elapsed();
    let expected = after_steady + burst.ok as i64;
    wait_idle(&pool, Duration::from_secs(600)).await?;
    let burst_rate = burst.ok as f64 / started.elapsed().as_secs_f64();
    ctx.say(format!(
        "  [2] {backend} burst: {} acknowledged in {:.2} s, all applied after {:.2} s ({burst_rate:.0}/s)",
        burst.ok,
        acked.as_secs_f64(),
        started.elapsed().as_secs_f64()
    ));

    let one_event: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM jobs WHERE kind = 'webhook' AND state = 'done' \
         AND note LIKE '1 event(s) applied, 0 older%'",
    )
    .fetch_one(&pool)
    .await?;
    let dead: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'webhook' AND state = 'dead'")
            .fetch_one(&pool)
            .await?;
    host.shutdown().await;
    pool.close().await;

    let baseline = commit_rate(ctx, db).await?;
    ctx.say(format!(
        "  [2] {backend} baseline: {baseline:.0} durable 1-row INSERT transactions/s from {CONNECTIONS} writers"
    ));
    let label = "durable 1-row INSERT commits/s, 64 writers";
    let mut steady_row = Row::new(
        FIGURE,
        format!("webhooks → committed assignments/s, {backend}, ≤ {WINDOW} queued"),
        "events/s",
    )
    .value(steady_rate)
    .baseline(label, baseline);
    if one_event != expected || dead > 0 || steady.failed() + burst.failed() > 0 {
        steady_row.note = format!(
            "{one_event} of {expected} deliveries applied one event; {dead} dead; {} not acknowledged",
            steady.failed() + burst.failed()
        );
    }
    let burst_row = Row::new(
        FIGURE,
        format!("same, {burst_n} sent at once, until the last is applied, {backend}"),
        "events/s",
    )
    .value(burst_rate)
    .baseline(label, baseline);
    Ok(vec![steady_row, burst_row])
}

/// The database's durable commit rate: 64 writers, each inserting the 7 KB
/// body in a transaction of its own, on a pool and with pragmas like the
/// host's (SQLite: WAL, `synchronous=FULL`, `BEGIN IMMEDIATE`; PostgreSQL:
/// defaults, `synchronous_commit=on`).
async fn commit_rate(ctx: &Ctx, db: &BenchDatabase) -> anyhow::Result<f64> {
    let (url, sqlite) = if db.is_postgres() {
        (db.url().to_owned(), false)
    } else {
        (
            format!(
                "sqlite://{}?mode=rwc",
                db.dir().join("commits.db").display()
            ),
            true,
        )
    };
    let options = AnyPoolOptions::new().max_connections(if sqlite { 8 } else { 16 });
    let options = if sqlite {
        options.after_connect(|conn, _| {
            Box::pin(async move {
                for pragma in [
                    "PRAGMA journal_mode=WAL",
                    "PRAGMA synchronous=FULL",
                    "PRAGMA busy_timeout=5000",
                ] {
                    conn.execute(pragma).await?;
                }
                Ok(())
            })
        })
    } else {
        options
    };
    let pool = options.connect(&url).await.context("baseline database")?;
    // SQLite takes any type name; BYTEA is PostgreSQL's.
    pool.execute("CREATE TABLE IF NOT EXISTS bench_commits (body BYTEA)")
        .await?;
    let body = fixture_body().to_vec();
    let period = ctx.period(5.0, 1.0);
    let deadline = Instant::now() + period;
    let commits = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut writers = Vec::new();
    for _ in 0..CONNECTIONS {
        let (pool, body, commits) = (pool.clone(), body.clone(), commits.clone());
        writers.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let mut tx = if sqlite {
                    pool.begin_with("BEGIN IMMEDIATE").await?
                } else {
                    pool.begin().await?
                };
                sqlx::query("INSERT INTO bench_commits (body) VALUES ($1)")
                    .bind(&body)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                commits.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, sqlx::Error>(())
        }));
    }
    for w in writers {
        w.await??;
    }
    let rate = commits.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    pool.close().await;
    Ok(rate)
}
