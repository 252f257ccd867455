//! Incoming webhook requests ([`WebhookRequest`]) and the signatures trackers
//! put on them.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use trackbridge_host::plugins::contract::provider_types::IncomingRequest;

/// A header whose value is an HMAC-SHA256 of the final body, computed when
/// the request is built.
#[derive(Clone, Debug)]
struct BodySignature {
    header: String,
    secret: Vec<u8>,
    prefix: String,
}

/// A builder of the [`IncomingRequest`] a plugin's `verify-webhook` and
/// `handle-webhook` receive. Header names are lower-cased, as the host passes
/// them.
///
/// ```
/// use trackbridge_plugin_test::WebhookRequest;
///
/// let request = WebhookRequest::post("/extensions/jira/issue-updated/")
///     .query("site=127.0.0.1:8080")
///     .header("X-Atlassian-Webhook-Identifier", "delivery-1")
///     .json(&serde_json::json!({"changelog": {"items": []}}))
///     .hub_signature(b"webhook secret")
///     .build();
/// assert_eq!(request.headers[0].0, "x-atlassian-webhook-identifier");
/// assert!(request.headers.iter().any(|(k, v)| k == "x-hub-signature" && v.starts_with("sha256=")));
/// ```
#[derive(Clone, Debug)]
#[must_use = "a request builder does nothing until built"]
pub struct WebhookRequest {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    route_params: Vec<(String, String)>,
    body: Vec<u8>,
    signatures: Vec<BodySignature>,
}

impl WebhookRequest {
    /// A request `method path`; `path` has no query string (see
    /// [`query`](Self::query)).
    pub fn new(method: impl Into<String>, path: impl Into<String>) -> Self {
        WebhookRequest {
            method: method.into(),
            path: path.into(),
            query: String::new(),
            headers: Vec::new(),
            route_params: Vec::new(),
            body: Vec::new(),
            signatures: Vec::new(),
        }
    }

    /// A `POST` to `path`.
    pub fn post(path: impl Into<String>) -> Self {
        WebhookRequest::new("POST", path)
    }

    /// Add a header (its name lower-cased).
    pub fn header(mut self, name: impl AsRef<str>, value: impl Into<String>) -> Self {
        self.headers
            .push((name.as_ref().to_ascii_lowercase(), value.into()));
        self
    }

    /// The body, as raw bytes.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// A JSON body, with `content-type: application/json` unless a content
    /// type is set already.
    pub fn json(mut self, value: &Value) -> Self {
        self.body = value.to_string().into_bytes();
        if !self.headers.iter().any(|(k, _)| k == "content-type") {
            self.headers
                .push(("content-type".into(), "application/json".into()));
        }
        self
    }

    /// The raw query string (a leading `?` is dropped), replacing any.
    pub fn query(mut self, query: impl AsRef<str>) -> Self {
        self.query = query.as_ref().trim_start_matches('?').to_owned();
        self
    }

    /// Append `name=value` to the query string, form-encoded.
    pub fn query_param(mut self, name: &str, value: &str) -> Self {
        let pair = url::form_urlencoded::Serializer::new(String::new())
            .append_pair(name, value)
            .finish();
        if !self.query.is_empty() {
            self.query.push('&');
        }
        self.query.push_str(&pair);
        self
    }

    /// The value of a route's `{name}` segment (what the host's router
    /// extracts; [`Harness::routed`](crate::Harness::routed) fills these in
    /// from the plugin's routes instead).
    pub fn route_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.route_params.push((name.into(), value.into()));
        self
    }

    /// Sign the body (as it is when the request is built) into header
    /// `name`: `prefix` followed by the lower-case hex HMAC-SHA256 keyed with
    /// `secret`.
    pub fn hmac_sha256_header(
        mut self,
        name: impl AsRef<str>,
        secret: impl AsRef<[u8]>,
        prefix: impl Into<String>,
    ) -> Self {
        self.signatures.push(BodySignature {
            header: name.as_ref().to_ascii_lowercase(),
            secret: secret.as_ref().to_vec(),
            prefix: prefix.into(),
        });
        self
    }

    /// `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>` (WebSub, Jira
    /// admin webhooks).
    pub fn hub_signature(self, secret: impl AsRef<[u8]>) -> Self {
        self.hmac_sha256_header("x-hub-signature", secret, "sha256=")
    }

    /// The request, signatures computed over the final body.
    pub fn build(self) -> IncomingRequest {
        let mut headers = self.headers;
        for signature in &self.signatures {
            headers.push((
                signature.header.clone(),
                format!(
                    "{}{}",
                    signature.prefix,
                    hmac_sha256_hex(&signature.secret, &self.body)
                ),
            ));
        }
        IncomingRequest {
            method: self.method,
            path: self.path,
            query: self.query,
            headers,
            route_params: self.route_params,
            body: self.body,
        }
    }
}

impl From<WebhookRequest> for IncomingRequest {
    fn from(request: WebhookRequest) -> Self {
        request.build()
    }
}

/// HMAC-SHA256 of `data` keyed with `secret`.
pub fn hmac_sha256(secret: impl AsRef<[u8]>, data: impl AsRef<[u8]>) -> Vec<u8> {
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_ref()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC-SHA256 accepts keys of every length"),
    };
    mac.update(data.as_ref());
    mac.finalize().into_bytes().to_vec()
}

/// [`hmac_sha256`] as lower-case hex.
pub fn hmac_sha256_hex(secret: impl AsRef<[u8]>, data: impl AsRef<[u8]>) -> String {
    hex::encode(hmac_sha256(secret, data))
}

/// The `X-Hub-Signature` value for `body`: `sha256=<hex HMAC-SHA256>`.
pub fn hub_signature_sha256(secret: impl AsRef<[u8]>, body: impl AsRef<[u8]>) -> String {
    format!("sha256={}", hmac_sha256_hex(secret, body))
}

/// A JWT with header `{"alg":"HS256","typ":"JWT"}`, these claims, signed
/// with `secret` (Atlassian Connect tokens, URL tokens).
pub fn jwt_hs256(claims: &Value, secret: impl AsRef<[u8]>) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{claims}");
    let signature = URL_SAFE_NO_PAD.encode(hmac_sha256(secret, &signing_input));
    format!("{signing_input}.{signature}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        assert_eq!(
            hmac_sha256_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn signatures_cover_the_final_body() {
        let request = WebhookRequest::post("/hook")
            .hub_signature("s")
            .body("late body")
            .build();
        let signature = request
            .headers
            .iter()
            .find(|(k, _)| k == "x-hub-signature")
            .map(|(_, v)| v.clone());
        assert_eq!(signature, Some(hub_signature_sha256("s", "late body")));
    }

    #[test]
    fn query_params_are_form_encoded_and_appended() {
        let request = WebhookRequest::post("/p")
            .query("?a=1")
            .query_param("site", "a b&c")
            .build();
        assert_eq!(request.query, "a=1&site=a+b%26c");
    }

    #[test]
    fn jwt_parts_are_base64url() {
        let token = jwt_hs256(&serde_json::json!({"id": "x"}), "k");
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(
            URL_SAFE_NO_PAD.decode(parts[1]).unwrap(),
            br#"{"id":"x"}"#.to_vec()
        );
        assert_eq!(
            URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
            hmac_sha256("k", format!("{}.{}", parts[0], parts[1]))
        );
    }
}
