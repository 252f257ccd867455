//! What verifying a webhook takes: HMAC-SHA256 signatures, SHA-256 digests,
//! hex, and comparisons that take the same time wherever the inputs differ.
//!
//! A signature or shared secret compared with `==` stops at the first wrong
//! byte, so response times tell a forger how much of a guess was right. The
//! `verify_*` functions and [`constant_time_eq`] never do.
//!
//! ```
//! use trackbridge_plugin_sdk::crypto;
//!
//! let secret = b"It's a Secret to Everybody";
//! let body = b"Hello, World!";
//! // A sender's `X-Hub-Signature-256: sha256=<hex>` header:
//! let header = format!("sha256={}", crypto::hmac_sha256_hex(secret, body));
//! let hex = header.strip_prefix("sha256=").unwrap_or_default();
//! assert!(crypto::verify_hmac_sha256_hex(secret, body, hex));
//! assert!(!crypto::verify_hmac_sha256_hex(b"another secret", body, hex));
//! ```
//!
//! Built on the RustCrypto crates `hmac`, `sha2` and `subtle`.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// True when `a` and `b` are equal. The time taken depends only on the
/// lengths (which are not secret: a signature's length is public), never on
/// where the contents differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// The SHA-256 digest of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// [`sha256`] as lower-case hex (64 characters).
pub fn sha256_hex(data: &[u8]) -> String {
    to_hex(&sha256(data))
}

fn mac(key: &[u8], message: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length (longer ones are hashed first), so
    // `new_from_slice` cannot fail here.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac
}

/// HMAC-SHA256 of `message` under `key` (RFC 2104).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    mac(key, message).finalize().into_bytes().into()
}

/// [`hmac_sha256`] as lower-case hex (64 characters), the form most webhook
/// senders put in a header.
pub fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    to_hex(&hmac_sha256(key, message))
}

/// True when `signature` (32 raw bytes) is the HMAC-SHA256 of `message` under
/// `key`, compared in constant time. A signature of another length is false.
pub fn verify_hmac_sha256(key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    mac(key, message).verify_slice(signature).is_ok()
}

/// True when `signature_hex` (64 hex digits, either case, surrounding blanks
/// ignored) is the HMAC-SHA256 of `message` under `key`, compared in constant
/// time. Anything that is not such hex is false. Strip a sender's prefix
/// (`sha256=`) before calling.
pub fn verify_hmac_sha256_hex(key: &[u8], message: &[u8], signature_hex: &str) -> bool {
    match from_hex(signature_hex.trim()) {
        Some(signature) => verify_hmac_sha256(key, message, &signature),
        None => false,
    }
}

/// `bytes` as lower-case hex.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Decodes hex of either case; `None` for an odd length or a non-hex character.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 section 4.2, test case 1.
    const CASE1_KEY: [u8; 20] = [0x0b; 20];
    const CASE1_DATA: &[u8] = b"Hi There";
    const CASE1_MAC: &str = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7";

    /// RFC 4231 section 4.3, test case 2 (a key shorter than the output).
    const CASE2_KEY: &[u8] = b"Jefe";
    const CASE2_DATA: &[u8] = b"what do ya want for nothing?";
    const CASE2_MAC: &str = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";

    #[test]
    fn rfc_4231_vectors() {
        assert_eq!(hmac_sha256_hex(&CASE1_KEY, CASE1_DATA), CASE1_MAC);
        assert_eq!(hmac_sha256_hex(CASE2_KEY, CASE2_DATA), CASE2_MAC);
        assert_eq!(
            hmac_sha256(CASE2_KEY, CASE2_DATA).to_vec(),
            from_hex(CASE2_MAC).unwrap()
        );
    }

    #[test]
    fn verifies_raw_and_hex_signatures() {
        let raw = from_hex(CASE1_MAC).unwrap();
        assert!(verify_hmac_sha256(&CASE1_KEY, CASE1_DATA, &raw));
        assert!(verify_hmac_sha256_hex(&CASE1_KEY, CASE1_DATA, CASE1_MAC));
        assert!(verify_hmac_sha256_hex(
            CASE2_KEY,
            CASE2_DATA,
            &format!(" {} ", CASE2_MAC.to_ascii_uppercase())
        ));

        // Wrong key, wrong message, one bit off, truncated, extended.
        assert!(!verify_hmac_sha256(CASE2_KEY, CASE1_DATA, &raw));
        assert!(!verify_hmac_sha256(&CASE1_KEY, b"Hi there", &raw));
        let mut flipped = raw.clone();
        flipped[31] ^= 1;
        assert!(!verify_hmac_sha256(&CASE1_KEY, CASE1_DATA, &flipped));
        assert!(!verify_hmac_sha256(&CASE1_KEY, CASE1_DATA, &raw[..31]));
        assert!(!verify_hmac_sha256(
            &CASE1_KEY,
            CASE1_DATA,
            &[raw.clone(), vec![0]].concat()
        ));
        assert!(!verify_hmac_sha256(&CASE1_KEY, CASE1_DATA, &[]));

        // Not hex, odd length, a prefix left on, multi-byte characters.
        for bad in [
            "",
            "zz",
            &CASE1_MAC[..63],
            format!("sha256={CASE1_MAC}").as_str(),
            format!("{}é", &CASE1_MAC[..62]).as_str(),
        ] {
            assert!(
                !verify_hmac_sha256_hex(&CASE1_KEY, CASE1_DATA, bad),
                "{bad}"
            );
        }
    }

    #[test]
    fn sha256_digest() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(to_hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(from_hex("000FA5ff"), Some(vec![0x00, 0x0f, 0xa5, 0xff]));
        assert_eq!(from_hex(""), Some(vec![]));
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("0g"), None);
        assert_eq!(from_hex("é0"), None);
    }

    #[test]
    fn compares_in_constant_time() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"1234567890", b"1234567890"));
        assert!(!constant_time_eq(b"1234567890", b"1234567891"));
        assert!(!constant_time_eq(b"1234567890", b"123456789"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
