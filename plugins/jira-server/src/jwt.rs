//! The HS256 tokens in Jira Server webhook URLs: claims exactly
//! `{"id": <external id>}`, signed with the integration's webhook secret.
//!
//! Installation signs them (it derives the secret, so it has it then);
//! afterwards the host verifies them with the stored secret, and the plugin
//! only reads the claims to learn which integration's secret to ask for.

use base64::Engine as _;
use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::Value;
use trackbridge_plugin_sdk::crypto::hmac_sha256;

const HEADER: &str = r#"{"typ":"JWT","alg":"HS256"}"#;

/// Padded or not: both decode.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A compact HS256 JWT over `claims`.
pub fn sign(claims: &Value, secret: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(HEADER),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mac = hmac_sha256(secret, input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac))
}

/// The claims of a compact JWT whose header and claims are JSON objects,
/// **not verified**: only good for choosing whose secret verifies it.
pub fn unverified_claims(token: &str) -> Option<Value> {
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let object = |part: &str| -> Option<Value> {
        let value: Value = serde_json::from_slice(&LENIENT.decode(part).ok()?).ok()?;
        value.is_object().then_some(value)
    };
    object(h)?;
    LENIENT.decode(s).ok()?;
    object(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use trackbridge_plugin_sdk::secrets::{self, JwtError};
    use trackbridge_plugin_sdk::testing;

    #[test]
    fn signed_tokens_verify_with_the_secret_only() {
        let token = sign(&json!({"id": "jira.example.com:sentry-bot"}), b"secret");
        assert_eq!(
            unverified_claims(&token),
            Some(json!({"id": "jira.example.com:sentry-bot"}))
        );
        testing::reset();
        testing::add_integration(
            "site",
            json!({}),
            json!({"right": "secret", "wrong": "bad-secret"}),
        );
        testing::make_current("site");
        let right = secrets::require("right").unwrap();
        assert_eq!(
            right.jwt_hs256_verify(&token).unwrap(),
            json!({"id": "jira.example.com:sentry-bot"})
        );
        assert!(matches!(
            secrets::require("wrong").unwrap().jwt_hs256_verify(&token),
            Err(JwtError::BadSignature)
        ));
        let (input, _) = token.rsplit_once('.').unwrap();
        let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode([0u8; 32]));
        assert!(right.jwt_hs256_verify(&forged).is_err());
        // alg "none" with an empty signature decodes, and is refused.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(r#"{"id":"x"}"#)
        );
        assert_eq!(unverified_claims(&none), Some(json!({"id": "x"})));
        assert!(matches!(
            right.jwt_hs256_verify(&none),
            Err(JwtError::WrongAlgorithm(_))
        ));
    }

    #[test]
    fn malformed() {
        for bad in [
            "", " ", "abc", "a.b", "a.b.c.d", "!!.e30.", "e30.W10.", "W10.e30.",
        ] {
            assert!(unverified_claims(bad).is_none(), "{bad}");
        }
        assert!(unverified_claims(&format!("{}.e30.", URL_SAFE_NO_PAD.encode(HEADER))).is_some());
    }
}
