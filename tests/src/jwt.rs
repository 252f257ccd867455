//! Atlassian Connect JWT (HS256) and query-string-hash helpers, used both to sign webhooks sent to
//! the host and by the Jira simulator to verify the plugin's outbound `Authorization: JWT` calls.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The JOSE header every token carries, byte for byte.
pub const HS256_HEADER: &str = r#"{"typ":"JWT","alg":"HS256"}"#;

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0x0f) as usize] as char);
    }
    out
}

/// Lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// HMAC-SHA256 of `data` under `key`.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Encode `claims` as an HS256 JWT with the header `{"typ":"JWT","alg":"HS256"}`.
pub fn encode_hs256(claims: &Value, secret: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(HS256_HEADER);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialise"));
    let signing_input = format!("{header}.{payload}");
    let signature = URL_SAFE_NO_PAD.encode(hmac_sha256(secret, signing_input.as_bytes()));
    format!("{signing_input}.{signature}")
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtError {
    Malformed(String),
    BadAlgorithm(String),
    BadSignature,
    Expired { exp: i64, now: i64 },
    WrongIssuer { expected: String, got: String },
    QshMismatch { expected: String, got: String },
}

impl std::fmt::Display for JwtError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwtError::Malformed(m) => write!(f, "malformed token: {m}"),
            JwtError::BadAlgorithm(a) => write!(f, "algorithm {a} not accepted"),
            JwtError::BadSignature => write!(f, "signature is invalid"),
            JwtError::Expired { exp, now } => write!(f, "token expired (exp {exp}, now {now})"),
            JwtError::WrongIssuer { expected, got } => {
                write!(f, "issuer {got:?} is not {expected:?}")
            }
            JwtError::QshMismatch { expected, got } => {
                write!(f, "query hash mismatch (expected {expected}, got {got})")
            }
        }
    }
}

/// Split a compact JWT and decode its header and claims without checking anything.
pub fn decode_unverified(token: &str) -> Result<(Value, Value), JwtError> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(JwtError::Malformed(format!("{} segments", parts.len())));
    }
    let decode = |segment: &str| -> Result<Value, JwtError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(segment.trim_end_matches('='))
            .map_err(|e| JwtError::Malformed(e.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| JwtError::Malformed(e.to_string()))
    };
    Ok((decode(parts[0])?, decode(parts[1])?))
}

/// Verify an HS256 token's signature and expiry (with `leeway_secs`); returns the claims.
pub fn verify_hs256(
    token: &str,
    secret: &[u8],
    now_secs: i64,
    leeway_secs: i64,
) -> Result<Value, JwtError> {
    let (header, claims) = decode_unverified(token)?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    if alg != "HS256" {
        return Err(JwtError::BadAlgorithm(alg.to_string()));
    }
    let (signing_input, signature) = token.rsplit_once('.').expect("three segments checked");
    let given = URL_SAFE_NO_PAD
        .decode(signature.trim_end_matches('='))
        .map_err(|_| JwtError::BadSignature)?;
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(signing_input.as_bytes());
    mac.verify_slice(&given)
        .map_err(|_| JwtError::BadSignature)?;
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or_else(|| JwtError::Malformed("no numeric exp claim".into()))?;
    if exp + leeway_secs < now_secs {
        return Err(JwtError::Expired { exp, now: now_secs });
    }
    Ok(claims)
}

/// Percent-encode per RFC 3986: unreserved characters stay, everything else becomes `%XX`.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Decode a query-string component (`%XX` escapes, `+` as space). Invalid escapes stay literal.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 3 <= bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse a raw query string into decoded `(name, value)` pairs, in order.
pub fn parse_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(pair), String::new()),
        })
        .collect()
}

