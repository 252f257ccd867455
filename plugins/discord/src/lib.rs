//! Discord notifier for trackbridge: one message per group and channel, posted
//! on the group's first change and edited on every later one.
//!
//! Installs with a bot (`bot_token`, `channel_id`, optional `api_base_url`) or
//! a channel webhook (`webhook_url`); see [`config`]. Messages are rendered by
//! [`message`] and sent by [`client`], which also maps Discord's answers onto
//! the contract's errors (401/403/404 → unauthorized, 429 → retry after).

pub mod client;
pub mod config;
pub mod message;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use trackbridge_plugin_sdk::notifier::*;
use trackbridge_plugin_sdk::{Notifier, Result, debug, info, integration, warn};

use crate::config::{DISCORD_HOST, Target, is_snowflake};

/// Discord accepts nonces of at most 25 characters.
pub const NONCE_LEN: usize = 25;

pub struct Discord;

impl Notifier for Discord {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            config_schema: config::config_schema().to_string(),
            url_fields: vec!["api_base_url".into(), "webhook_url".into()],
            allowed_host_patterns: vec![DISCORD_HOST.into()],
            ..ProviderInfo::new("discord", env!("CARGO_PKG_VERSION"), "Discord")
        }
    }

    fn build_integration(input: Value) -> Result<IntegrationData> {
        let target = Target::from_input(&input)?;
        let found = client::check(&target)?;
        let text = |k: &str| found.get(k).and_then(Value::as_str).map(str::to_string);
        let mut metadata = target.metadata();
        let name = match &target {
            Target::Bot { channel_id, .. } => {
                let channel_name = text("name");
                metadata.insert("channel_name".into(), json!(channel_name));
                metadata.insert("guild_id".into(), json!(text("guild_id")));
                match channel_name {
                    Some(n) => format!("Discord #{n}"),
                    None => format!("Discord channel {channel_id}"),
                }
            }
            Target::Webhook { id, .. } => {
                // The answer also holds the webhook's token: only these fields are kept.
                let webhook_name = text("name");
                metadata.insert("webhook_name".into(), json!(webhook_name));
                metadata.insert("channel_id".into(), json!(text("channel_id")));
                metadata.insert("guild_id".into(), json!(text("guild_id")));
                match webhook_name {
                    Some(n) => format!("Discord webhook {n}"),
                    None => format!("Discord webhook {id}"),
                }
            }
        };
        info!("installing Discord {}", target.external_id());
        let mut data = IntegrationData::new(
            target.external_id(),
            name,
            &Value::Object(metadata),
            &target.secrets(),
        );
        data.extra_hosts = target.extra_hosts();
        Ok(data)
    }

    fn notify(
        group: GroupSummary,
        event: GroupEvent,
        previous_message: Option<String>,
    ) -> Result<Delivered> {
        let current = integration::require_current()?;
        let target = Target::from_stored(&current.metadata)?;
        let message = message::render(&group, event);
        if let Some(id) = previous_message.as_deref() {
            if is_snowflake(id) {
                if let Some(edited) = client::edit(&target, id, &message)? {
                    debug!("group {} {event}: edited message {edited}", group.id);
                    return Ok(Delivered::new(edited));
                }
                info!(
                    "message {id} about group {} was deleted in Discord; posting a new one",
                    group.id
                );
            } else {
                warn!(
                    "stored message id for group {} is not a Discord id; posting a new message",
                    group.id
                );
            }
        }
        let nonce = nonce(&current.external_id, group.id, previous_message.as_deref());
        let body = client::create_body(&target, message, &nonce);
        let id = client::create(&target, &body)?;
        debug!("group {} {event}: posted message {id}", group.id);
        Ok(Delivered::new(id))
    }
}

trackbridge_plugin_sdk::export_notifier!(Discord);

