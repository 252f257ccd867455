//! The three ways to authenticate to Jira Cloud and the header each produces:
//! from the operator's input while installing, by secret handle afterwards.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use trackbridge_plugin_sdk::crypto::hmac_sha256;
use trackbridge_plugin_sdk::integration::Integration;
use trackbridge_plugin_sdk::secrets::{self, HeaderFormat, Secret};
use trackbridge_plugin_sdk::{Error, Result};

use crate::connect_jwt;

/// The `iss` of our outbound Connect JWTs when the operator names no app key.
pub const DEFAULT_APP_KEY: &str = "trackbridge.jira";

/// Secret paths of the stored credential, one per kind; which one exists
/// also tells the kind of an installation whose metadata lacks `auth`.
pub const API_TOKEN: &str = "credential.api_token";
pub const ACCESS_TOKEN: &str = "credential.access_token";
pub const SHARED_SECRET: &str = "credential.shared_secret";

/// A credential as the operator entered it (installation only).
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

    /// The stored secrets of the credential: the secret value alone, under
    /// `credential` (see [`API_TOKEN`] and its siblings).
    pub fn secrets(&self) -> Value {
        match self {
            Credential::ApiToken { api_token, .. } => json!({"api_token": api_token}),
            Credential::OAuth2 { access_token } => json!({"access_token": access_token}),
            Credential::Connect { shared_secret, .. } => json!({"shared_secret": shared_secret}),
        }
    }

    /// The non-secret fields, stored in metadata (the plugin cannot read them
    /// back from the secrets): `auth` (the kind), and the account's `email`
    /// or the Connect `client_key` and `app_key` (its default filled in).
    pub fn metadata(&self) -> Map<String, Value> {
        let mut metadata = Map::new();
        metadata.insert("auth".into(), self.kind().into());
        match self {
            Credential::ApiToken { email, .. } => {
                metadata.insert("email".into(), email.as_str().into());
            }
            Credential::OAuth2 { .. } => {}
            Credential::Connect {
                client_key,
                app_key,
                ..
            } => {
                metadata.insert("client_key".into(), client_key.as_str().into());
                metadata.insert("app_key".into(), app_key.as_str().into());
            }
        }
        metadata
    }

    /// `api_token`, `oauth2` or `connect`, as stored in metadata `auth`.
    pub fn kind(&self) -> &'static str {
        match self {
            Credential::ApiToken { .. } => "api_token",
            Credential::OAuth2 { .. } => "oauth2",
            Credential::Connect { .. } => "connect",
        }
    }
}

/// How a stored integration authenticates: what its metadata says, the
/// secret itself used by handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    ApiToken { email: String },
    OAuth2,
    Connect { app_key: String },
}

/// The error for an installation stored without what this version needs:
/// retrying cannot help, installing again can.
pub fn reinstall(what: &str) -> Error {
    Error::invalid_input(format!(
        "this Jira installation lacks {what}: install it again with the same base_url and \
         credential (re-installing updates it in place and keeps its links)"
    ))
}

impl Stored {
    /// The current integration's authentication. Installations stored by the
    /// 0.1.0 build kept the credential's fields in the secrets only: their
    /// kind is the metadata `auth` they have, else told by which secret path
    /// exists; a Connect app key defaults as it always did; an API-token
    /// account email cannot be recovered.
    pub fn of(integration: &Integration) -> Result<Stored> {
        let kind = match integration.metadata_str("auth") {
            Some(kind) => kind.to_string(),
            None => kind_by_secrets()
                .ok_or_else(|| reinstall("a credential"))?
                .to_string(),
        };
        match kind.as_str() {
            "api_token" => match integration.metadata_str("email") {
                Some(email) if !email.is_empty() => Ok(Stored::ApiToken {
                    email: email.to_string(),
                }),
                _ => Err(reinstall("the API token's account email in its metadata")),
            },
            "oauth2" => Ok(Stored::OAuth2),
            "connect" => Ok(Stored::Connect {
                app_key: stored_app_key(integration)?,
            }),
            other => Err(Error::internal(format!(
                "the integration's credential type {other:?} is unknown"
            ))),
        }
    }

    /// Where the secret of this kind is stored.
    pub fn secret_path(&self) -> &'static str {
        match self {
            Stored::ApiToken { .. } => API_TOKEN,
            Stored::OAuth2 => ACCESS_TOKEN,
            Stored::Connect { .. } => SHARED_SECRET,
        }
    }

    /// The credential's secret handle.
    pub fn secret(&self) -> Result<Secret> {
        let path = self.secret_path();
        secrets::get(path).ok_or_else(|| reinstall(&format!("the secret {path}")))
    }
}

