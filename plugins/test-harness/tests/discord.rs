//! The built Discord notifier in the harness, against a fake Discord API.

mod common;

use serde_json::{Value, json};
use trackbridge_plugin_test::{
    Expect, FakeTracker, GroupEvent, GroupSummary, Harness, HarnessError, Integration, PluginError,
    Reply, group, issue,
};

const PLUGIN: &str = "trackbridge_plugin_discord.wasm";
const CHANNEL: &str = "123456789012345678";
const TOKEN: &str = "bot-secret-token";

fn api(discord: &FakeTracker) -> String {
    format!("{}/api/v10", discord.url())
}

fn bot_input(discord: &FakeTracker) -> Value {
    json!({"bot_token": format!("Bot {TOKEN}"), "channel_id": CHANNEL, "api_base_url": api(discord)})
}

async fn installed(harness: &Harness, discord: &FakeTracker) -> Integration {
    discord
        .expect(
            Expect::get(format!("/api/v10/channels/{CHANNEL}"))
                .header("authorization", format!("Bot {TOKEN}")),
        )
        .respond(Reply::ok().json(&json!({"id": CHANNEL, "name": "alerts", "guild_id": "42"})));
    harness.install(bot_input(discord)).await.unwrap()
}

fn resolved_group() -> GroupSummary {
    GroupSummary {
        status: "resolved".into(),
        assignee: Some("Jess (jess@example.com)".into()),
        links: vec!["Jira APP-1".into()],
        ..group(7, "Null pointer in *checkout*")
    }
}

#[tokio::test]
async fn install_reads_the_channel_with_the_bot_token() {
    let harness = common::harness(PLUGIN).await;
    let discord = FakeTracker::start().await.unwrap();

    let integration = installed(&harness, &discord).await;

    assert_eq!(harness.plugin().world(), "notifier-plugin");
    assert_eq!(integration.external_id, format!("channel:{CHANNEL}"));
    assert_eq!(integration.name, "Discord #alerts");
    // A given API base URL is the only host: no extra host for discord.com.
    assert_eq!(integration.allowed_hosts, vec![discord.authority()]);
    let metadata: Value = serde_json::from_str(&integration.metadata).unwrap();
    assert_eq!(metadata["guild_id"], "42");
    let secrets: Value = serde_json::from_str(&integration.secrets).unwrap();
    assert_eq!(secrets["bot_token"], TOKEN, "the `Bot ` prefix is dropped");
    discord.verify();
}

#[tokio::test]
async fn an_unknown_channel_fails_the_installation() {
    let harness = common::harness(PLUGIN).await;
    let discord = FakeTracker::start().await.unwrap();
    discord
        .expect(Expect::get(format!("/api/v10/channels/{CHANNEL}")))
        .respond(Reply::status(404).json(&json!({"message": "Unknown Channel", "code": 10003})));

    let err = harness.install(bot_input(&discord)).await.unwrap_err();

    assert!(
        matches!(err.plugin_error(), Some(PluginError::Unauthorized(_))),
        "{err}"
    );
    discord.verify();
}

#[tokio::test]
async fn the_first_change_posts_a_message_and_the_next_edits_it() {
    let harness = common::harness(PLUGIN).await;
    let discord = FakeTracker::start().await.unwrap();
    let integration = installed(&harness, &discord).await;
    let messages = format!("/api/v10/channels/{CHANNEL}/messages");
    discord
        .expect(
            Expect::post(&messages)
                .header("authorization", format!("Bot {TOKEN}"))
                .body_json(json!({"enforce_nonce": true, "allowed_mentions": {"parse": []}}))
                .body_contains("was resolved")
                .body_contains(r"Null pointer in \\*checkout\\*"),
        )
        .respond(Reply::ok().json(&json!({"id": "1100000000000000001", "channel_id": CHANNEL})));
    discord
        .expect(
            Expect::patch(format!("{messages}/1100000000000000001")).body_contains("was reopened"),
        )
        .respond(Reply::ok().json(&json!({"id": "1100000000000000001", "channel_id": CHANNEL})));

    let posted = harness
        .notify(&integration, &resolved_group(), GroupEvent::Resolved, None)
        .await
        .unwrap();
    let reopened = GroupSummary {
        status: "unresolved".into(),
        ..resolved_group()
    };
    let edited = harness
        .notify(
            &integration,
            &reopened,
            GroupEvent::Unresolved,
            Some(&posted.message_id),
        )
        .await
        .unwrap();

    assert_eq!(posted.message_id, "1100000000000000001");
    assert_eq!(edited.message_id, posted.message_id);
    let nonce = discord.requests()[1].json().unwrap()["nonce"].clone();
    assert!(
        nonce
            .as_str()
            .is_some_and(|n| n.starts_with("tb") && n.len() == 25),
        "{nonce}"
    );
    discord.verify();
}

