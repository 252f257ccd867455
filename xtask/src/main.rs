//! Project tasks that need more than one cargo invocation:
//!
//! - `cargo xtask plugins` builds the first-party plugins for `wasm32-wasip2`
//!   (installing the target when it is missing) into `target/plugins`.
//! - `cargo xtask serve [ARGS]` builds the plugins and runs `trackbridge serve ARGS`.
//! - `cargo xtask test [ARGS]` builds the plugins and runs every test of the workspace,
//!   then the end-to-end suite once more on PostgreSQL when `TRACKBRIDGE_TEST_POSTGRES`
//!   holds an admin URL (`.ci/run` sets it), and last the benchmark smoke check
//!   (`bench --quick`).
//! - `cargo xtask bench [--quick] [ARGS]` builds the plugins and runs the
//!   benchmarks (`tests/bench`): in release, in `target/bench`, writing
//!   `BENCHMARKS.md`; with `--quick`, a debug smoke check (under 2 minutes) that
//!   fails when a figure is not produced. ARGS go to the bench binary
//!   (`--only 1,4`, `--out FILE`, …).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// Set to a PostgreSQL admin URL to run the end-to-end suite on PostgreSQL too.
const POSTGRES_ENV: &str = "TRACKBRIDGE_TEST_POSTGRES";

/// The first-party plugin crates; each becomes one `.wasm` in the plugins directory.
const PLUGINS: &[&str] = &[
    "trackbridge-plugin-jira",
    "trackbridge-plugin-vsts",
    "trackbridge-plugin-jira-server",
    "trackbridge-plugin-discord",
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn ensure_wasm_target() -> anyhow::Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("running rustup (the wasm32-wasip2 target is installed through rustup)")?;
    if !String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l.trim() == "wasm32-wasip2")
    {
        run(Command::new("rustup").args(["target", "add", "wasm32-wasip2"]))?;
    }
    Ok(())
}

/// Build the plugins; returns the directory holding the `.wasm` files.
fn build_plugins(root: &Path) -> anyhow::Result<PathBuf> {
    ensure_wasm_target()?;
    // A target directory of their own, so building plugins never waits on (or
    // invalidates) the host's build.
    let target_dir = root.join("target/plugins");
    let mut cmd = cargo();
    cmd.current_dir(root)
        .env("CARGO_TARGET_DIR", &target_dir)
        .args(["build", "--release", "--target", "wasm32-wasip2"]);
    for p in PLUGINS {
        cmd.args(["-p", p]);
    }
    run(&mut cmd)?;
    Ok(target_dir.join("wasm32-wasip2/release"))
}

/// Build the bench and `trackbridge` binaries and run the bench.
///
/// The full run is a release build in `target/bench`, a target directory of its
/// own, so it never waits on the lock of the debug build the tests use (nor
/// invalidates it). The quick run uses the debug build in the usual target
/// directory, which CI has built already for the tests.
fn bench(root: &Path, quick: bool, extra: &[String]) -> anyhow::Result<()> {
    let plugins = build_plugins(root)?;
    let mut build = cargo();
    build.current_dir(root).args([
        "build",
        "-p",
        "trackbridge-bench",
        "-p",
        "trackbridge-host",
        "--bins",
    ]);
    let (target_dir, profile) = if quick {
        let dir = std::env::var_os("CARGO_TARGET_DIR")
            .filter(|d| !d.is_empty())
            .map(|d| root.join(d))
            .unwrap_or_else(|| root.join("target"));
        (dir, "debug")
    } else {
        let dir = root.join("target/bench");
        build.env("CARGO_TARGET_DIR", &dir).arg("--release");
        (dir, "release")
    };
    run(&mut build)?;
    let bin = target_dir.join(profile);
    let mut cmd = Command::new(bin.join("trackbridge-bench"));
    cmd.current_dir(root)
        .env("TRACKBRIDGE_PLUGINS_DIR", &plugins)
        .arg("--trackbridge")
        .arg(bin.join("trackbridge"));
    if quick {
        cmd.args(["--quick", "--command", "cargo xtask bench --quick"]);
    } else {
        cmd.arg("--out")
            .arg(root.join("BENCHMARKS.md"))
            .args(["--command", "cargo xtask bench"]);
    }
    run(cmd.args(extra))
}

fn main() -> anyhow::Result<()> {
    let root = workspace_root();
    let mut args = std::env::args().skip(1);
    let task = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    match task.as_str() {
        "plugins" => {
            let dir = build_plugins(&root)?;
            println!("plugins built in {}", dir.display());
        }
        "serve" => {
            let dir = build_plugins(&root)?;
            run(cargo()
                .current_dir(&root)
                .env("TRACKBRIDGE_PLUGINS_DIR", &dir)
                .args([
                    "run",
                    "--quiet",
                    "-p",
                    "trackbridge-host",
                    "--bin",
                    "trackbridge",
                    "--",
                    "serve",
                ])
                .args(&rest))?;
        }
        "test" => {
            let dir = build_plugins(&root)?;
            run(cargo()
                .current_dir(&root)
                .env("TRACKBRIDGE_PLUGINS_DIR", &dir)
                .env_remove(POSTGRES_ENV)
                .args(["test", "--workspace"])
                .args(&rest))?;
            // The end-to-end suite again on PostgreSQL, when one is configured.
            if let Some(url) = std::env::var(POSTGRES_ENV).ok().filter(|u| !u.is_empty()) {
                println!("end-to-end suite on PostgreSQL ({url})");
                run(cargo()
                    .current_dir(&root)
                    .env("TRACKBRIDGE_PLUGINS_DIR", &dir)
                    .args(["test", "-p", "trackbridge-e2e"])
                    .args(&rest))?;
            }
            // Last, so a failing figure never hides a failing test: the
            // benchmarks still produce every figure.
            println!("benchmark smoke check (cargo xtask bench --quick)");
            bench(&root, true, &[])?;
        }
        "bench" => {
            let quick = rest.iter().any(|a| a == "--quick");
            let extra: Vec<String> = rest.into_iter().filter(|a| a != "--quick").collect();
            bench(&root, quick, &extra)?;
        }
        _ => bail!(
            "usage: cargo xtask <plugins | serve [ARGS] | test [ARGS] | bench [--quick] [ARGS]>"
        ),
    }
    Ok(())
}
