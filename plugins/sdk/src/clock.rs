//! The host clock. Use it (not `wasi:clocks`) for token expiry, so tests can
//! control time.

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    crate::sys::now_ms()
}

/// Whole seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    now_ms() / 1000
}
