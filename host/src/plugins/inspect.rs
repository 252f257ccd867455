//! What an operator or a plugin author learns about a plugin file without
//! running a host: `trackbridge plugin check | inspect`.

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use super::contract::provider_types::StatusModel;
use super::loader::{LoadError, load};
use super::runtime::Runtime;

/// A plugin file, checked the way a host loads it.
#[derive(Debug, Serialize)]
pub struct Inspection {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    /// `provider-plugin` or `notifier-plugin`.
    pub world: &'static str,
    /// The contract package it implements.
    pub contract: String,
    pub name: String,
    pub version: String,
    pub display_name: String,
    pub routes: Vec<String>,
    /// Capabilities it declares: installation fields whose hosts it may call,
    /// and further host patterns it may ask for.
    pub url_fields: Vec<String>,
    pub allowed_host_patterns: Vec<String>,
    /// `workflow` (status mappings) or `open-closed`; a 0.1.0 component's is a workflow.
    pub status_model: &'static str,
    /// How often it asks for upkeep (contract 0.2.0), when it does.
    pub maintenance_interval_secs: Option<u32>,
    /// What the component imports from the host and exports to it.
    pub imports: Vec<String>,
    pub exports: Vec<String>,
}

/// Read `path`, compile it, check it implements a world this host supports,
/// call its `describe`, and report what it is — what an install checks.
pub async fn inspect(runtime: &Arc<Runtime>, path: &Path) -> Result<Inspection, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let plugin = load(runtime, &bytes, &path.display().to_string()).await?;
    let info = plugin.info().clone();
    let module = plugin.module();
    Ok(Inspection {
        path: path.display().to_string(),
        size: module.size,
        sha256: module.sha256.clone(),
        world: plugin.world(),
        contract: module.contract.clone(),
        name: info.name,
        version: info.version,
        display_name: info.display_name,
        routes: info
            .routes
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect(),
        url_fields: info.url_fields,
        allowed_host_patterns: info.allowed_host_patterns,
        status_model: match info.status_model {
            StatusModel::Workflow => "workflow",
            StatusModel::OpenClosed => "open-closed",
        },
        maintenance_interval_secs: info.maintenance_interval_secs,
        imports: module.imports.clone(),
        exports: module.exports.clone(),
    })
}
