//! The seam between the SDK and the host: the real imports inside a wasm32
//! component, the thread-local fake of [`crate::testing`] natively (where the
//! generated imports would abort).

use crate::bindings::trackbridge::plugin::types::Integration as RawIntegration;
use crate::error::Result;
use crate::http::{Request, Response};

pub(crate) use crate::bindings::trackbridge::plugin::host::Level;
use crate::bindings::trackbridge::plugin::secrets::{HeaderFormat, JwtError, RsaHash};

/// What a [`crate::secrets::Secret`] holds: the host's resource in a
/// component, the fake host's record natively.
#[cfg(target_arch = "wasm32")]
pub(crate) type SecretHandle = crate::bindings::trackbridge::plugin::secrets::Secret;
#[cfg(not(target_arch = "wasm32"))]
pub(crate) type SecretHandle = crate::testing::FakeSecret;

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::*;
    use crate::bindings::trackbridge::plugin::{host, secrets};

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

    pub(crate) fn secret_get(path: &str) -> Option<SecretHandle> {
        secrets::get(path)
    }

    pub(crate) fn secret_remember(name: &str, value: &[u8], ttl_secs: u32) -> SecretHandle {
        secrets::remember(name, value, ttl_secs)
    }

    pub(crate) fn secret_name(secret: &SecretHandle) -> String {
        secret.name()
    }

    pub(crate) fn hmac_sha256_sign(secret: &SecretHandle, message: &[u8]) -> Vec<u8> {
        secrets::hmac_sha256_sign(secret, message)
    }

    pub(crate) fn hmac_sha256_verify(secret: &SecretHandle, message: &[u8], mac: &[u8]) -> bool {
        secrets::hmac_sha256_verify(secret, message, mac)
    }

    pub(crate) fn matches(secret: &SecretHandle, candidate: &[u8]) -> bool {
        secrets::matches(secret, candidate)
    }

    pub(crate) fn jwt_hs256_verify(
        secret: &SecretHandle,
        token: &str,
    ) -> std::result::Result<String, JwtError> {
        secrets::jwt_hs256_verify(secret, token)
    }

    pub(crate) fn rsa_sign(
        secret: &SecretHandle,
        hash: RsaHash,
        message: &[u8],
    ) -> std::result::Result<Vec<u8>, String> {
        secrets::rsa_sign(secret, hash, message)
    }

    pub(crate) fn stand_in(secret: &SecretHandle, format: &HeaderFormat) -> String {
        secrets::stand_in(secret, format)
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

    pub(crate) fn secret_get(path: &str) -> Option<SecretHandle> {
        testing::secret_get(path)
    }

    pub(crate) fn secret_remember(name: &str, value: &[u8], ttl_secs: u32) -> SecretHandle {
        testing::secret_remember(name, value, ttl_secs)
    }

    pub(crate) fn secret_name(secret: &SecretHandle) -> String {
        secret.name.clone()
    }

    pub(crate) fn hmac_sha256_sign(secret: &SecretHandle, message: &[u8]) -> Vec<u8> {
        testing::secret_used(secret, "hmac-sha256-sign");
        crate::crypto::hmac_sha256(&secret.value, message).to_vec()
    }

    pub(crate) fn hmac_sha256_verify(secret: &SecretHandle, message: &[u8], mac: &[u8]) -> bool {
        testing::secret_used(secret, "hmac-sha256-verify");
        !secret.value.is_empty() && crate::crypto::verify_hmac_sha256(&secret.value, message, mac)
    }

    pub(crate) fn matches(secret: &SecretHandle, candidate: &[u8]) -> bool {
        testing::secret_used(secret, "matches");
        !secret.value.is_empty() && crate::crypto::constant_time_eq(&secret.value, candidate)
    }

    pub(crate) fn jwt_hs256_verify(
        secret: &SecretHandle,
        token: &str,
    ) -> std::result::Result<String, JwtError> {
        testing::secret_used(secret, "jwt-hs256-verify");
        testing::jwt_hs256_verify(&secret.value, token)
    }

    pub(crate) fn rsa_sign(
        secret: &SecretHandle,
        hash: RsaHash,
        message: &[u8],
    ) -> std::result::Result<Vec<u8>, String> {
        testing::secret_used(secret, "rsa-sign");
        testing::rsa_sign(&secret.value, hash, message)
    }

    pub(crate) fn stand_in(secret: &SecretHandle, format: &HeaderFormat) -> String {
        testing::secret_used(secret, "stand-in");
        testing::stand_in(secret, format)
    }
}

pub(crate) use imp::*;
