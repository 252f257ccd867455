//! The installation input: the repository, the API base URL and the credential.

use serde_json::{Map, Value, json};
use trackbridge_plugin_sdk::url::Url;
use trackbridge_plugin_sdk::{Error, Result};

/// github.com's API, used when the input names no `api_url`.
pub const DEFAULT_API_URL: &str = "https://api.github.com";
/// The host an installation without `api_url` must reach (not a URL field then).
pub const DEFAULT_API_HOST: &str = "api.github.com:443";

/// How trackbridge authenticates to GitHub.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// A personal access token (classic or fine-grained).
    Token { token: String },
    /// A GitHub App: its id, private key (PEM) and webhook secret; the
    /// installation is looked up when not given.
    App {
        app_id: String,
        private_key: String,
        webhook_secret: String,
        installation_id: Option<u64>,
    },
}

// Keys and tokens stay out of debug output.
impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Token { .. } => f.write_str("Credential::Token"),
            Credential::App { app_id, .. } => write!(f, "Credential::App({app_id})"),
        }
    }
}

/// A validated installation input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub owner: String,
    pub repo: String,
    /// Without a trailing `/`.
    pub api_url: String,
    /// Whether the input named `api_url` (else the host must be asked for).
    pub api_url_given: bool,
    pub credential: Credential,
}

impl Input {
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.repo)
    }

    pub fn parse(input: &Value) -> Result<Input> {
        let obj = input
            .as_object()
            .ok_or_else(|| Error::invalid_input("the installation input must be a JSON object"))?;
        let repository = string(obj, "repository")?
            .ok_or_else(|| Error::invalid_input("repository is required (owner/repo)"))?;
        let (owner, repo) = parse_repository(&repository)?;
        let (api_url, api_url_given) = match string(obj, "api_url")? {
            Some(url) => (parse_api_url(&url)?, true),
            None => (DEFAULT_API_URL.to_string(), false),
        };
        let credential = Credential::parse(
            obj.get("credential")
                .ok_or_else(|| Error::invalid_input("credential is required"))?,
        )?;
        Ok(Input {
            owner,
            repo,
            api_url,
            api_url_given,
            credential,
        })
    }
}

fn string(obj: &Map<String, Value>, name: &str) -> Result<Option<String>> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(_) => Err(Error::invalid_input(format!("{name} must be a string"))),
    }
}

