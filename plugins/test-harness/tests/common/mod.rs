//! What every test file shares: where the built plugins and the fixtures are.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::Value;
use trackbridge_plugin_test::{Harness, HarnessBuilder};

/// Where `cargo xtask plugins` puts the built plugins, from this crate.
const WORKSPACE_PLUGINS_DIR: &str = "../../target/plugins/wasm32-wasip2/release";

/// The public URL the harness tells plugins (for webhook URLs they register).
pub const PUBLIC_URL: &str = "https://sync.example.com";

/// The built plugin `file`: in `TRACKBRIDGE_PLUGINS_DIR` when set (as
/// `cargo xtask test` does), else in the workspace's target directory.
pub fn plugin_path(file: &str) -> PathBuf {
    let dir = match std::env::var_os("TRACKBRIDGE_PLUGINS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(WORKSPACE_PLUGINS_DIR),
    };
    let path = dir.join(file);
    assert!(
        path.is_file(),
        "the built plugin {} is missing: build the plugins with `cargo xtask plugins` \
         (or set TRACKBRIDGE_PLUGINS_DIR to the directory holding {file})",
        path.display()
    );
    path
}

/// The harness of the built plugin `file`, with [`PUBLIC_URL`].
pub async fn harness(file: &str) -> Harness {
    harness_with(file, Harness::builder()).await
}

pub async fn harness_with(file: &str, builder: HarnessBuilder) -> Harness {
    init_logs();
    builder
        .public_url(PUBLIC_URL)
        .load(plugin_path(file))
        .await
        .unwrap_or_else(|e| panic!("loading {file}: {e}"))
}

/// The bytes of `tests/fixtures/<path>` of the workspace.
pub fn fixture(path: &str) -> Vec<u8> {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("reading {}: {e}", full.display()))
}

pub fn fixture_json(path: &str) -> Value {
    serde_json::from_slice(&fixture(path)).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
}

/// Logs of the harness and the plugins when `RUST_LOG` asks for them.
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
