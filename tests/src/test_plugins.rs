//! Plugins that exist only for tests (e.g. one that misbehaves on request),
//! built once per test process into a target directory of their own so they
//! never land in the directory the server loads in production.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::plugins::{PLUGIN_TARGET, plugins_dir, workspace_root};

/// Test-only plugin crates.
pub const TEST_PLUGIN_CRATES: &[&str] = &[
    "trackbridge-test-plugin-faulty",
    "trackbridge-test-plugin-jira-next",
    "trackbridge-test-plugin-jira-trap",
    "trackbridge-test-plugin-wrong-contract",
    "trackbridge-test-plugin-route-hijack",
    "trackbridge-test-plugin-tasks",
    "trackbridge-test-plugin-tasks-legacy",
];

/// The built `.wasm` of a test plugin crate. Blocking; panics when the build fails.
pub fn test_plugin(krate: &str) -> PathBuf {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = DIR
        .get_or_init(build)
        .clone()
        .unwrap_or_else(|e| panic!("{e}"));
    dir.join(format!("{}.wasm", krate.replace('-', "_")))
}

fn build() -> Result<PathBuf, String> {
    let target_dir = workspace_root().join("target").join("test-plugins");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "--release", "--target", PLUGIN_TARGET])
        .env("CARGO_TARGET_DIR", &target_dir);
    for krate in TEST_PLUGIN_CRATES {
        cmd.args(["-p", krate]);
    }
    let output = cmd
        .output()
        .map_err(|e| format!("could not run cargo to build the test plugins: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "building the test plugins failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(target_dir.join(PLUGIN_TARGET).join("release"))
}

/// A fresh plugins directory holding the first-party plugins plus `extra`
/// `.wasm` files (copied, so a test can never disturb the shared build).
pub fn plugins_dir_with(extra: &[PathBuf]) -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    let first_party = plugins_dir();
    for entry in std::fs::read_dir(&first_party)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "wasm") {
            copy_into(&path, dir.path())?;
        }
    }
    for path in extra {
        copy_into(path, dir.path())?;
    }
    Ok(dir)
}

fn copy_into(file: &Path, dir: &Path) -> anyhow::Result<()> {
    let name = file
        .file_name()
        .ok_or_else(|| anyhow::anyhow!("{} has no file name", file.display()))?;
    std::fs::copy(file, dir.join(name))?;
    Ok(())
}
