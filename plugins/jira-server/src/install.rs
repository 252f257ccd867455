//! Installation (sentry-flows §6.1, §6.4): the input schema and its
//! validation, the issue webhook registered before anything is stored (see
//! [`crate::registration`]), and the integration data.

use serde_json::{Map, Value, json};
use sha1::{Digest, Sha1};
use trackbridge_plugin_sdk::crypto::to_hex;
use trackbridge_plugin_sdk::provider::IntegrationData;
use trackbridge_plugin_sdk::secrets::{self, RsaHash, Secret};
use trackbridge_plugin_sdk::url::Url;
use trackbridge_plugin_sdk::{Error, Result, info, warn};

use crate::client::{Client, OAuthConfig, PRIVATE_KEY_SECRET};
use crate::jwt;
use crate::registration::create_issue_webhook;
use crate::webhook::{ADMIN_WEBHOOK_SECRET, WEBHOOK_SECRET};

/// Sentry's limits.
pub const MAX_CONSUMER_KEY_CHARS: usize = 200;
pub const MAX_EXTERNAL_ID_CHARS: usize = 64;

/// How long the host may keep the key handed to it during installation (it
/// keeps none: without a current integration a remembered secret serves the
/// call only).
const INSTALL_KEY_TTL_SECS: u32 = 60;

/// JSON Schema of the installation input.
pub fn config_schema() -> Value {
    let secret = |description: &str| json!({"type": "string", "minLength": 1, "writeOnly": true, "description": description});
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Jira Server",
        "type": "object",
        "required": ["base_url", "consumer_key", "private_key", "access_token"],
        "properties": {
            "base_url": {
                "type": "string",
                "format": "uri",
                "pattern": "^https?://",
                "description": "The Jira Server / Data Center base URL, e.g. https://jira.example.com (a trailing / is ignored).",
                "examples": ["https://jira.example.com"]
            },
            "verify_ssl": {
                "type": "boolean",
                "default": true,
                "description": "Verify Jira's TLS certificate. Recorded; the host currently always verifies."
            },
            "consumer_key": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_CONSUMER_KEY_CHARS,
                "description": "The consumer key of the incoming application link."
            },
            "private_key": secret("The application link's RSA private key, PEM (PKCS#8 or PKCS#1)."),
            "access_token": {
                "type": "string",
                "minLength": 1,
                "description": "The OAuth 1.0a access token from the authorization dance. Every request carries it in clear, so it is stored with the metadata; the private key is what proves the requests are ours."
            },
            "access_token_secret": {
                "type": "string",
                "writeOnly": true,
                "description": "Not used, and not stored: RSA-SHA1 signatures do not involve the token secret (RFC 5849 §3.4.3). Accepted so earlier installation inputs still work."
            },
            "webhook_secret": secret("Optional: the secret of a Jira Data Center admin webhook; its deliveries carry X-Hub-Signature.")
        }
    })
}

/// A validated installation input.
#[derive(Debug)]
pub struct Input {
    /// Without trailing slash.
    pub base_url: String,
    /// `host[:port]` of the base URL, as typed (Python's `netloc`).
    pub netloc: String,
    pub verify_ssl: bool,
    pub consumer_key: String,
    /// The PEM text as given (its SHA-1 is the webhook secret).
    pub private_key_pem: String,
    pub access_token: String,
    pub admin_webhook_secret: Option<String>,
}

fn string_field(obj: &Map<String, Value>, name: &str, required: bool) -> Result<Option<String>> {
    match obj.get(name) {
        None | Some(Value::Null) if !required => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() && !required => Ok(None),
        None | Some(Value::Null) => Err(Error::invalid_input(format!("{name} is required"))),
        Some(Value::String(s)) if s.trim().is_empty() => {
            Err(Error::invalid_input(format!("{name} is required")))
        }
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Error::invalid_input(format!("{name} must be a string"))),
    }
}

