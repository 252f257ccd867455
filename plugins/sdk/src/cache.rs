//! The per-integration cache of the host (`cache-get` / `cache-set`). Keys are
//! the plugin's own; the host scopes them per plugin and integration and caps
//! TTLs and sizes, so a set value may be gone on the next call.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::sys;

/// Sentry's cache time for tracker lookups (users, transitions, statuses).
pub const DEFAULT_TTL_SECS: u32 = 240;

pub fn get(key: &str) -> Option<Vec<u8>> {
    sys::cache_get(key)
}

pub fn set(key: &str, value: &[u8], ttl_secs: u32) {
    sys::cache_set(key, value, ttl_secs)
}

/// A cached JSON value; a value that no longer decodes as `T` counts as a miss.
pub fn get_json<T: DeserializeOwned>(key: &str) -> Option<T> {
    serde_json::from_slice(&get(key)?).ok()
}

/// Cache `value` as JSON. A value that cannot be serialized is simply not cached.
pub fn set_json<T: Serialize + ?Sized>(key: &str, value: &T, ttl_secs: u32) {
    if let Ok(bytes) = serde_json::to_vec(value) {
        set(key, &bytes, ttl_secs);
    }
}

/// The cached value under `key`, or `fetch()`'s result, cached on success only.
pub fn get_or_fetch<T, F>(key: &str, ttl_secs: u32, fetch: F) -> crate::Result<T>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> crate::Result<T>,
{
    if let Some(hit) = get_json(key) {
        return Ok(hit);
    }
    let value = fetch()?;
    set_json(key, &value, ttl_secs);
    Ok(value)
}
