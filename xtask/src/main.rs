//! Project tasks that need more than one cargo invocation:
//!
//! - `cargo xtask plugins` builds the first-party plugins for `wasm32-wasip2`
//!   (installing the target when it is missing) into `target/plugins`.
//! - `cargo xtask serve [ARGS]` builds the plugins and the host, then runs
//!   `trackbridge serve ARGS`.
//! - `cargo xtask test [ARGS]` builds the plugins and runs every test of the workspace,
//!   then the end-to-end suite once more on PostgreSQL when `TRACKBRIDGE_TEST_POSTGRES`
//!   holds an admin URL (`.ci/run` sets it), and last the benchmark smoke check
//!   (`bench --quick`).
//! - `cargo xtask bench [--quick] [ARGS]` builds the plugins and runs the
//!   benchmarks (`tests/bench`): in release, in `target/bench`, writing
//!   `BENCHMARKS.md`; with `--quick`, a debug smoke check (under 2 minutes) that
//!   fails when a figure is not produced. ARGS go to the bench binary
//!   (`--only 1,4`, `--out FILE`, …).
//! - `cargo xtask dist [--debug] [--out DIR]` builds the release archive
//!   `dist/trackbridge-<version>-<target>.tar.gz` ([`xtask::dist`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use xtask::{build_plugins, cargo, run, workspace_root};

/// Set to a PostgreSQL admin URL to run the end-to-end suite on PostgreSQL too.
const POSTGRES_ENV: &str = "TRACKBRIDGE_TEST_POSTGRES";

/// The debug build of the `trackbridge` binary, the one `cargo xtask test`
/// builds too: `--workspace` resolves dependency features as the test build
/// does, so `serve` after `test` (or the other way round) compiles nothing
/// again. Returns the binary's path.
fn build_host_binary(root: &Path) -> anyhow::Result<PathBuf> {
    println!("building the host (the first build takes several minutes)");
    run(cargo()
        .current_dir(root)
        .args(["build", "--workspace", "--bin", "trackbridge"]))?;
    Ok(target_dir(root).join("debug/trackbridge"))
}

/// Where cargo builds the host: `$CARGO_TARGET_DIR`, else `target/`.
fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .filter(|d| !d.is_empty())
        .map(|d| root.join(d))
        .unwrap_or_else(|| root.join("target"))
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
        (target_dir(root), "debug")
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

/// `cargo xtask dist [--debug] [--out DIR]`.
fn dist(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let mut debug = false;
    let mut out = root.join("dist");
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--debug" => debug = true,
            "--out" => out = PathBuf::from(args.next().context("--out needs a directory")?),
            other => bail!("unknown argument `{other}` (cargo xtask dist [--debug] [--out DIR])"),
        }
    }
    let plugins = build_plugins(root)?;
    // The release build has a target directory of its own, like the
    // benchmarks', so it never invalidates the debug build of the tests.
    let (binary, target) = if debug {
        (build_host_binary(root)?, xtask::host_target()?)
    } else {
        let dir = root.join("target/dist");
        run(cargo()
            .current_dir(root)
            .env("CARGO_TARGET_DIR", &dir)
            .args([
                "build",
                "--release",
                "-p",
                "trackbridge-host",
                "--bin",
                "trackbridge",
            ]))?;
        (dir.join("release/trackbridge"), xtask::host_target()?)
    };
    let archive = xtask::dist::pack(
        &xtask::dist::Release {
            binary: &binary,
            plugins_dir: &plugins,
            packaging_dir: &root.join("packaging"),
            version: env!("CARGO_PKG_VERSION"),
            target: &target,
        },
        &out,
    )?;
    println!("release archive: {}", archive.display());
    Ok(())
}

/// The arguments `cargo xtask serve` passes to the server: as given, less a
/// leading `--` (the README's `cargo xtask serve -- --help`), which the
/// server would refuse as an argument of its own.
fn server_args(rest: &[String]) -> &[String] {
    match rest.split_first() {
        Some((first, args)) if first == "--" => args,
        _ => rest,
    }
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
            let binary = build_host_binary(&root)?;
            run(Command::new(binary)
                .current_dir(&root)
                .env("TRACKBRIDGE_PLUGINS_DIR", &dir)
                .arg("serve")
                .args(server_args(&rest)))?;
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
        "dist" => dist(&root, &rest)?,
        _ => bail!(
            "usage: cargo xtask <plugins | serve [ARGS] | test [ARGS] | bench [--quick] [ARGS] | dist [--debug] [--out DIR]>"
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::server_args;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn a_leading_separator_is_not_passed_to_the_server() {
        assert_eq!(
            server_args(&strings(&["--", "--help"])),
            strings(&["--help"])
        );
        assert_eq!(
            server_args(&strings(&["--listen", "127.0.0.1:9", "--"])),
            strings(&["--listen", "127.0.0.1:9", "--"])
        );
        assert!(server_args(&[]).is_empty());
    }
}