/// The nonce of the first message about `group` in this channel: the same on
/// every retry, so Discord returns the message a lost answer already created
/// instead of posting a second one. A message re-posted after the previous
/// one was deleted gets a nonce of its own.
pub fn nonce(external_id: &str, group: i64, previous: Option<&str>) -> String {
    let digest = Sha256::digest(
        format!(
            "trackbridge-discord\0{external_id}\0{group}\0{}",
            previous.unwrap_or("")
        )
        .as_bytes(),
    );
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("tb{}", &hex[..NONCE_LEN - 2])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;
    use trackbridge_plugin_sdk::http::{Method, Request, Response};
    use trackbridge_plugin_sdk::testing;
    use trackbridge_plugin_sdk::{Error, error::Result as SdkResult};

    const TOKEN: &str = "bot-secret-token";
    const WEBHOOK: &str = "https://discord.com/api/webhooks/555/hook-secret";

    fn group() -> GroupSummary {
        GroupSummary {
            id: 42,
            title: "TypeError in checkout".into(),
            status: "unresolved".into(),
            project: "web".into(),
            assignee: Some("Bob (bob@example.com)".into()),
            links: vec!["Jira SEN-5".into()],
        }
    }

    fn install_bot() {
        testing::reset();
        testing::set_now_ms(1_700_000_000_000);
        testing::add_integration(
            "channel:100",
            json!({"kind": "bot", "channel_id": "100", "api_base_url": "https://discord.com/api/v10"}),
            json!({"bot_token": TOKEN}),
        );
        assert!(testing::make_current("channel:100"));
    }

    fn install_webhook() {
        testing::reset();
        testing::set_now_ms(1_700_000_000_000);
        testing::add_integration(
            "webhook:555",
            json!({"kind": "webhook", "webhook_id": "555",
                   "webhook_base_url": "https://discord.com/api/webhooks/555"}),
            json!({"webhook_token": "hook-secret"}),
        );
        assert!(testing::make_current("webhook:555"));
    }

    fn answer(f: impl Fn(&Request) -> Response + 'static) {
        testing::on_http(move |r| -> SdkResult<Response> { Ok(f(r)) });
    }

    fn body(r: &Request) -> Value {
        serde_json::from_slice(r.body.as_deref().unwrap_or(b"null")).unwrap()
    }

    fn no_secrets_logged() {
        for (_, line) in testing::logs() {
            assert!(
                !line.contains(TOKEN) && !line.contains("hook-secret"),
                "{line}"
            );
        }
    }

    #[test]
    fn describes_itself() {
        let info = Discord::describe();
        assert_eq!(
            (info.name.as_str(), info.display_name.as_str()),
            ("discord", "Discord")
        );
        assert_eq!(info.url_fields, ["api_base_url", "webhook_url"]);
        assert_eq!(info.allowed_host_patterns, ["discord.com:443"]);
        assert!(info.routes.is_empty());
        let schema: Value = serde_json::from_str(&info.config_schema).unwrap();
        assert_eq!(schema["oneOf"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn nonce_is_short_stable_and_per_group() {
        let a = nonce("channel:1", 42, None);
        assert_eq!(a.len(), NONCE_LEN);
        assert_eq!(a, nonce("channel:1", 42, None));
        assert_ne!(a, nonce("channel:1", 43, None));
        assert_ne!(a, nonce("channel:2", 42, None));
        assert_ne!(a, nonce("channel:1", 42, Some("9")));
    }

    #[test]
    fn build_bot_checks_the_channel() {
        testing::reset();
        answer(|r| {
            assert_eq!(r.method, Method::Get);
            assert_eq!(r.full_url(), "https://discord.com/api/v10/channels/100");
            assert_eq!(
                r.header_value("authorization"),
                Some("Bot bot-secret-token")
            );
            Response::json_body(
                200,
                &json!({"id": "100", "name": "alerts", "guild_id": "7", "type": 0}),
            )
        });
        let data =
            Discord::build_integration(json!({"bot_token": TOKEN, "channel_id": "100"})).unwrap();
        assert_eq!(data.external_id, "channel:100");
        assert_eq!(data.name, "Discord #alerts");
        assert_eq!(data.extra_hosts, ["discord.com:443"]);
        let metadata: Value = serde_json::from_str(&data.metadata).unwrap();
        assert_eq!(metadata["kind"], "bot");
        assert_eq!(metadata["channel_id"], "100");
        assert_eq!(metadata["guild_id"], "7");
        assert!(!data.metadata.contains(TOKEN));
        assert_eq!(
            serde_json::from_str::<Value>(&data.secrets).unwrap(),
            json!({"bot_token": TOKEN})
        );
        no_secrets_logged();
    }

    #[test]
    fn build_refusals_name_the_problem() {
        for (status, expected) in [
            (401, "refused the bot token"),
            (403, "View Channel"),
            (404, "does not exist"),
        ] {
            testing::reset();
            answer(move |_| Response::json_body(status, &json!({"message": "nope", "code": 0})));
            match Discord::build_integration(
                json!({"bot_token": TOKEN, "channel_id": "100", "api_base_url": "http://127.0.0.1:9/api"}),
            ) {
                Err(Error::Unauthorized(m)) => {
                    assert!(m.contains(expected) && !m.contains(TOKEN), "{m}")
                }
                other => panic!("{status}: {other:?}"),
            }
        }
        testing::reset();
        answer(|_| Response::new(503, "down"));
        let e = Discord::build_integration(json!({"bot_token": TOKEN, "channel_id": "100"}))
            .unwrap_err();
        assert_eq!(e.status(), Some(503));
        assert!(matches!(
            Discord::build_integration(json!({"bot_token": TOKEN})),
            Err(Error::InvalidInput(_))
        ));
    }

    #[test]
    fn build_webhook_keeps_no_token_in_metadata() {
        testing::reset();
        answer(|r| {
            assert_eq!(r.full_url(), WEBHOOK);
            assert_eq!(r.header_value("authorization"), None);
            Response::json_body(
                200,
                &json!({"id": "555", "type": 1, "name": "Alerts hook", "channel_id": "100", "guild_id": "7", "token": "hook-secret"}),
            )
        });
        let data = Discord::build_integration(json!({"webhook_url": WEBHOOK})).unwrap();
        assert_eq!(data.external_id, "webhook:555");
        assert_eq!(data.name, "Discord webhook Alerts hook");
        assert!(data.extra_hosts.is_empty());
        assert!(!data.metadata.contains("hook-secret"), "{}", data.metadata);
        assert!(!data.name.contains("hook-secret"));
        assert_eq!(
            serde_json::from_str::<Value>(&data.secrets).unwrap(),
            json!({"webhook_token": "hook-secret"})
        );
        assert_eq!(
            serde_json::from_str::<Value>(&data.metadata).unwrap()["webhook_base_url"],
            "https://discord.com/api/webhooks/555"
        );
        testing::reset();
        answer(|_| Response::json_body(404, &json!({"message": "Unknown Webhook", "code": 10015})));
        match Discord::build_integration(json!({"webhook_url": WEBHOOK})) {
            Err(Error::Unauthorized(m)) => assert!(
                m.contains("Unknown Webhook") && !m.contains("hook-secret"),
                "{m}"
            ),
            other => panic!("{other:?}"),
        }
        no_secrets_logged();
    }

    #[test]
    fn bot_posts_with_nonce_then_edits() {
        install_bot();
        answer(|r| match r.method {
            Method::Post => Response::json_body(200, &json!({"id": "900", "channel_id": "100"})),
            Method::Patch => Response::json_body(200, &json!({"id": "900"})),
            _ => Response::new(500, ""),
        });
        let d = Discord::notify(group(), GroupEvent::Assigned, None).unwrap();
        assert_eq!(d.message_id, "900");
        let d = Discord::notify(group(), GroupEvent::Resolved, Some("900".into())).unwrap();
        assert_eq!(d.message_id, "900");
        let requests = testing::requests();
        assert_eq!(requests.len(), 2);
        let post = &requests[0];
        assert_eq!(post.method, Method::Post);
        assert_eq!(
            post.full_url(),
            "https://discord.com/api/v10/channels/100/messages"
        );
        assert_eq!(
            post.header_value("authorization"),
            Some("Bot bot-secret-token")
        );
        // The plugin held a stand-in; the host put the token in.
        assert!(testing::secret_uses().contains(&("bot_token".into(), "stand-in".into())));
        assert_eq!(post.timeout, Some(client::TIMEOUT));
        let b = body(post);
        assert_eq!(b["nonce"], nonce("channel:100", 42, None));
        assert_eq!(b["enforce_nonce"], true);
        assert_eq!(b["allowed_mentions"], json!({"parse": []}));
        assert!(
            b["content"]
                .as_str()
                .unwrap()
                .contains("Bob (bob@example.com)")
        );
        let patch = &requests[1];
        assert_eq!(patch.method, Method::Patch);
        assert_eq!(
            patch.full_url(),
            "https://discord.com/api/v10/channels/100/messages/900"
        );
        let b = body(patch);
        assert!(b.get("nonce").is_none());
        assert!(b["content"].as_str().unwrap().contains("was resolved"));
        no_secrets_logged();
    }

    #[test]
    fn webhook_executes_with_wait_then_edits() {
        install_webhook();
        answer(|r| match r.method {
            Method::Post => Response::json_body(200, &json!({"id": "901"})),
            Method::Patch => Response::json_body(200, &json!({"id": "901"})),
            _ => Response::new(500, ""),
        });
        assert_eq!(
            Discord::notify(group(), GroupEvent::Assigned, None)
                .unwrap()
                .message_id,
            "901"
        );
        assert_eq!(
            Discord::notify(group(), GroupEvent::Unassigned, Some("901".into()))
                .unwrap()
                .message_id,
            "901"
        );
        let requests = testing::requests();
        assert_eq!(requests[0].full_url(), format!("{WEBHOOK}?wait=true"));
        assert_eq!(requests[0].header_value("authorization"), None);
        assert!(body(&requests[0]).get("nonce").is_none());
        assert_eq!(requests[1].method, Method::Patch);
        assert_eq!(requests[1].full_url(), format!("{WEBHOOK}/messages/901"));
        no_secrets_logged();
    }

    #[test]
    fn refusals_are_unauthorized() {
        for status in [401, 403, 404] {
            install_bot();
            answer(move |_| Response::json_body(status, &json!({"message": "no", "code": 50001})));
            match Discord::notify(group(), GroupEvent::Assigned, None) {
                Err(Error::Unauthorized(m)) => {
                    assert!(m.contains(&format!("HTTP {status}")), "{m}")
                }
                other => panic!("{status}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_deleted_message_is_posted_again() {
        install_bot();
        answer(|r| match r.method {
            Method::Patch => {
                Response::json_body(404, &json!({"message": "Unknown Message", "code": 10008}))
            }
            _ => Response::json_body(200, &json!({"id": "902"})),
        });
        let d = Discord::notify(group(), GroupEvent::Resolved, Some("900".into())).unwrap();
        assert_eq!(d.message_id, "902");
        let requests = testing::requests();
        assert_eq!(requests.len(), 2);
        assert_eq!(
            body(&requests[1])["nonce"],
            nonce("channel:100", 42, Some("900"))
        );
    }

    #[test]
    fn rate_limits_say_how_long_to_wait_and_are_remembered() {
        install_bot();
        let calls = Rc::new(RefCell::new(0));
        let seen = calls.clone();
        answer(move |_| {
            *seen.borrow_mut() += 1;
            Response::json_body(429, &json!({"message": "You are being rate limited.", "retry_after": 1.2, "global": false}))
                .with_header("Retry-After", "2")
                .with_header("X-RateLimit-Reset-After", "1.2")
        });
        let e = Discord::notify(group(), GroupEvent::Assigned, None).unwrap_err();
        assert_eq!(
            e,
            Error::Upstream {
                status: Some(429),
                message: "Discord rate limit (HTTP 429: You are being rate limited.)".into(),
                retry_after_secs: Some(2),
            }
        );
        // Within the wait nothing is sent.
        testing::set_now_ms(1_700_000_000_500);
        let e = Discord::notify(group(), GroupEvent::Assigned, None).unwrap_err();
        assert_eq!(e.status(), Some(429));
        assert!(matches!(
            e,
            Error::Upstream {
                retry_after_secs: Some(1),
                ..
            }
        ));
        assert_eq!(*calls.borrow(), 1);
        // After it, the next call goes out.
        testing::set_now_ms(1_700_000_001_300);
        let _ = Discord::notify(group(), GroupEvent::Assigned, None);
        assert_eq!(*calls.borrow(), 2);
    }

    #[test]
    fn an_exhausted_bucket_waits_before_the_next_call() {
        install_bot();
        answer(|_| {
            Response::json_body(200, &json!({"id": "903"}))
                .with_header("X-RateLimit-Remaining", "0")
                .with_header("X-RateLimit-Reset-After", "0.4")
        });
        Discord::notify(group(), GroupEvent::Assigned, None).unwrap();
        let e = Discord::notify(group(), GroupEvent::Resolved, Some("903".into())).unwrap_err();
        assert!(matches!(
            e,
            Error::Upstream {
                status: Some(429),
                retry_after_secs: Some(1),
                ..
            }
        ));
        assert_eq!(testing::requests().len(), 1);
        testing::set_now_ms(1_700_000_000_400);
        Discord::notify(group(), GroupEvent::Resolved, Some("903".into())).unwrap();
        assert_eq!(testing::requests().len(), 2);
    }

    #[test]
    fn server_errors_and_outages_are_upstream() {
        install_webhook();
        answer(|_| Response::new(502, "Bad Gateway"));
        assert_eq!(
            Discord::notify(group(), GroupEvent::Assigned, None)
                .unwrap_err()
                .status(),
            Some(502)
        );
        install_webhook();
        testing::on_http(|_| Err(Error::unreachable("connection refused")));
        let e = Discord::notify(group(), GroupEvent::Assigned, None).unwrap_err();
        assert!(matches!(e, Error::Upstream { status: None, .. }));
        install_webhook();
        answer(|_| Response::new(204, ""));
        assert!(Discord::notify(group(), GroupEvent::Assigned, None).is_err());
    }

    #[test]
    fn a_broken_stored_integration_is_internal() {
        testing::reset();
        testing::add_integration("channel:1", json!({}), json!({}));
        testing::make_current("channel:1");
        assert!(matches!(
            Discord::notify(group(), GroupEvent::Assigned, None),
            Err(Error::Internal(_))
        ));
    }
}
