//! The seam between the SDK and the host: the real imports inside a wasm32
//! component, the thread-local fake of [`crate::testing`] natively (where the
//! generated imports would abort).

use crate::bindings::trackbridge::plugin::types::Integration as RawIntegration;
use crate::error::Result;
use crate::http::{Request, Response};

pub(crate) use crate::bindings::trackbridge::plugin::host::Level;

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::*;
    use crate::bindings::trackbridge::plugin::host;

    pub(crate) fn log(level: Level, message: &str) {
        host::log(level, message)
    }

    pub(crate) fn now_ms() -> u64 {
        host::now_ms()
    }

    pub(crate) fn current_integration() -> Option<RawIntegration> {
        host::current_integration()
    }

    pub(crate) fn select_integration(external_id: &str) -> Option<RawIntegration> {
        host::select_integration(external_id)
    }

    pub(crate) fn lookup_integration(external_id: &str) -> Option<RawIntegration> {
        host::lookup_integration(external_id)
    }

    pub(crate) fn public_url() -> String {
        host::public_url()
    }

    pub(crate) fn cache_get(key: &str) -> Option<Vec<u8>> {
        host::cache_get(key)
    }

    pub(crate) fn cache_set(key: &str, value: &[u8], ttl_secs: u32) {
        host::cache_set(key, value, ttl_secs)
    }

    pub(crate) fn http_send(request: &Request) -> Result<Response> {
        crate::wasi_http::send(request)
    }

    pub(crate) fn random_bytes(len: usize) -> Vec<u8> {
        wasi::random::random::get_random_bytes(len as u64)
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::*;
    use crate::testing;

    pub(crate) fn log(level: Level, message: &str) {
        testing::record_log(level, message)
    }

    pub(crate) fn now_ms() -> u64 {
        testing::now_ms()
    }

    pub(crate) fn current_integration() -> Option<RawIntegration> {
        testing::current_integration()
    }

    pub(crate) fn select_integration(external_id: &str) -> Option<RawIntegration> {
        testing::select_integration(external_id)
    }

    pub(crate) fn lookup_integration(external_id: &str) -> Option<RawIntegration> {
        testing::lookup_integration(external_id)
    }

    pub(crate) fn public_url() -> String {
        testing::public_url()
    }

    pub(crate) fn cache_get(key: &str) -> Option<Vec<u8>> {
        testing::cache_get(key)
    }

    pub(crate) fn cache_set(key: &str, value: &[u8], ttl_secs: u32) {
        testing::cache_set(key, value, ttl_secs)
    }

    pub(crate) fn http_send(request: &Request) -> Result<Response> {
        testing::http_send(request)
    }

    pub(crate) fn random_bytes(len: usize) -> Vec<u8> {
        testing::random_bytes(len)
    }
}

pub(crate) use imp::*;
