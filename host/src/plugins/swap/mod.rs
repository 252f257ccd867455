//! Installing, swapping and rolling back plugin versions while the host runs.
//!
//! - Every module is recorded in the database with its sha256, size, contract,
//!   who installed it and when, and kept whole: any host process sharing the
//!   database can load any version, and any version can be rolled back to.
//! - A switch is checked before it happens (compiled, the world checked,
//!   `describe` run once — [`loader`]), recorded, then made in one step in the
//!   [`Registry`]: new calls go to the new version, calls already running
//!   finish on the old one, nothing is refused in between.
//! - A version switched to by an install is on probation for its first calls
//!   ([`health`]); failing it rolls back to the version it replaced, by itself.
//! - Host processes converge by polling the database for switches they have
//!   not applied, so a swap made on one reaches all of them.
//! - The plugins directory is read at start: a module the database has not
//!   seen under that name is installed; one it knows changes nothing, so a
//!   rollback survives a restart. With `watch`, a changed file is installed
//!   while the host runs, through the same checks.
//!
//! [`loader`]: super::loader
//! [`health`]: super::health

mod converge;
mod plugins_dir;
mod probation;
mod versions;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::artifacts::sha256_hex;
use super::health::{ProbationPolicy, Tripped};
use super::loader::{self, LoadError};
use super::registry::{Conflict, Plugin, Registry};
use super::runtime::Runtime;
use crate::metrics::{ActiveLabels, SwitchLabels};
use crate::store::{PluginSwitch, PluginVersion, Store, StoreError, SwitchIf, SwitchRequest};

/// How swaps behave.
#[derive(Clone, Debug)]
pub struct SwapSettings {
    pub probation: ProbationPolicy,
    /// How often to look for switches made by other host processes.
    pub sync_every: Duration,
    /// Install a plugin when its file in the plugins directory changes.
    pub watch: bool,
    /// How long a file must stay unchanged before it is installed.
    pub watch_debounce: Duration,
}

