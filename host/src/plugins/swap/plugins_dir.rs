//! The plugins directory: read at start, and watched for changed files when
//! asked.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::{PluginManager, SwapError};
use crate::plugins::artifacts::sha256_hex;
use crate::plugins::loader::{self, LoadError};
use crate::store::{SwitchIf, SwitchRequest};

impl PluginManager {
    /// Record every plugin file of the plugins directory; a module not seen
    /// before under its name becomes the one that serves.
    pub(super) async fn install_dir(&self) -> Result<(), SwapError> {
        let dir = &self.plugins_dir;
        let read_err = |source| SwapError::ReadDir {
            dir: dir.display().to_string(),
            source,
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_err)? {
            let path = entry.map_err(read_err)?.path();
            if path.extension().is_some_and(|e| e == "wasm") {
                paths.push(path);
            }
        }
        paths.sort();
        let mut names = HashMap::new();
        for path in paths {
            // A file that is not a valid plugin stops the start: a host silently
            // missing a provider would answer its trackers' webhooks with 404.
            let bytes = std::fs::read(&path).map_err(|source| LoadError::Read {
                path: path.display().to_string(),
                source,
            })?;
            let plugin = loader::load(&self.runtime, &bytes, &path.display().to_string()).await?;
            let name = plugin.info().name.clone();
            if names.insert(name.clone(), ()).is_some() {
                return Err(SwapError::Duplicate(name));
            }
            let (version, new) = self.record(&plugin, &bytes, "plugins-dir").await?;
            self.remember(version.id, plugin);
            let condition = if new {
                SwitchIf::Always
            } else {
                SwitchIf::NothingActive
            };
            let reason = format!("{} in the plugins directory", path.display());
            self.store
                .switch_plugin(&SwitchRequest {
                    name: &name,
                    to_version_id: version.id,
                    kind: "install",
                    by: "plugins-dir",
                    reason: &reason,
                    condition,
                })
                .await?;
        }
        Ok(())
    }

    /// Install a plugin file whenever it changes (development).
    pub(super) fn watch_dir(
        self: &Arc<Self>,
        mut stopped: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        use notify_debouncer_mini::notify::RecursiveMode;
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<PathBuf>>();
        let this = self.clone();
        tokio::spawn(async move {
            let debouncer = notify_debouncer_mini::new_debouncer(
                this.settings.watch_debounce,
                move |events: notify_debouncer_mini::DebounceEventResult| {
                    if let Ok(events) = events {
                        let _ = tx.send(events.into_iter().map(|e| e.path).collect());
                    }
                },
            );
            let mut debouncer = match debouncer {
                Ok(d) => d,
                Err(err) => {
                    tracing::error!(error = %err, "cannot watch the plugins directory");
                    return;
                }
            };
            if let Err(err) = debouncer
                .watcher()
                .watch(&this.plugins_dir, RecursiveMode::NonRecursive)
            {
                tracing::error!(dir = %this.plugins_dir.display(), error = %err, "cannot watch the plugins directory");
                return;
            }
            tracing::info!(dir = %this.plugins_dir.display(), "watching the plugins directory");
            loop {
                tokio::select! {
                    paths = rx.recv() => {
                        let Some(mut paths) = paths else { break };
                        paths.sort();
                        paths.dedup();
                        for path in paths.into_iter().filter(|p| p.extension().is_some_and(|e| e == "wasm")) {
                            this.install_changed_file(&path).await;
                        }
                    }
                    _ = stopped.changed() => break,
                }
            }
        })
    }

    pub(super) async fn install_changed_file(&self, path: &Path) {
        let Ok(bytes) = std::fs::read(path) else {
            return; // removed: the serving version stays
        };
        let sha = sha256_hex(&bytes);
        if self
            .registry
            .plugins()
            .iter()
            .any(|p| p.module().sha256 == sha)
        {
            return;
        }
        match self.install(&bytes, "watch").await {
            Ok(outcome) => tracing::info!(
                path = %path.display(),
                plugin = %outcome.version.name,
                version = %outcome.version.version,
                "changed plugin file installed"
            ),
            Err(err) => {
                tracing::error!(path = %path.display(), error = %err, "changed plugin file refused; the serving version stays")
            }
        }
    }
}