/// `owner/repo`, each part made of the characters GitHub allows in names.
pub fn parse_repository(text: &str) -> Result<(String, String)> {
    let valid = |part: &str| {
        // `.` and `..` would climb out of the API path.
        !part.is_empty()
            && part != "."
            && part != ".."
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    match text.split_once('/') {
        Some((owner, repo)) if valid(owner) && valid(repo) => {
            Ok((owner.to_string(), repo.to_string()))
        }
        _ => Err(Error::invalid_input(format!(
            "repository must be owner/repo, e.g. octocat/Hello-World (got {text:?})"
        ))),
    }
}

fn parse_api_url(text: &str) -> Result<String> {
    let url = Url::parse(text).map_err(|e| {
        Error::invalid_input(format!("api_url is not a valid URL: {}", e.message()))
    })?;
    if url.query.is_some() || text.contains('#') {
        return Err(Error::invalid_input(
            "api_url must not have a query or fragment",
        ));
    }
    Ok(format!(
        "{}{}",
        url.origin(),
        url.path.trim_end_matches('/')
    ))
}

impl Credential {
    pub fn parse(value: &Value) -> Result<Credential> {
        let obj = value
            .as_object()
            .ok_or_else(|| Error::invalid_input("credential must be an object"))?;
        let required = |name: &str| {
            string(obj, name)?
                .ok_or_else(|| Error::invalid_input(format!("credential.{name} is required")))
        };
        match obj.get("type").and_then(Value::as_str) {
            Some("token") => Ok(Credential::Token {
                token: required("token")?,
            }),
            Some("app") => {
                let app_id = match obj.get("app_id") {
                    Some(Value::Number(n)) => n.to_string(),
                    _ => required("app_id")?,
                };
                let private_key = required("private_key")?;
                if !private_key.contains("PRIVATE KEY-----") {
                    return Err(Error::invalid_input(
                        "credential.private_key must be the App's private key in PEM",
                    ));
                }
                let installation_id = match obj.get("installation_id") {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(
                        v.as_u64()
                            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                            .ok_or_else(|| {
                                Error::invalid_input("credential.installation_id must be a number")
                            })?,
                    ),
                };
                Ok(Credential::App {
                    app_id,
                    private_key,
                    webhook_secret: required("webhook_secret")?,
                    installation_id,
                })
            }
            _ => Err(Error::invalid_input(
                "credential.type must be one of \"token\", \"app\"",
            )),
        }
    }
}

/// JSON Schema of the installation input.
pub fn config_schema() -> Value {
    let secret = |description: &str| json!({"type": "string", "minLength": 1, "writeOnly": true, "description": description});
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "GitHub Issues",
        "type": "object",
        "required": ["repository", "credential"],
        "properties": {
            "repository": {
                "type": "string",
                "pattern": "^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$",
                "description": "The repository whose issues are synced, as owner/repo.",
                "examples": ["octocat/Hello-World"]
            },
            "api_url": {
                "type": "string",
                "format": "uri",
                "pattern": "^https?://",
                "description": "The REST API base URL: https://api.github.com (the default) or https://HOST/api/v3 for GitHub Enterprise Server."
            },
            "credential": {
                "description": "How trackbridge authenticates to GitHub.",
                "oneOf": [
                    {
                        "title": "Personal access token",
                        "type": "object",
                        "required": ["type", "token"],
                        "properties": {
                            "type": {"const": "token"},
                            "token": secret("Classic: scopes repo (or public_repo) and admin:repo_hook. Fine-grained: Issues (read & write), Webhooks (read & write), Metadata (read).")
                        }
                    },
                    {
                        "title": "GitHub App",
                        "type": "object",
                        "required": ["type", "app_id", "private_key", "webhook_secret"],
                        "properties": {
                            "type": {"const": "app"},
                            "app_id": {"type": ["string", "integer"], "description": "The App's id (or client id)."},
                            "installation_id": {"type": ["string", "integer"], "description": "The App's installation on the repository; looked up when absent."},
                            "private_key": secret("The App's private key (PEM)."),
                            "webhook_secret": secret("The App's webhook secret.")
                        }
                    }
                ]
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_input(extra: Value) -> Value {
        let mut v =
            json!({"repository": "octo/repo", "credential": {"type": "token", "token": " t "}});
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        v
    }

    #[test]
    fn a_token_input_defaults_to_github_com() {
        let input = Input::parse(&token_input(json!({}))).unwrap();
        assert_eq!(input.full_name(), "octo/repo");
        assert_eq!(input.api_url, DEFAULT_API_URL);
        assert!(!input.api_url_given);
        assert_eq!(input.credential, Credential::Token { token: "t".into() });
        assert_eq!(format!("{:?}", input.credential), "Credential::Token");
    }

    #[test]
    fn an_enterprise_url_is_normalized() {
        let input = Input::parse(&token_input(
            json!({"api_url": "https://GHE.example.com/api/v3/"}),
        ))
        .unwrap();
        assert_eq!(input.api_url, "https://ghe.example.com/api/v3");
        assert!(input.api_url_given);
    }

    #[test]
    fn bad_input_names_the_field() {
        let msg = |v: Value| Input::parse(&v).unwrap_err().message().to_string();
        assert!(msg(json!({})).contains("repository"));
        assert!(msg(token_input(json!({"repository": "nope"}))).contains("owner/repo"));
        assert!(msg(token_input(json!({"repository": "a/b/c"}))).contains("owner/repo"));
        assert!(msg(token_input(json!({"api_url": "ftp://x"}))).contains("api_url"));
        assert!(msg(json!({"repository": "a/b"})).contains("credential"));
        assert!(
            msg(json!({"repository": "a/b", "credential": {"type": "token"}}))
                .contains("credential.token")
        );
        assert!(
            msg(json!({"repository": "a/b", "credential": {"type": "oauth"}}))
                .contains("credential.type")
        );
        let app = json!({"repository": "a/b", "credential": {"type": "app", "app_id": 1, "private_key": "not pem", "webhook_secret": "s"}});
        assert!(msg(app).contains("PEM"));
        let app = json!({"repository": "a/b", "credential": {"type": "app", "app_id": 1, "private_key": "-----BEGIN PRIVATE KEY-----", "webhook_secret": "s", "installation_id": "x"}});
        assert!(msg(app).contains("installation_id"));
    }

    #[test]
    fn an_app_input_keeps_its_ids() {
        let input = Input::parse(&json!({"repository": "a/b", "credential": {"type": "app", "app_id": 42, "installation_id": "7", "private_key": "-----BEGIN PRIVATE KEY-----\n", "webhook_secret": "s"}})).unwrap();
        match input.credential {
            Credential::App {
                app_id,
                installation_id,
                ..
            } => assert_eq!((app_id.as_str(), installation_id), ("42", Some(7))),
            other => panic!("{other:?}"),
        }
    }
}
