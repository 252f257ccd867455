//! Atlassian Connect JWTs (HS256 only): building outbound tokens and reading
//! the claims of incoming ones. The HMAC itself is the caller's: with a stored
//! integration the host signs and verifies with the shared secret by handle
//! (`Secret::hmac_sha256_sign`, `Secret::jwt_hs256_verify`); only the
//! installation check signs with the operator's input.

use serde_json::{Value, json};
use trackbridge_plugin_sdk::jwt;

use crate::qsh;

/// Outbound tokens live 5 minutes, as Sentry's do.
pub const OUTBOUND_TTL_SECS: u64 = 300;

/// An HS256 JWT over `claims_json`: `sign` returns the HMAC-SHA256 of the
/// signing input (`header.payload`) keyed with the shared secret. The SDK's
/// header (`{"typ":"JWT","alg":"HS256"}`) is Sentry's, byte for byte.
pub fn sign_hs256(claims_json: &str, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    jwt::encode(jwt::HS256_HEADER, claims_json, sign)
}

/// The claims of the token for one outbound request, in Sentry's order:
/// `path` relative to the Jira base URL, `params` the query parameters.
pub fn outbound_claims(
    app_key: &str,
    now_secs: u64,
    method: &str,
    path: &str,
    params: &[(String, String)],
) -> String {
    // A JSON object need not keep this key order; the token must (see HEADER).
    format!(
        r#"{{"iss":{},"iat":{now_secs},"exp":{},"qsh":{}}}"#,
        json!(app_key),
        now_secs + OUTBOUND_TTL_SECS,
        json!(qsh::qsh(method, path, params)),
    )
}

/// The token for one outbound request (see [`outbound_claims`]).
pub fn outbound_token(
    app_key: &str,
    now_secs: u64,
    method: &str,
    path: &str,
    params: &[(String, String)],
    sign: impl FnOnce(&[u8]) -> Vec<u8>,
) -> String {
    sign_hs256(
        &outbound_claims(app_key, now_secs, method, path, params),
        sign,
    )
}

/// The token of an `Authorization` header value: everything after the first
/// space (the scheme word is ignored, as Sentry does). `None` without a space
/// or with nothing after it.
pub fn split_authorization(value: &str) -> Option<&str> {
    let (_, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (!token.is_empty()).then_some(token)
}

/// A numeric date claim, in whole seconds. A fraction is dropped; a number
/// beyond the year 9999 (`1e300`, say) is no date at all.
pub fn claim_secs(claims: &Value, name: &str) -> Option<i64> {
    const YEAR_9999: f64 = 253_402_300_799.0;
    let v = claims.get(name)?;
    v.as_i64().or_else(|| {
        v.as_f64()
            .filter(|f| f.is_finite() && f.abs() <= YEAR_9999)
            .map(|f| f.floor() as i64)
    })
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

/// On verified claims: `exp` must be present, not older than `now - leeway`,
/// and no later than `MAX_LIFETIME_SECS` from now (and from `iat`); `iat`,
/// when present, must not be later than `now + leeway`. (The host's
/// verification already refused an `exp` past its own, shorter, leeway; it
/// checks neither a missing `exp` nor `iat` nor the lifetime.)
pub fn check_times(claims: &Value, now_secs: i64, leeway_secs: i64) -> Result<(), TimeError> {
    let exp = claim_secs(claims, "exp").ok_or(TimeError::NoExpiry)?;
    if exp < now_secs - leeway_secs {
        return Err(TimeError::Expired);
    }
    let iat = claim_secs(claims, "iat");
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
    use trackbridge_plugin_sdk::crypto::hmac_sha256;

    fn signed_with(key: &'static [u8]) -> impl FnOnce(&[u8]) -> Vec<u8> {
        move |input| hmac_sha256(key, input).to_vec()
    }

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
            1_672_534_861,
            "GET",
            "/rest/api/2/serverInfo",
            &params,
            signed_with(b"a-super-secret-key-from-atlassian"),
        );
        assert_eq!(token, expected);

        let decoded = jwt::peek(&token).unwrap();
        assert_eq!(
            Value::Object(decoded.claims),
            json!({"iss": "testserver.jira", "iat": 1672534861, "exp": 1672535161,
                   "qsh": "de952010640ab2cfd2062781b54e94b78fce16731006db7deeaffceb425fe242"})
        );
    }

    #[test]
    fn claims_are_json_whatever_the_app_key() {
        let claims = outbound_claims("a\"b\\c", 1, "GET", "/", &[]);
        let parsed: Value = serde_json::from_str(&claims).unwrap();
        assert_eq!(parsed["iss"], "a\"b\\c");
        assert_eq!(parsed["exp"], 301);
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
    fn validity_window() {
        let now = 1_000_000;
        assert_eq!(check_times(&json!({"exp": now}), now, 60), Ok(()));
        assert_eq!(check_times(&json!({"exp": now - 60}), now, 60), Ok(()));
        assert_eq!(
            check_times(&json!({"exp": now - 61}), now, 60),
            Err(TimeError::Expired)
        );
        assert_eq!(
            check_times(&json!({"exp": 1234567890.5}), 1234567991, 60),
            Err(TimeError::Expired)
        );
        assert_eq!(
            check_times(&json!({"iat": now}), now, 60),
            Err(TimeError::NoExpiry)
        );
        assert_eq!(
            check_times(&json!({"exp": "soon"}), now, 60),
            Err(TimeError::NoExpiry)
        );
        assert_eq!(
            check_times(&json!({"exp": 1e300}), now, 60),
            Err(TimeError::NoExpiry)
        );
        assert_eq!(
            check_times(&json!({"exp": now + 300, "iat": now + 61}), now, 60),
            Err(TimeError::IssuedInFuture)
        );
        assert_eq!(
            check_times(&json!({"exp": now + 300, "iat": now + 60}), now, 60),
            Ok(())
        );
        assert_eq!(
            check_times(&json!({"exp": now + 7200}), now, 60),
            Err(TimeError::TooLong)
        );
    }
}
