//! Integrations are served from memory, and a change made through another
//! process sharing the database reaches this one within the cache's bound
//! (half a second): an uninstalled integration's webhooks stop being
//! accepted, a reinstalled one's are accepted again.

use std::time::{Duration, Instant};

use anyhow::ensure;
use trackbridge_e2e::TestDatabase;
use trackbridge_e2e::jira_sim::{JiraAuth, JiraSim};
use trackbridge_e2e::process::HostProcess;
use trackbridge_e2e::scenario::{BOB_EMAIL, JiraScenario, deliver, http_client};

const HOST_PROCESS: &str = env!("CARGO_BIN_EXE_host-process");

fn now_ms() -> i64 {
    trackbridge_host::time::now_ms()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_s_uninstall_reaches_this_one_within_the_cache_bound() -> anyhow::Result<()>
{
    // Two processes need PostgreSQL, whatever database the run uses.
    let database = TestDatabase::postgres().await?;
    let jira = JiraSim::start(JiraAuth::basic("bot@example.com", "tok")).await?;
    let a = HostProcess::start(HOST_PROCESS, database.url(), &[]).await?;
    let b = HostProcess::start(HOST_PROCESS, database.url(), &[]).await?;
    let scenario = JiraScenario::setup(a.api(), &jira).await?;
    scenario.linked_group(a.api(), "CACHE-1").await?;
    let http = http_client();
    // b reads the integration (and keeps it).
    let event = scenario.assignee_event("CACHE-1", Some(BOB_EMAIL), now_ms());
    let first = deliver(&http, b.base_url(), &event, "cache-1").await?;
    ensure!(first.status == 200, "{} {}", first.status, first.text());

    // a uninstalls it; b must refuse its webhooks within the bound.
    a.api()
        .request(
            reqwest::Method::DELETE,
            &format!(
                "/api/organizations/{}/integrations/{}?force=true",
                scenario.org, scenario.integration
            ),
            None,
        )
        .await?
        .expect(204)?;
    let uninstalled = Instant::now();
    let mut n = 0;
    let refused_after = loop {
        n += 1;
        let event = scenario.assignee_event("CACHE-1", Some(BOB_EMAIL), now_ms());
        let answer = deliver(&http, b.base_url(), &event, &format!("cache-after-{n}")).await?;
        if answer.status != 200 {
            break uninstalled.elapsed();
        }
        ensure!(
            uninstalled.elapsed() < Duration::from_secs(5),
            "b still accepts the uninstalled integration's webhooks"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    ensure!(
        refused_after < Duration::from_millis(1500),
        "b learnt of the uninstall after {refused_after:?}"
    );
    Ok(())
}