/// The kind of a current integration whose metadata does not say it.
pub fn kind_by_secrets() -> Option<&'static str> {
    [
        (API_TOKEN, "api_token"),
        (ACCESS_TOKEN, "oauth2"),
        (SHARED_SECRET, "connect"),
    ]
    .into_iter()
    .find(|(path, _)| secrets::get(path).is_some())
    .map(|(_, kind)| kind)
}

/// The metadata `app_key`; without one (0.1.0 kept it with the secrets), the
/// default, unless the stored secrets hold another key: signing with the
/// default would then be refused by Jira on every call.
fn stored_app_key(integration: &Integration) -> Result<String> {
    if let Some(app_key) = integration.metadata_str("app_key") {
        return Ok(app_key.to_string());
    }
    match secrets::get("credential.app_key") {
        Some(stored) if !stored.matches(DEFAULT_APP_KEY.as_bytes()) => {
            Err(reinstall("the Connect app key in its metadata"))
        }
        _ => Ok(DEFAULT_APP_KEY.to_string()),
    }
}

/// What authenticates a client's requests.
pub enum Auth {
    /// While installing: there is no integration yet, so no handles; the
    /// operator's input is used as entered, for the credential check only.
    Input(Credential),
    /// A stored integration, by handle.
    Stored(Stored),
}