impl Input {
    pub fn parse(input: &Value) -> Result<Input> {
        let obj = input
            .as_object()
            .ok_or_else(|| Error::invalid_input("the installation input must be a JSON object"))?;
        let required = |name: &str| -> Result<String> {
            Ok(string_field(obj, name, true)?.unwrap_or_default())
        };
        let base_url = required("base_url")?
            .trim()
            .trim_end_matches('/')
            .to_string();
        let url = Url::parse(&base_url).map_err(|e| {
            Error::invalid_input(format!("base_url is not a valid URL: {}", e.message()))
        })?;
        if url.query.is_some() || base_url.contains('#') {
            return Err(Error::invalid_input(
                "base_url must not have a query or fragment",
            ));
        }
        let netloc = netloc(&base_url);
        let verify_ssl = match obj.get("verify_ssl") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(Error::invalid_input("verify_ssl must be true or false")),
        };
        let consumer_key = required("consumer_key")?.trim().to_string();
        if consumer_key.chars().count() > MAX_CONSUMER_KEY_CHARS {
            return Err(Error::invalid_input(format!(
                "consumer_key must be at most {MAX_CONSUMER_KEY_CHARS} characters"
            )));
        }
        let private_key_pem = required("private_key")?;
        let access_token = required("access_token")?;
        // Only its type is checked: the token secret plays no part in RSA-SHA1.
        string_field(obj, "access_token_secret", false)?;
        let input = Input {
            base_url,
            netloc,
            verify_ssl,
            consumer_key,
            private_key_pem,
            access_token,
            admin_webhook_secret: string_field(obj, "webhook_secret", false)?,
        };
        // The host signs, so asking it to is how the key is checked; the
        // message is ours so that it never quotes the key.
        if input
            .signing_key()
            .rsa_sign(RsaHash::Sha1, b"trackbridge key check")
            .is_err()
        {
            return Err(Error::invalid_input(
                "private_key: the private key is not a PEM-encoded RSA private key (PKCS#8 `BEGIN PRIVATE KEY` or PKCS#1 `BEGIN RSA PRIVATE KEY`)",
            ));
        }
        Ok(input)
    }

    /// `"{netloc}:{consumer_key}"`, cut to 64 characters.
    pub fn external_id(&self) -> String {
        format!("{}:{}", self.netloc, self.consumer_key)
            .chars()
            .take(MAX_EXTERNAL_ID_CHARS)
            .collect()
    }

    /// The secret of the webhook URL's token: SHA-1 hex of the private key
    /// text as given (as in Sentry, so a re-installation registers the same URL).
    pub fn webhook_secret(&self) -> String {
        to_hex(&Sha1::digest(self.private_key_pem.as_bytes()))
    }

    /// The PEM as stored: OpenSSL ignores blanks around it, other parsers may not.
    fn stored_private_key(&self) -> &str {
        self.private_key_pem.trim()
    }

    /// A handle to the operator's key for this call: there is no integration
    /// yet whose stored secrets the host could sign with, so the key is
    /// handed to the host for the duration of the installation call.
    pub fn signing_key(&self) -> Secret {
        secrets::remember(
            PRIVATE_KEY_SECRET,
            self.stored_private_key().as_bytes(),
            INSTALL_KEY_TTL_SECS,
        )
    }

    pub fn oauth(&self) -> OAuthConfig {
        OAuthConfig {
            consumer_key: self.consumer_key.clone(),
            access_token: self.access_token.clone(),
            private_key: self.signing_key(),
        }
    }

    /// The webhook URL Jira is told to call.
    pub fn webhook_url(&self, public_url: &str) -> String {
        let token = jwt::sign(
            &json!({"id": self.external_id()}),
            self.webhook_secret().as_bytes(),
        );
        format!(
            "{}{}{token}/",
            public_url.trim_end_matches('/'),
            crate::WEBHOOK_PREFIX
        )
    }

    pub fn integration_data(&self, webhook_id: Option<&str>) -> IntegrationData {
        // The consumer key and access token go in clear in every request's
        // Authorization header and are worthless without the private key; the
        // plugin needs them to build each signature base string.
        let metadata = json!({
            "base_url": self.base_url,
            "domain_name": self.netloc,
            "verify_ssl": self.verify_ssl,
            "webhook_id": webhook_id,
            "consumer_key": self.consumer_key,
            "access_token": self.access_token,
        });
        let mut secrets = json!({
            PRIVATE_KEY_SECRET: self.stored_private_key(),
            WEBHOOK_SECRET: self.webhook_secret(),
        });
        if let Some(s) = &self.admin_webhook_secret {
            secrets[ADMIN_WEBHOOK_SECRET] = json!(s);
        }
        IntegrationData::new(
            self.external_id(),
            self.consumer_key.clone(),
            &metadata,
            &secrets,
        )
    }
}

