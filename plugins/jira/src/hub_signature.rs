//! `X-Hub-Signature: sha256=<hex>` (WebSub style), sent by Jira admin webhooks
//! that have a secret: HMAC-SHA256 of the raw body, checked by the host with
//! the integration's `webhook_secret`.

use trackbridge_plugin_sdk::secrets::Secret;

/// True when `header` is `sha256=<hex>` and the digest is the body's HMAC
/// keyed with `secret` (compared in constant time by the host). Any other
/// algorithm prefix fails: SHA-1 signatures are legacy and not accepted.
pub fn verify(secret: &Secret, body: &[u8], header: &str) -> bool {
    let Some((algorithm, hex)) = header.trim().split_once('=') else {
        return false;
    };
    algorithm.eq_ignore_ascii_case("sha256") && secret.hmac_sha256_verify_hex(body, hex)
}

/// The header value for `body` signed with `secret`, as Jira sends it.
#[cfg(test)]
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    format!(
        "sha256={}",
        trackbridge_plugin_sdk::crypto::hmac_sha256_hex(secret, body)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use trackbridge_plugin_sdk::{secrets, testing};

    const GITHUB_SECRET: &str = "It's a Secret to Everybody";
    const GITHUB_BODY: &[u8] = b"Hello, World!";
    const GITHUB_SIGNATURE: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn secret(value: &str) -> Secret {
        testing::reset();
        testing::add_integration("site", json!({}), json!({"webhook_secret": value}));
        assert!(testing::make_current("site"));
        secrets::require("webhook_secret").unwrap()
    }

    #[test]
    fn github_vector() {
        assert_eq!(
            sign(GITHUB_SECRET.as_bytes(), GITHUB_BODY),
            GITHUB_SIGNATURE
        );
        let secret = secret(GITHUB_SECRET);
        assert!(verify(&secret, GITHUB_BODY, GITHUB_SIGNATURE));
        assert!(verify(
            &secret,
            GITHUB_BODY,
            &GITHUB_SIGNATURE.to_ascii_uppercase()
        ));
        assert_eq!(
            testing::secret_uses()[..2],
            [
                ("webhook_secret".to_string(), "get".to_string()),
                (
                    "webhook_secret".to_string(),
                    "hmac-sha256-verify".to_string()
                )
            ]
        );
    }

    #[test]
    fn rejects_mismatches() {
        assert!(!verify(
            &secret("other secret"),
            GITHUB_BODY,
            GITHUB_SIGNATURE
        ));
        let secret = secret(GITHUB_SECRET);
        assert!(!verify(&secret, b"Hello, World?", GITHUB_SIGNATURE));
        let bare = GITHUB_SIGNATURE.trim_start_matches("sha256=");
        assert!(!verify(&secret, GITHUB_BODY, bare));
        assert!(!verify(&secret, GITHUB_BODY, &format!("sha1={bare}")));
        assert!(!verify(
            &secret,
            GITHUB_BODY,
            &GITHUB_SIGNATURE[..GITHUB_SIGNATURE.len() - 2]
        ));
        assert!(!verify(&secret, GITHUB_BODY, "sha256=zz"));
        assert!(!verify(&secret, GITHUB_BODY, "sha256=é"));
        assert!(!verify(&secret, GITHUB_BODY, ""));
    }
}
