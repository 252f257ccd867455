//! The wasm plugins under test, built once per test process.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// Every plugin crate the tests load. A new plugin is one more line here.
pub const PLUGIN_CRATES: &[&str] = &[
    "trackbridge-plugin-jira",
    "trackbridge-plugin-vsts",
    "trackbridge-plugin-jira-server",
    "trackbridge-plugin-discord",
];

/// The target the plugins are built for.
pub const PLUGIN_TARGET: &str = "wasm32-wasip2";

/// Overrides the build: a directory that already holds the built `.wasm` files.
pub const PLUGINS_DIR_ENV: &str = "TRACKBRIDGE_PLUGINS_DIR";

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The directory holding the built plugins.
///
/// `$TRACKBRIDGE_PLUGINS_DIR` when set; otherwise the plugins are built (once per process) in
/// release mode for `wasm32-wasip2` into `<workspace>/target/plugins`, a target dir of their own
/// so the build never waits for the lock of the cargo that runs the tests. Blocking: call it
/// from `spawn_blocking` in async code. Panics when the build fails.
pub fn plugins_dir() -> PathBuf {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(resolve)
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn resolve() -> Result<PathBuf, String> {
    let built = match std::env::var_os(PLUGINS_DIR_ENV).filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => build()?,
    };
    private_copy(&built)
}

/// Exactly the listed plugins, linked into a directory of this test process: the
/// build directory may hold other `.wasm` files (a half-built plugin, a test
/// plugin) that the host would otherwise try to load. (A static is never dropped,
/// so the directory stays behind; it holds only symbolic links.)
fn private_copy(built: &std::path::Path) -> Result<PathBuf, String> {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = match DIR.get() {
        Some(dir) => dir,
        None => {
            let made = tempfile::tempdir().map_err(|e| format!("temporary plugins dir: {e}"))?;
            DIR.get_or_init(|| made)
        }
    };
    for krate in PLUGIN_CRATES {
        let name = format!("{}.wasm", krate.replace('-', "_"));
        let (from, to) = (built.join(&name), dir.path().join(&name));
        if !from.is_file() {
            return Err(format!(
                "{} is not built (cargo xtask plugins)",
                from.display()
            ));
        }
        if !to.exists() {
            std::os::unix::fs::symlink(&from, &to)
                .map_err(|e| format!("linking {} from {}: {e}", name, built.display()))?;
        }
    }
    Ok(dir.path().to_path_buf())
}

fn build() -> Result<PathBuf, String> {
    let root = workspace_root();
    let target_dir = root.join("target").join("plugins");
    // Already installed is fine, and so is failing offline: the build below says what is missing.
    let _ = Command::new("rustup")
        .args(["target", "add", PLUGIN_TARGET])
        .output();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["build", "--release", "--target", PLUGIN_TARGET])
        .env("CARGO_TARGET_DIR", &target_dir);
    for krate in PLUGIN_CRATES {
        cmd.args(["-p", krate]);
    }
    let output = cmd
        .output()
        .map_err(|e| format!("could not run cargo to build the plugins: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "building the plugins failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let dir = target_dir.join(PLUGIN_TARGET).join("release");
    for krate in PLUGIN_CRATES {
        let wasm = dir.join(format!("{}.wasm", krate.replace('-', "_")));
        if !wasm.is_file() {
            return Err(format!("the build produced no {}", wasm.display()));
        }
    }
    Ok(dir)
}
