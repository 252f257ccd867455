//! The installation input, validated, and what the notifier stores from it.
//!
//! Two ways to reach a channel:
//! * a bot: `{"bot_token", "channel_id", "api_base_url"?}` (default
//!   [`DEFAULT_API_BASE_URL`]); messages go through the channel's REST API;
//! * a webhook: `{"webhook_url"}` (`https://discord.com/api/webhooks/{id}/{token}`);
//!   its last segment is the webhook's token, stored as a secret, the rest of
//!   the URL as metadata.
//!
//! A stored target holds stand-ins (contract 0.2.0's `secrets.stand-in`), not
//! the tokens: the host swaps the real token in as a request leaves for the
//! integration's own hosts. At installation the input's tokens are used as
//! they are (there is no stored integration yet).

use serde_json::{Map, Value, json};
use trackbridge_plugin_sdk::secrets::{self, HeaderFormat};
use trackbridge_plugin_sdk::url::Url;
use trackbridge_plugin_sdk::{Error, Result};

/// Discord's REST API, version 10.
pub const DEFAULT_API_BASE_URL: &str = "https://discord.com/api/v10";

/// The host the default API base URL needs.
pub const DISCORD_HOST: &str = "discord.com:443";

/// The fields an installation input may have.
const FIELDS: &[&str] = &["bot_token", "channel_id", "api_base_url", "webhook_url"];

/// A validated installation input.
#[derive(Clone, PartialEq, Eq)]
pub enum Target {
    Bot {
        /// The token, or a stand-in for it.
        token: String,
        channel_id: String,
        /// Without a trailing `/`.
        api_base_url: String,
        /// True when the operator gave no `api_base_url`.
        default_api: bool,
    },
    Webhook {
        /// The webhook's URL without its token: `https://discord.com/api/webhooks/{id}`.
        base_url: String,
        /// The token (the URL's last segment), or a stand-in for it.
        token: String,
        id: String,
    },
}

// Tokens must never reach a log line through `{:?}`.
impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Bot {
                channel_id,
                api_base_url,
                ..
            } => f
                .debug_struct("Bot")
                .field("channel_id", channel_id)
                .field("api_base_url", api_base_url)
                .field("token", &"<redacted>")
                .finish(),
            Target::Webhook { id, base_url, .. } => f
                .debug_struct("Webhook")
                .field("id", id)
                .field("base_url", base_url)
                .field("token", &"<redacted>")
                .finish(),
        }
    }
}

/// The JSON Schema of the installation input, for `describe`.
pub fn config_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Discord",
        "description": "Post group changes to a Discord channel, with a bot or through a channel webhook.",
        "oneOf": [
            {
                "type": "object",
                "title": "Bot",
                "required": ["bot_token", "channel_id"],
                "additionalProperties": false,
                "properties": {
                    "bot_token": {"type": "string", "minLength": 1, "description": "The bot's token (Developer Portal → Bot); the bot needs View Channel and Send Messages in the channel.", "writeOnly": true},
                    "channel_id": {"type": "string", "pattern": "^[0-9]{1,20}$", "description": "The channel's id (Developer Mode → Copy Channel ID)."},
                    "api_base_url": {"type": "string", "format": "uri", "default": DEFAULT_API_BASE_URL}
                }
            },
            {
                "type": "object",
                "title": "Webhook",
                "required": ["webhook_url"],
                "additionalProperties": false,
                "properties": {
                    "webhook_url": {"type": "string", "format": "uri", "description": "The channel webhook's URL, https://discord.com/api/webhooks/{id}/{token}. It contains the webhook's token.", "writeOnly": true}
                }
            }
        ]
    })
}

