//! A Jira Server / Data Center REST client: every request OAuth 1.0a
//! RSA-SHA1 signed with the installation's consumer key and access token,
//! errors mapped by the SDK; the shared lookups (cached for Sentry's 240 s)
//! come from [`JiraApi`].

use std::time::Duration;

use serde_json::Value;
use trackbridge_plugin_sdk::http::{Method, Request, Response};
use trackbridge_plugin_sdk::integration::Integration;
use trackbridge_plugin_sdk::url::encode_component;
use trackbridge_plugin_sdk::{Error, Result, clock, json, random, warn};

pub use trackbridge_jira_common::{JiraApi, id_string};

use crate::oauth1::{Credentials, Method as SignatureMethod, Nonce, PrivateKey};

/// Per-request limit for connecting and for each wait on the response; below
/// the host's per-call budget (10 s by default) so a hanging Jira becomes an
/// error this plugin can explain.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(6);

/// The admin webhook API.
pub const WEBHOOKS_PATH: &str = "/rest/webhooks/1.0/webhook";

/// What signs the requests of one installation.
#[derive(Debug, Clone)]
pub struct OAuthConfig {
    pub consumer_key: String,
    pub private_key: PrivateKey,
    pub access_token: String,
    pub access_token_secret: String,
}

pub struct Client {
    /// Without trailing slash; may carry a context path (`https://host/jira`).
    base_url: String,
    credentials: Credentials,
}

impl Client {
    pub fn new(base_url: &str, oauth: OAuthConfig) -> Self {
        Client {
            base_url: base_url.trim_end_matches('/').to_string(),
            credentials: Credentials {
                consumer_key: oauth.consumer_key,
                method: SignatureMethod::RsaSha1(Box::new(oauth.private_key)),
                token: Some(oauth.access_token),
                token_secret: oauth.access_token_secret,
            },
        }
    }

    /// The client for a stored integration.
    pub fn for_integration(integration: &Integration) -> Result<Self> {
        let base_url = integration
            .metadata_str("base_url")
            .ok_or_else(|| Error::internal("the integration has no base_url"))?;
        let secret = |name: &str| -> Result<String> {
            json::non_empty_str_at(&integration.secrets, &[name])
                .map(str::to_string)
                .ok_or_else(|| Error::internal(format!("the integration has no {name}")))
        };
        let private_key = PrivateKey::from_pem(&secret("private_key")?)
            .map_err(|e| Error::internal(format!("the stored private key is unusable: {e}")))?;
        Ok(Client::new(
            base_url,
            OAuthConfig {
                consumer_key: secret("consumer_key")?,
                private_key,
                access_token: secret("access_token")?,
                access_token_secret: secret("access_token_secret").unwrap_or_default(),
            },
        ))
    }

    /// Builds `method path?params` (path relative to the base URL), signed.
    pub fn request(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Request> {
        let mut request = Request::new(method, format!("{}{path}", self.base_url))
            .header("accept", "application/json")
            .timeout(REQUEST_TIMEOUT);
        for (k, v) in params {
            request = request.query(*k, *v);
        }
        if let Some(body) = body {
            request = request.json(body)?;
        }
        let url = request.parsed_url()?;
        let nonce = Nonce {
            timestamp: clock::now_secs(),
            nonce: random::hex(16),
            extra: Vec::new(),
            version: true,
        };
        // JSON bodies are not signed (only single-part form bodies are, RFC 5849 §3.4.1.3.1).
        let authorization = self
            .credentials
            .authorization(method.as_str(), &url, None, &nonce);
        Ok(request.header("authorization", authorization))
    }

    /// Registers a webhook; answers Jira's description of it. Errors are not
    /// mapped: the caller explains them.
    pub fn create_webhook(&self, body: &Value) -> Result<Response> {
        self.request(Method::Post, WEBHOOKS_PATH, &[], Some(body))?
            .send()
    }

    /// Removes webhook `id`; the raw answer (404 included) is the caller's.
    pub fn delete_webhook(&self, id: &str) -> Result<Response> {
        self.request(
            Method::Delete,
            &format!("{WEBHOOKS_PATH}/{}", encode_component(id)),
            &[],
            None,
        )?
        .send()
    }
}

impl JiraApi for Client {
    const USER_FIELD: &'static str = "name";
    /// Server matches it against user name, display name and email.
    const USER_SEARCH_PARAM: &'static str = "username";