#[tokio::test]
async fn a_deleted_message_is_posted_again() {
    let harness = common::harness(PLUGIN).await;
    let discord = FakeTracker::start().await.unwrap();
    let integration = installed(&harness, &discord).await;
    let messages = format!("/api/v10/channels/{CHANNEL}/messages");
    discord
        .expect(Expect::patch(format!("{messages}/1100000000000000001")))
        .respond(Reply::status(404).json(&json!({"message": "Unknown Message", "code": 10008})));
    discord
        .expect(Expect::post(&messages))
        .respond(Reply::ok().json(&json!({"id": "1100000000000000002"})));

    let delivered = harness
        .notify(
            &integration,
            &resolved_group(),
            GroupEvent::Resolved,
            Some("1100000000000000001"),
        )
        .await
        .unwrap();

    assert_eq!(delivered.message_id, "1100000000000000002");
    discord.verify();
}

#[tokio::test]
async fn a_rate_limit_is_an_upstream_error_with_its_delay() {
    let harness = common::harness(PLUGIN).await;
    let discord = FakeTracker::start().await.unwrap();
    let integration = installed(&harness, &discord).await;
    discord
        .expect(Expect::post(format!(
            "/api/v10/channels/{CHANNEL}/messages"
        )))
        .respond(Reply::status(429).json(
            &json!({"message": "You are being rate limited.", "retry_after": 2.5, "global": false}),
        ));

    let err = harness
        .notify(&integration, &resolved_group(), GroupEvent::Resolved, None)
        .await
        .unwrap_err();

    match err.plugin_error() {
        Some(PluginError::Upstream(upstream)) => {
            assert_eq!(upstream.status, Some(429));
            assert_eq!(upstream.retry_after_secs, Some(3), "rounded up");
        }
        other => panic!("expected an upstream 429, got {other:?} ({err})"),
    }
    discord.verify();
}

#[tokio::test]
async fn installation_may_reach_only_the_hosts_it_is_given() {
    let harness = common::harness(PLUGIN).await;
    let discord = FakeTracker::start().await.unwrap();
    let elsewhere = FakeTracker::start().await.unwrap();

    // The input names `elsewhere`, but the call may reach only `discord`.
    let err = harness
        .build_integration(bot_input(&elsewhere), &[discord.authority()])
        .await
        .unwrap_err();

    assert!(
        matches!(err.plugin_error(), Some(PluginError::Upstream(u)) if u.status.is_none()),
        "{err}"
    );
    assert!(
        elsewhere.requests().is_empty(),
        "the refused host received nothing"
    );
    assert!(discord.requests().is_empty());
}

#[tokio::test]
async fn notify_may_reach_only_the_integrations_hosts() {
    let harness = common::harness(PLUGIN).await;
    let discord = FakeTracker::start().await.unwrap();
    let elsewhere = FakeTracker::start().await.unwrap();
    let integration = installed(&harness, &discord).await;
    let mut metadata: Value = serde_json::from_str(&integration.metadata).unwrap();
    metadata["api_base_url"] = json!(api(&elsewhere));
    let redirected = Integration {
        metadata: metadata.to_string(),
        ..integration
    };

    let err = harness
        .notify(&redirected, &resolved_group(), GroupEvent::Resolved, None)
        .await
        .unwrap_err();

    assert!(
        matches!(err.plugin_error(), Some(PluginError::Upstream(u)) if u.status.is_none()),
        "{err}"
    );
    assert!(
        elsewhere.requests().is_empty(),
        "the refused host received nothing"
    );
    discord.verify();
}

#[tokio::test]
async fn provider_exports_are_refused_on_a_notifier() {
    let harness = common::harness(PLUGIN).await;
    let integration = harness.integration().build();

    let err = harness
        .sync_assignee(&integration, &issue("APP-1"), None)
        .await
        .unwrap_err();

    assert!(
        matches!(
            &err,
            HarnessError::WrongWorld {
                world: "notifier-plugin",
                export: "sync-assignee",
                ..
            }
        ),
        "{err}"
    );
    // A notifier has nothing to uninstall, as in the host.
    harness.uninstall(&integration).await.unwrap();
}
