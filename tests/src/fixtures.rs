//! Fixture files in `tests/fixtures` (their sources: `tests/fixtures/SOURCES.md`).

use std::path::PathBuf;

use serde_json::Value;

/// `<repo>/tests/fixtures`.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The raw bytes of fixture `path` (relative to [`fixtures_dir`]); panics when it is missing.
pub fn fixture_bytes(path: &str) -> Vec<u8> {
    let full = fixtures_dir().join(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("fixture {}: {e}", full.display()))
}

/// Fixture `path` parsed as JSON; panics when it is missing or not JSON.
pub fn fixture(path: &str) -> Value {
    let bytes = fixture_bytes(path);
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("fixture {path} is not JSON: {e}"))
}
