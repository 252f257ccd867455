//! Installation: the input schema, its validation, the credential check and
//! the integration data the host stores.

use serde_json::{Value, json};
use trackbridge_plugin_sdk::provider::IntegrationData;
use trackbridge_plugin_sdk::url::Url;
use trackbridge_plugin_sdk::{Error, Result};

use crate::auth::{Credential, DEFAULT_APP_KEY};
use crate::client::Client;

/// A validated installation input.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// Without trailing slash.
    pub base_url: String,
    /// `host[:port]` of the base URL.
    pub authority: String,
    pub credential: Credential,
    pub webhook_secret: Option<String>,
}

/// JSON Schema of the installation input.
pub fn config_schema() -> Value {
    let secret = |description: &str| json!({"type": "string", "minLength": 1, "writeOnly": true, "description": description});
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Jira Cloud",
        "type": "object",
        "required": ["base_url", "credential"],
        "properties": {
            "base_url": {
                "type": "string",
                "format": "uri",
                "pattern": "^https?://",
                "description": "The Jira site, e.g. https://example.atlassian.net (a trailing / is ignored).",
                "examples": ["https://example.atlassian.net"]
            },
            "credential": {
                "description": "How trackbridge authenticates to Jira.",
                "oneOf": [
                    {
                        "title": "API token",
                        "type": "object",
                        "required": ["type", "email", "api_token"],
                        "properties": {
                            "type": {"const": "api_token"},
                            "email": {"type": "string", "minLength": 1, "description": "The Atlassian account's email."},
                            "api_token": secret("An Atlassian API token of that account.")
                        }
                    },
                    {
                        "title": "OAuth 2.0",
                        "type": "object",
                        "required": ["type", "access_token"],
                        "properties": {
                            "type": {"const": "oauth2"},
                            "access_token": secret("An OAuth 2.0 (3LO) access token.")
                        }
                    },
                    {
                        "title": "Atlassian Connect",
                        "type": "object",
                        "required": ["type", "client_key", "shared_secret"],
                        "properties": {
                            "type": {"const": "connect"},
                            "client_key": {"type": "string", "minLength": 1, "description": "The tenant's clientKey from the installed lifecycle event."},
                            "shared_secret": secret("The tenant's sharedSecret from the installed lifecycle event."),
                            "app_key": {"type": "string", "minLength": 1, "default": DEFAULT_APP_KEY, "description": "The Connect app key, used as iss of outbound JWTs."}
                        }
                    }
                ]
            },
            "webhook_secret": secret("The secret of a Jira admin webhook; its deliveries carry X-Hub-Signature.")
        }
    })
}

impl Input {
    pub fn parse(input: &Value) -> Result<Input> {
        let obj = input
            .as_object()
            .ok_or_else(|| Error::invalid_input("the installation input must be a JSON object"))?;
        let base_url = match obj.get("base_url") {
            Some(Value::String(s)) if !s.trim().is_empty() => {
                s.trim().trim_end_matches('/').to_string()
            }
            Some(Value::String(_)) | None | Some(Value::Null) => {
                return Err(Error::invalid_input("base_url is required"));
            }
            Some(_) => return Err(Error::invalid_input("base_url must be a string")),
        };
        let url = Url::parse(&base_url).map_err(|e| {
            Error::invalid_input(format!("base_url is not a valid URL: {}", e.message()))
        })?;
        if url.query.is_some() || base_url.contains('#') {
            return Err(Error::invalid_input(
                "base_url must not have a query or fragment",
            ));
        }
        let credential = Credential::parse(
            obj.get("credential")
                .ok_or_else(|| Error::invalid_input("credential is required"))?,
        )?;
        let webhook_secret = match obj.get("webhook_secret") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(Error::invalid_input("webhook_secret must be a string")),
        };
        Ok(Input {
            base_url,
            authority: url.authority,
            credential,
            webhook_secret,
        })
    }

    /// The installation's identity: the Connect client key (what incoming JWTs
    /// carry as `iss`), else the site's authority (what webhook payloads' `self`
    /// links carry).
    pub fn external_id(&self) -> String {
        match &self.credential {
            Credential::Connect { client_key, .. } => client_key.clone(),
            _ => self.authority.clone(),
        }
    }

    /// The credential's secret value (and the webhook secret) go to the
    /// secrets; everything the plugin must read later goes to metadata, since
    /// secrets are only ever used by handle.
    pub fn integration_data(&self) -> IntegrationData {
        let mut metadata = self.credential.metadata();
        metadata.insert("base_url".into(), self.base_url.as_str().into());
        metadata.insert("domain_name".into(), self.authority.as_str().into());
        let mut secrets = json!({"credential": self.credential.secrets()});
        if let Some(webhook_secret) = &self.webhook_secret {
            secrets["webhook_secret"] = webhook_secret.as_str().into();
        }
        IntegrationData::new(
            self.external_id(),
            self.authority.clone(),
            &Value::Object(metadata),
            &secrets,
        )
    }
}

/// Validates the input, checks the credential against Jira, and produces the
/// integration data.
pub fn build(input: &Value) -> Result<IntegrationData> {
    let input = Input::parse(input)?;
    let client = Client::new(&input.base_url, input.credential.clone());
    client.server_info().map_err(|e| match e {
        Error::Unauthorized(m) => Error::unauthorized(format!("Jira refused the credential: {m}")),
        Error::Upstream {
            status,
            message,
            retry_after_secs,
        } => Error::Upstream {
            status,
            message: format!("could not check the credential with Jira: {message}"),
            retry_after_secs,
        },
        other => other,
    })?;
    Ok(input.integration_data())
}

