//! Atlassian Connect JWTs (HS256 only): signing outbound requests and
//! decoding/verifying tokens on incoming webhooks.

use base64::Engine;
use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::Value;
use sha2::Sha256;

use crate::qsh;

/// Key order and compactness matter: Sentry's reference token is compared byte for byte.
const HEADER: &str = r#"{"typ":"JWT","alg":"HS256"}"#;

/// Outbound tokens live 5 minutes, as Sentry's do.
pub const OUTBOUND_TTL_SECS: u64 = 300;

/// Some Atlassian libraries pad base64url; padding is harmless, so accept both.
const LENIENT_URL_SAFE: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length")
}

#[derive(Serialize)]
struct OutboundClaims<'a> {
    iss: &'a str,
    iat: u64,
    exp: u64,
    qsh: String,
}

/// An HS256 JWT over `claims` (already JSON).
pub fn sign_hs256(claims_json: &str, secret: &[u8]) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(HEADER),
        URL_SAFE_NO_PAD.encode(claims_json)
    );
    let mut m = mac(secret);
    m.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(m.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

/// The token for one outbound request: `path` relative to the Jira base URL,
/// `params` the query parameters.
pub fn outbound_token(
    app_key: &str,
    shared_secret: &str,
    now_secs: u64,
    method: &str,
    path: &str,
    params: &[(String, String)],
) -> String {
    let claims = OutboundClaims {
        iss: app_key,
        iat: now_secs,
        exp: now_secs + OUTBOUND_TTL_SECS,
        qsh: qsh::qsh(method, path, params),
    };
    // Serializing a struct of strings and integers cannot fail.
    let claims = serde_json::to_string(&claims).unwrap_or_default();
    sign_hs256(&claims, shared_secret.as_bytes())
}

/// The token of an `Authorization` header value: everything after the first
/// space (the scheme word is ignored, as Sentry does). `None` without a space
/// or with nothing after it.
pub fn split_authorization(value: &str) -> Option<&str> {
    let (_, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (!token.is_empty()).then_some(token)
}

/// A token decoded without verification.
#[derive(Debug)]
pub struct Unverified {
    pub header: Value,
    pub claims: Value,
    signing_input: String,
    signature: Vec<u8>,
}

/// Why a token could not be decoded.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed;

/// Splits and decodes a compact JWT; header and claims must be JSON objects.
pub fn decode(token: &str) -> Result<Unverified, Malformed> {
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Malformed);
    };
    let json = |part: &str| -> Result<Value, Malformed> {
        let bytes = LENIENT_URL_SAFE.decode(part).map_err(|_| Malformed)?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|_| Malformed)?;
        if value.is_object() {
            Ok(value)
        } else {
            Err(Malformed)
        }
    };
    Ok(Unverified {
        header: json(h)?,
        claims: json(c)?,
        signing_input: format!("{h}.{c}"),
        signature: LENIENT_URL_SAFE.decode(s).map_err(|_| Malformed)?,
    })
}

impl Unverified {
    pub fn alg(&self) -> Option<&str> {
        self.header.get("alg")?.as_str()
    }

    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name)?.as_str()
    }

    /// A numeric date claim, in whole seconds. A fraction is dropped; a
    /// number beyond the year 9999 (`1e300`, say) is no date at all.
    pub fn claim_secs(&self, name: &str) -> Option<i64> {
        const YEAR_9999: f64 = 253_402_300_799.0;
        let v = self.claims.get(name)?;
        v.as_i64().or_else(|| {
            v.as_f64()
                .filter(|f| f.is_finite() && f.abs() <= YEAR_9999)
                .map(|f| f.floor() as i64)
        })
    }

    /// Constant-time check of the HS256 signature.
    pub fn signature_valid(&self, secret: &[u8]) -> bool {
        let mut m = mac(secret);
        m.update(self.signing_input.as_bytes());
        m.verify_slice(&self.signature).is_ok()
    }
}

/// Why a token's validity window is wrong.
#[derive(Debug, PartialEq, Eq)]
pub enum TimeError {
    NoExpiry,
    Expired,
    IssuedInFuture,
    /// Valid for longer than any token Atlassian issues.
    TooLong,
}

/// The longest a Connect token may stay valid. Atlassian's tokens live three
/// minutes (its documented example: `exp - iat` = 180 s); anything valid for
/// more than an hour is not one of theirs, and would be a replayable
/// credential if it leaked.
pub const MAX_LIFETIME_SECS: i64 = 3600;