impl Default for SwapSettings {
    fn default() -> SwapSettings {
        SwapSettings {
            probation: ProbationPolicy::default(),
            sync_every: Duration::from_secs(2),
            watch: false,
            watch_debounce: Duration::from_millis(500),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    /// The module is not a plugin this host can run.
    #[error(transparent)]
    Invalid(#[from] LoadError),
    /// It cannot take the place it asks for.
    #[error(transparent)]
    Conflict(#[from] Conflict),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    NoEarlierVersion(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("two plugin files claim the name `{0}`")]
    Duplicate(String),
    #[error("reading the plugins directory {dir}: {source}")]
    ReadDir { dir: String, source: std::io::Error },
}

/// A plugin as it serves in this process.
#[derive(Clone, Debug, Serialize)]
pub struct Serving {
    pub name: String,
    pub version: String,
    /// The recorded version (`GET /api/plugins/{name}/versions`).
    pub version_id: Option<i64>,
    pub display_name: String,
    pub world: &'static str,
    pub contract: String,
    pub sha256: String,
    pub size: u64,
    pub routes: Vec<String>,
    /// Its first calls are still being watched.
    pub on_probation: bool,
}

/// What an install or rollback did.
#[derive(Clone, Debug, Serialize)]
pub struct SwitchOutcome {
    pub version: PluginVersion,
    /// The switch, when one happened (`None`: it served already).
    pub switch: Option<PluginSwitch>,
}

/// Every version of one plugin, and its switches.
#[derive(Clone, Debug, Serialize)]
pub struct History {
    pub name: String,
    pub serving_version_id: Option<i64>,
    pub versions: Vec<PluginVersion>,
    pub switches: Vec<PluginSwitch>,
}

/// Versions kept loaded for a quick switch back, beyond the serving ones.
const KEEP_LOADED: usize = 16;

pub struct PluginManager {
    runtime: Arc<Runtime>,
    registry: Arc<Registry>,
    store: Store,
    settings: SwapSettings,
    plugins_dir: PathBuf,
    /// Versions loaded by this process, by version id, oldest first.
    loaded: Mutex<VecDeque<(i64, Plugin)>>,
    /// Per plugin name: the switch its serving version came from, and that version.
    applied: Mutex<HashMap<String, (i64, i64)>>,
    /// Switches this process could not apply (logged once each).
    failed: Mutex<HashMap<String, i64>>,
    /// One switch at a time in this process.
    switching: tokio::sync::Mutex<()>,
    tripped: mpsc::UnboundedSender<Tripped>,
    tripped_rx: Mutex<Option<mpsc::UnboundedReceiver<Tripped>>>,
}

impl PluginManager {
    /// Install what is new in `plugins_dir`, then serve what the database says
    /// is active.
    pub async fn start(
        runtime: Arc<Runtime>,
        registry: Arc<Registry>,
        store: Store,
        settings: SwapSettings,
        plugins_dir: &Path,
    ) -> Result<Arc<PluginManager>, SwapError> {
        let (tripped, tripped_rx) = mpsc::unbounded_channel();
        let manager = Arc::new(PluginManager {
            runtime,
            registry,
            store,
            settings,
            plugins_dir: plugins_dir.to_path_buf(),
            loaded: Mutex::default(),
            applied: Mutex::default(),
            failed: Mutex::default(),
            switching: tokio::sync::Mutex::new(()),
            tripped,
            tripped_rx: Mutex::new(Some(tripped_rx)),
        });
        manager.install_dir().await?;
        manager.sync().await?;
        Ok(manager)
    }

    /// Make `plugin` serve, in this process, as switch `switch_id` says.
    fn activate(
        &self,
        plugin: Plugin,
        version_id: i64,
        switch_id: i64,
        kind: &str,
        probation: bool,
    ) -> Result<(), Conflict> {
        let name = plugin.info().name.clone();
        let previous = self.registry.put(plugin.clone())?;
        if let Ok(mut applied) = self.applied.lock() {
            applied.insert(name.clone(), (switch_id, version_id));
        }
        let metrics = &self.runtime.services.metrics;
        if let Some(previous) = &previous {
            metrics.plugin_active.remove(&ActiveLabels {
                plugin: name.clone(),
                version: previous.info().version.clone(),
                sha256: previous.module().sha256.clone(),
            });
        }
        metrics
            .plugin_active
            .get_or_create(&ActiveLabels {
                plugin: name.clone(),
                version: plugin.info().version.clone(),
                sha256: plugin.module().sha256.clone(),
            })
            .set(1);
        if previous.is_some() {
            metrics
                .plugin_switches
                .get_or_create(&SwitchLabels {
                    plugin: name.clone(),
                    kind: kind.to_owned(),
                })
                .inc();
        }
        if probation {
            plugin.stats().start_probation(
                self.settings.probation,
                &name,
                &plugin.module().sha256,
                self.tripped.clone(),
            );
        } else {
            plugin.stats().end_probation();
        }
        tracing::info!(
            plugin = %name,
            from = previous.as_ref().map(|p| p.info().version.as_str()).unwrap_or("-"),
            to = %plugin.info().version,
            sha256 = %short(&plugin.module().sha256),
            kind,
            probation,
            "plugin switched"
        );
        Ok(())
    }

    /// Install `bytes` as the serving version of the plugin it describes.
    pub async fn install(&self, bytes: &[u8], by: &str) -> Result<SwitchOutcome, SwapError> {
        let _one_at_a_time = self.switching.lock().await;
        let sha256 = sha256_hex(bytes);
        // A module this process loaded before (installed, then rolled back
        // from) passed the checks then: switch to it without loading it again.
        let kept = self.loaded.lock().ok().and_then(|loaded| {
            loaded
                .iter()
                .find(|(_, p)| p.module().sha256 == sha256)
                .map(|(_, p)| p.clone())
        });
        let plugin = match kept {
            Some(plugin) => plugin,
            None => {
                let origin = format!("module {} uploaded by {by}", short(&sha256));
                loader::load(&self.runtime, bytes, &origin).await?
            }
        };
        self.registry.check(&plugin)?;
        let (version, _) = self.record(&plugin, bytes, by).await?;
        self.remember(version.id, plugin.clone());
        let reason = format!(
            "installed {} {} ({})",
            version.name,
            version.version,
            short(&version.sha256)
        );
        let switch = self
            .store
            .switch_plugin(&SwitchRequest {
                name: &version.name,
                to_version_id: version.id,
                kind: "install",
                by,
                reason: &reason,
                condition: SwitchIf::Always,
            })
            .await?;
        if let Some(s) = &switch {
            self.activate(
                plugin,
                version.id,
                s.id,
                "install",
                s.from_version_id.is_some(),
            )?;
        }
        Ok(SwitchOutcome { version, switch })
    }

    /// Switch `name` back to an earlier version: `to` names it (a version id,
    /// a version string — its newest module — or a sha256 prefix of at least 8
    /// characters); without `to`, the newest version installed before the one
    /// serving.
    pub async fn rollback(
        &self,
        name: &str,
        to: Option<&str>,
        by: &str,
    ) -> Result<SwitchOutcome, SwapError> {
        let _one_at_a_time = self.switching.lock().await;
        let active = self
            .store
            .active_plugin(name)
            .await?
            .ok_or_else(|| SwapError::NotFound(format!("no plugin `{name}` is installed")))?;
        let versions = self.store.plugin_versions(name).await?;
        let target = match to {
            None => versions
                .iter()
                .filter(|v| v.id < active.version_id)
                .max_by_key(|v| v.id)
                .ok_or_else(|| {
                    SwapError::NoEarlierVersion(format!(
                        "`{name}` has no version installed before the one serving"
                    ))
                })?,
            Some(selector) => select_version(&versions, selector).ok_or_else(|| {
                SwapError::NotFound(format!(
                    "`{name}` has no version `{selector}` (give a version id, a version, or a sha256 prefix of 8 or more characters)"
                ))
            })?,
        }
        .clone();
        let current = self.store.plugin_version(active.version_id).await?;
        let plugin = self.plugin_for_version(target.id).await?;
        self.registry.check(&plugin)?;
        let reason = format!(
            "rolled back from {} ({}) to {} ({}) by {by}",
            current.version,
            short(&current.sha256),
            target.version,
            short(&target.sha256)
        );
        let switch = self
            .store
            .switch_plugin(&SwitchRequest {
                name,
                to_version_id: target.id,
                kind: "rollback",
                by,
                reason: &reason,
                condition: SwitchIf::Always,
            })
            .await?;
        if let Some(s) = &switch {
            self.activate(plugin, target.id, s.id, "rollback", false)?;
            tracing::warn!(plugin = name, %reason, "plugin rolled back");
        }
        Ok(SwitchOutcome {
            version: target,
            switch,
        })
    }

    /// The plugins serving in this process.
    pub fn serving(&self) -> Vec<Serving> {
        let applied = self.applied.lock().map(|a| a.clone()).unwrap_or_default();
        self.registry
            .plugins()
            .into_iter()
            .map(|p| {
                let info = p.info();
                Serving {
                    version_id: applied.get(&info.name).map(|(_, v)| *v),
                    name: info.name.clone(),
                    version: info.version.clone(),
                    display_name: info.display_name.clone(),
                    world: p.world(),
                    contract: p.module().contract.clone(),
                    sha256: p.module().sha256.clone(),
                    size: p.module().size,
                    routes: info
                        .routes
                        .iter()
                        .map(|r| format!("{} {}", r.method, r.path))
                        .collect(),
                    on_probation: p.stats().on_probation(),
                }
            })
            .collect()
    }

    /// Every version of `name` and its switches.
    pub async fn history(&self, name: &str) -> Result<History, SwapError> {
        let versions = self.store.plugin_versions(name).await?;
        if versions.is_empty() {
            return Err(SwapError::NotFound(format!(
                "no plugin `{name}` is installed"
            )));
        }
        let serving_version_id = self.store.active_plugin(name).await?.map(|a| a.version_id);
        Ok(History {
            name: name.to_owned(),
            serving_version_id,
            versions,
            switches: self.store.plugin_switches(name).await?,
        })
    }

    /// Run the background work until `stopped`: following other processes'
    /// switches, automatic rollbacks, and the plugins directory when watched.
    pub fn spawn(self: &Arc<Self>, stopped: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
        let mut tasks = Vec::new();
        let this = self.clone();
        let mut stop = stopped.clone();
        tasks.push(tokio::spawn(async move {
            while !*stop.borrow() {
                tokio::select! {
                    _ = tokio::time::sleep(this.settings.sync_every) => {}
                    _ = stop.changed() => break,
                }
                if let Err(err) = this.sync().await {
                    tracing::warn!(error = %err, "cannot look for plugin switches; the database is unavailable");
                }
            }
        }));
        if let Some(mut rx) = self.tripped_rx.lock().ok().and_then(|mut r| r.take()) {
            let this = self.clone();
            let mut stop = stopped.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        tripped = rx.recv() => match tripped {
                            Some(t) => this.roll_back_tripped(t).await,
                            None => break,
                        },
                        _ = stop.changed() => break,
                    }
                }
            }));
        }
        if self.settings.watch {
            tasks.push(self.watch_dir(stopped));
        }
        tasks
    }
}

fn select_version<'a>(versions: &'a [PluginVersion], selector: &str) -> Option<&'a PluginVersion> {
    let selector = selector.trim();
    if let Ok(id) = selector.parse::<i64>()
        && let Some(v) = versions.iter().find(|v| v.id == id)
    {
        return Some(v);
    }
    if let Some(v) = versions.iter().rev().find(|v| v.version == selector) {
        return Some(v);
    }
    let prefix = selector.strip_prefix("sha256:").unwrap_or(selector);
    if prefix.len() >= 8 {
        let mut matching = versions.iter().filter(|v| v.sha256.starts_with(prefix));
        if let (Some(v), None) = (matching.next(), matching.next()) {
            return Some(v);
        }
    }
    None
}

fn short(sha256: &str) -> &str {
    &sha256[..sha256.len().min(12)]
}
