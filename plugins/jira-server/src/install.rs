//! Installation (sentry-flows §6.1, §6.4): the input schema and its
//! validation, the issue webhook registered before anything is stored, and
//! the integration data.

use serde_json::{Map, Value, json};
use sha1::{Digest, Sha1};
use trackbridge_plugin_sdk::http::Response;
use trackbridge_plugin_sdk::provider::IntegrationData;
use trackbridge_plugin_sdk::url::Url;
use trackbridge_plugin_sdk::{Error, Result, info, integration, warn};

use crate::client::{Client, OAuthConfig};
use crate::oauth1::PrivateKey;
use crate::{WEBHOOK_NAME, jwt};

/// Sentry's limits.
pub const MAX_CONSUMER_KEY_CHARS: usize = 200;
pub const MAX_EXTERNAL_ID_CHARS: usize = 64;

/// What webhook registration subscribes to.
pub const WEBHOOK_EVENTS: [&str; 2] = ["jira:issue_created", "jira:issue_updated"];

/// JSON Schema of the installation input.
pub fn config_schema() -> Value {
    let secret = |description: &str| json!({"type": "string", "minLength": 1, "writeOnly": true, "description": description});
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Jira Server",
        "type": "object",
        "required": ["base_url", "consumer_key", "private_key", "access_token", "access_token_secret"],
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
            "access_token": secret("The OAuth 1.0a access token from the authorization dance."),
            "access_token_secret": secret("The access token's secret."),
            "webhook_secret": secret("Optional: the secret of a Jira Data Center admin webhook; its deliveries carry X-Hub-Signature.")
        }
    })
}