impl Target {
    /// Validates an installation input.
    pub fn from_input(input: &Value) -> Result<Target> {
        let Value::Object(map) = input else {
            return Err(Error::invalid_input(
                "the installation input must be a JSON object",
            ));
        };
        if let Some(unknown) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(Error::invalid_input(format!(
                "unknown field `{unknown}`; expected {{\"bot_token\", \"channel_id\", \"api_base_url\"?}} or {{\"webhook_url\"}}"
            )));
        }
        let present = |k: &str| map.get(k).is_some_and(|v| !v.is_null());
        let bot = present("bot_token") || present("channel_id") || present("api_base_url");
        match (bot, present("webhook_url")) {
            (true, true) => Err(Error::invalid_input(
                "give either a bot (`bot_token`, `channel_id`) or a `webhook_url`, not both",
            )),
            (false, false) => Err(Error::invalid_input(
                "give either a bot (`bot_token` and `channel_id`) or a `webhook_url`",
            )),
            (true, false) => bot_target(map),
            (false, true) => webhook_target(string_field(map, "webhook_url")?),
        }
    }

    /// Rebuilds the target of the current integration from its metadata,
    /// with stand-ins for its token.
    pub fn from_stored(metadata: &Value) -> Result<Target> {
        let text = |k: &str| {
            metadata
                .get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .ok_or_else(|| Error::internal(format!("the stored integration has no `{k}`")))
        };
        let stand_in = |name: &str| -> Result<String> {
            Ok(secrets::require(name)?.stand_in(&HeaderFormat::Raw))
        };
        match metadata.get("kind").and_then(Value::as_str) {
            Some("bot") => Ok(Target::Bot {
                token: stand_in("bot_token")?,
                channel_id: text("channel_id")?,
                api_base_url: text("api_base_url")?,
                default_api: metadata["default_api"].as_bool().unwrap_or(false),
            }),
            Some("webhook") => {
                // Installed before contract 0.2.0: the whole URL is one
                // secret, which a stand-in cannot split into host and path.
                // Unauthorized marks the installation broken, with this reason,
                // until it is installed again.
                if metadata.get("webhook_base_url").is_none() {
                    return Err(Error::unauthorized(
                        "this webhook was installed by an earlier version of the Discord plugin, \
                         which stored its URL as one secret: install it again with the same \
                         webhook_url (the installation is updated in place)",
                    ));
                }
                Ok(Target::Webhook {
                    base_url: text("webhook_base_url")?,
                    token: stand_in("webhook_token")?,
                    id: text("webhook_id")?,
                })
            }
            _ => Err(Error::internal(
                "the stored integration has no known `kind` (bot or webhook)",
            )),
        }
    }

    /// The webhook's whole URL (with its token or a stand-in for it).
    pub fn webhook_url(base_url: &str, token: &str) -> String {
        format!("{base_url}/{token}")
    }

    /// The integration's external id: `channel:{id}` or `webhook:{id}`.
    pub fn external_id(&self) -> String {
        match self {
            Target::Bot { channel_id, .. } => format!("channel:{channel_id}"),
            Target::Webhook { id, .. } => format!("webhook:{id}"),
        }
    }

    /// Non-secret metadata.
    pub fn metadata(&self) -> Map<String, Value> {
        let value = match self {
            Target::Bot {
                channel_id,
                api_base_url,
                default_api,
                ..
            } => json!({
                "kind": "bot",
                "channel_id": channel_id,
                "api_base_url": api_base_url,
                "default_api": default_api,
            }),
            Target::Webhook { id, base_url, .. } => {
                json!({"kind": "webhook", "webhook_id": id, "webhook_base_url": base_url})
            }
        };
        match value {
            Value::Object(map) => map,
            _ => unreachable!("json! object"),
        }
    }

    /// The secrets: the bot's or the webhook's token.
    pub fn secrets(&self) -> Value {
        match self {
            Target::Bot { token, .. } => json!({"bot_token": token}),
            Target::Webhook { token, .. } => json!({"webhook_token": token}),
        }
    }

    /// Hosts beyond those of the URL fields the integration must reach.
    pub fn extra_hosts(&self) -> Vec<String> {
        match self {
            Target::Bot {
                default_api: true, ..
            } => vec![DISCORD_HOST.to_string()],
            _ => Vec::new(),
        }
    }
}

fn string_field<'a>(map: &'a Map<String, Value>, key: &str) -> Result<&'a str> {
    match map.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim()),
        Some(Value::String(_)) => Err(Error::invalid_input(format!("`{key}` is empty"))),
        None | Some(Value::Null) => Err(Error::invalid_input(format!("`{key}` is required"))),
        Some(_) => Err(Error::invalid_input(format!("`{key}` must be a string"))),
    }
}

/// A Discord snowflake: 1 to 20 decimal digits.
pub fn is_snowflake(s: &str) -> bool {
    !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit())
}

fn bot_target(map: &Map<String, Value>) -> Result<Target> {
    let mut token = string_field(map, "bot_token")?;
    // Operators often paste the header value instead of the token.
    if let Some(rest) = token.strip_prefix("Bot ") {
        token = rest.trim();
    }
    if token.is_empty()
        || !token
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    {
        return Err(Error::invalid_input(
            "`bot_token` must be a Discord bot token (printable characters, no spaces)",
        ));
    }
    let channel_id = match map.get("channel_id") {
        // Snowflakes exceed 2^53; an exact JSON integer still parses as u64.
        Some(Value::Number(n)) => n.as_u64().map(|n| n.to_string()).ok_or_else(|| {
            Error::invalid_input("`channel_id` must be a channel id (digits, ideally as a string)")
        })?,
        _ => string_field(map, "channel_id")?.to_string(),
    };
    if !is_snowflake(&channel_id) {
        return Err(Error::invalid_input(format!(
            "`channel_id` must be a Discord channel id (up to 20 digits), not `{channel_id}`"
        )));
    }
    let (api_base_url, default_api) = match map.get("api_base_url") {
        None | Some(Value::Null) => (DEFAULT_API_BASE_URL.to_string(), true),
        Some(_) => {
            let raw = string_field(map, "api_base_url")?;
            let url = Url::parse(raw)
                .map_err(|e| Error::invalid_input(format!("`api_base_url`: {}", e.message())))?;
            if url.query.is_some() {
                return Err(Error::invalid_input(
                    "`api_base_url` must not have a query string",
                ));
            }
            require_secure("api_base_url", &url)?;
            (
                format!("{}{}", url.origin(), url.path.trim_end_matches('/')),
                false,
            )
        }
    };
    Ok(Target::Bot {
        token: token.to_string(),
        channel_id,
        api_base_url,
        default_api,
    })
}