#[cfg(test)]
mod tests {
    use super::*;
    use trackbridge_plugin_sdk::http::Response;
    use trackbridge_plugin_sdk::testing;

    fn api_token_input() -> Value {
        json!({"base_url": "http://127.0.0.1:8080/", "credential":
               {"type": "api_token", "email": "bot@example.com", "api_token": "s3cr3t"}})
    }

    #[test]
    fn validation_names_fields() {
        let msg = |v: Value| Input::parse(&v).unwrap_err().message().to_string();
        assert_eq!(
            msg(json!([])),
            "the installation input must be a JSON object"
        );
        assert_eq!(msg(json!({})), "base_url is required");
        assert_eq!(msg(json!({"base_url": 3})), "base_url must be a string");
        assert!(
            msg(json!({"base_url": "example.atlassian.net"}))
                .starts_with("base_url is not a valid URL")
        );
        assert!(msg(json!({"base_url": "ftp://x"})).starts_with("base_url is not a valid URL"));
        assert_eq!(
            msg(json!({"base_url": "https://x.test/?a=1"})),
            "base_url must not have a query or fragment"
        );
        assert_eq!(
            msg(json!({"base_url": "https://x.test"})),
            "credential is required"
        );
        let mut v = api_token_input();
        v["webhook_secret"] = json!(1);
        assert_eq!(msg(v), "webhook_secret must be a string");
    }

    #[test]
    fn data_for_api_token_and_connect() {
        let input = Input::parse(&api_token_input()).unwrap();
        assert_eq!(input.base_url, "http://127.0.0.1:8080");
        let data = input.integration_data();
        assert_eq!(data.external_id, "127.0.0.1:8080");
        assert_eq!(data.name, "127.0.0.1:8080");
        let metadata: Value = serde_json::from_str(&data.metadata).unwrap();
        assert_eq!(
            metadata,
            json!({"base_url": "http://127.0.0.1:8080", "domain_name": "127.0.0.1:8080",
                   "auth": "api_token", "email": "bot@example.com"})
        );
        assert!(!data.metadata.contains("s3cr3t"));
        let secrets: Value = serde_json::from_str(&data.secrets).unwrap();
        assert_eq!(secrets, json!({"credential": {"api_token": "s3cr3t"}}));

        let input = Input::parse(&json!({"base_url": "https://Example.atlassian.net",
            "credential": {"type": "connect", "client_key": "jira:1234", "shared_secret": "s"},
            "webhook_secret": "w"}))
        .unwrap();
        let data = input.integration_data();
        assert_eq!(data.external_id, "jira:1234");
        assert_eq!(data.name, "example.atlassian.net");
        let metadata: Value = serde_json::from_str(&data.metadata).unwrap();
        assert_eq!(
            metadata,
            json!({"base_url": "https://Example.atlassian.net", "domain_name": "example.atlassian.net",
                   "auth": "connect", "client_key": "jira:1234", "app_key": DEFAULT_APP_KEY})
        );
        let secrets: Value = serde_json::from_str(&data.secrets).unwrap();
        assert_eq!(
            secrets,
            json!({"credential": {"shared_secret": "s"}, "webhook_secret": "w"})
        );

        let input = Input::parse(&json!({"base_url": "https://x.atlassian.net",
            "credential": {"type": "oauth2", "access_token": "a"}}))
        .unwrap();
        let data = input.integration_data();
        let metadata: Value = serde_json::from_str(&data.metadata).unwrap();
        assert_eq!(metadata["auth"], "oauth2");
        let secrets: Value = serde_json::from_str(&data.secrets).unwrap();
        assert_eq!(secrets, json!({"credential": {"access_token": "a"}}));
    }

    #[test]
    fn build_checks_the_credential() {
        testing::reset();
        testing::on_http(|_| Ok(Response::json_body(200, &json!({"baseUrl": "x"}))));
        let data = build(&api_token_input()).unwrap();
        assert_eq!(data.external_id, "127.0.0.1:8080");
        let sent = testing::requests();
        assert_eq!(sent.len(), 1);
        assert_eq!(
            sent[0].full_url(),
            "http://127.0.0.1:8080/rest/api/2/serverInfo"
        );
        assert_eq!(
            sent[0].header_value("authorization"),
            Some("Basic Ym90QGV4YW1wbGUuY29tOnMzY3IzdA==")
        );

        testing::on_http(|_| {
            Ok(Response::json_body(
                401,
                &json!({"errorMessages": ["Unauthorized"]}),
            ))
        });
        let e = build(&api_token_input()).unwrap_err();
        assert_eq!(
            e,
            Error::Unauthorized("Jira refused the credential: HTTP 401: Unauthorized".into())
        );

        testing::on_http(|_| Ok(Response::new(503, "maintenance")));
        let e = build(&api_token_input()).unwrap_err();
        assert_eq!(e.status(), Some(503));
        assert!(e.message().contains("maintenance"), "{e}");

        testing::on_http(|_| Err(Error::unreachable("127.0.0.1:8080 is not an allowed host")));
        assert_eq!(build(&api_token_input()).unwrap_err().status(), None);
    }
}
