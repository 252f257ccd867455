//! A Jira Server / Data Center REST client: every request OAuth 1.0a
//! RSA-SHA1 signed with the installation's consumer key and access token,
//! errors mapped by the SDK; the shared lookups (cached for Sentry's 240 s)
//! come from [`JiraApi`].

use std::time::Duration;

use serde_json::Value;
use trackbridge_plugin_sdk::http::{Method, Request, Response};
use trackbridge_plugin_sdk::integration::Integration;
use trackbridge_plugin_sdk::provider::Identity;
use trackbridge_plugin_sdk::secrets::{self, Secret};
use trackbridge_plugin_sdk::url::encode_component;
use trackbridge_plugin_sdk::{Error, Result, clock, json, random, warn};

pub use trackbridge_jira_common::{JiraApi, id_string};

use crate::oauth1::{Credentials, Nonce};

/// Per-request limit for connecting and for each wait on the response; below
/// the host's per-call budget (10 s by default) so a hanging Jira becomes an
/// error this plugin can explain.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(6);

/// The admin webhook API.
pub const WEBHOOKS_PATH: &str = "/rest/webhooks/1.0/webhook";

/// The stored secret the host signs every request with.
pub const PRIVATE_KEY_SECRET: &str = "private_key";

/// What an integration stored by the 0.1.0 build lacks, and what to do.
pub const REINSTALL: &str = "this Jira Server integration was installed by an earlier version \
    of the plugin, which kept its consumer key and access token among the secrets, where the \
    plugin can no longer read them: install it again with the same input (the integration is \
    updated in place and keeps its links)";

/// What signs the requests of one installation.
#[derive(Debug)]
pub struct OAuthConfig {
    pub consumer_key: String,
    pub access_token: String,
    /// A handle: the host signs with the key, the plugin never sees it.
    pub private_key: Secret,
}

pub struct Client {
    /// Without trailing slash; may carry a context path (`https://host/jira`).
    base_url: String,
    credentials: Credentials,
    private_key: Secret,
}

impl Client {
    pub fn new(base_url: &str, oauth: OAuthConfig) -> Self {
        Client {
            base_url: base_url.trim_end_matches('/').to_string(),
            credentials: Credentials {
                consumer_key: oauth.consumer_key,
                token: Some(oauth.access_token),
            },
            private_key: oauth.private_key,
        }
    }

    /// The client for the current integration (its private key is found
    /// among the current integration's secrets).
    pub fn for_integration(integration: &Integration) -> Result<Self> {
        let base_url = integration
            .metadata_str("base_url")
            .ok_or_else(|| Error::internal("the integration has no base_url"))?;
        let field = |name: &str| {
            integration
                .metadata_str(name)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        // The base string names both in clear, so the plugin must know them;
        // the 0.1.0 build stored them only among the secrets.
        let (Some(consumer_key), Some(access_token)) =
            (field("consumer_key"), field("access_token"))
        else {
            return Err(Error::unauthorized(REINSTALL));
        };
        Ok(Client::new(
            base_url,
            OAuthConfig {
                consumer_key,
                access_token,
                private_key: secrets::require(PRIVATE_KEY_SECRET)?,
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
        let authorization = self.credentials.authorization(
            method.as_str(),
            &url,
            None,
            &nonce,
            &self.private_key,
        )?;
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

    /// Jira Server names users by `name` (what the assignee `PUT` takes and
    /// what operators see; the user key is hidden in Jira's UI), so that is
    /// the identity's id and login. The email is marked verified: Jira
    /// Server/DC takes it from the organization's own user directory, so the
    /// host matches it as it did under contract 0.1.0. Without a name (never
    /// in Jira's own payloads) the email, if any, stands in as the id.
    fn assignee_identity(&self, assignee: &Value, email: Option<String>) -> Option<Identity> {
        let mut identity = match (json::non_empty_str_at(assignee, &["name"]), &email) {
            (Some(name), _) => Identity::new(name).with_login(name),
            (None, Some(email)) => Identity::new(email.clone()),
            (None, None) => return None,
        };
        if let Some(display_name) = json::non_empty_str_at(assignee, &["displayName"]) {
            identity = identity.with_display_name(display_name);
        }
        if let Some(email) = email {
            identity = identity.with_email(email, true);
        }
        Some(identity)
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
    use crate::oauth1::{parse_authorization, sign, signature_base_string};
    use serde_json::json;
    use trackbridge_plugin_sdk::testing;
    use trackbridge_plugin_sdk::url::Url;

    /// Signing credentials for a client made by hand; the key is the current
    /// integration's, else that of a signer integration made current here.
    pub(crate) fn test_oauth() -> OAuthConfig {
        if secrets::get(PRIVATE_KEY_SECRET).is_none() {
            testing::add_integration(
                "test-signer",
                json!({}),
                json!({"private_key": crate::tests::TEST_KEY}),
            );
            testing::make_current("test-signer");
        }
        OAuthConfig {
            consumer_key: "sentry-bot".into(),
            access_token: "access-token".into(),
            private_key: secrets::require(PRIVATE_KEY_SECRET).unwrap(),
        }
    }

    /// Checks `request`'s OAuth header the way a Jira would. PKCS#1 v1.5
    /// signatures are deterministic, so signing the base string again with
    /// the current integration's key must give the same signature.
    pub(crate) fn assert_signed(request: &Request) {
        let header = request.header_value("authorization").expect("signed");
        assert!(!header.contains("PRIVATE KEY"));
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
        let key = secrets::require(PRIVATE_KEY_SECRET).unwrap();
        assert_eq!(
            signature,
            sign(&key, &base).unwrap(),
            "the signature is the consumer key's over the request"
        );
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

    fn stored(metadata: Value) -> Integration {
        testing::reset();
        testing::add_integration(
            "jira.example.com:sentry-bot",
            metadata,
            json!({"private_key": crate::tests::TEST_KEY, "webhook_secret": "w"}),
        );
        testing::make_current("jira.example.com:sentry-bot");
        trackbridge_plugin_sdk::integration::require_current().unwrap()
    }

    #[test]
    fn the_host_signs_with_the_stored_key() {
        let current = stored(json!({"base_url": "https://jira.example.com",
            "consumer_key": "sentry-bot", "access_token": "access-token"}));
        testing::on_http(|_| Ok(Response::new(204, "")));
        Client::for_integration(&current)
            .unwrap()
            .assign("APP-1", None)
            .unwrap();
        // Signed by the host with the key; the key itself never left it.
        let uses = testing::secret_uses();
        assert!(
            uses.contains(&("private_key".to_string(), "rsa-sign".to_string())),
            "{uses:?}"
        );
        assert!(uses.iter().all(|(_, op)| op != "stand-in"), "{uses:?}");
        assert_signed(&testing::requests()[0]);
    }

    #[test]
    fn an_installation_of_the_0_1_0_build_must_be_installed_again() {
        // 0.1.0 kept the consumer key and access token among the secrets.
        for metadata in [
            json!({"base_url": "https://jira.example.com", "domain_name": "jira.example.com"}),
            json!({"base_url": "https://jira.example.com", "consumer_key": "sentry-bot"}),
            json!({"base_url": "https://jira.example.com", "access_token": ""}),
        ] {
            let current = stored(metadata.clone());
            let Err(e) = Client::for_integration(&current) else {
                panic!("{metadata} is not enough to sign");
            };
            assert!(matches!(e, Error::Unauthorized(_)), "{e:?}");
            assert!(e.message().contains("install it again"), "{e}");
        }
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
