//! The plugins that serve: one version per plugin name. A switch replaces the
//! whole set in one step, so a new call sees either the old version or the
//! new one and nothing in between; a call already running holds its version
//! (an `Arc`) and finishes on it.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use super::contract::provider_types::{IntegrationData, ProviderInfo};
use super::error::PluginCallError;
use super::health::CallStats;
use super::module_info::ModuleInfo;
use super::notifier::NotifierPlugin;
use super::provider::ProviderPlugin;
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

    pub fn module(&self) -> &ModuleInfo {
        match self {
            Plugin::Provider(p) => &p.module,
            Plugin::Notifier(n) => &n.module,
        }
    }

    pub fn stats(&self) -> &Arc<CallStats> {
        match self {
            Plugin::Provider(p) => &p.stats,
            Plugin::Notifier(n) => &n.stats,
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

    /// Whether two plugins are the same module.
    pub fn same_module(&self, other: &Plugin) -> bool {
        self.module().sha256 == other.module().sha256
    }
}

/// Why a plugin cannot take its place in the set.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Conflict {
    #[error(
        "`{name}` is a {serving} here; a {offered} cannot replace it (install it under another name)"
    )]
    World {
        name: String,
        serving: &'static str,
        offered: &'static str,
    },
    #[error("route `{route}` is served by plugin `{owner}` already")]
    Route { route: String, owner: String },
}

/// The serving versions, by name.
#[derive(Default)]
pub struct Registry {
    set: RwLock<Arc<BTreeMap<String, Plugin>>>,
}

impl Registry {
    fn snapshot(&self) -> Arc<BTreeMap<String, Plugin>> {
        match self.set.read() {
            Ok(set) => set.clone(),
            // A panic while switching left the previous set in place.
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Whether `plugin` may serve under its name: same world as the version it
    /// replaces, and no route of another plugin's.
    pub fn check(&self, plugin: &Plugin) -> Result<(), Conflict> {
        let set = self.snapshot();
        let name = &plugin.info().name;
        if let Some(current) = set.get(name)
            && current.world() != plugin.world()
        {
            return Err(Conflict::World {
                name: name.clone(),
                serving: current.world(),
                offered: plugin.world(),
            });
        }
        for route in &plugin.info().routes {
            for (owner, other) in set.iter().filter(|(n, _)| *n != name) {
                // By what they match, not as strings: `{p}` matches any segment.
                if other.info().routes.iter().any(|r| {
                    r.method.eq_ignore_ascii_case(&route.method)
                        && super::describe_check::templates_overlap(&r.path, &route.path)
                }) {
                    return Err(Conflict::Route {
                        route: format!("{} {}", route.method, route.path),
                        owner: owner.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Make `plugin` the serving version of its name, in one step. Returns the
    /// version it replaced.
    pub fn put(&self, plugin: Plugin) -> Result<Option<Plugin>, Conflict> {
        self.check(&plugin)?;
        let mut guard = match self.set.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut next = BTreeMap::clone(&guard);
        let previous = next.insert(plugin.info().name.clone(), plugin);
        *guard = Arc::new(next);
        Ok(previous)
    }

    pub fn plugin(&self, name: &str) -> Option<Plugin> {
        self.snapshot().get(name).cloned()
    }

    /// Every serving plugin, by name.
    pub fn plugins(&self) -> Vec<Plugin> {
        self.snapshot().values().cloned().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.snapshot().is_empty()
    }

    pub fn provider(&self, name: &str) -> Option<Arc<ProviderPlugin>> {
        match self.snapshot().get(name)? {
            Plugin::Provider(p) => Some(p.clone()),
            Plugin::Notifier(_) => None,
        }
    }

    pub fn notifier(&self, name: &str) -> Option<Arc<NotifierPlugin>> {
        match self.snapshot().get(name)? {
            Plugin::Notifier(n) => Some(n.clone()),
            Plugin::Provider(_) => None,
        }
    }

    /// The provider serving `method path`, with the values of its `{name}` segments.
    pub fn route(&self, method: &str, path: &str) -> Option<(Arc<ProviderPlugin>, RouteParams)> {
        self.snapshot().values().find_map(|plugin| {
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
