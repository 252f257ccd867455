//! Building the component under test, so `cargo test` always runs the code
//! as it is now rather than whatever `.wasm` an earlier build left behind.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::HarnessError;

/// Builds the plugin crate whose manifest directory is `manifest_dir`
/// (`env!("CARGO_MANIFEST_DIR")` in its tests) for `wasm32-wasip2` in release
/// mode and returns the component's path, as cargo reports it (so
/// `CARGO_TARGET_DIR` and workspaces are honoured). Cargo's own output goes
/// to the test's stderr.
pub fn build_component(manifest_dir: impl AsRef<Path>) -> Result<PathBuf, HarnessError> {
    let manifest = manifest_dir.as_ref().join("Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(&cargo)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--lib"])
        .args([
            "--message-format",
            "json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(&manifest)
        .output()
        .map_err(|e| HarnessError::Build(format!("running {cargo}: {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint =
            if stderr.contains("wasm32-wasip2") && stderr.contains("target may not be installed") {
                " (run `rustup target add wasm32-wasip2` once)"
            } else {
                ""
            };
        return Err(HarnessError::Build(format!(
            "cargo build --release --target wasm32-wasip2 failed{hint}:\n{stderr}"
        )));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter(|message| {
            message["manifest_path"]
                .as_str()
                .is_some_and(|p| Path::new(p) == manifest || Path::new(p).canonicalize().ok() == manifest.canonicalize().ok())
        })
        .flat_map(|message| {
            message["filenames"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .find(|f| f.extension().is_some_and(|e| e == "wasm"))
        .ok_or_else(|| {
            HarnessError::Build(format!(
                "the build of {} wrote no .wasm: does its [lib] have crate-type = [\"cdylib\", \"rlib\"]?",
                manifest.display()
            ))
        })
}