    /// Sends a signed request; error statuses become errors (see
    /// [`Response::error_for_status`]).
    fn call(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Response> {
        self.request(method, path, params, body)?
            .send()?
            .error_for_status()
    }

    fn transitions_error(&self, error: Error) -> Error {
        match error {
            Error::Upstream { status: None, .. } => {
                Error::unreachable("Could not reach host to get transitions.")
            }
            other => other,
        }
    }

    fn no_transition(&self, key: &str, target: &str) {
        warn!("jira.status-sync-fail: no transition of {key} leads to status {target}");
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::oauth1::{parse_authorization, signature_base_string};
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::signature::Verifier;
    use serde_json::json;
    use trackbridge_plugin_sdk::testing;
    use trackbridge_plugin_sdk::url::Url;

    pub(crate) fn test_oauth() -> OAuthConfig {
        OAuthConfig {
            consumer_key: "sentry-bot".into(),
            private_key: PrivateKey::from_pem(crate::tests::TEST_KEY).unwrap(),
            access_token: "access-token".into(),
            access_token_secret: "access-secret".into(),
        }
    }

    /// Checks `request`'s OAuth header the way a Jira would.
    pub(crate) fn assert_signed(request: &Request) {
        let header = request.header_value("authorization").expect("signed");
        let mut params = parse_authorization(header).expect("an OAuth header");
        let signature = params
            .iter()
            .position(|(k, _)| k == "oauth_signature")
            .map(|i| params.remove(i).1)
            .expect("oauth_signature");
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("oauth_consumer_key"), Some("sentry-bot"));
        assert_eq!(get("oauth_token"), Some("access-token"));
        assert_eq!(get("oauth_signature_method"), Some("RSA-SHA1"));
        let url = Url::parse(&request.full_url()).unwrap();
        let mut all = url
            .query
            .as_deref()
            .map(trackbridge_plugin_sdk::url::parse_query)
            .unwrap_or_default();
        all.extend(params);
        let base = signature_base_string(request.method.as_str(), &url, &all);
        let key = <rsa::RsaPrivateKey as rsa::pkcs8::DecodePrivateKey>::from_pkcs8_pem(
            crate::tests::TEST_KEY,
        )
        .unwrap();
        let verifying = VerifyingKey::<sha1::Sha1>::new(key.to_public_key());
        use base64::Engine as _;
        let sig = base64::engine::general_purpose::STANDARD
            .decode(signature)
            .unwrap();
        verifying
            .verify(
                base.as_bytes(),
                &Signature::try_from(sig.as_slice()).unwrap(),
            )
            .expect("the signature verifies with the consumer's public key");
    }

    #[test]
    fn requests_are_signed_over_their_query() {
        testing::reset();
        testing::set_now_ms(1_700_000_000_000);
        testing::on_http(|_| Ok(Response::json_body(200, &json!([]))));
        let client = Client::new("https://jira.example.com/jira/", test_oauth());
        client
            .assignable_users("APP-1", "bob smith@example.org")
            .unwrap();
        let sent = &testing::requests()[0];
        assert_eq!(
            sent.full_url(),
            "https://jira.example.com/jira/rest/api/2/user/assignable/search?issueKey=APP-1&username=bob%20smith%40example.org"
        );
        assert_eq!(sent.timeout, Some(REQUEST_TIMEOUT));
        assert_signed(sent);
        let header = sent.header_value("authorization").unwrap();
        assert!(
            header.contains("oauth_timestamp=\"1700000000\""),
            "{header}"
        );
        // A second request gets a fresh nonce.
        client.assignable_users("APP-2", "x").unwrap();
        let nonce = |r: &Request| {
            parse_authorization(r.header_value("authorization").unwrap())
                .unwrap()
                .into_iter()
                .find(|(k, _)| k == "oauth_nonce")
                .unwrap()
                .1
        };
        let sent = testing::requests();
        assert_ne!(nonce(&sent[0]), nonce(&sent[1]));
    }

    #[test]
    fn statuses_are_cached_for_240_s() {
        testing::reset();
        testing::on_http(|_| {
            Ok(Response::json_body(
                200,
                &json!([{"id": "10101", "statusCategory": {"key": "done"}}]),
            ))
        });
        let client = Client::new("https://jira.example.com", test_oauth());
        assert_eq!(client.done_status_ids().unwrap(), vec!["10101"]);
        assert_eq!(client.done_status_ids().unwrap(), vec!["10101"]);
        assert_eq!(testing::requests().len(), 1);
        assert_eq!(testing::cache_entry("statuses:done").unwrap().1, 240);
    }
}
