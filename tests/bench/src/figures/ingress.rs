//! Figure 1, ingress: signed Jira Cloud webhooks (the fixture unchanged,
//! Connect JWT with query-string hash) acknowledged per second by the host on
//! SQLite — verified by the wasm plugin and committed (`synchronous=FULL`)
//! before the 200 — at 64 connections; then p50/p99 at half that rate with
//! arrivals on a fixed schedule. Baseline: the bare hyper server, same
//! requests, same client, same runtime.
//!
//! The host runs as configured by default (4 workers), so the stored
//! deliveries are processed while more arrive, as in production. Each
//! measured phase starts on a fresh host with an empty queue: what a phase
//! leaves queued would otherwise slow the next one down.

use std::net::SocketAddr;
use std::time::Duration;

use crate::baseline::{self, BareServer, Mode};
use crate::ctx::Ctx;
use crate::host::{BenchDatabase, BenchHost};
use crate::load::{self, LoadResult};
use crate::report::{Row, Target};
use crate::scenario::{Scenario, webhook_requests};

const FIGURE: &str = "1. Ingress";
pub(crate) const CONNECTIONS: usize = 64;

/// A host on a fresh database with the Jira installation, warmed up.
pub(crate) struct FreshHost {
    pub(crate) host: BenchHost,
    _scenario: Scenario,
    _db: BenchDatabase,
}

impl FreshHost {
    pub(crate) async fn start(ctx: &Ctx, warm: Duration) -> anyhow::Result<FreshHost> {
        let db = BenchDatabase::sqlite()?;
        let host = BenchHost::start(&db, &ctx.plugins_dir, |_| {}).await?;
        let scenario = Scenario::setup(&host.api).await?;
        // Connections, the instance pool, SQLite's page cache.
        let make = webhook_requests(host.addr, "warm", None)?;
        load::closed_loop(host.addr, CONNECTIONS, u64::MAX, warm, make).await?;
        Ok(FreshHost {
            host,
            _scenario: scenario,
            _db: db,
        })
    }

    pub(crate) async fn stop(self) -> i64 {
        let backlog = queue_depth(&self.host).await.unwrap_or(-1);
        self.host.shutdown().await;
        backlog
    }
}

async fn closed(
    ctx: &Ctx,
    name: &str,
    addr: SocketAddr,
    round: usize,
) -> anyhow::Result<LoadResult> {
    let make = webhook_requests(addr, &format!("max-{name}-{round}"), None)?;
    let r = load::closed_loop(addr, CONNECTIONS, u64::MAX, ctx.period(10.0, 2.0), make).await?;
    ctx.say(format!(
        "  [1] {name} closed loop, {CONNECTIONS} connections, round {round}: {}",
        r.summary()
    ));
    Ok(r)
}

async fn open(ctx: &Ctx, name: &str, addr: SocketAddr, rate: f64) -> anyhow::Result<LoadResult> {
    let period = ctx.period(10.0, 2.0);
    let make = webhook_requests(addr, &format!("half-{name}"), None)?;
    let r = load::open_model(addr, CONNECTIONS, rate, period, make).await?;
    ctx.say(format!(
        "  [1] {name} open model at {rate:.0}/s for {:.0} s: {}",
        period.as_secs_f64(),
        r.summary()
    ));
    Ok(r)
}

async fn warm_bare(ctx: &Ctx, bare: &BareServer) -> anyhow::Result<()> {
    let make = webhook_requests(bare.addr, "warm-bare", None)?;
    load::closed_loop(bare.addr, CONNECTIONS, u64::MAX, ctx.period(2.0, 0.5), make).await?;
    Ok(())
}

pub async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let warm = ctx.period(2.0, 0.5);
    let bare = baseline::start(Mode::Ack).await?;
    warm_bare(ctx, &bare).await?;

    // Alternated, so drift on a shared machine hits both alike.
    let (mut host_rates, mut bare_rates, mut host_failed, mut backlogs) =
        (Vec::new(), Vec::new(), 0, Vec::new());
    for round in 0..ctx.pick(2, 1) {
        bare_rates.push(closed(ctx, "bare", bare.addr, round).await?.rate());
        let fresh = FreshHost::start(ctx, warm).await?;
        let r = closed(ctx, "host", fresh.host.addr, round).await?;
        host_rates.push(r.rate());
        host_failed += r.failed();
        backlogs.push(fresh.stop().await);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let (host_rate, bare_rate) = (mean(&host_rates), mean(&bare_rates));

    // Latency at half the host's most, offered to both on the same schedule.
    let rate = (host_rate / 2.0).max(1.0);
    let bare_lat = open(ctx, "bare", bare.addr, rate).await?;
    let fresh = FreshHost::start(ctx, warm).await?;
    let host_lat = open(ctx, "host", fresh.host.addr, rate).await?;
    let latency_backlog = fresh.stop().await;

    let throughput = Row::new(
        FIGURE,
        "signed webhooks acknowledged/s (SQLite, durable before the 200, 64 connections)",
        "req/s",
    )
    .value(host_rate)
    .baseline("bare hyper, reads the body, answers 200", bare_rate)
    .target(Target::MinRatio(0.5))
    .note(format!(
        "{host_failed} non-2xx answers; stored deliveries still queued for the 4 workers when \
         each run stopped: {backlogs:?}"
    ));
    let latency_note = format!(
        "host: {} non-2xx, {} not sent within 10 s of the end, {latency_backlog} deliveries still \
         queued; bare: {} non-2xx",
        host_lat.failed(),
        host_lat.unsent,
        bare_lat.failed()
    );
    Ok(vec![
        throughput,
        Row::new(
            FIGURE,
            format!("p50 at {rate:.0} req/s (half the host's rate), open model"),
            "µs",
        )
        .value(host_lat.p(0.5))
        .baseline("bare hyper at the same rate", bare_lat.p(0.5)),
        Row::new(
            FIGURE,
            format!("p99 at {rate:.0} req/s (half the host's rate), open model"),
            "µs",
        )
        .value(host_lat.p(0.99))
        .baseline("bare hyper at the same rate", bare_lat.p(0.99))
        .note(latency_note),
    ])
}

/// Pending and running jobs, as the queue API counts them.
pub async fn queue_depth(host: &BenchHost) -> anyhow::Result<i64> {
    let stats = host.api.get("/api/queue").await?.expect(200)?;
    Ok(stats
        .as_array()
        .map(|all| all.iter().filter_map(|q| q["depth"].as_i64()).sum())
        .unwrap_or(0))
}
