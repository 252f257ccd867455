//! Integration secrets at rest: sealed under the operator's key (never plain
//! text in the database), opened for the plugin so webhooks still verify,
//! re-sealed by a rotation under the new key while the host keeps working,
//! and a host given keys that cannot open them refuses to start. Canary
//! secrets, used inbound and outbound, show up in no log line, API answer,
//! metric or stored byte.

use std::time::Duration;

use anyhow::ensure;
use serde_json::json;
use trackbridge_e2e::host::everything_stored;
use trackbridge_e2e::jira_sim::{JiraAuth, JiraSim};
use trackbridge_e2e::scenario::{
    BOB_EMAIL, JiraScenario, WEBHOOK_SECRET, deliver, http_client, wait_queue_idle,
};
use trackbridge_e2e::{TestDatabase, TestHost};
use trackbridge_host::store::Store;
use trackbridge_host::store::sealing::{SecretKeys, sealed_with};

const OLD_KEY: [u8; 32] = [7; 32];
const NEW_KEY: [u8; 32] = [9; 32];

fn keys(keys: &[[u8; 32]]) -> SecretKeys {
    SecretKeys::from_bytes(keys)
}

/// The `secrets` column of every integration, as stored.
async fn stored_secrets(database: &TestDatabase) -> anyhow::Result<Vec<String>> {
    let store = Store::connect(database.url()).await?;
    Ok(sqlx::query_scalar("SELECT secrets FROM integrations")
        .fetch_all(store.pool())
        .await?)
}

/// A signed assignee webhook for `key` is stored and applied: the plugin
/// verified it with the secret the host opened for it.
async fn assignment_goes_through(
    host: &TestHost,
    scenario: &JiraScenario,
    key: &str,
) -> anyhow::Result<()> {
    let group = scenario.linked_group(host.api(), key).await?;
    let event = scenario.assignee_event(key, Some(BOB_EMAIL), trackbridge_host::time::now_ms());
    let answer = deliver(&http_client(), &host.base_url(), &event, key).await?;
    ensure!(answer.status == 200, "{} {}", answer.status, answer.text());
    wait_queue_idle(host.api(), Duration::from_secs(20)).await?;
    let assignee = host.api().group(group).await?["assignee"].clone();
    ensure!(
        assignee == json!({"type": "user", "id": scenario.bob}),
        "{assignee}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_secrets_are_never_plain_and_the_host_works_through_a_rotation() -> anyhow::Result<()>
{
    let jira = JiraSim::start(JiraAuth::basic("bot@example.com", "tok")).await?;
    let host = TestHost::start_on(TestDatabase::new().await?, |s| {
        s.secret_keys = keys(&[OLD_KEY]);
    })
    .await?;
    let scenario = JiraScenario::setup(host.api(), &jira).await?;
    assignment_goes_through(&host, &scenario, "SEAL-1").await?;
    let database = host.stop().await;
    let old_id = keys(&[OLD_KEY]).sealing_key_id().map(str::to_owned);
    for stored in stored_secrets(&database).await? {
        ensure!(
            !stored.contains(WEBHOOK_SECRET) && !stored.contains("api_token"),
            "plain text in the secrets column: {stored}"
        );
        ensure!(sealed_with(&stored) == old_id.as_deref(), "{stored}");
    }

    // The new key first, the old one still known; then the rotation.
    let host = TestHost::start_on(database, |s| {
        s.secret_keys = keys(&[NEW_KEY, OLD_KEY]);
    })
    .await?;
    let rotating = Store::connect(host.database().url())
        .await?
        .with_secret_keys(keys(&[NEW_KEY, OLD_KEY]));
    ensure!(
        rotating.seal_secrets(true).await? == 1,
        "one integration re-sealed"
    );
    assignment_goes_through(&host, &scenario, "SEAL-2").await?;
    let database = host.stop().await;
    let new_id = keys(&[NEW_KEY]).sealing_key_id().map(str::to_owned);
    for stored in stored_secrets(&database).await? {
        ensure!(sealed_with(&stored) == new_id.as_deref(), "{stored}");
    }

    // The old key alone opens nothing now: the host says so and does not start.
    match TestHost::start_on(database, |s| s.secret_keys = keys(&[OLD_KEY])).await {
        Ok(host) => anyhow::bail!("started with a key that opens nothing: {}", host.base_url()),
        Err(err) => {
            let message = format!("{err:#}");
            ensure!(
                message.contains("not among the keys given"),
                "the refusal names the missing key: {message}"
            );
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_stored_plain_are_sealed_once_a_key_is_given() -> anyhow::Result<()> {
    let jira = JiraSim::start(JiraAuth::basic("bot@example.com", "tok")).await?;
    let host = TestHost::start().await?;
    let scenario = JiraScenario::setup(host.api(), &jira).await?;
    let database = host.stop().await;
    let plain = stored_secrets(&database).await?;
    ensure!(
        plain.iter().all(|s| s.contains(WEBHOOK_SECRET)),
        "without a key the secrets are plain, as the host warns: {plain:?}"
    );

    let host = TestHost::start_on(database, |s| s.secret_keys = keys(&[OLD_KEY])).await?;
    let sealed = stored_secrets(host.database()).await?;
    ensure!(
        sealed
            .iter()
            .all(|s| sealed_with(s).is_some() && !s.contains(WEBHOOK_SECRET)),
        "{sealed:?}"
    );
    assignment_goes_through(&host, &scenario, "SEAL-3").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_secrets_appear_in_no_log_line_api_answer_metric_or_stored_byte()
-> anyhow::Result<()> {
    const CANARY_TOKEN: &str = "canary-api-token-3f9a1c7e";
    let jira = JiraSim::start(JiraAuth::basic("bot@example.com", CANARY_TOKEN)).await?;
    let host = TestHost::start_on(TestDatabase::new().await?, |s| {
        s.secret_keys = keys(&[OLD_KEY]);
    })
    .await?;
    let api = host.api();
    let scenario = JiraScenario::setup_with_token(api, &jira, CANARY_TOKEN).await?;
    // Inbound: a delivery the plugin verifies with the webhook secret.
    assignment_goes_through(&host, &scenario, "CANARY-1").await?;
    // Outbound: an unassignment the plugin sends with the API token.
    let group = scenario.linked_group(api, "CANARY-1").await?;
    api.update_group(group, &json!({"assignedTo": null}))
        .await?
        .expect(200)?;
    wait_queue_idle(api, Duration::from_secs(20)).await?;
    ensure!(
        !jira.recorder().requests().is_empty(),
        "the plugin called the tracker with the token"
    );

    let mut seen = Vec::new();
    for path in [
        format!("/api/organizations/{}/integrations", scenario.org),
        format!(
            "/api/organizations/{}/integrations/{}",
            scenario.org, scenario.integration
        ),
        "/api/jobs?limit=100".to_owned(),
        "/api/plugins".to_owned(),
        "/api/queue".to_owned(),
    ] {
        seen.push((path.clone(), api.get(&path).await?.text));
    }
    seen.push(("/metrics".into(), api.metrics().await?));
    seen.push((
        "the host's log".into(),
        trackbridge_e2e::logs::lines_with("").join("\n"),
    ));
    let database = host.stop().await;
    let stored = everything_stored(&database).await?;
    ensure!(
        stored.contains("CANARY-1"),
        "the search reads the stored rows (the linked issue's key is among them)"
    );
    seen.push(("the database".into(), stored));
    for (place, text) in &seen {
        for canary in [CANARY_TOKEN, WEBHOOK_SECRET] {
            ensure!(!text.contains(canary), "{canary} found in {place}");
        }
    }
    Ok(())
}
