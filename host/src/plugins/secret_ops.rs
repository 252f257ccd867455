//! The cryptography the host performs for plugins on secrets they hold only as
//! handles (contract 0.2.0, interface `secrets` in `wit/v0.2.0/plugin.wit`):
//! the secret's bytes never enter the guest, so HMACs, JWT checks, RSA
//! signatures and header values are computed here. Pure functions: the caller
//! looks the secret up and passes its bytes in.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use hmac::{Hmac, Mac};
use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKey};
use openssl::rsa::Padding;
use openssl::sign::Signer;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// How far (seconds) `exp` and `nbf` may be off, for clocks that disagree.
pub const JWT_LEEWAY_SECS: i64 = 30;

/// base64url that takes JWT parts with or without `=` padding: RFC 7515 says
/// none, but some issuers pad, and refusing them gains nothing.
const BASE64URL_ANY_PAD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a JWT was refused (mirrors the contract's `jwt-error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtRefusal {
    /// Not three base64url parts, or a part that is not the JSON it must be.
    #[error("malformed JWT: {0}")]
    Malformed(String),
    /// The header's `alg` is not `HS256` (the value it has instead).
    #[error("the JWT's algorithm is {0:?}, not HS256")]
    WrongAlgorithm(String),
    /// The signature does not match the key.
    #[error("the JWT's signature does not match")]
    BadSignature,
    /// `exp` is further in the past than the leeway.
    #[error("the JWT has expired")]
    Expired,
    /// `nbf` is further in the future than the leeway.
    #[error("the JWT is not valid yet")]
    NotYetValid,
}

/// A fresh HMAC-SHA256 keyed by `key`.
fn hmac_with(key: &[u8]) -> HmacSha256 {
    // HMAC hashes a long key and pads a short one: any length is a key.
    HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length")
}

/// HMAC-SHA256 of `message` keyed by `key` (webhook signatures, OAuth).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = hmac_with(key);
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// Whether `mac` is the HMAC-SHA256 of `message` keyed by `key`. Compared in
/// constant time (`verify_slice`), so a forger learns nothing from timing; a
/// truncated `mac` does not match.
pub fn hmac_sha256_verify(key: &[u8], message: &[u8], mac: &[u8]) -> bool {
    // Anyone can compute an HMAC under an empty key.
    if key.is_empty() {
        return false;
    }
    let mut computed = hmac_with(key);
    computed.update(message);
    computed.verify_slice(mac).is_ok()
}

/// Verify an HS256 JWT signed with `key` at time `now_secs` (Unix seconds)
/// and return its claims: the payload's JSON text, decoded, as received.
///
/// The token is three base64url parts (padding tolerated); the header must be
/// a JSON object whose `alg` is `HS256` — checked before the signature, so a
/// token cannot choose `none` or an RSA algorithm keyed by this secret. The
/// signature over `header.payload` is compared in constant time. The payload
/// must be a JSON object; `exp` and `nbf`, when present, must be numbers and
/// hold with [`JWT_LEEWAY_SECS`] of leeway. Other claims (`iss`, `aud`,
/// Atlassian's `qsh`) are the caller's to check.
pub fn jwt_hs256_verify(key: &[u8], token: &str, now_secs: i64) -> Result<String, JwtRefusal> {
    let malformed = |why: &str| JwtRefusal::Malformed(why.to_owned());

    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("not three dot-separated parts"));
    };
    let decode = |part: &str, what: &str| {
        BASE64URL_ANY_PAD
            .decode(part)
            .map_err(|_| JwtRefusal::Malformed(format!("the {what} is not base64url")))
    };
    let header = decode(header_b64, "header")?;
    let payload = decode(payload_b64, "payload")?;
    let signature = decode(signature_b64, "signature")?;

    let header: serde_json::Value =
        serde_json::from_slice(&header).map_err(|_| malformed("the header is not JSON"))?;
    let header = header
        .as_object()
        .ok_or_else(|| malformed("the header is not a JSON object"))?;
    // RFC 7515 requires `alg`, a string: without one this is no JWS header.
    let alg = header
        .get("alg")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| malformed("the header has no string `alg`"))?;
    if alg != "HS256" {
        return Err(JwtRefusal::WrongAlgorithm(alg.to_owned()));
    }

    // The signing input is the two parts exactly as they came (padding too).
    let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
    if !hmac_sha256_verify(key, signing_input.as_bytes(), &signature) {
        return Err(JwtRefusal::BadSignature);
    }

    let claims: serde_json::Value =
        serde_json::from_slice(&payload).map_err(|_| malformed("the payload is not JSON"))?;
    let claims = claims
        .as_object()
        .ok_or_else(|| malformed("the payload is not a JSON object"))?;
    // A present but non-numeric `exp`/`nbf` is refused rather than ignored,
    // or `"exp": "0"` would make an old token live for ever.
    if let Some(exp) = claims.get("exp") {
        let exp = NumericDate::of(exp).ok_or_else(|| malformed("`exp` is not a number"))?;
        if exp.is_before(now_secs.saturating_sub(JWT_LEEWAY_SECS)) {
            return Err(JwtRefusal::Expired);
        }
    }
    if let Some(nbf) = claims.get("nbf") {
        let nbf = NumericDate::of(nbf).ok_or_else(|| malformed("`nbf` is not a number"))?;
        if nbf.is_after(now_secs.saturating_add(JWT_LEEWAY_SECS)) {
            return Err(JwtRefusal::NotYetValid);
        }
    }

    // Valid JSON is valid UTF-8; the check costs nothing and avoids a panic path.
    String::from_utf8(payload).map_err(|_| malformed("the payload is not UTF-8"))
}

