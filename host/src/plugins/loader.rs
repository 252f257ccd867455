//! From a module's bytes to a plugin ready to serve: compile it (or load its
//! compiled form from the artifact cache), check which world of the contract
//! it implements — saying exactly what is missing or mistyped when it
//! implements none — and run its `describe` once.

use std::path::Path;
use std::sync::Arc;

use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

use super::artifacts::sha256_hex;
use super::call_metrics::CallMetrics;
use super::contract::provider_types::{ProviderInfo, StatusModel};
use super::contract::{CONTRACT_VERSIONS, NotifierPre, ProviderPre, Version, World};
use super::error::PluginCallError;
use super::health::CallStats;
use super::module_info::ModuleInfo;
use super::notifier::NotifierPlugin;
use super::provider::ProviderPlugin;
use super::registry::Plugin;
use super::runtime::Runtime;

/// Why a module cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
    #[error("{origin}: `describe` failed: {source}")]
    Describe {
        origin: String,
        source: Box<PluginCallError>,
    },
}

fn accepted() -> String {
    CONTRACT_VERSIONS
        .iter()
        .map(|v| format!("trackbridge:plugin@{v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Load the plugin file at `path`.
pub async fn load_file(runtime: &Arc<Runtime>, path: &Path) -> Result<Plugin, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
        path: path.display().to_string(),
        source,
    })?;
    load(runtime, &bytes, &path.display().to_string()).await
}

/// Load a module: compile (or take from the cache), check, describe.
pub async fn load(runtime: &Arc<Runtime>, bytes: &[u8], origin: &str) -> Result<Plugin, LoadError> {
    let invalid = |message: String| LoadError::Invalid {
        origin: origin.to_owned(),
        message,
    };
    let sha256 = sha256_hex(bytes);
    let component = runtime
        .artifacts
        .component(&runtime.engine, bytes, &sha256, &runtime.services.metrics)
        .map_err(|e| invalid(format!("not a valid component: {e:#}")))?;
    let (world, contract) = world_of(runtime, &component).map_err(invalid)?;
    let version = contract.as_str();
    let ty = component.component_type();
    let names = |items: Vec<&str>| items.into_iter().map(str::to_owned).collect();
    let module = ModuleInfo {
        sha256,
        size: bytes.len() as u64,
        contract: format!("trackbridge:plugin@{version}"),
        origin: origin.to_owned(),
        imports: names(ty.imports(&runtime.engine).map(|(n, _)| n).collect()),
        exports: names(ty.exports(&runtime.engine).map(|(n, _)| n).collect()),
    };
    let missing = missing_functions(runtime, &component, world, contract);
    let wrong = |e: wasmtime::Error| {
        // Missing functions are listed all at once; otherwise wasmtime's own
        // error names the function whose type is wrong.
        let detail = if missing.is_empty() {
            format!("{e:#}")
        } else {
            format!(
                "`{}@{version}` lacks {}",
                world.export(),
                missing
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        invalid(format!(
            "does not implement the {} world of trackbridge:plugin@{version}: {detail}",
            world.name()
        ))
    };
    let describe_failed = |source| LoadError::Describe {
        origin: origin.to_owned(),
        source: Box::new(source),
    };
    let placeholder = placeholder_info(origin);
    let stats = Arc::new(CallStats::default());
    // The two worlds differ only in their types.
    macro_rules! ready {
        ($pre:ident, $plugin:ident, $variant:ident) => {{
            let pre = $pre::new(&runtime.engine, &component, contract).map_err(wrong)?;
            let metrics = |info: &ProviderInfo, exports: &[&'static str]| {
                Arc::new(CallMetrics::new(
                    &runtime.services.metrics,
                    &info.name,
                    &info.version,
                    exports,
                ))
            };
            let mut plugin = $plugin {
                // Until it has said who it is, only its `describe` is counted.
                metrics: metrics(&placeholder, &["describe"]),
                info: placeholder,
                module,
                stats,
                pre,
                runtime: runtime.clone(),
            };
            plugin.info = plugin.describe().await.map_err(describe_failed)?;
            plugin.metrics = metrics(&plugin.info, world.functions(contract));
            super::describe_check::check(&plugin.info).map_err(invalid)?;
            Ok(Plugin::$variant(Arc::new(plugin)))
        }};
    }
    match world {
        World::Provider => ready!(ProviderPre, ProviderPlugin, Provider),
        World::Notifier => ready!(NotifierPre, NotifierPlugin, Notifier),
    }
}

/// Which world the component claims by its exports, and of which contract
/// version; an error says what it exports instead and what this host accepts.
fn world_of(runtime: &Runtime, component: &Component) -> Result<(World, Version), String> {
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(&runtime.engine)
        .filter(|(_, item)| matches!(item.ty, ComponentItem::ComponentInstance(_)))
        .map(|(name, _)| name.to_owned())
        .collect();
    for world in [World::Provider, World::Notifier] {
        let Some(version) = exports.iter().find_map(|name| {
            name.strip_prefix(world.export())?
                .strip_prefix('@')
                .map(str::to_owned)
        }) else {
            continue;
        };
        return match Version::parse(&version) {
            Some(v) => Ok((world, v)),
            None => Err(format!(
                "implements `{}@{version}`, a contract version this host does not support; it accepts {}",
                world.export(),
                accepted()
            )),
        };
    }
    Err(format!(
        "exports neither `{}` nor `{}` (it exports {}); this host accepts {} with the worlds provider-plugin and notifier-plugin",
        World::Provider.export(),
        World::Notifier.export(),
        if exports.is_empty() {
            "no interface".to_owned()
        } else {
            exports
                .iter()
                .map(|e| format!("`{e}`"))
                .collect::<Vec<_>>()
                .join(", ")
        },
        accepted()
    ))
}

/// The functions of the world's interface that the component's export lacks.
fn missing_functions(
    runtime: &Runtime,
    component: &Component,
    world: World,
    version: Version,
) -> Vec<&'static str> {
    let ty = component.component_type();
    let name = format!("{}@{}", world.export(), version.as_str());
    let Some(export) = ty.get_export(&runtime.engine, &name) else {
        return world.functions(version).to_vec();
    };
    let ComponentItem::ComponentInstance(instance) = export.ty else {
        return world.functions(version).to_vec();
    };
    let present: Vec<String> = instance
        .exports(&runtime.engine)
        .map(|(n, _)| n.to_owned())
        .collect();
    world
        .functions(version)
        .iter()
        .filter(|f| !present.iter().any(|p| p == *f))
        .copied()
        .collect()
}

fn placeholder_info(origin: &str) -> ProviderInfo {
    ProviderInfo {
        name: Path::new(origin)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        version: "?".into(),
        display_name: String::new(),
        routes: Vec::new(),
        config_schema: String::new(),
        url_fields: Vec::new(),
        allowed_host_patterns: Vec::new(),
        status_model: StatusModel::Workflow,
        maintenance_interval_secs: None,
    }
}
