//! Loading plugin files, and the loaded plugins by name.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use wasmtime::component::{Component, HasSelf, Linker};

use super::bindings::notifier::{NotifierPlugin as NotifierBindings, NotifierPluginPre};
use super::bindings::provider_types::{IntegrationData, ProviderInfo};
use super::bindings::{CONTRACT_VERSIONS, ProviderPlugin as ProviderBindings, ProviderPluginPre};
use super::call::CallState;
use super::error::PluginCallError;
use super::notifier::NotifierPlugin;
use super::provider::ProviderPlugin;
use super::runtime::Runtime;
use crate::store::Integration;

/// Values of a route's `{name}` segments.
pub type RouteParams = Vec<(String, String)>;

/// A loaded plugin of either world.
#[derive(Clone)]
pub enum Plugin {
    Provider(Arc<ProviderPlugin>),
    Notifier(Arc<NotifierPlugin>),
}

impl Plugin {
    pub fn info(&self) -> &ProviderInfo {
        match self {
            Plugin::Provider(p) => &p.info,
            Plugin::Notifier(n) => &n.info,
        }
    }

    pub fn world(&self) -> &'static str {
        match self {
            Plugin::Provider(_) => "provider-plugin",
            Plugin::Notifier(_) => "notifier-plugin",
        }
    }

    pub async fn build_integration(
        &self,
        input: String,
        hosts: Vec<String>,
    ) -> Result<IntegrationData, PluginCallError> {
        match self {
            Plugin::Provider(p) => p.build_integration(input, hosts).await,
            Plugin::Notifier(n) => n.build_integration(input, hosts).await,
        }
    }

    /// Remove what the installation created at the tracker (notifiers create nothing).
    pub async fn uninstall(&self, integration: Integration) -> Result<(), PluginCallError> {
        match self {
            Plugin::Provider(p) => p.uninstall(integration).await,
            Plugin::Notifier(_) => Ok(()),
        }
    }
}

#[derive(Default)]
pub struct Registry {
    plugins: BTreeMap<String, Plugin>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reading the plugins directory {dir}: {source}")]
    ReadDir { dir: String, source: std::io::Error },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("{path}: `describe` failed: {source}")]
    Describe {
        path: String,
        source: Box<PluginCallError>,
    },
    #[error("two plugins claim the name `{0}`")]
    Duplicate(String),
}

