//! Compact JWTs (RFC 7519) a plugin sends or reads: signed by the host with
//! a secret handle ([`hs256`], [`rs256`]), or with a key the plugin holds
//! while installing ([`hs256_with_key`]); and the unverified header and
//! claims of an incoming token ([`peek`]), to find whose secret verifies it
//! (`Secret::jwt_hs256_verify` then does, in the host).
//!
//! Header and claims are given as JSON text: some trackers compare tokens
//! byte for byte, so their key order is the caller's.
//!
//! ```
//! use trackbridge_plugin_sdk::jwt;
//! let token = jwt::hs256_with_key(b"secret", r#"{"id":"site-7"}"#);
//! let peeked = jwt::peek(&token).unwrap();
//! assert_eq!(peeked.claims["id"], "site-7");
//! assert_eq!(peeked.header["alg"], "HS256");
//! ```

use base64::Engine as _;
use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Map, Value};

use crate::error::Result;
use crate::secrets::{RsaHash, Secret};

/// The header of [`hs256`] tokens.
pub const HS256_HEADER: &str = r#"{"typ":"JWT","alg":"HS256"}"#;
/// The header of [`rs256`] tokens.
pub const RS256_HEADER: &str = r#"{"typ":"JWT","alg":"RS256"}"#;

/// Some senders pad base64url; padding is harmless, so both decode.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// `header.claims.signature`, where `sign` returns the signature of the
/// signing input (`header.claims`, base64url).
pub fn encode(header_json: &str, claims_json: &str, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let input = signing_input(header_json, claims_json);
    let signature = sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn signing_input(header_json: &str, claims_json: &str) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header_json),
        URL_SAFE_NO_PAD.encode(claims_json)
    )
}

/// An HS256 token over `claims_json`, signed by the host with `secret`.
pub fn hs256(secret: &Secret, claims_json: &str) -> String {
    encode(HS256_HEADER, claims_json, |input| {
        secret.hmac_sha256_sign(input)
    })
}

/// An HS256 token over `claims_json` signed with `key` itself: for
/// `build_integration`, before there is a stored secret to sign with.
pub fn hs256_with_key(key: &[u8], claims_json: &str) -> String {
    encode(HS256_HEADER, claims_json, |input| {
        crate::crypto::hmac_sha256(key, input).to_vec()
    })
}

/// An RS256 token over `claims_json`, signed by the host with `secret` (a
/// PEM private key), e.g. a GitHub App's JWT.
pub fn rs256(secret: &Secret, claims_json: &str) -> Result<String> {
    let input = signing_input(RS256_HEADER, claims_json);
    let signature = secret.rsa_sign(RsaHash::Sha256, input.as_bytes())?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

/// What an incoming token says about itself, before anyone checked it.
#[derive(Debug, Clone, PartialEq)]
pub struct Unverified {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
}

impl Unverified {
    /// The header's `alg`.
    pub fn alg(&self) -> Option<&str> {
        self.header.get("alg").and_then(Value::as_str)
    }

    /// A string claim.
    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }
}

/// The header and claims of a compact JWT whose three parts are base64url
/// (padded or not) and whose header and claims are JSON objects. **Not
/// verified**: good only for choosing whose secret verifies the token.
pub fn peek(token: &str) -> Option<Unverified> {
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let object = |part: &str| -> Option<Map<String, Value>> {
        match serde_json::from_slice(&LENIENT.decode(part).ok()?).ok()? {
            Value::Object(map) => Some(map),
            _ => None,
        }
    };
    LENIENT.decode(signature).ok()?;
    Some(Unverified {
        header: object(header)?,
        claims: object(claims)?,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{secrets, testing};

    fn installed() {
        testing::reset();
        testing::set_now_ms(1_700_000_000_000);
        testing::add_integration(
            "site",
            json!({}),
            json!({"shared": "s3cret", "key": include_str!("testing/test-key.pem")}),
        );
        assert!(testing::make_current("site"));
    }

    #[test]
    fn host_signed_hs256_tokens_verify_with_the_same_secret() {
        installed();
        let secret = secrets::require("shared").unwrap();
        let token = hs256(&secret, r#"{"iss":"app","exp":1700000300}"#);
        assert_eq!(
            token,
            hs256_with_key(b"s3cret", r#"{"iss":"app","exp":1700000300}"#)
        );
        assert_eq!(
            secret.jwt_hs256_verify(&token).unwrap(),
            json!({"iss": "app", "exp": 1_700_000_300})
        );
        let peeked = peek(&token).unwrap();
        assert_eq!(peeked.alg(), Some("HS256"));
        assert_eq!(peeked.claim_str("iss"), Some("app"));
    }

    #[test]
    fn the_header_and_claims_keep_their_bytes() {
        // Not re-serialized: Sentry's Jira tokens are compared byte for byte.
        let token = hs256_with_key(b"k", r#"{"b":1,"a":2}"#);
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts[0], URL_SAFE_NO_PAD.encode(HS256_HEADER));
        assert_eq!(parts[1], URL_SAFE_NO_PAD.encode(r#"{"b":1,"a":2}"#));
    }

    #[test]
    fn rs256_tokens_are_signed_by_the_host_with_the_key() {
        use rsa::pkcs8::DecodePrivateKey;
        use rsa::signature::Verifier;
        installed();
        let token = rs256(&secrets::require("key").unwrap(), r#"{"iss":42}"#).unwrap();
        let (input, signature) = token.rsplit_once('.').unwrap();
        let public = rsa::RsaPrivateKey::from_pkcs8_pem(include_str!("testing/test-key.pem"))
            .unwrap()
            .to_public_key();
        let signature =
            rsa::pkcs1v15::Signature::try_from(&URL_SAFE_NO_PAD.decode(signature).unwrap()[..])
                .unwrap();
        rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(public)
            .verify(input.as_bytes(), &signature)
            .unwrap();
        assert_eq!(peek(&token).unwrap().alg(), Some("RS256"));
        assert!(rs256(&secrets::require("shared").unwrap(), "{}").is_err());
    }

    #[test]
    fn peek_takes_padded_parts_and_refuses_what_is_not_a_jwt() {
        let padded = format!(
            "{}.{}.{}",
            LENIENT.encode("{\"alg\":\"HS256\"}"),
            base64::engine::general_purpose::URL_SAFE.encode("{\"id\":\"x\"}"),
            base64::engine::general_purpose::URL_SAFE.encode([1u8, 2, 3, 4, 5]),
        );
        assert_eq!(peek(&padded).unwrap().claim_str("id"), Some("x"));
        let part = |s: &str| URL_SAFE_NO_PAD.encode(s);
        for bad in [
            String::new(),
            "a.b".to_string(),
            "a.b.c.d".to_string(),
            format!("{}.{}.!!", part("{}"), part("{}")),
            format!("{}.{}.{}", part("[]"), part("{}"), part("s")),
            format!("{}.{}.{}", part("{}"), part("1"), part("s")),
        ] {
            assert!(peek(&bad).is_none(), "{bad}");
        }
    }
}
