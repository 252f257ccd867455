//! A version that failed its probation switched back to the one it
//! replaced, unless something else switched first.

use super::{PluginManager, SwapError};
use crate::plugins::health::Tripped;
use crate::store::{SwitchIf, SwitchRequest};

impl PluginManager {
    /// A version failed its probation: switch back to the one it replaced,
    /// unless something else switched first.
    pub(super) async fn roll_back_tripped(&self, tripped: Tripped) {
        let _one_at_a_time = self.switching.lock().await;
        let name = tripped.name.as_str();
        let serving = self.registry.plugin(name);
        if serving.is_none_or(|p| p.module().sha256 != tripped.sha256) {
            return;
        }
        let Some((switch_id, _)) = self.applied.lock().ok().and_then(|a| a.get(name).copied())
        else {
            return;
        };
        let result: Result<(), SwapError> = async {
            let Some(active) = self.store.active_plugin(name).await? else {
                return Ok(());
            };
            if active.switch_id != switch_id {
                // Another process switched already; the next sync follows it.
                return Ok(());
            }
            let Some(from) = active.from_version_id else {
                tracing::error!(plugin = name, reason = %tripped.reason, "plugin version is failing and there is no earlier version to roll back to");
                return Ok(());
            };
            let plugin = self.plugin_for_version(from).await?;
            let reason = format!("automatic rollback: {}", tripped.reason);
            let switch = self
                .store
                .switch_plugin(&SwitchRequest {
                    name,
                    to_version_id: from,
                    kind: "auto_rollback",
                    by: "host",
                    reason: &reason,
                    condition: SwitchIf::Still(switch_id),
                })
                .await?;
            if let Some(s) = switch {
                let to = plugin.info().version.clone();
                self.activate(plugin, from, s.id, "auto_rollback", false)?;
                tracing::warn!(plugin = name, to = %to, %reason, "plugin version failed its probation and was rolled back");
            }
            Ok(())
        }
        .await;
        if let Err(err) = result {
            tracing::error!(plugin = name, error = %err, "automatic rollback failed");
        }
    }
}