fn webhook_target(raw: &str) -> Result<Target> {
    // Error messages name the problem, never the URL: it holds the token.
    let url = Url::parse(raw).map_err(|_| {
        Error::invalid_input(
            "`webhook_url` is not a URL like https://discord.com/api/webhooks/{id}/{token}",
        )
    })?;
    if url.query.is_some() {
        return Err(Error::invalid_input(
            "`webhook_url` must not have a query string (copy it from Discord unchanged)",
        ));
    }
    require_secure("webhook_url", &url)?;
    let segments: Vec<&str> = url
        .path
        .trim_end_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    // `/api/webhooks/{id}/{token}`, optionally with a version: `/api/v10/webhooks/...`.
    let rest = match segments.as_slice() {
        ["api", "webhooks", rest @ ..] => rest,
        ["api", version, "webhooks", rest @ ..]
            if version.starts_with('v') && version[1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            rest
        }
        _ => {
            return Err(Error::invalid_input(
                "`webhook_url` must look like https://discord.com/api/webhooks/{id}/{token}",
            ));
        }
    };
    let [id, token] = rest else {
        return Err(Error::invalid_input(
            "`webhook_url` must end in /webhooks/{id}/{token}",
        ));
    };
    if !is_snowflake(id) {
        return Err(Error::invalid_input(
            "the webhook id in `webhook_url` must be digits",
        ));
    }
    if !token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Error::invalid_input(
            "the webhook token in `webhook_url` has unexpected characters",
        ));
    }
    let path = url.path.trim_end_matches('/');
    let base_path = &path[..path.len() - token.len() - 1];
    Ok(Target::Webhook {
        base_url: format!("{}{base_path}", url.origin()),
        token: token.to_string(),
        id: id.to_string(),
    })
}

