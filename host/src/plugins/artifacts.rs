//! Compiled plugin modules, cached on disk: compiling a component costs tens
//! of milliseconds to seconds, loading its compiled form well under one.
//!
//! An artifact is keyed by the module's sha256, the wasmtime version and the
//! engine's compatibility hash (its settings): a cache made by another build
//! or with other limits is never loaded, only missed. wasmtime checks the
//! artifact's header again when loading it.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::metrics::Metrics;

/// Feeds `Hash` output into SHA-256, for a key that is stable across runs
/// (std's hashers promise no such thing).
struct StableHasher(Sha256);

impl Hasher for StableHasher {
    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(digest[..8].try_into().unwrap_or([0; 8]))
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// Where compiled artifacts live, if anywhere.
pub struct ArtifactCache {
    dir: Option<PathBuf>,
    /// wasmtime's version and the engine's settings, hashed into every file name.
    engine_key: String,
}

impl ArtifactCache {
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> ArtifactCache {
        let mut hasher = StableHasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        // The hash covers the wasmtime version too.
        let engine_key = format!("{:016x}", hasher.finish());
        ArtifactCache { dir, engine_key }
    }

    fn path(&self, sha256: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        Some(dir.join(format!("{sha256}-{}.cwasm", self.engine_key)))
    }

    /// The component for `bytes` (whose sha256 is `sha256`): from the cache
    /// when it holds it, else compiled (and cached).
    pub fn component(
        &self,
        engine: &Engine,
        bytes: &[u8],
        sha256: &str,
        metrics: &Metrics,
    ) -> wasmtime::Result<Component> {
        let cached = self.path(sha256).filter(|p| p.is_file()).filter(|p| match trusted(p) {
            Ok(()) => true,
            Err(why) => {
                tracing::warn!(path = %p.display(), %why, "a cached artifact is not loaded (native code must be writable by this host's user only); compiling instead");
                false
            }
        });
        if let Some(path) = cached {
            // SAFETY: wasmtime requires that a deserialized artifact come from a
            // trusted source. These files are written only by this host, below the
            // operator's cache directory, under a name that includes the module
            // hash and the engine's settings; `trusted` has checked that nobody but
            // this host's user can have written the file or replaced it in its
            // directory; wasmtime checks the header (version, settings) and
            // refuses artifacts of another engine.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => {
                    metrics.plugin_cache_hits.inc();
                    tracing::debug!(path = %path.display(), "compiled plugin loaded from the cache");
                    return Ok(component);
                }
                Err(err) => {
                    tracing::warn!(path = %path.display(), error = %err, "unusable cached artifact; compiling again");
                }
            }
        }
        let started = std::time::Instant::now();
        let component = Component::new(engine, bytes)?;
        metrics.plugin_compilations.inc();
        tracing::info!(
            sha256 = &sha256[..sha256.len().min(12)],
            elapsed_ms = started.elapsed().as_millis() as u64,
            "plugin module compiled"
        );
        if let Some(path) = self.path(sha256) {
            match component.serialize() {
                Ok(artifact) => {
                    if let Err(err) = write_atomically(&path, &artifact) {
                        tracing::warn!(path = %path.display(), error = %err, "cannot cache a compiled plugin");
                    }
                }
                Err(err) => tracing::warn!(error = %err, "cannot serialize a compiled plugin"),
            }
        }
        Ok(component)
    }
}

/// Whether native code at `path` can only have come from this host's user:
/// the file and its directory belong to this user (or root), and neither is
/// writable by its group or by others.
#[cfg(unix)]
fn trusted(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt as _;
    let me = rustix::process::getuid().as_raw();
    for (what, p) in [("file", Some(path)), ("directory", path.parent())] {
        let Some(p) = p else { continue };
        let meta = std::fs::metadata(p).map_err(|e| format!("{what}: {e}"))?;
        if meta.uid() != me && meta.uid() != 0 {
            return Err(format!(
                "the {what} belongs to user {}, not {me}",
                meta.uid()
            ));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(format!(
                "the {what} is writable by its group or by others (mode {:o})",
                meta.mode() & 0o777
            ));
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn trusted(_path: &Path) -> Result<(), String> {
    Ok(())
}

/// Write to a temporary file of its own beside `path`, then rename: a reader
/// never sees half an artifact, and two writers of the same one (threads or
/// processes) never write into each other's file.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp-{}-{n}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(&tmp)?, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn native_code_others_could_have_written_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let file = dir.path().join("a.cwasm");
        write_atomically(&file, b"x").unwrap();
        assert_eq!(trusted(&file), Ok(()));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(trusted(&file).unwrap_err().contains("file is writable"));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(
            trusted(&file)
                .unwrap_err()
                .contains("directory is writable")
        );
    }
}

/// The hex sha256 of a module.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
