//! The current integration's secrets, used without ever being read.
//!
//! A plugin holds [`Secret`] handles; the host keeps the values and does the
//! cryptography. No function here returns a secret's bytes, so a plugin
//! cannot log, cache or send one by mistake, and the host logs every use
//! (plugin, integration, operation; never the value).
//!
//! - Verifying a webhook: [`Secret::hmac_sha256_verify`] for a signature over
//!   the body, [`Secret::matches`] for a tracker that sends the secret itself,
//!   [`Secret::jwt_hs256_verify`] for a signed JWT (it returns the claims).
//! - Calling the tracker: [`Secret::stand_in`] gives an opaque string to put
//!   in a header (or a path segment); the host swaps in the real value as the
//!   request leaves, and only towards the integration's own hosts.
//!   [`Secret::hmac_sha256_sign`] and [`Secret::rsa_sign`] sign what a
//!   tracker wants signed (an outbound JWT, an OAuth 1.0a base string).
//!
//! ```
//! use trackbridge_plugin_sdk::secrets::{self, HeaderFormat};
//! # trackbridge_plugin_sdk::testing::reset();
//! # trackbridge_plugin_sdk::testing::add_integration("site", serde_json::json!({}),
//! #     serde_json::json!({"credential": {"token": "t0k3n"}}));
//! # trackbridge_plugin_sdk::testing::make_current("site");
//! let token = secrets::require("credential.token").unwrap();
//! let authorization = token.stand_in(&HeaderFormat::Prefixed("Bearer ".into()));
//! assert!(!authorization.contains("t0k3n"));
//! ```

use std::fmt;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::sys;

pub use crate::bindings::trackbridge::plugin::secrets::{HeaderFormat, JwtError, RsaHash};

/// One secret of the current integration, by handle.
pub struct Secret(sys::SecretHandle);

impl Secret {
    /// The path it was found by (or the name it was remembered under).
    pub fn name(&self) -> String {
        sys::secret_name(&self.0)
    }

    /// HMAC-SHA256 of `message` keyed by the secret (32 bytes).
    pub fn hmac_sha256_sign(&self, message: &[u8]) -> Vec<u8> {
        sys::hmac_sha256_sign(&self.0, message)
    }

    /// Whether `mac` (raw bytes) is the HMAC-SHA256 of `message` keyed by the
    /// secret, compared in constant time.
    pub fn hmac_sha256_verify(&self, message: &[u8], mac: &[u8]) -> bool {
        sys::hmac_sha256_verify(&self.0, message, mac)
    }

    /// [`Self::hmac_sha256_verify`] for a signature in hex (either case,
    /// surrounding blanks ignored, no prefix). Anything that is not 64 hex
    /// digits is false.
    pub fn hmac_sha256_verify_hex(&self, message: &[u8], mac_hex: &str) -> bool {
        match crate::crypto::from_hex(mac_hex.trim()) {
            Some(mac) if mac.len() == 32 => self.hmac_sha256_verify(message, &mac),
            _ => false,
        }
    }

    /// Whether `candidate` is the secret itself, compared in constant time.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        sys::matches(&self.0, candidate)
    }

    /// Verify an HS256 JWT signed with the secret, and its `exp` and `nbf`
    /// (30 s of leeway, by the host's clock); returns the claims. Other claims
    /// (`iss`, `aud`, Atlassian's `qsh`) are the caller's to check.
    pub fn jwt_hs256_verify(&self, token: &str) -> std::result::Result<Value, JwtError> {
        let claims = sys::jwt_hs256_verify(&self.0, token)?;
        serde_json::from_str(&claims)
            .map_err(|e| JwtError::Malformed(format!("the claims are not JSON: {e}")))
    }

    /// RSASSA-PKCS1-v1_5 signature of `message` with the secret, a PEM private
    /// key: RSA-SHA1 for OAuth 1.0a, RS256 for JWTs. An internal error when
    /// the secret is not such a key.
    pub fn rsa_sign(&self, hash: RsaHash, message: &[u8]) -> Result<Vec<u8>> {
        sys::rsa_sign(&self.0, hash, message).map_err(|why| {
            Error::internal(format!(
                "cannot sign with the secret {}: {why}",
                self.name()
            ))
        })
    }

    /// A stand-in for a header value (or path segment) carrying the secret:
    /// the host swaps in the real value as a request to one of the current
    /// integration's hosts leaves. Anywhere else it is an opaque string.
    pub fn stand_in(&self, format: &HeaderFormat) -> String {
        sys::stand_in(&self.0, format)
    }
}