/// Tokens travel in these URLs or next to them: plain HTTP only on loopback.
fn require_secure(field: &str, url: &Url) -> Result<()> {
    let loopback =
        matches!(url.host.as_str(), "localhost" | "[::1]") || url.host.starts_with("127.");
    if url.scheme == "https" || loopback {
        Ok(())
    } else {
        Err(Error::invalid_input(format!(
            "`{field}` must use https (the token would travel in clear text)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trackbridge_plugin_sdk::testing;

    /// `t` as `notify` rebuilds it once installed, and the token it stored.
    fn stored(t: &Target) -> (Target, String) {
        testing::reset();
        testing::add_integration("x", json!({}), t.secrets());
        assert!(testing::make_current("x"));
        let stored = Target::from_stored(&Value::Object(t.metadata())).unwrap();
        let token = match t {
            Target::Bot { token, .. } | Target::Webhook { token, .. } => token.clone(),
        };
        (stored, token)
    }

    /// The stored target is the installed one, with a stand-in for the token.
    fn assert_stored_as_installed(t: &Target) {
        let (mut stored, token) = stored(t);
        match &mut stored {
            Target::Bot {
                token: stand_in, ..
            }
            | Target::Webhook {
                token: stand_in, ..
            } => {
                assert!(stand_in.starts_with("tbsecret-"), "{stand_in}");
                assert!(!stand_in.contains(&token));
                *stand_in = token;
            }
        }
        assert_eq!(&stored, t);
    }

    #[test]
    fn bot_input_defaults_to_discord() {
        let t =
            Target::from_input(&json!({"bot_token": "Bot abc.def", "channel_id": "123"})).unwrap();
        assert_eq!(
            t,
            Target::Bot {
                token: "abc.def".into(),
                channel_id: "123".into(),
                api_base_url: DEFAULT_API_BASE_URL.into(),
                default_api: true,
            }
        );
        assert_eq!(t.external_id(), "channel:123");
        assert_eq!(t.extra_hosts(), vec!["discord.com:443".to_string()]);
        assert!(!Value::Object(t.metadata()).to_string().contains("abc.def"));
        assert_eq!(t.secrets(), json!({"bot_token": "abc.def"}));
        assert!(!format!("{t:?}").contains("abc.def"));
    }

    #[test]
    fn bot_input_with_own_api_and_numeric_channel() {
        let t = Target::from_input(&json!({
            "bot_token": "tok", "channel_id": 1_234_567_890_123_456_789u64,
            "api_base_url": "http://127.0.0.1:9000/api/v10/"
        }))
        .unwrap();
        let Target::Bot {
            api_base_url,
            channel_id,
            default_api,
            ..
        } = &t
        else {
            panic!("{t:?}")
        };
        assert_eq!(api_base_url, "http://127.0.0.1:9000/api/v10");
        assert_eq!(channel_id, "1234567890123456789");
        assert!(!default_api);
        assert!(t.extra_hosts().is_empty());
        assert_stored_as_installed(&t);
    }

    #[test]
    fn webhook_input() {
        let t = Target::from_input(&json!({
            "webhook_url": "https://discord.com/api/webhooks/223704706495545344/3d89bb7572e0fb30d8128367b3b1b44fecd1726de135cbe28a41f8b2f777c372ba2939e72279b94526ff5d1bd4358d65cf11/"
        }))
        .unwrap();
        assert_eq!(t.external_id(), "webhook:223704706495545344");
        let Target::Webhook {
            base_url, token, ..
        } = &t
        else {
            panic!()
        };
        assert_eq!(
            base_url,
            "https://discord.com/api/webhooks/223704706495545344"
        );
        assert!(token.starts_with("3d89") && token.ends_with("cf11"));
        assert_eq!(
            Value::Object(t.metadata()),
            json!({"kind": "webhook", "webhook_id": "223704706495545344",
                   "webhook_base_url": "https://discord.com/api/webhooks/223704706495545344"})
        );
        assert_eq!(t.secrets(), json!({"webhook_token": token}));
        assert!(t.extra_hosts().is_empty());
        assert!(!format!("{t:?}").contains("3d89"));
        let v10 = Target::from_input(
            &json!({"webhook_url": "https://discord.com/api/v10/webhooks/1/a_b-C"}),
        )
        .unwrap();
        assert_eq!(v10.external_id(), "webhook:1");
        assert_stored_as_installed(&t);
        assert_stored_as_installed(&v10);
    }

    #[test]
    fn a_webhook_stored_before_contract_0_2_0_asks_to_be_installed_again() {
        testing::reset();
        testing::add_integration(
            "webhook:1",
            json!({}),
            json!({"webhook_url": "https://discord.com/api/webhooks/1/t"}),
        );
        assert!(testing::make_current("webhook:1"));
        let err = Target::from_stored(&json!({"kind": "webhook", "webhook_id": "1"})).unwrap_err();
        assert!(matches!(err, Error::Unauthorized(_)), "{err:?}");
        assert!(err.message().contains("install it again"), "{err:?}");
    }

    #[test]
    fn bad_inputs_are_explained() {
        let cases = [
            (json!([]), "JSON object"),
            (json!({}), "either a bot"),
            (json!({"bot_token": "t"}), "`channel_id` is required"),
            (json!({"channel_id": "1"}), "`bot_token` is required"),
            (
                json!({"bot_token": "t", "channel_id": "general"}),
                "channel id",
            ),
            (json!({"bot_token": "a b", "channel_id": "1"}), "no spaces"),
            (
                json!({"bot_token": "t", "channel_id": "1", "webhook_url": "https://discord.com/api/webhooks/1/t"}),
                "not both",
            ),
            (
                json!({"bot_token": "t", "channel_id": "1", "api_base_url": "ftp://x"}),
                "api_base_url",
            ),
            (
                json!({"bot_token": "t", "channel_id": "1", "api_base_url": "http://discord.com/api"}),
                "https",
            ),
            (
                json!({"bot_token": "t", "channel_id": "1", "token": "x"}),
                "unknown field `token`",
            ),
            (
                json!({"webhook_url": "https://discord.com/api/channels/1/t"}),
                "/api/webhooks/",
            ),
            (
                json!({"webhook_url": "https://discord.com/api/webhooks/abc/t"}),
                "must be digits",
            ),
            (
                json!({"webhook_url": "https://discord.com/api/webhooks/1"}),
                "{id}/{token}",
            ),
            (
                json!({"webhook_url": "https://discord.com/api/webhooks/1/t?wait=true"}),
                "query",
            ),
            (
                json!({"webhook_url": "http://discord.com/api/webhooks/1/secret-token"}),
                "https",
            ),
            (json!({"webhook_url": 5}), "must be a string"),
        ];
        for (input, expected) in cases {
            match Target::from_input(&input) {
                Err(Error::InvalidInput(m)) => {
                    assert!(m.contains(expected), "{input}: {m}");
                    assert!(!m.contains("secret-token"), "{m}");
                }
                other => panic!("{input}: {other:?}"),
            }
        }
    }
}
