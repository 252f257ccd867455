//! Integration secrets at rest: sealed with AES-256-GCM under the operator's
//! keys, each value bound to its integration (provider and external id as
//! associated data), so a sealed value copied onto another row does not open.
//!
//! A key file holds one key per line (32 bytes, base64 or hex); the first
//! seals, every one opens. Rotating is: put the new key first, restart the
//! hosts, run `trackbridge secrets rotate`, then drop the old line.

use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};

/// What a sealed value starts with; plain values are JSON objects (`{`).
const SEALED_PREFIX: &str = "sealed:v1:";
const NONCE_BYTES: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("secret key file {path}: {reason}")]
    KeyFile { path: PathBuf, reason: String },
    #[error(
        "secrets are sealed with key {key}, which is not among the keys given (--secret-key-file)"
    )]
    UnknownKey { key: String },
    #[error("a sealed secret does not open: it was altered, or belongs to another integration")]
    Corrupt,
    #[error("cannot seal a secret: {0}")]
    Seal(String),
}

/// One key and the id it is known by (never the key itself).
#[derive(Clone)]
struct SecretKey {
    id: String,
    cipher: Aes256Gcm,
}

/// The operator's keys: the first seals, all open. None: secrets are stored
/// as plain text (development).
#[derive(Clone, Default)]
pub struct SecretKeys {
    keys: Vec<SecretKey>,
}

impl std::fmt::Debug for SecretKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("SecretKeys").field("ids", &ids).finish()
    }
}

impl SecretKeys {
    /// Read a key file: one key per line (base64 or hex of 32 bytes);
    /// blank lines and `#` comments are skipped.
    pub fn from_file(path: &Path) -> Result<SecretKeys, SealError> {
        let fail = |reason: String| SealError::KeyFile {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // The line is a secret: say which line, never what it holds.
            let bytes = decode_key(line).ok_or_else(|| {
                fail(format!(
                    "line {} is not a key (32 bytes as base64 or as 64 hex digits)",
                    n + 1
                ))
            })?;
            keys.push(SecretKey::new(&bytes));
        }
        if keys.is_empty() {
            return Err(fail("holds no key".into()));
        }
        Ok(SecretKeys { keys })
    }

    /// Keys from their bytes, the first sealing.
    pub fn from_bytes(keys: &[[u8; 32]]) -> SecretKeys {
        SecretKeys {
            keys: keys.iter().map(SecretKey::new).collect(),
        }
    }

    /// A fresh random key, base64, as a key file line.
    pub fn generate() -> Result<String, SealError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| SealError::Seal(e.to_string()))?;
        Ok(BASE64.encode(bytes))
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The ids of every key, the sealing one first.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.id.as_str())
    }

    /// The id of the key that seals, if any.
    pub fn sealing_key_id(&self) -> Option<&str> {
        self.keys.first().map(|k| k.id.as_str())
    }

    /// `plain` as stored: sealed under the first key, or as it is when there
    /// is none. `binding` names the row it belongs to.
    pub fn seal(&self, plain: &str, binding: &str) -> Result<String, SealError> {
        let Some(key) = self.keys.first() else {
            return Ok(plain.to_owned());
        };
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|e| SealError::Seal(e.to_string()))?;
        let sealed = key
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain.as_bytes(),
                    aad: binding.as_bytes(),
                },
            )
            .map_err(|e| SealError::Seal(e.to_string()))?;
        let mut blob = nonce.to_vec();
        blob.extend(sealed);
        Ok(format!("{SEALED_PREFIX}{}:{}", key.id, BASE64.encode(blob)))
    }

    /// A stored value opened: plain values pass through.
    pub fn open(&self, stored: &str, binding: &str) -> Result<String, SealError> {
        let Some(rest) = stored.strip_prefix(SEALED_PREFIX) else {
            return Ok(stored.to_owned());
        };
        let (id, blob) = rest.split_once(':').ok_or(SealError::Corrupt)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| SealError::UnknownKey { key: id.to_owned() })?;
        let blob = BASE64.decode(blob).map_err(|_| SealError::Corrupt)?;
        if blob.len() < NONCE_BYTES {
            return Err(SealError::Corrupt);
        }
        let (nonce, sealed) = blob.split_at(NONCE_BYTES);
        let plain = key
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: binding.as_bytes(),
                },
            )
            .map_err(|_| SealError::Corrupt)?;
        String::from_utf8(plain).map_err(|_| SealError::Corrupt)
    }

    /// Whether `stored` is sealed under the sealing key already (so rotating
    /// leaves it be).
    pub fn is_current(&self, stored: &str) -> bool {
        sealed_with(stored) == self.sealing_key_id()
    }
}

