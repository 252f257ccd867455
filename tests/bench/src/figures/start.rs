//! Figure 5, start: from spawning `trackbridge serve` to its ready path
//! answering 200, on a SQLite database whose schema is already there (a
//! restart, the usual case). Baseline: the same binary with no plugin to load.
//!
//! Each variant is one [`Variant`]: with an empty compiled-artifact cache
//! (every component compiled), and with a warm one (a restart).

use std::path::Path;
use std::time::Duration;

use crate::ctx::Ctx;
use crate::host::{BenchDatabase, READY_PATH, ServeProcess, empty_plugins_dir, migrate};
use crate::report::{Row, Target};

const FIGURE: &str = "5. Start";

/// The state of the compiled-artifact cache before each measured start.
#[derive(Clone, Copy, Debug)]
pub enum Cache {
    /// A cache directory of its own, empty: every component is compiled (and
    /// written to the cache) during the start.
    Empty,
    /// The directory a first, unmeasured start filled: nothing is compiled.
    Warm,
}

impl Cache {
    /// Arguments that point the host at its cache directory `dir`.
    fn args(self, dir: &Path) -> Vec<String> {
        match self {
            Cache::Empty | Cache::Warm => {
                vec!["--plugin-cache-dir".into(), dir.display().to_string()]
            }
        }
    }
}

pub struct Variant {
    pub label: &'static str,
    pub plugins: bool,
    pub cache: Cache,
}

/// Median of `reps` starts of `variant`, in ms, with every measurement.
pub async fn measure(ctx: &Ctx, variant: &Variant, reps: usize) -> anyhow::Result<(f64, Vec<f64>)> {
    let db = BenchDatabase::sqlite()?;
    migrate(&ctx.trackbridge, db.url()).await?;
    let plugins = if variant.plugins {
        ctx.plugins_dir.clone()
    } else {
        empty_plugins_dir(db.dir())?
    };
    let mut times = Vec::with_capacity(reps);
    if let Cache::Warm = variant.cache {
        let extra = variant.cache.args(&db.dir().join("cache-warm"));
        let log = db.dir().join("start-fill.log");
        ServeProcess::start(&ctx.trackbridge, db.url(), &plugins, &extra, &log)
            .await?
            .stop()
            .await;
    }
    for rep in 0..reps {
        let cache_dir = match variant.cache {
            Cache::Empty => db.dir().join(format!("cache-{rep}")),
            Cache::Warm => db.dir().join("cache-warm"),
        };
        let extra = variant.cache.args(&cache_dir);
        let log = db.dir().join(format!("start-{rep}.log"));
        let process =
            ServeProcess::start(&ctx.trackbridge, db.url(), &plugins, &extra, &log).await?;
        times.push(process.ready_after.as_secs_f64() * 1000.0);
        process.stop().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    Ok((sorted[sorted.len() / 2], times))
}

pub async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let reps = ctx.pick(5, 1);
    let baseline = Variant {
        label: "same binary, no plugins",
        plugins: false,
        cache: Cache::Empty,
    };
    let (base, base_all) = measure(ctx, &baseline, reps).await?;
    ctx.say(format!(
        "  [5] {}: median {base:.0} ms of {base_all:.0?}",
        baseline.label
    ));
    let mut rows = Vec::new();
    for (variant, target) in [
        (
            Variant {
                label: "the built-in plugins, empty compiled-artifact cache",
                plugins: true,
                cache: Cache::Empty,
            },
            None,
        ),
        (
            Variant {
                label: "the built-in plugins, warm compiled-artifact cache",
                plugins: true,
                cache: Cache::Warm,
            },
            Some(Target::AtMost(100.0)),
        ),
    ] {
        let (median, all) = measure(ctx, &variant, reps).await?;
        ctx.say(format!(
            "  [5] {}: median {median:.0} ms of {all:.0?}",
            variant.label
        ));
        let mut row = Row::new(
            FIGURE,
            format!("process start → {READY_PATH} 200, {}", variant.label),
            "ms",
        )
        .value(median)
        .baseline(baseline.label, base)
        .note(format!("median of {reps} starts"));
        if let Some(target) = target {
            row = row.target(target);
        }
        rows.push(row);
    }
    Ok(rows)
}
