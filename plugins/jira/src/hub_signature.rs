//! `X-Hub-Signature: sha256=<hex>` (WebSub style), sent by Jira admin webhooks
//! that have a secret: HMAC-SHA256 of the raw body.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header value for `body` signed with `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    m.update(body);
    format!("sha256={}", crate::qsh::hex(&m.finalize().into_bytes()))
}

/// True when `header` is `sha256=<hex>` and the digest matches, compared in
/// constant time. Any other algorithm prefix fails: SHA-1 signatures are
/// legacy and not accepted.
pub fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    let header = header.trim();
    let Some((algorithm, hex)) = header.split_once('=') else {
        return false;
    };
    if !algorithm.eq_ignore_ascii_case("sha256") {
        return false;
    }
    let Some(expected) = decode_hex(hex) else {
        return false;
    };
    let mut m = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    m.update(body);
    m.verify_slice(&expected).is_ok()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|pair| {
            let digit = |c: u8| (c as char).to_digit(16);
            Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GITHUB_SECRET: &[u8] = b"It's a Secret to Everybody";
    const GITHUB_BODY: &[u8] = b"Hello, World!";
    const GITHUB_SIGNATURE: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn github_vector() {
        assert_eq!(sign(GITHUB_SECRET, GITHUB_BODY), GITHUB_SIGNATURE);
        assert!(verify(GITHUB_SECRET, GITHUB_BODY, GITHUB_SIGNATURE));
        assert!(verify(
            GITHUB_SECRET,
            GITHUB_BODY,
            &GITHUB_SIGNATURE.to_ascii_uppercase()
        ));
    }

    #[test]
    fn rejects_mismatches() {
        assert!(!verify(b"other secret", GITHUB_BODY, GITHUB_SIGNATURE));
        assert!(!verify(GITHUB_SECRET, b"Hello, World?", GITHUB_SIGNATURE));
        let bare = GITHUB_SIGNATURE.trim_start_matches("sha256=");
        assert!(!verify(GITHUB_SECRET, GITHUB_BODY, bare));
        assert!(!verify(GITHUB_SECRET, GITHUB_BODY, &format!("sha1={bare}")));
        assert!(!verify(
            GITHUB_SECRET,
            GITHUB_BODY,
            &GITHUB_SIGNATURE[..GITHUB_SIGNATURE.len() - 2]
        ));
        assert!(!verify(GITHUB_SECRET, GITHUB_BODY, "sha256=zz"));
        assert!(!verify(GITHUB_SECRET, GITHUB_BODY, "sha256=é"));
        assert!(!verify(GITHUB_SECRET, GITHUB_BODY, ""));
    }
}
