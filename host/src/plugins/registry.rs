//! The loaded plugins, by provider name.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use wasmtime::Engine;

use super::Services;
use super::provider::{CallLimits, LoadError, ProviderPlugin};

/// Values of a route's `{name}` segments.
pub type RouteParams = Vec<(String, String)>;

#[derive(Default)]
pub struct Registry {
    providers: BTreeMap<String, Arc<ProviderPlugin>>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("reading the plugins directory {dir}: {source}")]
    ReadDir { dir: String, source: std::io::Error },
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("two plugins claim the provider name `{0}`")]
    Duplicate(String),
}

impl Registry {
    /// Load every `*.wasm` file of `dir`. A file that is not a valid provider stops
    /// the start with an error naming it: a host silently missing a provider would
    /// answer its trackers' webhooks with 404.
    pub async fn load_dir(
        engine: &Engine,
        dir: &Path,
        services: Arc<Services>,
        limits: CallLimits,
    ) -> Result<Registry, RegistryError> {
        let read_err = |source| RegistryError::ReadDir {
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
            let plugin = ProviderPlugin::load(engine, &path, services.clone(), limits).await?;
            tracing::info!(
                plugin = plugin.name(),
                version = plugin.version(),
                path = %path.display(),
                routes = ?plugin.info.routes.iter().map(|r| format!("{} {}", r.method, r.path)).collect::<Vec<_>>(),
                "plugin loaded"
            );
            let name = plugin.name().to_owned();
            if registry
                .providers
                .insert(name.clone(), Arc::new(plugin))
                .is_some()
            {
                return Err(RegistryError::Duplicate(name));
            }
        }
        Ok(registry)
    }

    pub fn provider(&self, name: &str) -> Option<Arc<ProviderPlugin>> {
        self.providers.get(name).cloned()
    }

    pub fn providers(&self) -> impl Iterator<Item = &Arc<ProviderPlugin>> {
        self.providers.values()
    }

    /// The provider serving `method path`, with the values of its `{name}` segments.
    pub fn route(&self, method: &str, path: &str) -> Option<(Arc<ProviderPlugin>, RouteParams)> {
        self.providers.values().find_map(|p| {
            p.info.routes.iter().find_map(|r| {
                if !r.method.eq_ignore_ascii_case(method) {
                    return None;
                }
                match_route(&r.path, path).map(|params| (p.clone(), params))
            })
        })
    }
}

/// Match a path against a template whose `{name}` segments match one segment each.
fn match_route(template: &str, path: &str) -> Option<RouteParams> {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    if t.len() != p.len() {
        return None;
    }
    let mut params = Vec::new();
    for (ts, ps) in t.iter().zip(&p) {
        match ts.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) if !ps.is_empty() => params.push((name.to_owned(), (*ps).to_owned())),
            Some(_) => return None,
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
            None
        );
        assert_eq!(match_route("/a/{x}/", "/a/b/c/"), None);
    }
}
