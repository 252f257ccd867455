//! Signing webhooks the way Jira Cloud does: Atlassian Connect JWTs and admin-webhook
//! `X-Hub-Signature` HMACs.

use serde_json::json;

use crate::jwt;

/// The Jira plugin's webhook route.
pub const JIRA_ISSUE_UPDATED: &str = "/extensions/jira/issue-updated/";

/// Claims of a Connect token, to be signed by [`ConnectToken::sign`].
#[derive(Clone, Debug)]
pub struct ConnectToken {
    pub iss: String,
    pub iat: i64,
    pub exp: i64,
    pub qsh: String,
}

impl ConnectToken {
    /// A token from `iss` for `method path?query`, issued now and valid for 180 s.
    pub fn for_request(iss: &str, method: &str, path: &str, query: &str) -> ConnectToken {
        let now = jwt::now_secs();
        ConnectToken {
            iss: iss.to_string(),
            iat: now,
            exp: now + 180,
            qsh: jwt::qsh(method, path, query),
        }
    }

    /// The compact HS256 token.
    pub fn sign(&self, shared_secret: &str) -> String {
        jwt::encode_hs256(
            &json!({"iss": self.iss, "iat": self.iat, "exp": self.exp, "qsh": self.qsh}),
            shared_secret.as_bytes(),
        )
    }

    /// `JWT <token>`, the `Authorization` header value.
    pub fn header(&self, shared_secret: &str) -> String {
        format!("JWT {}", self.sign(shared_secret))
    }
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`, the `X-Hub-Signature` header value.
pub fn hub_signature(secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        jwt::hex(&jwt::hmac_sha256(secret.as_bytes(), body))
    )
}
