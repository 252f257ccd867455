//! A fake host for native unit tests of plugin logic (not compiled for wasm32).
//!
//! State is thread-local, so each `#[test]` (its own thread) starts clean; call
//! [`reset`] when a test reuses a thread.
//!
//! ```
//! use trackbridge_plugin_sdk::{http::Response, testing};
//! testing::reset();
//! testing::set_now_ms(1_672_534_861_000);
//! testing::add_integration("example.atlassian.net", serde_json::json!({}), serde_json::json!({}));
//! testing::on_http(|req| Ok(Response::new(200, format!("{} {}", req.method.as_str(), req.full_url()))));
//! ```

use std::cell::RefCell;
use std::collections::HashMap;

use crate::bindings::trackbridge::plugin::host::Level;
use crate::bindings::trackbridge::plugin::types::Integration as RawIntegration;
use crate::error::{Error, Result};
use crate::http::{Request, Response};

type Handler = Box<dyn FnMut(&Request) -> Result<Response>>;

#[derive(Default)]
struct FakeHost {
    now_ms: u64,
    current: Option<RawIntegration>,
    integrations: Vec<RawIntegration>,
    cache: HashMap<String, (Vec<u8>, u32)>,
    logs: Vec<(String, String)>,
    requests: Vec<Request>,
    handler: Option<Handler>,
    public_url: Option<String>,
    /// Bytes `random::bytes` cycles through; empty = a counter-based sequence.
    random: Vec<u8>,
    random_calls: u64,
}

thread_local! {
    static HOST: RefCell<FakeHost> = RefCell::new(FakeHost::default());
}

fn with<R>(f: impl FnOnce(&mut FakeHost) -> R) -> R {
    HOST.with(|h| f(&mut h.borrow_mut()))
}

/// Forget everything: integrations, cache, logs, requests, HTTP handler, clock.
pub fn reset() {
    with(|h| *h = FakeHost::default());
}

/// Set what `now-ms` returns.
pub fn set_now_ms(ms: u64) {
    with(|h| h.now_ms = ms);
}

/// Register an integration that `select-integration` can find; returns its id.
pub fn add_integration(
    external_id: &str,
    metadata: serde_json::Value,
    secrets: serde_json::Value,
) -> i64 {
    with(|h| {
        let id = h.integrations.len() as i64 + 1;
        h.integrations.push(RawIntegration {
            id,
            external_id: external_id.to_string(),
            name: external_id.to_string(),
            metadata: metadata.to_string(),
            secrets: secrets.to_string(),
        });
        id
    })
}

/// Make a registered integration current, as the host does for outbound syncs.
/// Returns false when no integration has this external id.
pub fn make_current(external_id: &str) -> bool {
    select_integration(external_id).is_some()
}

/// Answer outgoing HTTP requests with `handler`; every request is also recorded.
pub fn on_http(handler: impl FnMut(&Request) -> Result<Response> + 'static) {
    with(|h| h.handler = Some(Box::new(handler)));
}

/// The requests sent so far, in order.
pub fn requests() -> Vec<Request> {
    with(|h| h.requests.clone())
}

/// Log lines so far as (level, message), level lower-case (`warn`, ...).
pub fn logs() -> Vec<(String, String)> {
    with(|h| h.logs.clone())
}

/// A cached value and its TTL, if the plugin set one under `key`.
pub fn cache_entry(key: &str) -> Option<(Vec<u8>, u32)> {
    with(|h| h.cache.get(key).cloned())
}

pub(crate) fn record_log(level: Level, message: &str) {
    let level = match level {
        Level::Trace => "trace",
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    };
    with(|h| h.logs.push((level.to_string(), message.to_string())));
}

pub(crate) fn now_ms() -> u64 {
    with(|h| h.now_ms)
}

pub(crate) fn current_integration() -> Option<RawIntegration> {
    with(|h| h.current.clone())
}

pub(crate) fn select_integration(external_id: &str) -> Option<RawIntegration> {
    with(|h| {
        let found = h
            .integrations
            .iter()
            .find(|i| i.external_id == external_id)
            .cloned();
        if found.is_some() {
            h.current.clone_from(&found);
        }
        found
    })
}

pub(crate) fn lookup_integration(external_id: &str) -> Option<RawIntegration> {
    with(|h| {
        h.integrations
            .iter()
            .find(|i| i.external_id == external_id)
            .cloned()
    })
}

/// The base URL the fake host reports to the plugin (default `https://trackbridge.test`).
pub fn set_public_url(url: &str) {
    with(|h| h.public_url = Some(url.to_owned()))
}

pub(crate) fn public_url() -> String {
    with(|h| {
        h.public_url
            .clone()
            .unwrap_or_else(|| "https://trackbridge.test".to_owned())
    })
}

pub(crate) fn cache_get(key: &str) -> Option<Vec<u8>> {
    with(|h| h.cache.get(key).map(|(v, _)| v.clone()))
}

pub(crate) fn cache_set(key: &str, value: &[u8], ttl_secs: u32) {
    with(|h| h.cache.insert(key.to_string(), (value.to_vec(), ttl_secs)));
}

pub(crate) fn http_send(request: &Request) -> Result<Response> {
    // The handler runs outside the borrow so it may use the SDK itself.
    let handler = with(|h| {
        h.requests.push(request.clone());
        h.handler.take()
    });
    let Some(mut handler) = handler else {
        return Err(Error::internal(
            "HTTP is only available inside a wasm32 component (or with testing::on_http)",
        ));
    };
    let result = handler(request);
    with(|h| {
        if h.handler.is_none() {
            h.handler = Some(handler);
        }
    });
    result
}

/// Make `random::bytes` return `bytes` repeated cyclically (empty: back to the
/// default, a deterministic sequence that differs on every call).
pub fn set_random_bytes(bytes: &[u8]) {
    with(|h| h.random = bytes.to_vec());
}

pub(crate) fn random_bytes(len: usize) -> Vec<u8> {
    with(|h| {
        h.random_calls += 1;
        if h.random.is_empty() {
            // Distinct per call, reproducible per test: a simple LCG seeded by the call number.
            let mut x = h.random_calls.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            (0..len)
                .map(|_| {
                    x = x
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    (x >> 56) as u8
                })
                .collect()
        } else {
            h.random.iter().copied().cycle().take(len).collect()
        }
    })
}
