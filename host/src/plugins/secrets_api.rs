//! The contract's `secrets` interface (0.2.0): a plugin holds handles to its
//! integration's secrets and asks the host to use them. No function returns
//! a secret's bytes, and each use is logged — the plugin, the integration,
//! the secret's name and the operation, never the value.

use std::time::Duration;

use subtle::ConstantTimeEq;
use wasmtime::component::Resource;

use super::call::CallState;
use super::contract::secrets::{self as wit, HeaderFormat, JwtError, RsaHash};
use super::secret_ops;

/// A secret as a plugin holds it: a handle in the call's resource table.
pub struct SecretHandle {
    name: String,
    value: Vec<u8>,
}

impl Drop for SecretHandle {
    fn drop(&mut self) {
        // Not left behind in freed memory for the next allocation to find.
        self.value.iter_mut().for_each(|b| *b = 0);
    }
}

/// Remembered secrets live in the cache under a name no plugin can use for
/// its own cache entries (plugin names are `[a-z0-9-]`).
fn remembered_namespace(plugin: &str) -> String {
    format!("{plugin}#secrets")
}

/// The longest a remembered secret is kept.
// The plugin cache it lives in keeps nothing longer than an hour either.
const MAX_REMEMBER: Duration = Duration::from_secs(3600);

impl CallState {
    fn log_secret_use(&self, secret: &str, operation: &str, ok: bool) {
        tracing::info!(
            target: "plugin.secrets",
            plugin = %self.plugin,
            version = %self.version,
            integration = ?self.integration.as_ref().map(|i| i.id),
            request_id = %self.request_id,
            secret,
            operation,
            ok,
            "plugin used a secret"
        );
    }

    fn handle(&self, key: &Resource<SecretHandle>) -> wasmtime::Result<&SecretHandle> {
        Ok(self.table.get(key)?)
    }

    /// The current integration's stored secret at the dotted `path`.
    fn stored_secret(&self, path: &str) -> Option<Vec<u8>> {
        let integration = self.integration.as_ref()?;
        let secrets: serde_json::Value = serde_json::from_str(&integration.secrets).ok()?;
        let mut at = &secrets;
        for part in path.split('.') {
            at = at.get(part)?;
        }
        // An empty secret is none: it would match an empty candidate, and an
        // HMAC under an empty key is anyone's to forge.
        at.as_str()
            .filter(|s| !s.is_empty())
            .map(|s| s.as_bytes().to_vec())
    }
}

impl wit::HostSecret for CallState {
    async fn name(&mut self, key: Resource<SecretHandle>) -> String {
        self.handle(&key)
            .map(|h| h.name.clone())
            .unwrap_or_default()
    }

    async fn drop(&mut self, key: Resource<SecretHandle>) -> wasmtime::Result<()> {
        self.table.delete(key)?;
        Ok(())
    }
}

impl wit::Host for CallState {
    async fn get(&mut self, path: String) -> Option<Resource<SecretHandle>> {
        let value = self.stored_secret(&path).or_else(|| {
            let integration = self.integration.as_ref()?.id;
            self.services.cache.get(
                &remembered_namespace(&self.plugin),
                Some(integration),
                &path,
            )
        });
        self.log_secret_use(&path, "get", value.is_some());
        let value = value?;
        self.table.push(SecretHandle { name: path, value }).ok()
    }

    async fn remember(
        &mut self,
        name: String,
        value: Vec<u8>,
        ttl_secs: u32,
    ) -> wasmtime::Result<Resource<SecretHandle>> {
        // Without a current integration the secret serves this call only.
        if let Some(integration) = self.integration.as_ref().map(|i| i.id) {
            let ttl = Duration::from_secs(u64::from(ttl_secs)).min(MAX_REMEMBER);
            self.services.cache.set(
                &remembered_namespace(&self.plugin),
                Some(integration),
                &name,
                value.clone(),
                ttl,
            );
        }
        self.log_secret_use(&name, "remember", true);
        Ok(self.table.push(SecretHandle { name, value })?)
    }