/// A validated installation input.
#[derive(Debug, Clone)]
pub struct Input {
    /// Without trailing slash.
    pub base_url: String,
    /// `host[:port]` of the base URL, as typed (Python's `netloc`).
    pub netloc: String,
    pub verify_ssl: bool,
    pub consumer_key: String,
    /// The PEM text as given (its SHA-1 is the webhook secret).
    pub private_key_pem: String,
    pub private_key: PrivateKey,
    pub access_token: String,
    pub access_token_secret: String,
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
        let private_key = PrivateKey::from_pem(&private_key_pem)
            .map_err(|e| Error::invalid_input(format!("private_key: {e}")))?;
        Ok(Input {
            base_url,
            netloc,
            verify_ssl,
            consumer_key,
            private_key_pem,
            private_key,
            access_token: required("access_token")?,
            access_token_secret: required("access_token_secret")?,
            admin_webhook_secret: string_field(obj, "webhook_secret", false)?,
        })
    }

    /// `"{netloc}:{consumer_key}"`, cut to 64 characters.
    pub fn external_id(&self) -> String {
        format!("{}:{}", self.netloc, self.consumer_key)
            .chars()
            .take(MAX_EXTERNAL_ID_CHARS)
            .collect()
    }

    /// The secret of the webhook URL's token: SHA-1 hex of the private key text.
    pub fn webhook_secret(&self) -> String {
        hex(&Sha1::digest(self.private_key_pem.as_bytes()))
    }

    pub fn oauth(&self) -> OAuthConfig {
        OAuthConfig {
            consumer_key: self.consumer_key.clone(),
            private_key: self.private_key.clone(),
            access_token: self.access_token.clone(),
            access_token_secret: self.access_token_secret.clone(),
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
        let metadata = json!({
            "base_url": self.base_url,
            "domain_name": self.netloc,
            "verify_ssl": self.verify_ssl,
            "webhook_id": webhook_id,
        });
        let mut secrets = json!({
            "consumer_key": self.consumer_key,
            "private_key": self.private_key_pem,
            "access_token": self.access_token,
            "access_token_secret": self.access_token_secret,
            "webhook_secret": self.webhook_secret(),
        });
        if let Some(s) = &self.admin_webhook_secret {
            secrets["admin_webhook_secret"] = json!(s);
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

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sentry's message for a failed registration: the first value of
/// `messages[0]` in Jira's error answer, or nothing.
pub fn webhook_error_details(response: &Response) -> String {
    let Ok(body) = serde_json::from_slice::<Value>(&response.body) else {
        return String::new();
    };
    match body.get("messages").and_then(|m| m.get(0)) {
        Some(Value::Object(first)) => first
            .values()
            .next()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .unwrap_or_default(),
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    }
}

pub const WEBHOOK_ERROR: &str = "Could not create issue webhook in Jira.";

/// The webhook's id from Jira's answer: the last segment of `self`, else `id`.
pub fn webhook_id(created: &Value) -> Option<String> {
    created
        .get("self")
        .and_then(Value::as_str)
        .and_then(|s| s.trim_end_matches('/').rsplit('/').next())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .or_else(|| created.get("id").and_then(crate::client::id_string))
}

/// Creates the issue webhook; its id, for uninstall.
pub fn create_issue_webhook(client: &Client, input: &Input) -> Result<Option<String>> {
    let body = json!({
        "name": WEBHOOK_NAME,
        "url": input.webhook_url(&integration::public_url()),
        "events": WEBHOOK_EVENTS,
    });
    let response = client.create_webhook(&body).map_err(|e| Error::Upstream {
        status: e.status(),
        message: format!("{WEBHOOK_ERROR} {}", e.message()),
        retry_after_secs: None,
    })?;
    if !response.is_success() {
        let message = format!("{WEBHOOK_ERROR} {}", webhook_error_details(&response));
        return Err(match response.status {
            401 | 403 => Error::Unauthorized(message),
            status => Error::Upstream {
                status: Some(status),
                message,
                retry_after_secs: response.retry_after_secs(),
            },
        });
    }
    let created: Value = response.json().unwrap_or(Value::Null);
    let id = webhook_id(&created);
    if id.is_none() {
        warn!("Jira created the issue webhook but named no id; uninstall cannot remove it");
    }
    Ok(id)
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
    use crate::tests::TEST_KEY;
    use trackbridge_plugin_sdk::http::Method;
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
        assert!(Input::parse(&with("consumer_key", json!("k".repeat(200)))).is_ok());
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
        assert_eq!(i.webhook_secret(), hex(&Sha1::digest(TEST_KEY.as_bytes())));
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
    fn webhook_error_details_take_the_first_message() {
        let r = Response::json_body(
            403,
            &json!({"messages": [{"key": "You do not have permission to create WebHook 'Sentry Issue Sync'."}]}),
        );
        assert_eq!(
            webhook_error_details(&r),
            "You do not have permission to create WebHook 'Sentry Issue Sync'."
        );
        assert_eq!(webhook_error_details(&Response::new(502, "<html>")), "");
        assert_eq!(
            webhook_error_details(&Response::json_body(400, &json!({"messages": []}))),
            ""
        );
        assert_eq!(
            webhook_id(&json!({"self": "https://j/rest/webhooks/1.0/webhook/17"})).as_deref(),
            Some("17")
        );
        assert_eq!(webhook_id(&json!({"id": 5})).as_deref(), Some("5"));
        assert_eq!(webhook_id(&json!({})), None);
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
            json!({"base_url": "https://jira.example.com", "domain_name": "jira.example.com", "verify_ssl": false, "webhook_id": "7"})
        );
        assert!(!data.metadata.contains("PRIVATE KEY"));
        let secrets: Value = serde_json::from_str(&data.secrets).unwrap();
        assert_eq!(secrets["private_key"], TEST_KEY);
        assert_eq!(secrets["access_token_secret"], "access-secret");
        assert!(secrets.get("admin_webhook_secret").is_none());

        let sent = testing::requests();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].method, Method::Post);
        assert_eq!(
            sent[0].full_url(),
            "https://jira.example.com/rest/webhooks/1.0/webhook"
        );
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
        let decoded = jwt::decode(token).unwrap();
        assert_eq!(decoded.claims, json!({"id": "jira.example.com:sentry-bot"}));
        assert!(decoded.verify_hs256(secrets["webhook_secret"].as_str().unwrap().as_bytes()));
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