impl Auth {
    /// The `Authorization` header value for one request. Connect tokens are
    /// bound to the request: `path` is relative to the base URL.
    pub fn authorization(
        &self,
        now_secs: u64,
        method: &str,
        path: &str,
        params: &[(String, String)],
    ) -> Result<String> {
        let connect = |app_key: &str, sign: &dyn Fn(&[u8]) -> Vec<u8>| {
            let token = connect_jwt::outbound_token(app_key, now_secs, method, path, params, sign);
            format!("JWT {token}")
        };
        Ok(match self {
            Auth::Input(Credential::ApiToken { email, api_token }) => {
                format!("Basic {}", STANDARD.encode(format!("{email}:{api_token}")))
            }
            Auth::Input(Credential::OAuth2 { access_token }) => format!("Bearer {access_token}"),
            Auth::Input(Credential::Connect {
                shared_secret,
                app_key,
                ..
            }) => connect(app_key, &|input| {
                hmac_sha256(shared_secret.as_bytes(), input).to_vec()
            }),
            Auth::Stored(stored) => {
                let secret = stored.secret()?;
                match stored {
                    Stored::ApiToken { email } => {
                        secret.stand_in(&HeaderFormat::Basic(email.clone()))
                    }
                    Stored::OAuth2 => secret.stand_in(&HeaderFormat::Prefixed("Bearer ".into())),
                    Stored::Connect { app_key } => {
                        connect(app_key, &|input| secret.hmac_sha256_sign(input))
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trackbridge_plugin_sdk::testing;

    #[test]
    fn input_credentials_make_their_headers() {
        let auth = |v: Value| Auth::Input(Credential::parse(&v).unwrap());
        let header = |a: &Auth| a.authorization(1, "GET", "/", &[]).unwrap();
        assert_eq!(
            header(&auth(
                json!({"type": "api_token", "email": "a@b.c", "api_token": "t"})
            )),
            format!("Basic {}", STANDARD.encode("a@b.c:t"))
        );
        assert_eq!(
            header(&auth(json!({"type": "oauth2", "access_token": "tok"}))),
            "Bearer tok"
        );
        let connect = Credential::parse(
            &json!({"type": "connect", "client_key": "ck", "shared_secret": "s"}),
        )
        .unwrap();
        assert_eq!(connect.metadata()["app_key"], DEFAULT_APP_KEY);
        assert!(
            header(&Auth::Input(connect.clone()))
                .starts_with("JWT eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.")
        );
        assert_eq!(format!("{connect:?}"), "Credential::connect");
    }

    #[test]
    fn secrets_and_metadata_split_the_credential() {
        let api =
            Credential::parse(&json!({"type": "api_token", "email": "a@b.c", "api_token": "t"}))
                .unwrap();
        assert_eq!(api.secrets(), json!({"api_token": "t"}));
        assert_eq!(
            Value::Object(api.metadata()),
            json!({"auth": "api_token", "email": "a@b.c"})
        );
        let connect = Credential::parse(&json!({"type": "connect", "client_key": "ck",
            "shared_secret": "s", "app_key": "my.app"}))
        .unwrap();
        assert_eq!(connect.secrets(), json!({"shared_secret": "s"}));
        assert_eq!(
            Value::Object(connect.metadata()),
            json!({"auth": "connect", "client_key": "ck", "app_key": "my.app"})
        );
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

    /// `Stored::of` the only integration, made current.
    fn stored(metadata: Value, secrets: Value) -> Result<Stored> {
        testing::reset();
        testing::add_integration("site", metadata, secrets);
        assert!(testing::make_current("site"));
        Stored::of(&trackbridge_plugin_sdk::integration::require_current()?)
    }

    #[test]
    fn new_installations_say_everything_in_metadata() {
        assert_eq!(
            stored(
                json!({"auth": "api_token", "email": "a@b.c"}),
                json!({"credential": {"api_token": "t"}})
            ),
            Ok(Stored::ApiToken {
                email: "a@b.c".into()
            })
        );
        assert_eq!(
            stored(
                json!({"auth": "connect", "client_key": "ck", "app_key": "my.app"}),
                json!({"credential": {"shared_secret": "s"}})
            ),
            Ok(Stored::Connect {
                app_key: "my.app".into()
            })
        );
    }

    #[test]
    fn old_installations_are_told_apart_by_their_secrets() {
        let old = |credential: Value| stored(json!({}), json!({"credential": credential}));
        assert_eq!(
            old(json!({"type": "oauth2", "access_token": "t"})),
            Ok(Stored::OAuth2)
        );
        assert_eq!(
            old(json!({"type": "connect", "client_key": "ck", "shared_secret": "s"})),
            Ok(Stored::Connect {
                app_key: DEFAULT_APP_KEY.into()
            })
        );
        assert_eq!(
            old(
                json!({"type": "connect", "client_key": "ck", "shared_secret": "s",
                       "app_key": DEFAULT_APP_KEY})
            ),
            Ok(Stored::Connect {
                app_key: DEFAULT_APP_KEY.into()
            })
        );
        // Another app key than the default cannot be read back: install again.
        let e = old(
            json!({"type": "connect", "client_key": "ck", "shared_secret": "s",
                           "app_key": "custom.app"}),
        )
        .unwrap_err();
        assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
        assert!(e.message().contains("install it again"), "{e}");
        // 0.1.0 stored `auth` in metadata, but not the email.
        let e = stored(
            json!({"auth": "api_token"}),
            json!({"credential": {"type": "api_token", "email": "a@b.c", "api_token": "t"}}),
        )
        .unwrap_err();
        assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
        assert!(
            e.message().contains("account email") && e.message().contains("install it again"),
            "{e}"
        );
        let e = old(json!({"type": "api_token", "email": "a@b.c", "api_token": "t"})).unwrap_err();
        assert!(e.message().contains("install it again"), "{e}");
        let e = stored(json!({}), json!({})).unwrap_err();
        assert!(e.message().contains("lacks a credential"), "{e}");
    }

    #[test]
    fn stored_credentials_use_their_secrets_by_handle() {
        let header = |stored: Stored| {
            Auth::Stored(stored)
                .authorization(1, "GET", "/", &[])
                .unwrap()
        };
        let api = stored(
            json!({"auth": "api_token", "email": "a@b.c"}),
            json!({"credential": {"api_token": "t0k3n"}}),
        )
        .unwrap();
        let basic = header(api);
        assert!(basic.starts_with("tbsecret-"), "a stand-in: {basic}");
        assert!(!basic.contains("t0k3n"));
        assert_eq!(
            testing::secret_uses(),
            vec![
                (API_TOKEN.to_string(), "get".to_string()),
                (API_TOKEN.to_string(), "stand-in".to_string())
            ]
        );

        let connect = stored(
            json!({"auth": "connect", "app_key": "a"}),
            json!({"credential": {"shared_secret": "s"}}),
        )
        .unwrap();
        assert!(header(connect).starts_with("JWT "));
        assert_eq!(
            testing::secret_uses(),
            vec![
                (SHARED_SECRET.to_string(), "get".to_string()),
                (SHARED_SECRET.to_string(), "hmac-sha256-sign".to_string())
            ]
        );

        let missing = stored(json!({"auth": "oauth2"}), json!({})).unwrap();
        let e = Auth::Stored(missing)
            .authorization(1, "GET", "/", &[])
            .unwrap_err();
        assert!(e.message().contains(ACCESS_TOKEN), "{e}");
    }
}
