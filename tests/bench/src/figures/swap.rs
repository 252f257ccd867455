//! Figure 6, hot swap under load: figure 1's load (64 connections back to
//! back, signed fixture webhooks) against a fresh host, once while an operator
//! switches the serving Jira version every 250 ms — `POST /api/plugins` with
//! the module of `tests/plugins/jira-next`, then `POST
//! /api/plugins/jira/rollback` — and once without swaps, the baseline.
//! Alternated rounds, so drift hits both alike. Every answer other than 200
//! counts as failed (target: none).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use trackbridge_e2e::test_plugins::test_plugin;

use super::ingress::{CONNECTIONS, FreshHost};
use crate::ctx::Ctx;
use crate::load::{self, LoadResult};
use crate::report::{Row, Target};
use crate::scenario::webhook_requests;

const FIGURE: &str = "6. Hot swap under load";
const SWAP_EVERY: Duration = Duration::from_millis(250);

/// One measured run; with `swaps`, how many switches were made.
async fn run_once(
    ctx: &Ctx,
    name: &str,
    round: usize,
    next: Option<Arc<Vec<u8>>>,
) -> anyhow::Result<(LoadResult, usize)> {
    let fresh = FreshHost::start(ctx, ctx.period(2.0, 0.5)).await?;
    let addr = fresh.host.addr;
    let api = fresh.host.api.clone();
    let done = Arc::new(AtomicBool::new(false));
    let swapper = next.map(|module| {
        let (api, done) = (api.clone(), done.clone());
        tokio::spawn(async move {
            let mut switches = 0usize;
            while !done.load(Ordering::SeqCst) {
                tokio::time::sleep(SWAP_EVERY).await;
                let installed = api.post_bytes("/api/plugins", module.to_vec()).await?;
                anyhow::ensure!(installed.status == 201, "install: {}", installed.text);
                switches += 1;
                tokio::time::sleep(SWAP_EVERY).await;
                let back = api.post("/api/plugins/jira/rollback", &json!({})).await?;
                anyhow::ensure!(back.status == 200, "rollback: {}", back.text);
                switches += 1;
            }
            anyhow::Ok(switches)
        })
    });
    let make = webhook_requests(addr, &format!("swap-{name}-{round}"), None)?;
    let result = load::closed_loop(addr, CONNECTIONS, u64::MAX, ctx.period(10.0, 2.0), make).await;
    done.store(true, Ordering::SeqCst);
    let switches = match swapper {
        Some(task) => task.await??,
        None => 0,
    };
    fresh.stop().await;
    let result = result?;
    ctx.say(format!(
        "  [6] {name}, round {round}: {switches} switches; {}",
        result.summary()
    ));
    Ok((result, switches))
}

pub async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let module =
        tokio::task::spawn_blocking(|| test_plugin("trackbridge-test-plugin-jira-next")).await?;
    let module = Arc::new(std::fs::read(&module)?);
    let (mut swapping, mut steady) = (Vec::new(), Vec::new());
    let mut switches = 0;
    for round in 0..ctx.pick(2, 1) {
        steady.push(run_once(ctx, "no swaps", round, None).await?.0);
        let (r, n) = run_once(ctx, "swapping", round, Some(module.clone())).await?;
        switches += n;
        swapping.push(r);
    }
    let mean = |runs: &[LoadResult], f: &dyn Fn(&LoadResult) -> f64| {
        runs.iter().map(f).sum::<f64>() / runs.len().max(1) as f64
    };
    let failed: u64 = swapping.iter().map(LoadResult::failed).sum();
    let steady_failed: u64 = steady.iter().map(LoadResult::failed).sum();
    let first_error = swapping.iter().find_map(|r| r.first_error.clone());
    Ok(vec![
        Row::new(
            FIGURE,
            "webhooks acknowledged/s during repeated swaps",
            "req/s",
        )
        .value(mean(&swapping, &LoadResult::rate))
        .baseline(
            "the same load without swaps",
            mean(&steady, &LoadResult::rate),
        )
        .note(format!(
            "{switches} switches (install, rollback) every {} ms",
            SWAP_EVERY.as_millis()
        )),
        Row::new(FIGURE, "p99 during repeated swaps", "µs")
            .value(mean(&swapping, &|r| r.p(0.99)))
            .baseline("the same load without swaps", mean(&steady, &|r| r.p(0.99))),
        Row::new(FIGURE, "failed requests during swaps", "requests")
            .value(failed as f64)
            .baseline("the same load without swaps", steady_failed as f64)
            .target(Target::AtMost(0.0))
            .note(match first_error {
                Some(e) => format!("first failure: {e}"),
                None => "every request answered 200".into(),
            }),
    ])
}
