//! Version records: every module recorded with who installed it, and the
//! versions this process loaded kept for switching back without loading again.

use super::{KEEP_LOADED, PluginManager, SwapError};
use crate::plugins::loader;
use crate::plugins::registry::Plugin;
use crate::store::{NewPluginVersion, PluginVersion, StoreError};

impl PluginManager {
    pub(super) async fn record(
        &self,
        plugin: &Plugin,
        bytes: &[u8],
        by: &str,
    ) -> Result<(PluginVersion, bool), StoreError> {
        let info = plugin.info();
        let module = plugin.module();
        self.store
            .record_plugin_version(&NewPluginVersion {
                name: &info.name,
                version: &info.version,
                world: plugin.world(),
                contract: &module.contract,
                sha256: &module.sha256,
                module: bytes,
                installed_by: by,
            })
            .await
    }

    pub(super) fn remember(&self, version_id: i64, plugin: Plugin) {
        if let Ok(mut loaded) = self.loaded.lock() {
            loaded.retain(|(id, _)| *id != version_id);
            loaded.push_back((version_id, plugin));
            while loaded.len() > KEEP_LOADED {
                loaded.pop_front();
            }
        }
    }

    /// A recorded version, loaded: kept from before, or from the database.
    pub(super) async fn plugin_for_version(&self, version_id: i64) -> Result<Plugin, SwapError> {
        let kept = self.loaded.lock().ok().and_then(|loaded| {
            loaded
                .iter()
                .find(|(id, _)| *id == version_id)
                .map(|(_, p)| p.clone())
        });
        if let Some(plugin) = kept {
            return Ok(plugin);
        }
        let bytes = self.store.plugin_module(version_id).await?;
        let origin = format!("plugin version {version_id} (database)");
        let plugin = loader::load(&self.runtime, &bytes, &origin).await?;
        self.remember(version_id, plugin.clone());
        Ok(plugin)
    }
}