// A handle shows only its name: there is nothing else to show.
impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Secret").field(&self.name()).finish()
    }
}

/// The current integration's secret at `path`: a key of the `secrets` object
/// `build-integration` returned, or a dotted path into it
/// (`credential.api_token`) whose value is a string. `None` when there is no
/// current integration or no such string (an empty one included: it would
/// match an empty candidate, and anyone can forge an HMAC under it).
pub fn get(path: &str) -> Option<Secret> {
    sys::secret_get(path).map(Secret)
}

/// [`get`], or an internal error naming the path: for secrets every
/// installation of the plugin stores.
pub fn require(path: &str) -> Result<Secret> {
    get(path).ok_or_else(|| {
        Error::internal(format!(
            "the integration has no secret {path:?} (reinstall it)"
        ))
    })
}

/// Keep `value` as a secret of the current integration for `ttl_secs`
/// seconds (capped by the host), e.g. an access token the tracker just issued;
/// later calls find it with [`get`]`(name)`. Not stored in the database, so it
/// is gone when the host restarts.
pub fn remember(name: &str, value: &[u8], ttl_secs: u32) -> Secret {
    Secret(sys::secret_remember(name, value, ttl_secs))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::http::{Method, Request, Response};
    use crate::testing;

    fn installed(secrets: Value) {
        testing::reset();
        testing::add_integration("site", json!({}), secrets);
        assert!(testing::make_current("site"));
    }

    #[test]
    fn finds_strings_by_dotted_path_and_nothing_else() {
        installed(json!({"credential": {"token": "t", "n": 1}, "flat": "f", "empty": ""}));
        assert_eq!(get("credential.token").unwrap().name(), "credential.token");
        assert!(get("flat").is_some());
        assert!(get("credential").is_none(), "an object is not a secret");
        assert!(get("credential.n").is_none(), "a number is not a secret");
        assert!(get("empty").is_none(), "an empty string is not a secret");
        assert!(get("missing").is_none());
        assert!(require("missing").is_err());

        testing::reset();
        assert!(get("flat").is_none(), "no current integration, no secrets");
    }

    #[test]
    fn uses_the_value_without_showing_it() {
        installed(json!({"key": "k3y"}));
        let key = require("key").unwrap();
        assert!(key.matches(b"k3y"));
        assert!(!key.matches(b"k3"));
        let mac = key.hmac_sha256_sign(b"body");
        assert_eq!(mac, crate::crypto::hmac_sha256(b"k3y", b"body"));
        assert!(key.hmac_sha256_verify(b"body", &mac));
        assert!(key.hmac_sha256_verify_hex(b"body", &crate::crypto::to_hex(&mac)));
        assert!(!key.hmac_sha256_verify_hex(b"other", &crate::crypto::to_hex(&mac)));
        assert!(!format!("{key:?}").contains("k3y"));
        assert_eq!(
            testing::secret_uses()
                .iter()
                .map(|(_, op)| op.as_str())
                .collect::<Vec<_>>(),
            [
                "get",
                "matches",
                "matches",
                "hmac-sha256-sign",
                "hmac-sha256-verify",
                "hmac-sha256-verify",
                "hmac-sha256-verify"
            ]
        );
    }

    #[test]
    fn stand_ins_become_the_value_in_headers_and_the_path() {
        installed(json!({"token": "a/b", "user_token": "u"}));
        let token = require("token").unwrap();
        let header = token.stand_in(&HeaderFormat::Prefixed("Bot ".into()));
        let basic = require("user_token")
            .unwrap()
            .stand_in(&HeaderFormat::Basic("me".into()));
        let segment = token.stand_in(&HeaderFormat::Raw);
        assert!(!header.contains("a/b") && !segment.contains("a/b"));
        testing::on_http(|_| Ok(Response::new(204, "")));
        Request::new(Method::Post, format!("https://t.test/hooks/{segment}"))
            .header("authorization", &header)
            .header("x-basic", &basic)
            .send()
            .unwrap();
        let sent = &testing::requests()[0];
        assert_eq!(sent.url, "https://t.test/hooks/a%2Fb");
        assert_eq!(sent.headers[0].1, "Bot a/b");
        assert_eq!(sent.headers[1].1, "Basic bWU6dQ==");
    }

    #[test]
    fn a_secret_that_cannot_be_a_header_fails_the_request() {
        installed(json!({"token": "line\n"}));
        let header = require("token").unwrap().stand_in(&HeaderFormat::Raw);
        testing::on_http(|_| Ok(Response::new(204, "")));
        let sent = Request::new(Method::Get, "https://t.test/")
            .header("authorization", header)
            .send();
        assert!(sent.is_err());
        assert!(testing::requests().is_empty());
    }

    #[test]
    fn remembered_secrets_are_found_later_in_the_same_integration() {
        installed(json!({}));
        remember("session", b"s", 60);
        assert!(require("session").unwrap().matches(b"s"));
    }

    fn jwt(key: &[u8], header: &Value, claims: &Value) -> String {
        use base64::Engine as _;
        let b64 =
            |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let input = format!("{}.{}", b64(header), b64(claims));
        let mac = crate::crypto::hmac_sha256(key, input.as_bytes());
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac);
        format!("{input}.{sig}")
    }

    #[test]
    fn verifies_hs256_jwts_with_the_hosts_leeway() {
        installed(json!({"key": "k"}));
        testing::set_now_ms(1_000_000_000_000);
        let key = require("key").unwrap();
        let hs = json!({"alg": "HS256", "typ": "JWT"});
        let claims = key
            .jwt_hs256_verify(&jwt(b"k", &hs, &json!({"iss": "a", "exp": 999_999_980})))
            .unwrap();
        assert_eq!(claims["iss"], "a");
        assert!(matches!(
            key.jwt_hs256_verify(&jwt(b"k", &hs, &json!({"exp": 999_999_960}))),
            Err(JwtError::Expired)
        ));
        assert!(matches!(
            key.jwt_hs256_verify(&jwt(b"k", &hs, &json!({"nbf": 1_000_000_040}))),
            Err(JwtError::NotYetValid)
        ));
        assert!(matches!(
            key.jwt_hs256_verify(&jwt(b"other", &hs, &json!({}))),
            Err(JwtError::BadSignature)
        ));
        assert!(matches!(
            key.jwt_hs256_verify(&jwt(b"k", &json!({"alg": "none"}), &json!({}))),
            Err(JwtError::WrongAlgorithm(_))
        ));
        assert!(matches!(
            key.jwt_hs256_verify("a.b"),
            Err(JwtError::Malformed(_))
        ));
    }

    /// A 1024-bit test key (PKCS#8), made for this test with `openssl genpkey`.
    const TEST_KEY: &str = include_str!("testing/test-key.pem");

    #[test]
    fn signs_with_rsa_keys() {
        use rsa::pkcs8::DecodePrivateKey;
        use rsa::signature::Verifier;
        installed(json!({"key": TEST_KEY, "not_a_key": "x"}));
        let key = require("key").unwrap();
        let public = rsa::RsaPrivateKey::from_pkcs8_pem(TEST_KEY)
            .unwrap()
            .to_public_key();
        for hash in [RsaHash::Sha1, RsaHash::Sha256] {
            let signature = key.rsa_sign(hash, b"base string").unwrap();
            let signature = rsa::pkcs1v15::Signature::try_from(&signature[..]).unwrap();
            let verified = match hash {
                RsaHash::Sha1 => rsa::pkcs1v15::VerifyingKey::<sha1::Sha1>::new(public.clone())
                    .verify(b"base string", &signature),
                RsaHash::Sha256 => rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(public.clone())
                    .verify(b"base string", &signature),
            };
            assert!(verified.is_ok(), "{hash:?}");
        }
        assert!(
            require("not_a_key")
                .unwrap()
                .rsa_sign(RsaHash::Sha1, b"x")
                .is_err()
        );
    }
}