/// A JWT NumericDate: seconds, an integer or (rarely) a fraction. Integers are
/// compared exactly; other numbers as `f64`, exact for any plausible date.
#[derive(Clone, Copy)]
enum NumericDate {
    Int(i64),
    Float(f64),
}

impl NumericDate {
    fn of(value: &serde_json::Value) -> Option<Self> {
        let n = value.as_number()?;
        n.as_i64()
            .map(Self::Int)
            .or_else(|| n.as_f64().map(Self::Float))
    }

    fn is_before(self, secs: i64) -> bool {
        match self {
            Self::Int(t) => t < secs,
            Self::Float(t) => t < secs as f64,
        }
    }

    fn is_after(self, secs: i64) -> bool {
        match self {
            Self::Int(t) => t > secs,
            Self::Float(t) => t > secs as f64,
        }
    }
}

/// Hash functions for RSA signatures: SHA-1 for OAuth 1.0a's RSA-SHA1 (Jira
/// Server application links), SHA-256 for RS256 JWTs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaHash {
    Sha1,
    Sha256,
}

/// Why an RSA signature was not made.
#[derive(Debug, thiserror::Error)]
pub enum RsaSignError {
    /// The secret is not an (unencrypted) RSA private key in PEM.
    #[error("the secret is not an RSA private key in PEM (PKCS#1 or PKCS#8)")]
    NotAKey,
    /// OpenSSL refused to sign (its error, which does not hold the key).
    #[error("signing failed: {0}")]
    Failed(String),
}

/// RSASSA-PKCS1-v1_5 signature of `message` with SHA-1 or SHA-256, the key in
/// PEM: PKCS#1 (`BEGIN RSA PRIVATE KEY`) or PKCS#8 (`BEGIN PRIVATE KEY`).
///
/// OpenSSL, not a pure-Rust crate: the `rsa` crate is subject to
/// RUSTSEC-2023-0071 (the Marvin timing attack) with no patched release, and
/// ring and aws-lc-rs do not sign with SHA-1, which OAuth 1.0a's RSA-SHA1 needs.
pub fn rsa_sign(pem: &[u8], hash: RsaHash, message: &[u8]) -> Result<Vec<u8>, RsaSignError> {
    // The callback supplies an empty passphrase: an encrypted key fails to load
    // instead of OpenSSL's default callback prompting on the terminal.
    let pkey =
        PKey::private_key_from_pem_callback(pem, |_| Ok(0)).map_err(|_| RsaSignError::NotAKey)?;
    // Only plain RSA: an RSA-PSS key cannot make PKCS#1 v1.5 signatures.
    if pkey.id() != Id::RSA {
        return Err(RsaSignError::NotAKey);
    }
    let digest = match hash {
        RsaHash::Sha1 => MessageDigest::sha1(),
        RsaHash::Sha256 => MessageDigest::sha256(),
    };
    let failed = |e: openssl::error::ErrorStack| RsaSignError::Failed(e.to_string());
    let mut signer = Signer::new(digest, &pkey).map_err(failed)?;
    signer.set_rsa_padding(Padding::PKCS1).map_err(failed)?;
    signer.sign_oneshot_to_vec(message).map_err(failed)
}

