//! The HS256 tokens in Jira Server webhook URLs: claims exactly
//! `{"id": <external id>}`, signed with the integration's webhook secret.
//!
//! Installation signs them (it derives the secret, so it has it then);
//! afterwards the host verifies them with the stored secret, and the plugin
//! only reads the claims to learn which integration's secret to ask for.

use serde_json::Value;
use trackbridge_plugin_sdk::jwt;

/// A compact HS256 JWT over `claims`, signed with `secret` itself (the SDK's
/// header, `{"typ":"JWT","alg":"HS256"}`, is the one Sentry's tokens have).
pub fn sign(claims: &Value, secret: &[u8]) -> String {
    jwt::hs256_with_key(secret, &claims.to_string())
}

/// The claims of a compact JWT whose header and claims are JSON objects,
/// **not verified**: only good for choosing whose secret verifies it.
pub fn unverified_claims(token: &str) -> Option<Value> {
    jwt::peek(token).map(|unverified| Value::Object(unverified.claims))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
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
        assert!(
            unverified_claims(&format!(
                "{}.e30.",
                URL_SAFE_NO_PAD.encode(jwt::HS256_HEADER)
            ))
            .is_some()
        );
    }
}
