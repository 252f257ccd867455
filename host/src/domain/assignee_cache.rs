//! Sentry's "assignee exists" cache (`assignee_exists:1:{group_id}`, 24 h): lets
//! automatic, create-only assignments skip groups known to have an assignee
//! without a database transaction. Deassigning must invalidate it, or a
//! create-only assignment would wrongly skip a group that lost its assignee.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `ASSIGNEE_EXISTS_DURATION`.
pub const WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

#[derive(Default)]
pub struct AssigneeExistsCache {
    groups: Mutex<HashMap<i64, Instant>>,
}

impl AssigneeExistsCache {
    pub fn known_assigned(&self, group: i64) -> bool {
        let groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        groups
            .get(&group)
            .is_some_and(|until| *until > Instant::now())
    }

    pub fn mark_assigned(&self, group: i64) {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        groups.retain(|_, until| *until > now);
        groups.insert(group, now + WINDOW);
    }

    pub fn invalidate(&self, groups: &[i64]) {
        let mut cached = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        for g in groups {
            cached.remove(g);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalidation_forgets_the_group() {
        let cache = AssigneeExistsCache::default();
        cache.mark_assigned(7);
        assert!(cache.known_assigned(7));
        cache.invalidate(&[7]);
        assert!(!cache.known_assigned(7));
    }
}
