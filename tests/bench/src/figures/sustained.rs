//! Figure 9, sustained load: signed webhooks at the host's full acknowledged
//! rate for 30 s (64 connections back to back, each delivery about one of
//! 1,000 linked issues with a later event time, so each is applied), the
//! host with its default settings on SQLite. What counts is whether the
//! workers keep up: the backlog left when the load stops, in seconds of
//! ingress at the rate just measured (target ≤ 1 s), and how long it takes
//! to drain. The baseline is the acknowledged rate itself: the workers'
//! rate over the same 30 s beside it.

use std::time::{Duration, Instant};

use sqlx::any::AnyPoolOptions;

use super::applied::{finished, unfinished, wait_idle};
use crate::ctx::Ctx;
use crate::host::{BenchDatabase, BenchHost};
use crate::load;
use crate::report::{Row, Target};
use crate::scenario::{Rotation, Scenario, webhook_requests};

const FIGURE: &str = "9. Sustained load";
const CONNECTIONS: usize = 64;

pub async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let db = BenchDatabase::sqlite()?;
    let groups = ctx.pick(1000, 256);
    let host = BenchHost::start(&db, &ctx.plugins_dir, |_| {}).await?;
    let scenario = Scenario::setup(&host.api).await?;
    scenario.linked_groups(&host.api, groups).await?;
    let pool = AnyPoolOptions::new()
        .max_connections(2)
        .connect(db.url())
        .await?;
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

    let base = finished(&pool).await?;
    let period = ctx.period(30.0, 3.0);
    let make = webhook_requests(host.addr, "sustained", Some(rotation.from(groups as u64)))?;
    let started = Instant::now();
    let load = load::closed_loop(host.addr, CONNECTIONS, u64::MAX, period, make).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let applied = finished(&pool).await? - base;
    let backlog = unfinished(&pool).await?;
    let acked_rate = load.ok as f64 / elapsed;
    let applied_rate = applied as f64 / elapsed;
    let drain_started = Instant::now();
    wait_idle(&pool, Duration::from_secs(900)).await?;
    let drain = drain_started.elapsed().as_secs_f64();
    let backlog_secs = if acked_rate > 0.0 {
        backlog as f64 / acked_rate
    } else {
        0.0
    };
    ctx.say(format!(
        "  [9] {:.0} s at full rate: {} acknowledged ({acked_rate:.0}/s), {applied} applied meanwhile \
         ({applied_rate:.0}/s); {backlog} left when the load stopped ({backlog_secs:.2} s of ingress), \
         drained in {drain:.2} s; ingress {}",
        period.as_secs_f64(),
        load.ok,
        load.summary()
    ));
    host.shutdown().await;
    pool.close().await;
    drop(db);

    let acked = "webhooks acknowledged/s over the same period";
    Ok(vec![
        Row::new(
            FIGURE,
            "webhooks applied/s while ingress runs at full rate (SQLite)",
            "events/s",
        )
        .value(applied_rate)
        .baseline(acked, acked_rate)
        .target(Target::MinRatio(1.0)),
        Row::new(
            FIGURE,
            "backlog when the load stops, in seconds of ingress",
            "s",
        )
        .value(backlog_secs)
        .target(Target::AtMost(1.0))
        .note(format!("{backlog} deliveries stored and not yet applied")),
        Row::new(FIGURE, "time to drain that backlog", "s").value(drain),
    ])
}