fn linker(runtime: &Runtime, notifier: bool) -> wasmtime::Result<Linker<CallState>> {
    let mut linker = Linker::new(&runtime.engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    if notifier {
        NotifierBindings::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
    } else {
        ProviderBindings::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
    }
    Ok(linker)
}

/// Compile a component, find which world it implements, and ask it to describe
/// itself.
pub async fn load_file(runtime: &Arc<Runtime>, path: &Path) -> Result<Plugin, LoadError> {
    let component = compile(runtime, path)?;
    load_component(runtime, path, &component).await
}

/// Compile a plugin file.
pub fn compile(runtime: &Runtime, path: &Path) -> Result<Component, LoadError> {
    Component::from_file(&runtime.engine, path).map_err(|e| LoadError::Invalid {
        path: path.display().to_string(),
        message: format!("not a valid component: {e:#}"),
    })
}

/// Find which world a compiled component implements, and ask it to describe itself.
pub async fn load_component(
    runtime: &Arc<Runtime>,
    path: &Path,
    component: &Component,
) -> Result<Plugin, LoadError> {
    let shown = path.display().to_string();
    let invalid = |message: String| LoadError::Invalid {
        path: shown.clone(),
        message,
    };
    let link =
        |notifier| linker(runtime, notifier).map_err(|e| invalid(format!("linker setup: {e:#}")));
    let provider = link(false)?
        .instantiate_pre(component)
        .and_then(ProviderPluginPre::new);
    let provider_err = match provider {
        Ok(pre) => {
            let mut plugin = ProviderPlugin {
                info: placeholder_info(path),
                pre,
                runtime: runtime.clone(),
            };
            plugin.info = plugin
                .describe()
                .await
                .map_err(|source| LoadError::Describe {
                    path: shown.clone(),
                    source: Box::new(source),
                })?;
            return Ok(Plugin::Provider(Arc::new(plugin)));
        }
        Err(e) => e,
    };
    let notifier = link(true)?
        .instantiate_pre(component)
        .and_then(NotifierPluginPre::new);
    match notifier {
        Ok(pre) => {
            let mut plugin = NotifierPlugin {
                info: placeholder_info(path),
                pre,
                runtime: runtime.clone(),
            };
            plugin.info = plugin
                .describe()
                .await
                .map_err(|source| LoadError::Describe {
                    path: shown.clone(),
                    source: Box::new(source),
                })?;
            Ok(Plugin::Notifier(Arc::new(plugin)))
        }
        Err(notifier_err) => Err(invalid(format!(
            "implements no world this host supports (trackbridge:plugin@{:?}: provider-plugin or notifier-plugin). \
             As a provider: {provider_err:#}. As a notifier: {notifier_err:#}",
            CONTRACT_VERSIONS
        ))),
    }
}

fn placeholder_info(path: &Path) -> ProviderInfo {
    ProviderInfo {
        name: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        version: "?".into(),
        display_name: String::new(),
        routes: Vec::new(),
        config_schema: String::new(),
        url_fields: Vec::new(),
        allowed_host_patterns: Vec::new(),
    }
}

impl Registry {
    /// Load every `*.wasm` file of `dir`. A file that is not a valid plugin stops
    /// the start with an error naming it: a host silently missing a provider would
    /// answer its trackers' webhooks with 404.
    pub async fn load_dir(runtime: &Arc<Runtime>, dir: &Path) -> Result<Registry, LoadError> {
        let read_err = |source| LoadError::ReadDir {
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
        let mut registry = Registry::default();
        for path in paths {
            let plugin = load_file(runtime, &path).await?;
            let info = plugin.info();
            tracing::info!(
                plugin = %info.name,
                version = %info.version,
                world = plugin.world(),
                path = %path.display(),
                routes = ?info.routes.iter().map(|r| format!("{} {}", r.method, r.path)).collect::<Vec<_>>(),
                "plugin loaded"
            );
            let name = info.name.clone();
            if registry.plugins.insert(name.clone(), plugin).is_some() {
                return Err(LoadError::Duplicate(name));
            }
        }
        Ok(registry)
    }

    pub fn plugin(&self, name: &str) -> Option<Plugin> {
        self.plugins.get(name).cloned()
    }

    pub fn plugins(&self) -> impl Iterator<Item = &Plugin> {
        self.plugins.values()
    }

    pub fn provider(&self, name: &str) -> Option<Arc<ProviderPlugin>> {
        match self.plugins.get(name)? {
            Plugin::Provider(p) => Some(p.clone()),
            Plugin::Notifier(_) => None,
        }
    }

    pub fn notifier(&self, name: &str) -> Option<Arc<NotifierPlugin>> {
        match self.plugins.get(name)? {
            Plugin::Notifier(n) => Some(n.clone()),
            Plugin::Provider(_) => None,
        }
    }

    /// The provider serving `method path`, with the values of its `{name}` segments.
    pub fn route(&self, method: &str, path: &str) -> Option<(Arc<ProviderPlugin>, RouteParams)> {
        self.plugins.values().find_map(|plugin| {
            let Plugin::Provider(p) = plugin else {
                return None;
            };
            p.info.routes.iter().find_map(|r| {
                if !r.method.eq_ignore_ascii_case(method) {
                    return None;
                }
                match_route(&r.path, path).map(|params| (p.clone(), params))
            })
        })
    }
}

/// Match a path against a template whose `{name}` segments match one segment
/// each — an empty one too, so the plugin (not the router) decides what an empty
/// token means. Parameter values reach the plugin percent-decoded.
fn match_route(template: &str, path: &str) -> Option<RouteParams> {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    if t.len() != p.len() {
        return None;
    }
    let mut params = Vec::new();
    for (ts, ps) in t.iter().zip(&p) {
        match ts.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => params.push((
                name.to_owned(),
                percent_encoding::percent_decode_str(ps)
                    .decode_utf8_lossy()
                    .into_owned(),
            )),
            None if ts == ps => {}
            None => return None,
        }
    }
    Some(params)
}

#[cfg(test)]
mod tests {
    use super::match_route;

    #[test]
    fn templates_match_whole_segments() {
        assert_eq!(
            match_route(
                "/extensions/jira/issue-updated/",
                "/extensions/jira/issue-updated/"
            ),
            Some(vec![])
        );
        assert_eq!(
            match_route(
                "/extensions/jira/issue-updated/",
                "/extensions/jira/issue-updated"
            ),
            None
        );
        assert_eq!(
            match_route(
                "/extensions/jira-server/issue-updated/{token}/",
                "/extensions/jira-server/issue-updated/abc/"
            ),
            Some(vec![("token".into(), "abc".into())])
        );
        assert_eq!(
            match_route(
                "/extensions/jira-server/issue-updated/{token}/",
                "/extensions/jira-server/issue-updated//"
            ),
            Some(vec![("token".into(), String::new())])
        );
        assert_eq!(
            match_route("/hooks/{token}/", "/hooks/a%20b/"),
            Some(vec![("token".into(), "a b".into())])
        );
        assert_eq!(match_route("/a/{x}/", "/a/b/c/"), None);
    }
}