/// The Atlassian canonical request: `METHOD&path&sorted-query`.
///
/// The path loses one trailing `/` (unless it is `/`), `&` in it becomes `%26`; the query drops
/// `jwt`, percent-encodes names and values, sorts by name, joins repeated values (sorted) with `,`.
pub fn canonical_request(method: &str, path: &str, raw_query: &str) -> String {
    let mut path = if path.is_empty() { "/" } else { path }.to_string();
    if path.len() > 1 && path.ends_with('/') {
        path.pop();
    }
    let path = path.replace('&', "%26");
    let mut params: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (k, v) in parse_query(raw_query) {
        if k == "jwt" {
            continue;
        }
        params
            .entry(percent_encode(&k))
            .or_default()
            .push(percent_encode(&v));
    }
    let query = params
        .into_iter()
        .map(|(k, mut vs)| {
            vs.sort();
            format!("{k}={}", vs.join(","))
        })
        .collect::<Vec<_>>()
        .join("&");
    format!("{}&{path}&{query}", method.to_ascii_uppercase())
}

/// The `qsh` claim for a request.
pub fn qsh(method: &str, path: &str, raw_query: &str) -> String {
    sha256_hex(canonical_request(method, path, raw_query).as_bytes())
}

/// Seconds since the Unix epoch, from the system clock.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_request_vectors() {
        assert_eq!(
            canonical_request("POST", "/extensions/jira/issue-updated/", ""),
            "POST&/extensions/jira/issue-updated&"
        );
        assert_eq!(
            qsh("GET", "/path", ""),
            "799be84a7fa35570087163c0cd9af3abff7ac05c2c12ba0bb1d7eebc984b3ac2"
        );
        assert_eq!(
            qsh("GET", "", ""),
            "c88caad15a1c1a900b8ac08aa9686f4e8184539bea1deda36e2f649430df3239"
        );
        assert_eq!(
            canonical_request("GET", "/path/to/service", "a=1&A=2&b=3&B=4"),
            "GET&/path/to/service&A=2&B=4&a=1&b=3"
        );
        assert_eq!(
            qsh("GET", "/path/to/service", "a=1&A=2&b=3&B=4"),
            "70282c7cf82834bd5a3d6dacda1b4ccd5cf5860a63a1fa2fb86b64d576e6a1d5"
        );
        assert_eq!(
            qsh(
                "GET",
                "/path/to/service",
                "zee_last=param&repeated=parameter%201&first=param&repeated=parameter%202"
            ),
            "e52bb281606c3bd9ca16cfe96fe2df78f5d9ffa126f06befd750dfa10fa1a897"
        );
        assert_eq!(
            qsh(
                "GET",
                "/extensions/jira/configure/",
                "a=1&b=2&c=3&test=pass"
            ),
            "36f43b88d6a8cdf89bb8f744e2378bb0ceb6378e80ab0b513082a8b72396bccc"
        );
        assert_eq!(
            canonical_request("GET", "/hello-world", "a&b=foo&c&jwt=abc"),
            "GET&/hello-world&a=&b=foo&c="
        );
    }

    #[test]
    fn token_round_trip_and_failures() {
        let claims = serde_json::json!({"iss": "x", "iat": 100, "exp": 400, "qsh": "q"});
        let token = encode_hs256(&claims, b"secret");
        assert_eq!(verify_hs256(&token, b"secret", 200, 0).unwrap(), claims);
        assert_eq!(
            verify_hs256(&token, b"other", 200, 0),
            Err(JwtError::BadSignature)
        );
        assert!(matches!(
            verify_hs256(&token, b"secret", 500, 60),
            Err(JwtError::Expired { .. })
        ));
        assert!(verify_hs256(&token, b"secret", 450, 60).is_ok());
    }

    #[test]
    fn sentry_outbound_vector() {
        // GET /rest/api/2/serverInfo?query=1&user=me, frozen at 2023-01-01 01:01:01 UTC.
        assert_eq!(
            qsh("GET", "/rest/api/2/serverInfo", "query=1&user=me"),
            "de952010640ab2cfd2062781b54e94b78fce16731006db7deeaffceb425fe242"
        );
    }
}