/// How a secret becomes a header value (mirrors the contract's `header-format`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderFormat {
    /// The secret as it is.
    Raw,
    /// The text, then the secret: `Bearer ` + token, `Bot ` + token.
    Prefixed(String),
    /// HTTP Basic with this user: `Basic ` + base64(user + `:` + secret).
    Basic(String),
}

/// The secret (or the text around it) cannot make a header value. Says
/// nothing about the secret itself, so it is safe to log or hand to a plugin.
#[derive(Debug, thiserror::Error)]
#[error("the secret cannot be an HTTP header value (it holds a control character or is not UTF-8)")]
pub struct NotAHeaderValue;

/// The header value `format` makes of `secret`.
///
/// Refused when the secret is not UTF-8 or the value would hold a byte an
/// HTTP field value may not (a control character other than HTAB, or DEL):
/// a CR or LF would split the request. For Basic, the user and the secret are
/// checked before encoding, as RFC 7617 forbids control characters in both —
/// typically a secret read from a file with its trailing newline.
pub fn header_value(secret: &[u8], format: &HeaderFormat) -> Result<String, NotAHeaderValue> {
    let secret = std::str::from_utf8(secret).map_err(|_| NotAHeaderValue)?;
    let checked = |text: String| {
        if is_field_value(&text) {
            Ok(text)
        } else {
            Err(NotAHeaderValue)
        }
    };
    match format {
        HeaderFormat::Raw => checked(secret.to_owned()),
        HeaderFormat::Prefixed(prefix) => checked(format!("{prefix}{secret}")),
        HeaderFormat::Basic(user) => {
            if !is_field_value(user) || !is_field_value(secret) {
                return Err(NotAHeaderValue);
            }
            let credentials = STANDARD.encode(format!("{user}:{secret}"));
            Ok(format!("Basic {credentials}"))
        }
    }
}

