//! What `cargo xtask` does, as a library too: the tests build the plugins and
//! pack a release archive through the same functions as the commands.

pub mod dist;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The first-party plugin crates; each becomes one `.wasm` in the plugins directory.
pub const PLUGINS: &[&str] = &[
    "trackbridge-plugin-jira",
    "trackbridge-plugin-vsts",
    "trackbridge-plugin-jira-server",
    "trackbridge-plugin-discord",
    "trackbridge-plugin-github",
];

/// The target plugins are built for.
pub const PLUGIN_TARGET: &str = "wasm32-wasip2";

/// The workspace root: the parent of this crate.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `cargo`, as the one running us names it.
pub fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Run `cmd`, failing when it does.
pub fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

/// The host signs with OpenSSL (`openssl-sys` links the system's library):
/// install its development files when they are missing and this is a Debian
/// machine we may install on, else say what to install.
fn ensure_openssl() -> anyhow::Result<()> {
    let found = |cmd: &mut Command| cmd.output().is_ok_and(|o| o.status.success());
    if found(Command::new("pkg-config").args(["--exists", "openssl"])) {
        return Ok(());
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root || !found(Command::new("apt-get").arg("--version")) {
        bail!(
            "OpenSSL's development files are missing: install them (Debian: apt-get install libssl-dev pkg-config)"
        );
    }
    println!("installing libssl-dev and pkg-config (the host links OpenSSL)");
    run(Command::new("apt-get").arg("update"))?;
    run(Command::new("apt-get").args([
        "install",
        "-y",
        "--no-install-recommends",
        "libssl-dev",
        "pkg-config",
    ]))
}

fn ensure_wasm_target() -> anyhow::Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("running rustup (the wasm32-wasip2 target is installed through rustup)")?;
    if !String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l.trim() == PLUGIN_TARGET)
    {
        run(Command::new("rustup").args(["target", "add", PLUGIN_TARGET]))?;
    }
    Ok(())
}

/// The directory the plugins are built into.
pub fn plugins_build_dir(root: &Path) -> PathBuf {
    root.join("target/plugins")
        .join(PLUGIN_TARGET)
        .join("release")
}

/// The file a plugin crate builds to.
pub fn plugin_file_name(krate: &str) -> String {
    format!("{}.wasm", krate.replace('-', "_"))
}

/// Build the plugins; returns the directory holding the `.wasm` files.
pub fn build_plugins(root: &Path) -> anyhow::Result<PathBuf> {
    ensure_wasm_target()?;
    ensure_openssl()?;
    // A target directory of their own, so building plugins never waits on (or
    // invalidates) the host's build, nor on a `cargo test` that is running.
    let mut cmd = cargo();
    cmd.current_dir(root)
        .env("CARGO_TARGET_DIR", root.join("target/plugins"))
        .args(["build", "--release", "--target", PLUGIN_TARGET]);
    for p in PLUGINS {
        cmd.args(["-p", p]);
    }
    run(&mut cmd)?;
    Ok(plugins_build_dir(root))
}

/// The target triple `rustc` builds for by default (this machine's).
pub fn host_target() -> anyhow::Result<String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(&rustc)
        .arg("-vV")
        .output()
        .with_context(|| format!("running {rustc} -vV"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .context("`rustc -vV` names no host target")
}