/// `exp` must be present, not older than `now - leeway`, and no later than
/// `MAX_LIFETIME_SECS` from now (and from `iat`); `iat`, when present, must
/// not be later than `now + leeway`.
pub fn check_times(token: &Unverified, now_secs: i64, leeway_secs: i64) -> Result<(), TimeError> {
    let exp = token.claim_secs("exp").ok_or(TimeError::NoExpiry)?;
    if exp < now_secs - leeway_secs {
        return Err(TimeError::Expired);
    }
    let iat = token.claim_secs("iat");
    if iat.is_some_and(|iat| iat > now_secs + leeway_secs) {
        return Err(TimeError::IssuedInFuture);
    }
    let issued = iat.unwrap_or(now_secs).min(now_secs);
    if exp - issued > MAX_LIFETIME_SECS + leeway_secs {
        return Err(TimeError::TooLong);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sentry_outbound_vector() {
        // Expected value computed independently with Python's hmac/hashlib/base64.
        let expected = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJ0ZXN0c2VydmVyLmppcmEiLCJpYXQiOjE2NzI1MzQ4NjEsImV4cCI6MTY3MjUzNTE2MSwicXNoIjoiZGU5NTIwMTA2NDBhYjJjZmQyMDYyNzgxYjU0ZTk0Yjc4ZmNlMTY3MzEwMDZkYjdkZWVhZmZjZWI0MjVmZTI0MiJ9.tydfCeXBICtX_xtgsOEiDJFmVPo6MmaAh1Bojouprjc";
        let params = vec![
            ("query".to_string(), "1".to_string()),
            ("user".to_string(), "me".to_string()),
        ];
        let token = outbound_token(
            "testserver.jira",
            "a-super-secret-key-from-atlassian",
            1_672_534_861,
            "GET",
            "/rest/api/2/serverInfo",
            &params,
        );
        assert_eq!(token, expected);

        let decoded = decode(&token).unwrap();
        assert_eq!(
            decoded.claims,
            json!({"iss": "testserver.jira", "iat": 1672534861, "exp": 1672535161,
                   "qsh": "de952010640ab2cfd2062781b54e94b78fce16731006db7deeaffceb425fe242"})
        );
        assert!(decoded.signature_valid(b"a-super-secret-key-from-atlassian"));
        assert!(!decoded.signature_valid(b"another-secret"));
    }

    #[test]
    fn token_splitting() {
        assert_eq!(
            split_authorization("JWT anexampletoken"),
            Some("anexampletoken")
        );
        assert_eq!(
            split_authorization("Bearer abc.def.ghi"),
            Some("abc.def.ghi")
        );
        // Only the first space splits; the scheme word is not checked.
        assert_eq!(split_authorization("whatever a b"), Some("a b"));
        assert_eq!(split_authorization("JWTanexampletoken"), None);
        assert_eq!(split_authorization("JWT "), None);
        assert_eq!(split_authorization(""), None);
    }

    #[test]
    fn malformed_tokens() {
        let good = sign_hs256(r#"{"iss":"x"}"#, b"k");
        assert!(decode(&good).is_ok());
        for bad in [
            "anexampletoken",
            "a.b",
            "a.b.c.d",
            "!!!.e30.sig",
            // Claims that are JSON but not an object.
            &format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(HEADER),
                URL_SAFE_NO_PAD.encode("[1]")
            ),
        ] {
            assert_eq!(decode(bad).map(|_| ()), Err(Malformed), "{bad}");
        }
        // Padded base64url is fine.
        let padded = base64::engine::general_purpose::URL_SAFE.encode(r#"{"iss":"x"}"#);
        let h = URL_SAFE_NO_PAD.encode(HEADER);
        assert!(decode(&format!("{h}.{padded}.")).is_ok());
    }

    #[test]
    fn validity_window() {
        let token = |claims: Value| decode(&sign_hs256(&claims.to_string(), b"k")).unwrap();
        let now = 1_000_000;
        assert_eq!(check_times(&token(json!({"exp": now})), now, 60), Ok(()));
        assert_eq!(
            check_times(&token(json!({"exp": now - 60})), now, 60),
            Ok(())
        );
        assert_eq!(
            check_times(&token(json!({"exp": now - 61})), now, 60),
            Err(TimeError::Expired)
        );
        assert_eq!(
            check_times(&token(json!({"exp": 1234567890.5})), 1234567991, 60),
            Err(TimeError::Expired)
        );
        assert_eq!(
            check_times(&token(json!({"iat": now})), now, 60),
            Err(TimeError::NoExpiry)
        );
        assert_eq!(
            check_times(&token(json!({"exp": "soon"})), now, 60),
            Err(TimeError::NoExpiry)
        );
        assert_eq!(
            check_times(&token(json!({"exp": now + 300, "iat": now + 61})), now, 60),
            Err(TimeError::IssuedInFuture)
        );
        assert_eq!(
            check_times(&token(json!({"exp": now + 300, "iat": now + 60})), now, 60),
            Ok(())
        );
    }
}
