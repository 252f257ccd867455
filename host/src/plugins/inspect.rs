//! What an operator or a plugin author learns about a plugin file without
//! running a host: `trackbridge plugin check | inspect`.

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::registry::{LoadError, compile, load_component};
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
    /// What the component imports from the host and exports to it.
    pub imports: Vec<String>,
    pub exports: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("reading {0}: {1}")]
    Read(String, std::io::Error),
    #[error(transparent)]
    Load(#[from] LoadError),
}

/// Compile `path`, check it implements a world this host supports, call its
/// `describe`, and report what it is.
pub async fn inspect(runtime: &Arc<Runtime>, path: &Path) -> Result<Inspection, InspectError> {
    let bytes =
        std::fs::read(path).map_err(|e| InspectError::Read(path.display().to_string(), e))?;
    let component = compile(runtime, path)?;
    let plugin = load_component(runtime, path, &component).await?;
    let ty = component.component_type();
    let imports = ty
        .imports(&runtime.engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    let exports = ty
        .exports(&runtime.engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    let info = plugin.info().clone();
    Ok(Inspection {
        path: path.display().to_string(),
        size: bytes.len() as u64,
        sha256: Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        world: plugin.world(),
        contract: format!(
            "trackbridge:plugin@{}",
            super::bindings::CONTRACT_VERSIONS.join("|")
        ),
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
        imports,
        exports,
    })
}
