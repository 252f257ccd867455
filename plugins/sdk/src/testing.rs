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
//!
//! Secrets behave as in the host: a plugin gets [`crate::secrets::Secret`]
//! handles to the current integration's secrets (those given to
//! [`add_integration`]), and the fake does the cryptography. Stand-ins are
//! swapped for the real values in the headers and path of every request the
//! plugin sends (the host does it only for the integration's own hosts; the
//! fake has no hosts to tell apart), so handlers and [`requests`] see what the
//! tracker would. [`secret_uses`] lists which secret each operation used.

use std::cell::RefCell;
use std::collections::HashMap;

use serde_json::Value;

use crate::bindings::trackbridge::plugin::host::Level;
use crate::bindings::trackbridge::plugin::secrets::{HeaderFormat, JwtError, RsaHash};
use crate::bindings::trackbridge::plugin::types::Integration as RawIntegration;
use crate::error::{Error, Result};
use crate::http::{Request, Response};

mod secret_ops;

type Handler = Box<dyn FnMut(&Request) -> Result<Response>>;

#[derive(Default)]
struct FakeHost {
    now_ms: u64,
    current: Option<RawIntegration>,
    /// Each with its secrets (a JSON object).
    integrations: Vec<(RawIntegration, Value)>,
    /// Secrets kept by `remember`, per integration id.
    remembered: HashMap<(i64, String), Vec<u8>>,
    /// Stand-ins handed out, and the header values they stand for (none: the
    /// secret cannot be one, and a request carrying the stand-in fails).
    stand_ins: Vec<(String, Option<String>)>,
    secret_uses: Vec<(String, String)>,
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
        h.integrations.push((
            RawIntegration {
                id,
                external_id: external_id.to_string(),
                name: external_id.to_string(),
                metadata: metadata.to_string(),
            },
            secrets,
        ));
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
            .map(|(i, _)| i)
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
            .map(|(i, _)| i)
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
    let (request, handler) = with(|h| {
        let request = h.swap_stand_ins(request)?;
        h.requests.push(request.clone());
        Ok::<_, Error>((request, h.handler.take()))
    })?;
    let request = &request;
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

/// A secret as the fake host hands it out.
pub struct FakeSecret {
    pub(crate) name: String,
    pub(crate) value: Vec<u8>,
}

impl FakeHost {
    fn swap_stand_ins(&self, request: &Request) -> Result<Request> {
        let mut request = request.clone();
        for (stand_in, value) in &self.stand_ins {
            let carried = request.url.contains(stand_in.as_str())
                || request
                    .headers
                    .iter()
                    .any(|(_, v)| v.contains(stand_in.as_str()))
                || request
                    .query
                    .iter()
                    .any(|(_, v)| v.contains(stand_in.as_str()));
            if !carried {
                continue;
            }
            let Some(value) = value else {
                return Err(Error::internal(
                    "a secret in the request cannot be an HTTP header value",
                ));
            };
            for (_, header) in request.headers.iter_mut() {
                if header.contains(stand_in.as_str()) {
                    *header = header.replace(stand_in.as_str(), value);
                }
            }
            // In the URL the host puts the value percent-encoded.
            if request.url.contains(stand_in.as_str()) {
                let encoded = crate::url::encode_component(value);
                request.url = request.url.replace(stand_in.as_str(), &encoded);
            }
            for (_, v) in request.query.iter_mut() {
                if v.contains(stand_in.as_str()) {
                    *v = v.replace(stand_in.as_str(), value);
                }
            }
        }
        Ok(request)
    }
}

/// Which secret each secret operation used so far, as (name, operation),
/// e.g. `("credential.api_token", "stand-in")`: what the host logs.
pub fn secret_uses() -> Vec<(String, String)> {
    with(|h| h.secret_uses.clone())
}

pub(crate) fn secret_used(secret: &FakeSecret, operation: &str) {
    with(|h| {
        h.secret_uses
            .push((secret.name.clone(), operation.to_string()))
    });
}

pub(crate) fn secret_get(path: &str) -> Option<FakeSecret> {
    with(|h| {
        let current = h.current.as_ref()?;
        // As in the host: the stored secrets first, then the remembered ones.
        let stored = h
            .integrations
            .iter()
            .find(|(i, _)| i.id == current.id)
            .and_then(|(_, secrets)| {
                path.split('.')
                    .try_fold(secrets, |at, key| at.get(key))?
                    .as_str()
                    // An empty secret is none, as in the host.
                    .filter(|s| !s.is_empty())
                    .map(|s| s.as_bytes().to_vec())
            });
        h.secret_uses.push((path.to_string(), "get".to_string()));
        let value =
            stored.or_else(|| h.remembered.get(&(current.id, path.to_string())).cloned())?;
        Some(FakeSecret {
            name: path.to_string(),
            value,
        })
    })
}

pub(crate) fn secret_remember(name: &str, value: &[u8], _ttl_secs: u32) -> FakeSecret {
    with(|h| {
        if let Some(current) = &h.current {
            h.remembered
                .insert((current.id, name.to_string()), value.to_vec());
        }
    });
    FakeSecret {
        name: name.to_string(),
        value: value.to_vec(),
    }
}

pub(crate) fn stand_in(secret: &FakeSecret, format: &HeaderFormat) -> String {
    let value = secret_ops::header_value(&secret.value, format);
    with(|h| {
        let stand_in = format!("tbsecret-fake{:04}", h.stand_ins.len());
        h.stand_ins.push((stand_in.clone(), value));
        stand_in
    })
}

pub(crate) fn jwt_hs256_verify(key: &[u8], token: &str) -> std::result::Result<String, JwtError> {
    secret_ops::jwt_hs256_verify(key, token, (now_ms() / 1000) as i64)
}

pub(crate) fn rsa_sign(
    key: &[u8],
    hash: RsaHash,
    message: &[u8],
) -> std::result::Result<Vec<u8>, String> {
    secret_ops::rsa_sign(key, hash, message)
}