    async fn hmac_sha256_sign(
        &mut self,
        key: Resource<SecretHandle>,
        message: Vec<u8>,
    ) -> wasmtime::Result<Vec<u8>> {
        let h = self.handle(&key)?;
        let mac = secret_ops::hmac_sha256(&h.value, &message);
        let name = h.name.clone();
        self.log_secret_use(&name, "hmac-sha256-sign", true);
        Ok(mac)
    }

    async fn hmac_sha256_verify(
        &mut self,
        key: Resource<SecretHandle>,
        message: Vec<u8>,
        mac: Vec<u8>,
    ) -> wasmtime::Result<bool> {
        let h = self.handle(&key)?;
        let ok = secret_ops::hmac_sha256_verify(&h.value, &message, &mac);
        let name = h.name.clone();
        self.log_secret_use(&name, "hmac-sha256-verify", ok);
        Ok(ok)
    }

    async fn matches(
        &mut self,
        key: Resource<SecretHandle>,
        candidate: Vec<u8>,
    ) -> wasmtime::Result<bool> {
        let h = self.handle(&key)?;
        let ok = !h.value.is_empty() && bool::from(h.value.as_slice().ct_eq(candidate.as_slice()));
        let name = h.name.clone();
        self.log_secret_use(&name, "matches", ok);
        Ok(ok)
    }

    async fn jwt_hs256_verify(
        &mut self,
        key: Resource<SecretHandle>,
        token: String,
    ) -> wasmtime::Result<Result<String, JwtError>> {
        let h = self.handle(&key)?;
        let now = crate::time::now_ms() / 1000;
        let verdict = secret_ops::jwt_hs256_verify(&h.value, &token, now).map_err(|e| match e {
            secret_ops::JwtRefusal::Malformed(m) => JwtError::Malformed(m),
            secret_ops::JwtRefusal::WrongAlgorithm(a) => JwtError::WrongAlgorithm(a),
            secret_ops::JwtRefusal::BadSignature => JwtError::BadSignature,
            secret_ops::JwtRefusal::Expired => JwtError::Expired,
            secret_ops::JwtRefusal::NotYetValid => JwtError::NotYetValid,
        });
        let name = h.name.clone();
        self.log_secret_use(&name, "jwt-hs256-verify", verdict.is_ok());
        Ok(verdict)
    }

    async fn rsa_sign(
        &mut self,
        key: Resource<SecretHandle>,
        hash: RsaHash,
        message: Vec<u8>,
    ) -> wasmtime::Result<Result<Vec<u8>, String>> {
        let h = self.handle(&key)?;
        let hash = match hash {
            RsaHash::Sha1 => secret_ops::RsaHash::Sha1,
            RsaHash::Sha256 => secret_ops::RsaHash::Sha256,
        };
        let signed = secret_ops::rsa_sign(&h.value, hash, &message).map_err(|e| e.to_string());
        let name = h.name.clone();
        self.log_secret_use(&name, "rsa-sign", signed.is_ok());
        Ok(signed)
    }

    async fn stand_in(
        &mut self,
        key: Resource<SecretHandle>,
        format: HeaderFormat,
    ) -> wasmtime::Result<String> {
        let h = self.handle(&key)?;
        let format = match format {
            HeaderFormat::Raw => secret_ops::HeaderFormat::Raw,
            HeaderFormat::Prefixed(p) => secret_ops::HeaderFormat::Prefixed(p),
            HeaderFormat::Basic(user) => secret_ops::HeaderFormat::Basic(user),
        };
        let value = secret_ops::header_value(&h.value, &format);
        let name = h.name.clone();
        self.log_secret_use(&name, "stand-in", value.is_ok());
        Ok(self.gate.stand_ins.issue(&name, value))
    }
}
