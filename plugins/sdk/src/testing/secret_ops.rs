//! The fake host's cryptography, behaving as the host's does (the host's own
//! uses OpenSSL, which a plugin's native tests should not need).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use serde_json::Value;

use crate::bindings::trackbridge::plugin::secrets::{HeaderFormat, JwtError, RsaHash};

/// The host's leeway for `exp` and `nbf`.
const JWT_LEEWAY_SECS: f64 = 30.0;

/// The header value `format` makes of `secret`; none when it cannot be one
/// (not UTF-8, or a control character that would split the request).
pub(super) fn header_value(secret: &[u8], format: &HeaderFormat) -> Option<String> {
    let secret = std::str::from_utf8(secret).ok()?;
    let field_value = |s: &str| !s.chars().any(|c| c.is_control() && c != '\t');
    let value = match format {
        HeaderFormat::Raw => secret.to_string(),
        HeaderFormat::Prefixed(prefix) => format!("{prefix}{secret}"),
        HeaderFormat::Basic(user) => {
            if !field_value(user) || !field_value(secret) {
                return None;
            }
            format!("Basic {}", STANDARD.encode(format!("{user}:{secret}")))
        }
    };
    field_value(&value).then_some(value)
}

pub(super) fn jwt_hs256_verify(key: &[u8], token: &str, now_secs: i64) -> Result<String, JwtError> {
    let malformed = |why: &str| JwtError::Malformed(why.to_string());
    let parts: Vec<&str> = token.split('.').collect();
    let [header_b64, payload_b64, signature_b64] = parts[..] else {
        return Err(malformed("not three dot-separated parts"));
    };
    let decode = |part: &str, what: &str| {
        URL_SAFE_NO_PAD
            .decode(part.trim_end_matches('='))
            .map_err(|_| JwtError::Malformed(format!("the {what} is not base64url")))
    };
    let header: Value = serde_json::from_slice(&decode(header_b64, "header")?)
        .map_err(|_| malformed("the header is not JSON"))?;
    let payload = decode(payload_b64, "payload")?;
    let signature = decode(signature_b64, "signature")?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("the header has no string `alg`"))?;
    if alg != "HS256" {
        return Err(JwtError::WrongAlgorithm(alg.to_string()));
    }
    let signing_input = format!("{header_b64}.{payload_b64}");
    if !crate::crypto::verify_hmac_sha256(key, signing_input.as_bytes(), &signature) {
        return Err(JwtError::BadSignature);
    }
    let claims: Value =
        serde_json::from_slice(&payload).map_err(|_| malformed("the payload is not JSON"))?;
    if !claims.is_object() {
        return Err(malformed("the payload is not a JSON object"));
    }
    let date = |name: &str| -> Result<Option<f64>, JwtError> {
        match claims.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| JwtError::Malformed(format!("`{name}` is not a number"))),
        }
    };
    let now = now_secs as f64;
    if date("exp")?.is_some_and(|exp| exp < now - JWT_LEEWAY_SECS) {
        return Err(JwtError::Expired);
    }
    if date("nbf")?.is_some_and(|nbf| nbf > now + JWT_LEEWAY_SECS) {
        return Err(JwtError::NotYetValid);
    }
    String::from_utf8(payload).map_err(|_| malformed("the payload is not UTF-8"))
}

pub(super) fn rsa_sign(pem: &[u8], hash: RsaHash, message: &[u8]) -> Result<Vec<u8>, String> {
    let not_a_key = || "the secret is not an RSA private key in PEM (PKCS#1 or PKCS#8)".to_string();
    let pem = std::str::from_utf8(pem).map_err(|_| not_a_key())?;
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem)
        .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(pem))
        .map_err(|_| not_a_key())?;
    Ok(match hash {
        RsaHash::Sha1 => SigningKey::<sha1::Sha1>::new(key).sign(message).to_vec(),
        RsaHash::Sha256 => SigningKey::<sha2::Sha256>::new(key).sign(message).to_vec(),
    })
}
