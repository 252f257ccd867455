//! The `cache-get` / `cache-set` imports: a small in-memory TTL cache, scoped
//! per plugin and integration so one installation never reads another's entries.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Longest TTL a plugin may ask for.
const MAX_TTL: Duration = Duration::from_secs(3600);
/// Largest value a plugin may cache.
pub const MAX_VALUE_BYTES: usize = 256 << 10;
/// Entries kept before expired ones are swept and, if still full, new ones refused.
const MAX_ENTRIES: usize = 10_000;

type Key = (String, Option<i64>, String);

#[derive(Default)]
pub struct TtlCache {
    entries: Mutex<HashMap<Key, (Instant, Vec<u8>)>>,
}

impl TtlCache {
    pub fn get(&self, plugin: &str, integration: Option<i64>, key: &str) -> Option<Vec<u8>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (expires, value) = entries.get(&(plugin.to_owned(), integration, key.to_owned()))?;
        (*expires > Instant::now()).then(|| value.clone())
    }

    pub fn set(
        &self,
        plugin: &str,
        integration: Option<i64>,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) {
        if value.len() > MAX_VALUE_BYTES {
            return;
        }
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (expires, _)| *expires > now);
            if entries.len() >= MAX_ENTRIES {
                return;
            }
        }
        entries.insert(
            (plugin.to_owned(), integration, key.to_owned()),
            (now + ttl.min(MAX_TTL), value),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_scoped_per_plugin_and_integration_and_expire() {
        let cache = TtlCache::default();
        cache.set("jira", Some(1), "k", b"v".to_vec(), Duration::from_secs(60));
        assert_eq!(cache.get("jira", Some(1), "k"), Some(b"v".to_vec()));
        assert_eq!(cache.get("jira", Some(2), "k"), None);
        assert_eq!(cache.get("vsts", Some(1), "k"), None);
        cache.set("jira", Some(1), "gone", b"v".to_vec(), Duration::ZERO);
        assert_eq!(cache.get("jira", Some(1), "gone"), None);
    }

    #[test]
    fn oversized_values_are_not_cached() {
        let cache = TtlCache::default();
        cache.set(
            "jira",
            None,
            "big",
            vec![0; MAX_VALUE_BYTES + 1],
            Duration::from_secs(60),
        );
        assert_eq!(cache.get("jira", None, "big"), None);
    }
}
