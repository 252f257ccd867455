//! The HS256 tokens in Jira Server webhook URLs: claims exactly
//! `{"id": <external id>}`, signed with the integration's webhook secret.

use base64::Engine as _;
use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

const HEADER: &str = r#"{"typ":"JWT","alg":"HS256"}"#;

/// Padded or not: both decode.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length")
}

/// A compact HS256 JWT over `claims`.
pub fn sign(claims: &Value, secret: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(HEADER),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut m = mac(secret);
    m.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
    )
}

/// A token split and decoded, not yet verified.
#[derive(Debug)]
pub struct Unverified {
    pub header: Value,
    pub claims: Value,
    signing_input: String,
    signature: Vec<u8>,
}

/// Decodes a compact JWT whose header and claims are JSON objects.
pub fn decode(token: &str) -> Option<Unverified> {
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
    Some(Unverified {
        header: object(h)?,
        claims: object(c)?,
        signing_input: format!("{h}.{c}"),
        signature: LENIENT.decode(s).ok()?,
    })
}

impl Unverified {
    /// True for an HS256 token whose signature matches `secret` (compared in
    /// constant time). Any other `alg` (`none` included) fails.
    pub fn verify_hs256(&self, secret: &[u8]) -> bool {
        if self.header.get("alg").and_then(Value::as_str) != Some("HS256") {
            return false;
        }
        let mut m = mac(secret);
        m.update(self.signing_input.as_bytes());
        m.verify_slice(&self.signature).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip_and_tampering() {
        let token = sign(&json!({"id": "jira.example.com:sentry-bot"}), b"secret");
        let decoded = decode(&token).unwrap();
        assert_eq!(decoded.claims, json!({"id": "jira.example.com:sentry-bot"}));
        assert_eq!(decoded.header, json!({"typ": "JWT", "alg": "HS256"}));
        assert!(decoded.verify_hs256(b"secret"));
        assert!(!decoded.verify_hs256(b"bad-secret"));

        let (input, _) = token.rsplit_once('.').unwrap();
        let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode([0u8; 32]));
        assert!(!decode(&forged).unwrap().verify_hs256(b"secret"));
        // alg "none" with an empty signature is refused.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(r#"{"id":"x"}"#)
        );
        assert!(!decode(&none).unwrap().verify_hs256(b""));
    }

    #[test]
    fn malformed() {
        for bad in [
            "", " ", "abc", "a.b", "a.b.c.d", "!!.e30.", "e30.W10.", "W10.e30.",
        ] {
            assert!(decode(bad).is_none(), "{bad}");
        }
        assert!(decode(&format!("{}.e30.", URL_SAFE_NO_PAD.encode(HEADER))).is_some());
    }
}
