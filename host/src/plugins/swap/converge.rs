//! Converging across processes: serve what the database says is active
//! wherever this process serves something else.

use super::{PluginManager, SwapError};
use crate::store::{ActivePlugin, StoreError};

impl PluginManager {
    /// Serve what the database says is active, where this process serves
    /// something else. Returns how many plugins switched.
    pub async fn sync(&self) -> Result<usize, StoreError> {
        let _one_at_a_time = self.switching.lock().await;
        let mut switched = 0;
        for (name, active) in self.store.active_plugins().await? {
            let applied = self
                .applied
                .lock()
                .ok()
                .and_then(|a| a.get(&name).map(|(switch, _)| *switch));
            if applied == Some(active.switch_id) {
                continue;
            }
            match self.apply(&name, &active).await {
                Ok(()) => switched += 1,
                Err(err) => {
                    let first = self
                        .failed
                        .lock()
                        .map(|mut f| {
                            f.insert(name.clone(), active.switch_id) != Some(active.switch_id)
                        })
                        .unwrap_or(true);
                    if first {
                        tracing::error!(plugin = %name, switch = active.switch_id, error = %err, "cannot switch to the plugin version the database says is active; keeping the one serving");
                    }
                }
            }
        }
        Ok(switched)
    }

    pub(super) async fn apply(&self, _name: &str, active: &ActivePlugin) -> Result<(), SwapError> {
        let plugin = self.plugin_for_version(active.version_id).await?;
        // Every process watches a new install: whichever sees it fail first
        // rolls it back, and the others follow.
        let probation = active.kind == "install" && active.from_version_id.is_some();
        self.activate(
            plugin,
            active.version_id,
            active.switch_id,
            &active.kind,
            probation,
        )?;
        Ok(())
    }
}