/// The authority part of an absolute URL as written (`netloc`).
fn netloc(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    rest[..end].to_string()
}

/// Validates the input, registers the issue webhook, and produces the data.
pub fn build(input: &Value) -> Result<IntegrationData> {
    let input = Input::parse(input)?;
    if !input.verify_ssl {
        warn!(
            "verify_ssl is false for {}, but the host always verifies TLS certificates",
            input.netloc
        );
    }
    let client = Client::new(&input.base_url, input.oauth());
    let webhook_id = create_issue_webhook(&client, &input)?;
    info!(
        "created the issue webhook {} at {}",
        webhook_id.as_deref().unwrap_or("(no id)"),
        input.netloc
    );
    Ok(input.integration_data(webhook_id.as_deref()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WEBHOOK_NAME;
    use crate::tests::TEST_KEY;
    use trackbridge_plugin_sdk::http::{Method, Response};
    use trackbridge_plugin_sdk::testing;

    fn input() -> Value {
        json!({
            "base_url": "https://jira.example.com/",
            "verify_ssl": false,
            "consumer_key": "sentry-bot",
            "private_key": TEST_KEY,
            "access_token": "access-token",
            "access_token_secret": "access-secret"
        })
    }

    #[test]
    fn validation_names_fields() {
        let msg = |v: Value| Input::parse(&v).unwrap_err().message().to_string();
        assert_eq!(
            msg(json!([])),
            "the installation input must be a JSON object"
        );
        assert_eq!(msg(json!({})), "base_url is required");
        assert!(msg(json!({"base_url": "jira"})).starts_with("base_url is not a valid URL"));
        let with = |k: &str, v: Value| {
            let mut i = input();
            i[k] = v;
            i
        };
        assert_eq!(
            msg(with("verify_ssl", json!("no"))),
            "verify_ssl must be true or false"
        );
        assert_eq!(
            msg(with("consumer_key", json!(""))),
            "consumer_key is required"
        );
        assert_eq!(
            msg(with("consumer_key", json!("k".repeat(201)))),
            "consumer_key must be at most 200 characters"
        );
        let bad_pem = msg(with(
            "private_key",
            json!("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----"),
        ));
        assert!(
            bad_pem
                .starts_with("private_key: the private key is not a PEM-encoded RSA private key"),
            "{bad_pem}"
        );
        assert!(!bad_pem.contains("nope"));
        assert_eq!(
            msg(with("access_token", json!(null))),
            "access_token is required"
        );
        assert_eq!(
            msg(with("webhook_secret", json!(3))),
            "webhook_secret must be a string"
        );
        assert_eq!(
            msg(with("access_token_secret", json!(false))),
            "access_token_secret must be a string"
        );
        assert!(Input::parse(&with("consumer_key", json!("k".repeat(200)))).is_ok());
        let mut without_token_secret = input();
        without_token_secret
            .as_object_mut()
            .unwrap()
            .remove("access_token_secret");
        assert!(Input::parse(&without_token_secret).is_ok());
        assert!(
            Input::parse(&with("verify_ssl", json!(null)))
                .unwrap()
                .verify_ssl
        );
    }

    #[test]
    fn external_id_and_secret() {
        let i = Input::parse(&input()).unwrap();
        assert_eq!(i.base_url, "https://jira.example.com");
        assert_eq!(i.external_id(), "jira.example.com:sentry-bot");
        assert_eq!(
            i.webhook_secret(),
            to_hex(&Sha1::digest(TEST_KEY.as_bytes()))
        );
        assert_eq!(i.webhook_secret().len(), 40);
        let mut long = input();
        long["consumer_key"] = json!(
            "a-very-long-consumer-key-that-when-combined-with-the-domain-name-is-more-than-64-characters"
        );
        assert_eq!(
            Input::parse(&long).unwrap().external_id(),
            "jira.example.com:a-very-long-consumer-key-that-when-combined-wit"
        );
        let mut port = input();
        port["base_url"] = json!("http://127.0.0.1:8080//");
        let i = Input::parse(&port).unwrap();
        assert_eq!(
            (i.base_url.as_str(), i.external_id().as_str()),
            ("http://127.0.0.1:8080", "127.0.0.1:8080:sentry-bot")
        );
    }

    #[test]
    fn build_registers_the_webhook_first() {
        testing::reset();
        testing::set_public_url("https://sync.example.com");
        testing::on_http(|_| {
            Ok(Response::json_body(
                201,
                &json!({"self": "https://jira.example.com/rest/webhooks/1.0/webhook/7", "name": WEBHOOK_NAME}),
            ))
        });
        let data = build(&input()).unwrap();
        assert_eq!(data.external_id, "jira.example.com:sentry-bot");
        assert_eq!(data.name, "sentry-bot");
        let metadata: Value = serde_json::from_str(&data.metadata).unwrap();
        assert_eq!(
            metadata,
            json!({"base_url": "https://jira.example.com", "domain_name": "jira.example.com",
                   "verify_ssl": false, "webhook_id": "7", "consumer_key": "sentry-bot",
                   "access_token": "access-token"})
        );
        assert!(!data.metadata.contains("PRIVATE KEY"));
        let secrets: Value = serde_json::from_str(&data.secrets).unwrap();
        let webhook_secret = to_hex(&Sha1::digest(TEST_KEY.as_bytes()));
        assert_eq!(
            secrets,
            json!({"private_key": TEST_KEY.trim(), "webhook_secret": webhook_secret})
        );
        assert!(!data.secrets.contains("access-secret"));
        // The host signed the registration with the operator's key.
        assert!(
            testing::secret_uses()
                .iter()
                .all(|(name, op)| name == "private_key" && op == "rsa-sign")
        );

        let sent = testing::requests();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].method, Method::Post);
        assert_eq!(
            sent[0].full_url(),
            "https://jira.example.com/rest/webhooks/1.0/webhook"
        );
        // Checked as a later call would be: with the key stored for the integration.
        testing::add_integration(&data.external_id, metadata, secrets.clone());
        testing::make_current(&data.external_id);
        crate::client::tests::assert_signed(&sent[0]);
        let body: Value = serde_json::from_slice(sent[0].body.as_deref().unwrap()).unwrap();
        assert_eq!(body["name"], WEBHOOK_NAME);
        assert_eq!(
            body["events"],
            json!(["jira:issue_created", "jira:issue_updated"])
        );
        let url = body["url"].as_str().unwrap();
        let token = url
            .strip_prefix("https://sync.example.com/extensions/jira-server/issue-updated/")
            .and_then(|t| t.strip_suffix('/'))
            .unwrap();
        let claims = secrets::require("webhook_secret")
            .unwrap()
            .jwt_hs256_verify(token)
            .unwrap();
        assert_eq!(claims, json!({"id": "jira.example.com:sentry-bot"}));
        // The key never reaches a log line.
        assert!(
            testing::logs()
                .iter()
                .all(|(_, m)| !m.contains("PRIVATE KEY"))
        );
    }

    #[test]
    fn build_fails_with_jiras_reason() {
        testing::reset();
        testing::on_http(|_| {
            Ok(Response::json_body(
                403,
                &json!({"messages": [{"key": "You do not have permission to create WebHook 'Sentry Issue Sync'."}]}),
            ))
        });
        let e = build(&input()).unwrap_err();
        assert_eq!(e, Error::Unauthorized("Could not create issue webhook in Jira. You do not have permission to create WebHook 'Sentry Issue Sync'.".into()));

        testing::on_http(|_| Ok(Response::new(502, "<html>Bad Gateway</html>")));
        let e = build(&input()).unwrap_err();
        assert_eq!(e.status(), Some(502));
        assert_eq!(e.message(), "Could not create issue webhook in Jira. ");

        testing::on_http(|_| {
            Err(Error::unreachable(
                "request to jira.example.com failed: ConnectionReadTimeout",
            ))
        });
        let e = build(&input()).unwrap_err();
        assert_eq!(e.status(), None);
        assert!(
            e.message()
                .starts_with("Could not create issue webhook in Jira. "),
            "{e}"
        );
    }
}
