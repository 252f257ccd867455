//! End-to-end tests of the Discord notifier: the host in-process with the built Discord plugin,
//! driven only through its HTTP API, against the Discord simulator on loopback.
//!
//! Notifications are delivered in the background, one event after the other, so tests poll the
//! simulator with a deadline. Where a test asserts that nothing more reached a broken
//! installation, a second, healthy installation (on a second simulator, installed after the
//! first so the host serves it later for every event) acts as a barrier: once it received the
//! later event, the host has finished with the broken one for that event too.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use serde_json::{Value, json};
use trackbridge_e2e::discord_sim::{BOT_TOKEN, CHANNEL_ID, DiscordSim, WEBHOOK_ID, WEBHOOK_TOKEN};
use trackbridge_e2e::{ApiClient, DEFAULT_WAIT, TestHost, id_of};

const GROUP_TITLE: &str = "TypeError in checkout";
const PROJECT: &str = "storefront";
const BOB_NAME: &str = "Bob Builder";
const BOB_EMAIL: &str = "bob@example.com";

fn bot_path(suffix: &str) -> String {
    format!("/api/v10/channels/{CHANNEL_ID}{suffix}")
}

fn webhook_path(suffix: &str) -> String {
    format!("/api/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}{suffix}")
}

/// One host with an organization, a project, a user and a group.
struct Env {
    host: TestHost,
    org: i64,
    bob: i64,
    group: i64,
}

impl Env {
    async fn start() -> anyhow::Result<Env> {
        let host = TestHost::start().await?;
        let api = host.api().clone();
        let org = id_of(&api.create_organization("Acme").await?)?;
        let project = id_of(&api.create_project(org, PROJECT).await?)?;
        let bob = id_of(&api.create_user(BOB_NAME, &[(BOB_EMAIL, true)]).await?)?;
        api.add_member(org, bob).await?;
        let group = id_of(&api.create_group(project, GROUP_TITLE).await?)?;
        Ok(Env {
            host,
            org,
            bob,
            group,
        })
    }

    fn api(&self) -> &ApiClient {
        self.host.api()
    }

    async fn install(&self, input: &Value) -> anyhow::Result<Value> {
        self.api()
            .install_integration(self.org, "discord", input)
            .await
    }

    async fn integration(&self, id: i64) -> anyhow::Result<Value> {
        self.api()
            .get(&format!(
                "/api/organizations/{}/integrations/{id}",
                self.org
            ))
            .await?
            .expect(200)
    }

    /// `PUT /api/groups/{group}`, expecting 200.
    async fn update_group(&self, body: Value) -> anyhow::Result<Value> {
        self.api()
            .update_group(self.group, &body)
            .await?
            .expect(200)
            .with_context(|| format!("PUT group {body}"))
    }

    async fn assign_bob(&self) -> anyhow::Result<Value> {
        self.update_group(json!({"assignedTo": format!("user:{}", self.bob)}))
            .await
    }

