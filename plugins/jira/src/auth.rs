//! The three ways to authenticate to Jira Cloud and the header each produces.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use trackbridge_plugin_sdk::{Error, Result};

use crate::connect_jwt;

/// The `iss` of our outbound Connect JWTs when the operator names no app key.
pub const DEFAULT_APP_KEY: &str = "trackbridge.jira";

#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    ApiToken {
        email: String,
        api_token: String,
    },
    OAuth2 {
        access_token: String,
    },
    Connect {
        client_key: String,
        shared_secret: String,
        app_key: String,
    },
}

// Secrets stay out of debug output.
impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credential::{}", self.kind())
    }
}

impl Credential {
    /// Parses the `credential` object; errors name the offending field.
    pub fn parse(value: &Value) -> Result<Credential> {
        let obj = value
            .as_object()
            .ok_or_else(|| Error::invalid_input("credential must be an object"))?;
        let field = |name: &str| -> Result<String> {
            match obj.get(name) {
                Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
                Some(Value::String(_)) | None | Some(Value::Null) => Err(Error::invalid_input(
                    format!("credential.{name} is required"),
                )),
                Some(_) => Err(Error::invalid_input(format!(
                    "credential.{name} must be a string"
                ))),
            }
        };
        match obj.get("type").and_then(Value::as_str) {
            Some("api_token") => Ok(Credential::ApiToken {
                email: field("email")?,
                api_token: field("api_token")?,
            }),
            Some("oauth2") => Ok(Credential::OAuth2 {
                access_token: field("access_token")?,
            }),
            Some("connect") => Ok(Credential::Connect {
                client_key: field("client_key")?,
                shared_secret: field("shared_secret")?,
                app_key: match obj.get("app_key") {
                    None | Some(Value::Null) => DEFAULT_APP_KEY.to_string(),
                    Some(Value::String(s)) if s.trim().is_empty() => DEFAULT_APP_KEY.to_string(),
                    Some(_) => field("app_key")?,
                },
            }),
            _ => Err(Error::invalid_input(
                "credential.type must be one of \"api_token\", \"oauth2\", \"connect\"",
            )),
        }
    }

    /// The stored form (the app key's default filled in).
    pub fn to_value(&self) -> Value {
        match self {
            Credential::ApiToken { email, api_token } => {
                json!({"type": "api_token", "email": email, "api_token": api_token})
            }
            Credential::OAuth2 { access_token } => {
                json!({"type": "oauth2", "access_token": access_token})
            }
            Credential::Connect {
                client_key,
                shared_secret,
                app_key,
            } => json!({"type": "connect", "client_key": client_key,
                        "shared_secret": shared_secret, "app_key": app_key}),
        }
    }

    /// `api_token`, `oauth2` or `connect`, as stored in metadata `auth`.
    pub fn kind(&self) -> &'static str {
        match self {
            Credential::ApiToken { .. } => "api_token",
            Credential::OAuth2 { .. } => "oauth2",
            Credential::Connect { .. } => "connect",
        }
    }

    /// The `Authorization` header value for one request. Connect tokens are
    /// bound to the request: `path` is relative to the base URL.
    pub fn authorization(
        &self,
        now_secs: u64,
        method: &str,
        path: &str,
        params: &[(String, String)],
    ) -> String {
        match self {
            Credential::ApiToken { email, api_token } => {
                format!("Basic {}", STANDARD.encode(format!("{email}:{api_token}")))
            }
            Credential::OAuth2 { access_token } => format!("Bearer {access_token}"),
            Credential::Connect {
                shared_secret,
                app_key,
                ..
            } => format!(
                "JWT {}",
                connect_jwt::outbound_token(app_key, shared_secret, now_secs, method, path, params)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_kind() {
        let c =
            Credential::parse(&json!({"type": "api_token", "email": "a@b.c", "api_token": "t"}))
                .unwrap();
        assert_eq!(
            c.authorization(0, "GET", "/", &[]),
            format!("Basic {}", STANDARD.encode("a@b.c:t"))
        );
        let c = Credential::parse(&json!({"type": "oauth2", "access_token": "tok"})).unwrap();
        assert_eq!(c.authorization(0, "GET", "/", &[]), "Bearer tok");
        let c = Credential::parse(
            &json!({"type": "connect", "client_key": "ck", "shared_secret": "s"}),
        )
        .unwrap();
        assert_eq!(c.to_value()["app_key"], DEFAULT_APP_KEY);
        assert!(
            c.authorization(1, "GET", "/", &[])
                .starts_with("JWT eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.")
        );
        assert_eq!(format!("{c:?}"), "Credential::connect");
    }

    #[test]
    fn errors_name_the_field() {
        let msg = |v: Value| Credential::parse(&v).unwrap_err().message().to_string();
        assert_eq!(msg(json!("x")), "credential must be an object");
        assert!(msg(json!({"type": "basic"})).starts_with("credential.type must be one of"));
        assert_eq!(
            msg(json!({"type": "api_token", "email": "a@b.c"})),
            "credential.api_token is required"
        );
        assert_eq!(
            msg(json!({"type": "api_token", "email": " ", "api_token": "t"})),
            "credential.email is required"
        );
        assert_eq!(
            msg(json!({"type": "oauth2", "access_token": 5})),
            "credential.access_token must be a string"
        );
        assert_eq!(
            msg(json!({"type": "connect", "client_key": "c", "shared_secret": "s", "app_key": 1})),
            "credential.app_key must be a string"
        );
    }
}
