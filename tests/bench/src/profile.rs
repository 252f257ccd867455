//! Workloads for a profiler, without the figures around them: one export
//! called in a loop in this process (`--repeat-call`), or signed webhooks sent
//! to a host running elsewhere, e.g. a `trackbridge serve` under
//! `valgrind --tool=callgrind` (`--drive`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use trackbridge_e2e::ApiClient;

use crate::ctx::Ctx;
use crate::figures::sandbox::{Export, InProcess};
use crate::host::ADMIN_TOKEN;
use crate::load;
use crate::scenario::{Rotation, Scenario, webhook_requests};

/// Call `export` of the wasm Jira component `count` times, one after the other
/// (the profiler's toggle is this function: `--toggle-collect='*repeat_call*'`).
pub async fn repeat_call(ctx: &Ctx, export: Export, count: usize) -> anyhow::Result<()> {
    let setup = Arc::new(InProcess::setup(ctx, 1).await?);
    run_repeat_call(&setup, export, count).await
}

async fn run_repeat_call(setup: &InProcess, export: Export, count: usize) -> anyhow::Result<()> {
    let request = setup.request();
    let started = std::time::Instant::now();
    for _ in 0..count {
        setup.call(export, &request).await?;
    }
    let took = started.elapsed().as_secs_f64();
    println!(
        "{count} calls of {export:?} in {took:.3} s ({:.1} µs each)",
        took * 1e6 / count.max(1) as f64
    );
    Ok(())
}

/// Install the Jira scenario on the host at `addr` (admin token
/// [`ADMIN_TOKEN`]) and send signed webhooks over `connections` connections for `secs`
/// seconds: the fixture unchanged when `groups` is 0, else rotating over that
/// many linked issues (so every delivery is applied by the workers).
pub async fn drive(
    addr: SocketAddr,
    connections: usize,
    groups: usize,
    secs: f64,
) -> anyhow::Result<()> {
    let api = ApiClient::new(format!("http://{addr}"), Some(ADMIN_TOKEN.into()));
    let scenario = Scenario::setup(&api)
        .await
        .context("setting up the Jira installation (is the host's admin token the bench's?)")?;
    let rotation = (groups > 0).then(|| Rotation::new(groups));
    if groups > 0 {
        scenario.linked_groups(&api, groups).await?;
    }
    let make = webhook_requests(addr, "drive", rotation)?;
    let r = load::closed_loop(
        addr,
        connections,
        u64::MAX,
        Duration::from_secs_f64(secs),
        make,
    )
    .await?;
    println!("drove {addr}: {}", r.summary());
    Ok(())
}