/// The key a stored value is sealed with, if it is sealed.
pub fn sealed_with(stored: &str) -> Option<&str> {
    let rest = stored.strip_prefix(SEALED_PREFIX)?;
    Some(rest.split_once(':').map_or(rest, |(id, _)| id))
}

/// What a row's secrets are bound to.
pub fn binding(provider: &str, external_id: &str) -> String {
    format!("trackbridge integration secrets\0{provider}\0{external_id}")
}

impl SecretKey {
    fn new(bytes: &[u8; 32]) -> SecretKey {
        let digest = Sha256::new()
            .chain_update(b"trackbridge secret key id\0")
            .chain_update(bytes)
            .finalize();
        let id = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        SecretKey {
            id,
            cipher: Aes256Gcm::new(bytes.into()),
        }
    }
}

fn decode_key(line: &str) -> Option<[u8; 32]> {
    let bytes = if line.len() == 64 && line.bytes().all(|b| b.is_ascii_hexdigit()) {
        (0..32)
            .map(|i| u8::from_str_radix(&line[2 * i..2 * i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()?
    } else {
        BASE64.decode(line).ok()?
    };
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRETS: &str = r#"{"api_token":"canary-6f1d"}"#;

    #[test]
    fn sealed_values_open_with_any_key_given_and_only_for_their_row() {
        let old = SecretKeys::from_bytes(&[[1; 32]]);
        let row = binding("jira", "acme.atlassian.net");
        let sealed = old.seal(SECRETS, &row).unwrap();
        assert!(sealed.starts_with(SEALED_PREFIX), "{sealed}");
        assert!(!sealed.contains("canary"), "{sealed}");
        assert_eq!(old.open(&sealed, &row).unwrap(), SECRETS);

        let rotated = SecretKeys::from_bytes(&[[2; 32], [1; 32]]);
        assert_eq!(rotated.open(&sealed, &row).unwrap(), SECRETS);
        assert!(!rotated.is_current(&sealed));
        let resealed = rotated.seal(SECRETS, &row).unwrap();
        assert!(rotated.is_current(&resealed));

        let other_row = binding("jira", "evil.atlassian.net");
        assert!(matches!(
            old.open(&sealed, &other_row),
            Err(SealError::Corrupt)
        ));
        let new_only = SecretKeys::from_bytes(&[[2; 32]]);
        assert!(matches!(
            new_only.open(&sealed, &row),
            Err(SealError::UnknownKey { .. })
        ));
        assert!(matches!(
            SecretKeys::default().open(&sealed, &row),
            Err(SealError::UnknownKey { .. })
        ));
    }

    #[test]
    fn without_keys_values_stay_plain() {
        let none = SecretKeys::default();
        let row = binding("vsts", "x");
        assert_eq!(none.seal(SECRETS, &row).unwrap(), SECRETS);
        assert_eq!(none.open(SECRETS, &row).unwrap(), SECRETS);
        assert_eq!(sealed_with(SECRETS), None);
    }

    #[test]
    fn a_key_file_takes_base64_or_hex_and_names_a_bad_line_without_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        let generated = SecretKeys::generate().unwrap();
        std::fs::write(
            &path,
            format!("# new\n{generated}\n\n{}\n", "ab".repeat(32)),
        )
        .unwrap();
        let keys = SecretKeys::from_file(&path).unwrap();
        assert_eq!(keys.keys.len(), 2);

        std::fs::write(&path, format!("{generated}\nnot-a-key-hunter2\n")).unwrap();
        let err = SecretKeys::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(
            !err.contains("hunter2") && !err.contains(&generated),
            "{err}"
        );
        std::fs::write(&path, "# nothing\n").unwrap();
        assert!(SecretKeys::from_file(&path).is_err());
    }
}
