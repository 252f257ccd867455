//! Integrations served from memory. Every webhook's verification looks its
//! integration up (and every job its own), and a round trip to the database
//! costs more than the rest of a verification; integrations change rarely.
//!
//! Each process keeps what it read, and forgets all of it when the table
//! changed: at once for changes it made itself, and within
//! [`CHECK_EVERY`] for changes of another process sharing the database,
//! which it learns from `integrations_generation` (moved by a trigger on
//! every change to `integrations`). That is the staleness bound.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use super::Integration;
use crate::time::now_ms;

/// How often a process looks whether another one changed an integration.
pub const CHECK_EVERY: Duration = Duration::from_millis(500);

#[derive(Default)]
struct Entries {
    /// Moves with every `clear`: a read that began before one must not fill
    /// the cache with what it read.
    epoch: u64,
    /// The database's generation as last seen.
    seen: Option<i64>,
    by_id: HashMap<i64, Integration>,
    /// `None`: there is no active integration with that provider and id.
    by_external: HashMap<(String, String), Option<i64>>,
}

#[derive(Default)]
pub struct IntegrationCache {
    entries: RwLock<Entries>,
    /// When (ms) the generation was last read.
    checked_at: AtomicI64,
    /// One look at the generation at a time; the others use what is cached.
    checking: AtomicBool,
}

impl IntegrationCache {
    pub fn get(&self, id: i64) -> Option<Integration> {
        self.entries.read().ok()?.by_id.get(&id).cloned()
    }

    /// `Some(None)`: known not to exist.
    pub fn by_external(&self, provider: &str, external_id: &str) -> Option<Option<Integration>> {
        let entries = self.entries.read().ok()?;
        let id = entries
            .by_external
            .get(&(provider.to_owned(), external_id.to_owned()))?;
        Some(match id {
            Some(id) => Some(entries.by_id.get(id)?.clone()),
            None => None,
        })
    }

    /// The epoch to give [`Self::put`] for a read that starts now.
    pub fn epoch(&self) -> u64 {
        self.entries.read().map(|e| e.epoch).unwrap_or(u64::MAX)
    }

    /// Remember what a read begun at `epoch` found for `provider`/`external_id`
    /// (when given) or for its id.
    pub fn put(&self, epoch: u64, external: Option<(&str, &str)>, found: Option<&Integration>) {
        let Ok(mut entries) = self.entries.write() else {
            return;
        };
        if entries.epoch != epoch {
            return;
        }
        if let Some((provider, external_id)) = external {
            entries.by_external.insert(
                (provider.to_owned(), external_id.to_owned()),
                found.map(|i| i.id),
            );
        }
        if let Some(integration) = found {
            entries.by_id.insert(integration.id, integration.clone());
        }
    }

    /// Forget everything: this process changed an integration.
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.write() {
            let (epoch, seen) = (entries.epoch + 1, entries.seen);
            *entries = Entries {
                epoch,
                seen,
                ..Entries::default()
            };
        }
    }

    /// Whether it is time to look at the database's generation; true at most
    /// once per [`CHECK_EVERY`], for one caller at a time, who must then call
    /// [`Self::checked`].
    pub fn should_check(&self) -> bool {
        let now = now_ms();
        if now - self.checked_at.load(Ordering::Relaxed) < CHECK_EVERY.as_millis() as i64 {
            return false;
        }
        !self.checking.swap(true, Ordering::AcqRel)
    }

    /// The database's generation is `seen` (`None`: it could not be read):
    /// forget everything if it moved since last seen.
    pub fn checked(&self, seen: Option<i64>) {
        if let Some(seen) = seen
            && let Ok(mut entries) = self.entries.write()
            && entries.seen != Some(seen)
        {
            let moved = entries.seen.is_some();
            entries.seen = Some(seen);
            if moved {
                let epoch = entries.epoch + 1;
                *entries = Entries {
                    epoch,
                    seen: Some(seen),
                    ..Entries::default()
                };
            }
        }
        self.checked_at.store(now_ms(), Ordering::Relaxed);
        self.checking.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn integration(id: i64) -> Integration {
        Integration {
            id,
            provider: "jira".into(),
            external_id: format!("site-{id}"),
            name: String::new(),
            metadata: "{}".into(),
            secrets: "{}".into(),
            allowed_hosts: Vec::new(),
        }
    }

    #[test]
    fn a_read_begun_before_a_change_fills_nothing() {
        let cache = IntegrationCache::default();
        let before = cache.epoch();
        cache.clear();
        cache.put(before, Some(("jira", "site-1")), Some(&integration(1)));
        assert!(cache.get(1).is_none());
        let now = cache.epoch();
        cache.put(now, Some(("jira", "site-1")), Some(&integration(1)));
        assert_eq!(cache.get(1).map(|i| i.id), Some(1));
        assert_eq!(
            cache.by_external("jira", "site-1").flatten().map(|i| i.id),
            Some(1)
        );
        cache.put(now, Some(("jira", "nowhere")), None);
        assert!(matches!(cache.by_external("jira", "nowhere"), Some(None)));
    }

    #[test]
    fn another_process_s_change_is_forgotten_once_seen() {
        let cache = IntegrationCache::default();
        cache.checked(Some(7));
        cache.put(cache.epoch(), None, Some(&integration(1)));
        cache.checked(Some(7));
        assert!(cache.get(1).is_some(), "nothing moved");
        cache.checked(Some(8));
        assert!(cache.get(1).is_none(), "the generation moved");
    }
}