/// Whether every byte may appear in an HTTP field value (RFC 9110: visible
/// ASCII, SP, HTAB and obs-text; the same bytes `http::HeaderValue` accepts).
fn is_field_value(text: &str) -> bool {
    text.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
    use openssl::pkey::Public;
    use openssl::rsa::Rsa;
    use openssl::sign::Verifier;
    use openssl::symm::Cipher;

    use super::*;

    const KEY: &[u8] = b"the shared secret";
    const NOW: i64 = 1_700_000_000;

    /// An HS256-signed token over `header` and `payload` as given (any JSON, or not).
    fn token_with(key: &[u8], header: &str, payload: &str) -> String {
        let input = format!(
            "{}.{}",
            base64url(header.as_bytes()),
            base64url(payload.as_bytes())
        );
        let signature = base64url(&hmac_sha256(key, input.as_bytes()));
        format!("{input}.{signature}")
    }

    /// base64url without padding, as JWTs are written.
    fn base64url(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn hs256(payload: &str) -> String {
        token_with(KEY, r#"{"alg":"HS256","typ":"JWT"}"#, payload)
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    // --- HMAC ---

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn hmac_verify_accepts_the_right_mac_only() {
        let (key, message) = (
            b"Jefe".as_slice(),
            b"what do ya want for nothing?".as_slice(),
        );
        let mac = hmac_sha256(key, message);
        assert!(hmac_sha256_verify(key, message, &mac));

        let mut altered = mac.clone();
        altered[7] ^= 0x01;
        assert!(!hmac_sha256_verify(key, message, &altered));
        assert!(!hmac_sha256_verify(key, message, &mac[..16]));
        assert!(!hmac_sha256_verify(key, message, &[]));
        assert!(!hmac_sha256_verify(b"jefe", message, &mac));
    }

    // --- JWT ---

    #[test]
    fn an_empty_key_verifies_nothing() {
        // Not even its own MAC, which anyone can compute.
        let mac = hmac_sha256(b"", b"body");
        assert!(!hmac_sha256_verify(b"", b"body", &mac));
        let token = token_with(b"", r#"{"alg":"HS256"}"#, "{}");
        assert_eq!(
            jwt_hs256_verify(b"", &token, 0),
            Err(JwtRefusal::BadSignature)
        );
    }

    #[test]
    fn jwt_valid_token_returns_its_claims() {
        let claims = r#"{"iss":"jira:1234","qsh":"abc","exp":1700000600,"nbf":1699999990}"#;
        assert_eq!(
            jwt_hs256_verify(KEY, &hs256(claims), NOW).as_deref(),
            Ok(claims)
        );
        // No `exp` or `nbf` at all is fine too.
        assert_eq!(
            jwt_hs256_verify(KEY, &hs256("{}"), NOW).as_deref(),
            Ok("{}")
        );
    }

    #[test]
    fn jwt_padded_parts_are_tolerated() {
        // 7 bytes of payload and 32 of signature both end in `=` when padded.
        let (header, claims) = (r#"{"alg":"HS256"}"#, r#"{"a":1}"#);
        let input = format!("{}.{}", URL_SAFE.encode(header), URL_SAFE.encode(claims));
        assert!(input.ends_with('='), "the test needs padding: {input}");
        let signature = URL_SAFE.encode(hmac_sha256(KEY, input.as_bytes()));
        assert!(signature.ends_with('='));
        let token = format!("{input}.{signature}");
        assert_eq!(jwt_hs256_verify(KEY, &token, NOW).as_deref(), Ok(claims));
    }

    #[test]
    fn jwt_altered_payload_is_a_bad_signature() {
        let token = hs256(r#"{"sub":"alice","exp":1700000600}"#);
        let parts: Vec<&str> = token.split('.').collect();
        let forged = base64url(br#"{"sub":"admin","exp":1700000600}"#);
        let altered = format!("{}.{}.{}", parts[0], forged, parts[2]);
        assert_eq!(
            jwt_hs256_verify(KEY, &altered, NOW),
            Err(JwtRefusal::BadSignature)
        );

        // One byte of the encoded payload changed, still valid base64url.
        let mut bytes = token.clone().into_bytes();
        let at = parts[0].len() + 2;
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(bytes).unwrap();
        assert_eq!(
            jwt_hs256_verify(KEY, &altered, NOW),
            Err(JwtRefusal::BadSignature)
        );

        // And another key.
        assert_eq!(
            jwt_hs256_verify(b"another secret", &token, NOW),
            Err(JwtRefusal::BadSignature)
        );
    }

    #[test]
    fn jwt_other_algorithms_are_refused() {
        let claims = r#"{"sub":"alice"}"#;
        // Signed with the key all the same: the algorithm alone is refused.
        for alg in ["none", "RS256", "HS512", "hs256"] {
            let token = token_with(KEY, &format!(r#"{{"alg":"{alg}"}}"#), claims);
            assert_eq!(
                jwt_hs256_verify(KEY, &token, NOW),
                Err(JwtRefusal::WrongAlgorithm(alg.to_owned())),
                "{alg}"
            );
        }
        // `none` with an empty signature, as an attacker would send it.
        let token = format!(
            "{}.{}.",
            base64url(br#"{"alg":"none"}"#),
            base64url(claims.as_bytes())
        );
        assert_eq!(
            jwt_hs256_verify(KEY, &token, NOW),
            Err(JwtRefusal::WrongAlgorithm("none".to_owned()))
        );
    }

    #[test]
    fn jwt_expired_beyond_the_leeway_is_refused() {
        let exp = NOW - JWT_LEEWAY_SECS - 1;
        let token = hs256(&format!(r#"{{"exp":{exp}}}"#));
        assert_eq!(jwt_hs256_verify(KEY, &token, NOW), Err(JwtRefusal::Expired));
        let token = hs256(&format!(r#"{{"exp":{exp}.5}}"#));
        assert_eq!(jwt_hs256_verify(KEY, &token, NOW), Err(JwtRefusal::Expired));
    }

    #[test]
    fn jwt_expired_within_the_leeway_is_accepted() {
        for exp in [NOW - JWT_LEEWAY_SECS, NOW - 1, NOW] {
            let token = hs256(&format!(r#"{{"exp":{exp}}}"#));
            assert!(jwt_hs256_verify(KEY, &token, NOW).is_ok(), "exp {exp}");
        }
    }

    #[test]
    fn jwt_not_yet_valid_beyond_the_leeway_is_refused() {
        let nbf = NOW + JWT_LEEWAY_SECS + 1;
        let token = hs256(&format!(r#"{{"nbf":{nbf},"exp":{}}}"#, NOW + 600));
        assert_eq!(
            jwt_hs256_verify(KEY, &token, NOW),
            Err(JwtRefusal::NotYetValid)
        );

        let token = hs256(&format!(r#"{{"nbf":{}}}"#, NOW + JWT_LEEWAY_SECS));
        assert!(jwt_hs256_verify(KEY, &token, NOW).is_ok());
    }

    #[test]
    fn jwt_non_numeric_times_are_malformed() {
        for claims in [r#"{"exp":"0"}"#, r#"{"nbf":null}"#, r#"{"exp":[1]}"#] {
            assert!(
                matches!(
                    jwt_hs256_verify(KEY, &hs256(claims), NOW),
                    Err(JwtRefusal::Malformed(_))
                ),
                "{claims}"
            );
        }
    }

    #[test]
    fn jwt_garbage_is_malformed() {
        let valid = hs256("{}");
        let parts: Vec<&str> = valid.split('.').collect();
        let garbage = [
            "".to_owned(),
            "a.b".to_owned(),
            "a.b.c.d".to_owned(),
            format!("{valid}.{}", parts[2]),
            // Not base64url: `+`, `/`, `*`, and a bad length.
            format!("{}.{}.{}", "ey+J", parts[1], parts[2]),
            format!("{}.{}.{}", parts[0], "e/30", parts[2]),
            format!("{}.{}.{}", parts[0], parts[1], "**"),
            format!("{}.{}.{}", parts[0], "e", parts[2]),
            // A header that is not JSON, or not an object, or has no `alg`.
            format!("{}.{}.{}", base64url(b"not json"), parts[1], parts[2]),
            format!("{}.{}.{}", base64url(b"[\"HS256\"]"), parts[1], parts[2]),
            format!(
                "{}.{}.{}",
                base64url(br#"{"typ":"JWT"}"#),
                parts[1],
                parts[2]
            ),
            format!("{}.{}.{}", base64url(br#"{"alg":256}"#), parts[1], parts[2]),
        ];
        for token in &garbage {
            assert!(
                matches!(
                    jwt_hs256_verify(KEY, token, NOW),
                    Err(JwtRefusal::Malformed(_))
                ),
                "{token:?}: {:?}",
                jwt_hs256_verify(KEY, token, NOW)
            );
        }
        // Correctly signed, but the payload is not a JSON object.
        for payload in ["not json", "[1,2]", "42", ""] {
            let token = token_with(KEY, r#"{"alg":"HS256"}"#, payload);
            assert!(
                matches!(
                    jwt_hs256_verify(KEY, &token, NOW),
                    Err(JwtRefusal::Malformed(_))
                ),
                "{payload:?}"
            );
        }
    }

    // --- RSA ---

    fn verifies(public: &PKey<Public>, hash: RsaHash, message: &[u8], signature: &[u8]) -> bool {
        let digest = match hash {
            RsaHash::Sha1 => MessageDigest::sha1(),
            RsaHash::Sha256 => MessageDigest::sha256(),
        };
        let mut verifier = Verifier::new(digest, public).unwrap();
        verifier.set_rsa_padding(Padding::PKCS1).unwrap();
        verifier.verify_oneshot(signature, message).unwrap()
    }

    #[test]
    fn rsa_signs_with_pkcs1_and_pkcs8_keys_and_both_hashes() {
        let rsa = Rsa::generate(2048).unwrap();
        let pkcs1 = rsa.private_key_to_pem().unwrap();
        assert!(pkcs1.starts_with(b"-----BEGIN RSA PRIVATE KEY-----"));
        let private = PKey::from_rsa(rsa).unwrap();
        let pkcs8 = private.private_key_to_pem_pkcs8().unwrap();
        assert!(pkcs8.starts_with(b"-----BEGIN PRIVATE KEY-----"));
        let public = PKey::public_key_from_pem(&private.public_key_to_pem().unwrap()).unwrap();

        let message = b"POST&https%3A%2F%2Fjira.example.com%2Fplugins%2Fservlet%2Foauth";
        for pem in [&pkcs1, &pkcs8] {
            for hash in [RsaHash::Sha1, RsaHash::Sha256] {
                let signature = rsa_sign(pem, hash, message).unwrap();
                assert_eq!(signature.len(), 256);
                assert!(verifies(&public, hash, message, &signature), "{hash:?}");
                assert!(!verifies(&public, hash, b"another message", &signature));
            }
        }
        // The hash is the one asked for: a SHA-1 signature is no SHA-256 one.
        let sha1 = rsa_sign(&pkcs8, RsaHash::Sha1, message).unwrap();
        assert!(!verifies(&public, RsaHash::Sha256, message, &sha1));
    }

    #[test]
    fn rsa_refuses_what_is_not_an_rsa_private_key() {
        let rsa = Rsa::generate(2048).unwrap();
        let public_pem = rsa.public_key_to_pem().unwrap();
        let encrypted = PKey::from_rsa(rsa)
            .unwrap()
            .private_key_to_pem_pkcs8_passphrase(Cipher::aes_256_cbc(), b"passphrase")
            .unwrap();
        let ec = PKey::from_ec_key(
            openssl::ec::EcKey::generate(
                &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
                    .unwrap(),
            )
            .unwrap(),
        )
        .unwrap()
        .private_key_to_pem_pkcs8()
        .unwrap();
        let not_pem = b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n";
        let mut random = [0u8; 512];
        openssl::rand::rand_bytes(&mut random).unwrap();
        let inputs: [(&str, &[u8]); 6] = [
            ("public key", &public_pem),
            ("encrypted key", &encrypted),
            ("EC key", &ec),
            ("PEM that is no key", not_pem),
            ("random bytes", &random),
            ("empty", b""),
        ];
        for (what, pem) in inputs {
            assert!(
                matches!(
                    rsa_sign(pem, RsaHash::Sha256, b"m"),
                    Err(RsaSignError::NotAKey)
                ),
                "{what}"
            );
        }
    }

    // --- Header values ---

    #[test]
    fn header_value_formats() {
        assert_eq!(header_value(b"tok", &HeaderFormat::Raw).unwrap(), "tok");
        assert_eq!(
            header_value(b"tok", &HeaderFormat::Prefixed("Bearer ".to_owned())).unwrap(),
            "Bearer tok"
        );
        assert_eq!(
            header_value(b"tok", &HeaderFormat::Basic("me@example.com".to_owned())).unwrap(),
            format!("Basic {}", STANDARD.encode("me@example.com:tok"))
        );
        assert_eq!(
            header_value(b"tok", &HeaderFormat::Basic("me@example.com".to_owned())).unwrap(),
            "Basic bWVAZXhhbXBsZS5jb206dG9r"
        );
        // HTAB, SP and non-ASCII UTF-8 are allowed in a field value.
        assert_eq!(
            header_value("a\tb c é".as_bytes(), &HeaderFormat::Raw).unwrap(),
            "a\tb c é"
        );
    }

    #[test]
    fn header_value_refuses_control_characters_without_echoing_the_secret() {
        let secret = "s3cr3t-t0ken\n";
        for format in [
            HeaderFormat::Raw,
            HeaderFormat::Prefixed("Bearer ".to_owned()),
            HeaderFormat::Basic("me@example.com".to_owned()),
        ] {
            let error = header_value(secret.as_bytes(), &format).unwrap_err();
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains("s3cr3t"), "{format:?}: {shown}");
        }
        for bad in [&b"a\rb"[..], b"a\0b", b"a\x7fb", b"a\x1bb", b"\xff\xfe"] {
            assert!(header_value(bad, &HeaderFormat::Raw).is_err(), "{bad:?}");
        }
        // The text around the secret is checked too.
        assert!(header_value(b"tok", &HeaderFormat::Prefixed("Bearer\r\nX: ".to_owned())).is_err());
        assert!(header_value(b"tok", &HeaderFormat::Basic("me\n".to_owned())).is_err());
    }
}
