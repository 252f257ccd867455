//! `trackbridge-bench`: the figures of issue #7, each beside a baseline
//! measured in the same run, as a ratio. Run through `cargo xtask bench
//! [--quick]`, which builds the plugins and the `trackbridge` binary first.
//!
//! Everything runs on loopback, in this process or in `trackbridge serve`
//! processes it starts; every load is bounded in count and in time.
//! `--quick` is the smoke check: small counts, and a non-zero exit when a
//! figure was not produced (its value is not judged).

mod baseline;
mod ctx;
mod figures;
mod host;
mod load;
mod native;
mod profile;
mod report;
mod scenario;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, bail};
use clap::Parser;

use crate::ctx::Ctx;
use crate::report::{Machine, Row};

#[derive(Parser)]
#[command(about = "Measure the host's figures (issue #7) beside their baselines.")]
struct Args {
    /// Small counts and short runs; fail when a figure is not produced.
    #[arg(long)]
    quick: bool,
    /// The `trackbridge` binary (default: beside this one).
    #[arg(long)]
    trackbridge: Option<PathBuf>,
    /// PostgreSQL URL the `tb_bench_*` databases are created from.
    #[arg(
        long,
        env = "TRACKBRIDGE_BENCH_POSTGRES",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    postgres: String,
    /// Write the results into this Markdown file (its generated section).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Only these figures (1–8), e.g. `--only 1,4` (for profiling one).
    #[arg(long, value_delimiter = ',')]
    only: Vec<u8>,
    /// The command line to record in the results.
    #[arg(long, default_value = "cargo xtask bench")]
    command: String,
    /// For a profiler: only call this export of the wasm Jira provider
    /// `--count` times in a loop, then exit.
    #[arg(long, value_enum)]
    repeat_call: Option<figures::sandbox::Export>,
    /// Calls for `--repeat-call`.
    #[arg(long, default_value_t = 2000)]
    count: usize,
    /// For a profiler: install the Jira scenario on the host at ADDR (admin
    /// token `bench-admin-token`), send signed webhooks for `--drive-secs`
    /// seconds, then exit.
    #[arg(long, value_name = "ADDR")]
    drive: Option<std::net::SocketAddr>,
    /// With `--drive`: rotate over this many linked issues (0: the fixture as is).
    #[arg(long, default_value_t = 0)]
    drive_groups: usize,
    #[arg(long, default_value_t = 10.0)]
    drive_secs: f64,
    #[arg(long, default_value_t = 64)]
    drive_connections: usize,
}

fn trackbridge_binary(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let path = match given {
        Some(p) => p,
        None => std::env::current_exe()?
            .parent()
            .context("this binary has no directory")?
            .join("trackbridge"),
    };
    if !path.is_file() {
        bail!(
            "{} is not built (cargo build -p trackbridge-host --bin trackbridge, or pass --trackbridge)",
            path.display()
        );
    }
    Ok(path)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Silent unless asked: the host's own logs, for looking into a figure.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    // `$TRACKBRIDGE_PLUGINS_DIR` when set (xtask sets it), else the harness
    // builds them; either way a directory with exactly the built-in plugins.
    let plugins_dir = tokio::task::spawn_blocking(trackbridge_e2e::plugins::plugins_dir)
        .await
        .context("finding the built plugins")?;
    let ctx = Ctx::new(
        args.quick,
        plugins_dir,
        trackbridge_binary(args.trackbridge)?,
        args.postgres,
    );
    if let Some(export) = args.repeat_call {
        return profile::repeat_call(&ctx, export, args.count).await;
    }
    if let Some(addr) = args.drive {
        return profile::drive(
            addr,
            args.drive_connections,
            args.drive_groups,
            args.drive_secs,
        )
        .await;
    }
    let machine = Machine::detect();
    ctx.say(format!(
        "trackbridge-bench{}: nproc {}, {}, kernel {}, {}; build {}; source {}",
        if ctx.quick { " --quick" } else { "" },
        machine.nproc,
        machine.cpu,
        machine.kernel,
        machine.date,
        machine.profile,
        machine.source
    ));

    let wanted = |n: u8| args.only.is_empty() || args.only.contains(&n);
    let started = Instant::now();
    let mut rows: Vec<Row> = Vec::new();
    macro_rules! figure {
        ($n:literal $(| $also:literal)*, $name:literal, $run:path) => {
            if wanted($n) $(|| wanted($also))* {
                ctx.say(format!("figure {}: {}", $n, $name));
                let t = Instant::now();
                match $run(&ctx).await {
                    Ok(r) => rows.extend(r),
                    Err(e) => {
                        ctx.say(format!("  figure {} failed: {e:#}", $n));
                        rows.push(Row::failed(
                            concat!($n, ". ", $name),
                            "(every metric)",
                            &format!("{e:#}"),
                        ));
                    }
                }
                ctx.say(format!("  ({:.1} s)", t.elapsed().as_secs_f64()));
            }
        };
    }
    figure!(1, "Ingress", figures::ingress::run);
    figure!(2, "Applied events", figures::applied::run);
    figure!(
        3 | 4,
        "Sandbox overhead and per call",
        figures::sandbox::run
    );
    figure!(5, "Start", figures::start::run);
    figure!(6, "Hot swap under load", figures::swap::run);
    figure!(7, "Sync latency", figures::sync::run);
    figure!(8, "Memory", figures::memory::run);
    figure!(9, "Sustained load", figures::sustained::run);

    ctx.say(format!(
        "\nall figures in {:.1} s\n",
        started.elapsed().as_secs_f64()
    ));
    ctx.say(report::text_table(&rows));
    if let Some(out) = &args.out {
        let section = report::results_section(&args.command, &machine, &rows, &ctx.log());
        report::write_benchmarks_md(out, &section)?;
        println!("results written to {}", out.display());
    }
    let missing: Vec<String> = rows
        .iter()
        .filter(|r| !r.produced())
        .map(|r| format!("{} — {}", r.figure, r.metric))
        .collect();
    if !missing.is_empty() {
        bail!("figures not produced: {}", missing.join("; "));
    }
    Ok(())
}
