//! Figure 8, memory of a `trackbridge serve` process (`/proc/PID/status`):
//! RSS idle with the built-in plugins loaded and the Jira installation set up, and
//! the peak (VmHWM, reset just before) while 1,000 signed webhooks are in
//! flight at once, each on a connection of its own. Baselines: the same binary
//! with no plugins, idle; and the process's own idle RSS for the peak.

use std::time::Duration;

use crate::ctx::Ctx;
use crate::host::{BenchDatabase, ServeProcess, empty_plugins_dir};
use crate::load;
use crate::report::{Row, Target};
use crate::scenario::{Scenario, webhook_requests};

const FIGURE: &str = "8. Memory";
const IN_FLIGHT: usize = 1000;
const MIB_TO_MB: f64 = 1.048_576;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Idle RSS of a fresh process serving `plugins`, set up as `setup` says.
async fn idle_process(
    ctx: &Ctx,
    db: &BenchDatabase,
    plugins: &std::path::Path,
    install_jira: bool,
) -> anyhow::Result<(ServeProcess, Option<Scenario>, f64)> {
    let log = db.dir().join("serve.log");
    let process = ServeProcess::start(&ctx.trackbridge, db.url(), plugins, &[], &log).await?;
    let scenario = if install_jira {
        Some(Scenario::setup(&process.api).await?)
    } else {
        None
    };
    tokio::time::sleep(Duration::from_secs(ctx.pick(2, 1))).await;
    let idle = process.status_mib("VmRSS")? * MIB_TO_MB;
    Ok((process, scenario, idle))
}

pub async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let reps = ctx.pick(3, 1);
    let (mut bare_idle, mut idle) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let db = BenchDatabase::sqlite()?;
        let no_plugins = empty_plugins_dir(db.dir())?;
        let (process, _, rss) = idle_process(ctx, &db, &no_plugins, false).await?;
        bare_idle.push(rss);
        process.stop().await;
    }
    let mut burst = None;
    for rep in 0..reps {
        let db = BenchDatabase::sqlite()?;
        let (host, _scenario, rss) = idle_process(ctx, &db, &ctx.plugins_dir, true).await?;
        idle.push(rss);
        if rep + 1 == reps {
            let start_peak = host.status_mib("VmHWM")? * MIB_TO_MB;
            host.reset_peak()?;
            let make = webhook_requests(host.addr, "memory", None)?;
            let result = load::closed_loop(
                host.addr,
                IN_FLIGHT,
                IN_FLIGHT as u64,
                Duration::from_secs(120),
                make,
            )
            .await?;
            let peak = host.status_mib("VmHWM")? * MIB_TO_MB;
            let after = host.status_mib("VmRSS")? * MIB_TO_MB;
            burst = Some((result, start_peak, peak, after, rss));
        }
        host.stop().await;
    }
    let (bare_idle, idle_all, idle) = (median(bare_idle.clone()), idle.clone(), median(idle));
    let Some((burst, start_peak, peak, after, burst_idle)) = burst else {
        anyhow::bail!("no burst was sent");
    };
    ctx.say(format!(
        "  [8] idle RSS {idle:.1} MB (median of {idle_all:.1?}; no plugins {bare_idle:.1} MB); \
         peak before the burst {start_peak:.1} MB; {IN_FLIGHT} webhooks at once: {}; peak {peak:.1} MB, \
         RSS after {after:.1} MB",
        burst.summary()
    ));
    let mut peak_row = Row::new(
        FIGURE,
        "peak RSS (VmHWM) with 1,000 webhooks in flight",
        "MB",
    )
    .value(peak)
    .baseline("the same process idle", burst_idle)
    .target(Target::AtMost(300.0))
    .note(format!(
        "{} of {IN_FLIGHT} acknowledged, {} refused ({}); VmHWM before the burst (the start \
         included) was {start_peak:.1} MB",
        burst.ok,
        burst.failed(),
        burst.first_error.as_deref().unwrap_or("none")
    ));
    if burst.failed() > 0 {
        peak_row = peak_row.caveat(format!(
            "only {} of the {IN_FLIGHT} were in flight in the host; the rest were refused.",
            burst.ok
        ));
    }
    Ok(vec![
        Row::new(
            FIGURE,
            "RSS idle, the built-in plugins loaded, Jira installed",
            "MB",
        )
        .value(idle)
        .baseline("same binary, no plugins", bare_idle)
        .target(Target::AtMost(40.0))
        .note(format!("median of {reps} processes: {idle_all:.1?} MB")),
        peak_row,
    ])
}