    /// Wait until the installation shows `status: broken`; returns it.
    async fn wait_broken(&self, id: i64) -> anyhow::Result<Value> {
        let deadline = Instant::now() + DEFAULT_WAIT;
        loop {
            let integration = self.integration(id).await?;
            if integration["status"] == "broken" {
                return Ok(integration);
            }
            if Instant::now() >= deadline {
                bail!("installation {id} never became broken: {integration}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

fn bot_input(sim: &DiscordSim) -> Value {
    json!({"bot_token": BOT_TOKEN, "channel_id": CHANNEL_ID, "api_base_url": sim.api_base_url()})
}

fn webhook_input(sim: &DiscordSim) -> Value {
    json!({"webhook_url": sim.webhook_url()})
}

/// Wait until `pred` holds for the simulator's messages (id → content); returns them.
async fn wait_messages(
    sim: &DiscordSim,
    what: &str,
    pred: impl Fn(&std::collections::BTreeMap<String, String>) -> bool,
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let deadline = Instant::now() + DEFAULT_WAIT;
    loop {
        let messages = sim.messages();
        if pred(&messages) {
            return Ok(messages);
        }
        if Instant::now() >= deadline {
            bail!(
                "timed out waiting for {what}; messages: {messages:?}; requests:\n{}",
                sim.recorder().describe()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The only message, once there is one.
async fn the_message(sim: &DiscordSim) -> anyhow::Result<(String, String)> {
    let messages = wait_messages(sim, "a message", |m| !m.is_empty()).await?;
    ensure!(
        messages.len() == 1,
        "expected one message, got {messages:?}"
    );
    Ok(messages.into_iter().next().expect("one message"))
}

#[tokio::test]
async fn installs_with_a_bot_token_and_never_shows_it() -> anyhow::Result<()> {
    let sim = DiscordSim::start().await?;
    let env = Env::start().await?;
    let response = env
        .api()
        .post(
            &format!("/api/organizations/{}/integrations", env.org),
            &json!({"provider": "discord", "input": bot_input(&sim)}),
        )
        .await?;
    ensure!(!response.text.contains(BOT_TOKEN), "{}", response.text);
    let integration = response.expect(201)?;
    assert_eq!(integration["provider"], "discord");
    assert_eq!(integration["external_id"], format!("channel:{CHANNEL_ID}"));
    assert_eq!(integration["metadata"]["kind"], "bot");
    assert_eq!(integration["metadata"]["channel_id"], CHANNEL_ID);
    assert_eq!(integration["status"], "active");
    let id = id_of(&integration)?;
    let shown = env
        .api()
        .get(&format!("/api/organizations/{}/integrations/{id}", env.org))
        .await?;
    ensure!(!shown.text.contains(BOT_TOKEN), "{}", shown.text);
    let listed = env
        .api()
        .get(&format!("/api/organizations/{}/integrations", env.org))
        .await?;
    ensure!(!listed.text.contains(BOT_TOKEN), "{}", listed.text);

    let check = sim.recorder().calls("GET", &bot_path(""));
    assert_eq!(check.len(), 1, "{}", sim.recorder().describe());
    assert_eq!(
        check[0].header("authorization"),
        Some(format!("Bot {BOT_TOKEN}").as_str())
    );
    Ok(())
}

#[tokio::test]
async fn installs_with_a_webhook_url_and_never_shows_it() -> anyhow::Result<()> {
    let sim = DiscordSim::start().await?;
    let env = Env::start().await?;
    let response = env
        .api()
        .post(
            &format!("/api/organizations/{}/integrations", env.org),
            &json!({"provider": "discord", "input": webhook_input(&sim)}),
        )
        .await?;
    ensure!(!response.text.contains(WEBHOOK_TOKEN), "{}", response.text);
    let integration = response.expect(201)?;
    assert_eq!(integration["external_id"], format!("webhook:{WEBHOOK_ID}"));
    assert_eq!(integration["metadata"]["kind"], "webhook");
    assert_eq!(integration["status"], "active");
    let listed = env
        .api()
        .get(&format!("/api/organizations/{}/integrations", env.org))
        .await?;
    ensure!(!listed.text.contains(WEBHOOK_TOKEN), "{}", listed.text);
    assert_eq!(sim.recorder().calls("GET", &webhook_path("")).len(), 1);
    Ok(())
}

#[tokio::test]
async fn an_invalid_installation_is_refused_with_a_reason() -> anyhow::Result<()> {
    let sim = DiscordSim::start().await?;
    let env = Env::start().await?;
    let url = format!("/api/organizations/{}/integrations", env.org);
    let missing = env
        .api()
        .post(
            &url,
            &json!({"provider": "discord", "input": {"bot_token": BOT_TOKEN}}),
        )
        .await?;
    assert_eq!(missing.status, 400, "{}", missing.text);
    assert!(missing.text.contains("channel_id"), "{}", missing.text);
    let wrong_token = env
        .api()
        .post(
            &url,
            &json!({"provider": "discord", "input": {"bot_token": "wrong", "channel_id": CHANNEL_ID, "api_base_url": sim.api_base_url()}}),
        )
        .await?;
    assert!(
        wrong_token.status >= 400 && wrong_token.text.contains("bot token"),
        "{} {}",
        wrong_token.status,
        wrong_token.text
    );
    assert!(!wrong_token.text.contains("wrong"), "{}", wrong_token.text);
    Ok(())
}

#[tokio::test]
async fn an_assignment_posts_one_message_naming_assignee_title_status_and_project()
-> anyhow::Result<()> {
    let sim = DiscordSim::start().await?;
    let env = Env::start().await?;
    env.install(&bot_input(&sim)).await?;
    env.assign_bob().await?;

    let (id, content) = the_message(&sim).await?;
    for expected in [BOB_NAME, GROUP_TITLE, "unresolved", PROJECT] {
        assert!(content.contains(expected), "`{expected}` not in {content}");
    }
    let posts = sim.recorder().calls("POST", &bot_path("/messages"));
    assert_eq!(posts.len(), 1, "{}", sim.recorder().describe());
    let body = posts[0].json();
    assert_eq!(body["enforce_nonce"], true);
    let nonce = body["nonce"].as_str().context("a string nonce")?;
    assert!(nonce.len() <= 25, "{nonce}");
    assert_eq!(body["allowed_mentions"], json!({"parse": []}));
    assert_eq!(sim.message(&id).context("stored")?.edits, 0);
    Ok(())
}

#[tokio::test]
async fn resolving_then_unassigning_edits_the_same_message() -> anyhow::Result<()> {
    let sim = DiscordSim::start().await?;
    let env = Env::start().await?;
    env.install(&bot_input(&sim)).await?;
    env.assign_bob().await?;
    let (id, _) = the_message(&sim).await?;
    let patch_path = bot_path(&format!("/messages/{id}"));

    env.update_group(json!({"status": "resolved"})).await?;
    sim.recorder()
        .wait_for("the edit after resolving", DEFAULT_WAIT, |r| {
            r.is("PATCH", &patch_path)
        })
        .await?;
    let messages = sim.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[&id].contains("resolved"), "{}", messages[&id]);
    assert!(messages[&id].contains(BOB_NAME), "{}", messages[&id]);

    env.update_group(json!({"assignedTo": null})).await?;
    sim.recorder()
        .wait_for_count("the edit after unassigning", 2, DEFAULT_WAIT, |r| {
            r.is("PATCH", &patch_path)
        })
        .await?;
    let messages = sim.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[&id].contains("Unassigned"), "{}", messages[&id]);
    assert_eq!(sim.message(&id).context("stored")?.edits, 2);
    assert_eq!(
        sim.recorder().calls("POST", &bot_path("/messages")).len(),
        1,
        "{}",
        sim.recorder().describe()
    );
    Ok(())
}

#[tokio::test]
async fn a_webhook_posts_with_wait_and_edits_the_same_message() -> anyhow::Result<()> {
    let sim = DiscordSim::start().await?;
    let env = Env::start().await?;
    env.install(&webhook_input(&sim)).await?;
    env.assign_bob().await?;
    let (id, content) = the_message(&sim).await?;
    assert!(content.contains(BOB_NAME), "{content}");
    let posts = sim.recorder().calls("POST", &webhook_path(""));
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].query_param("wait").as_deref(), Some("true"));

    env.update_group(json!({"status": "resolved"})).await?;
    sim.recorder()
        .wait_for("the webhook edit", DEFAULT_WAIT, |r| {
            r.is("PATCH", &webhook_path(&format!("/messages/{id}")))
        })
        .await?;
    let messages = sim.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[&id].contains("was resolved"), "{}", messages[&id]);
    assert_eq!(sim.recorder().calls("POST", &webhook_path("")).len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_rate_limited_message_arrives_after_the_wait_exactly_once() -> anyhow::Result<()> {
    let sim = DiscordSim::start().await?;
    let env = Env::start().await?;
    env.install(&bot_input(&sim)).await?;
    sim.rate_limit_next(1, 1.0);
    let started = Instant::now();
    env.assign_bob().await?;

    let posts = sim
        .recorder()
        .wait_for_count("the retried create", 2, DEFAULT_WAIT, |r| {
            r.is("POST", &bot_path("/messages"))
        })
        .await?;
    let elapsed = started.elapsed();
    assert_eq!(posts[0].status, Some(429));
    assert_eq!(posts[1].status, Some(200));
    assert!(
        elapsed >= Duration::from_secs(1),
        "retried after {elapsed:?}, before Discord's retry_after"
    );
    // The retry is the same create: Discord could deduplicate it.
    assert_eq!(posts[0].json()["nonce"], posts[1].json()["nonce"]);
    let (_, content) = the_message(&sim).await?;
    assert!(content.contains(BOB_NAME), "{content}");
    assert_eq!(sim.messages().len(), 1);
    Ok(())
}

/// Discord refuses every call with `status`: the installation is marked broken with a reason,
/// and a later change sends nothing more to it, while the group changes themselves succeed.
async fn a_refusal_breaks_the_installation(status: u16) -> anyhow::Result<()> {
    let sim = DiscordSim::start().await?;
    let barrier = DiscordSim::start().await?;
    let env = Env::start().await?;
    let broken = id_of(&env.install(&bot_input(&sim)).await?)?;
    env.install(&webhook_input(&barrier)).await?;
    sim.refuse(Some(status));

    let group = env.assign_bob().await?;
    assert_eq!(group["assignee"]["id"], env.bob, "{group}");
    let integration = env.wait_broken(broken).await?;
    let reason = integration["broken_reason"]
        .as_str()
        .context("a broken_reason")?;
    assert!(reason.contains(&status.to_string()), "{reason}");
    assert!(!reason.contains(BOT_TOKEN), "{reason}");
    let (barrier_id, _) = the_message(&barrier).await?;
    let refused = sim.recorder().requests();
    assert_eq!(refused.len(), 2, "{}", sim.recorder().describe());

    let group = env.update_group(json!({"assignedTo": null})).await?;
    assert_eq!(group["assignee"], Value::Null, "{group}");
    wait_messages(&barrier, "the barrier's edit", |m| {
        m.get(&barrier_id).is_some_and(|c| c.contains("Unassigned"))
    })
    .await?;
    assert_eq!(
        sim.recorder().requests().len(),
        refused.len(),
        "requests after the installation broke:\n{}",
        sim.recorder().describe()
    );
    assert_eq!(env.integration(broken).await?["status"], "broken");
    Ok(())
}

#[tokio::test]
async fn unauthorized_marks_the_installation_broken_and_stops_sending() -> anyhow::Result<()> {
    a_refusal_breaks_the_installation(401).await
}

#[tokio::test]
async fn not_found_marks_the_installation_broken_and_stops_sending() -> anyhow::Result<()> {
    a_refusal_breaks_the_installation(404).await
}

#[tokio::test]
async fn discord_down_does_not_fail_the_assignment() -> anyhow::Result<()> {
    let sim = DiscordSim::start().await?;
    let env = Env::start().await?;
    env.install(&bot_input(&sim)).await?;
    sim.go_down();

    let answer = env
        .api()
        .update_group(
            env.group,
            &json!({"assignedTo": format!("user:{}", env.bob)}),
        )
        .await?;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let group = env.api().group(env.group).await?;
    assert_eq!(group["assignee"], json!({"type": "user", "id": env.bob}));
    Ok(())
}

#[tokio::test]
async fn reinstalling_a_broken_installation_makes_it_active_again() -> anyhow::Result<()> {
    let sim = DiscordSim::start().await?;
    let env = Env::start().await?;
    let id = id_of(&env.install(&bot_input(&sim)).await?)?;
    sim.revoke_bot_token();
    env.assign_bob().await?;
    env.wait_broken(id).await?;

    sim.set_bot_token(BOT_TOKEN);
    let again = env.install(&bot_input(&sim)).await?;
    assert_eq!(id_of(&again)?, id);
    assert_eq!(again["status"], "active", "{again}");
    assert_eq!(again["broken_reason"], Value::Null, "{again}");
    assert_eq!(env.integration(id).await?["status"], "active");

    env.update_group(json!({"status": "resolved"})).await?;
    let (_, content) = the_message(&sim).await?;
    assert!(content.contains("was resolved"), "{content}");
    Ok(())
}
