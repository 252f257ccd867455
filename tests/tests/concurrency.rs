//! Many requests at once against one host: reads must never starve the
//! database connection pool (a read that held one pooled connection while
//! waiting for a second deadlocked under load until the pool timed out).

use futures::future::join_all;
use serde_json::json;
use trackbridge_e2e::{TestHost, id_of};

#[tokio::test]
async fn concurrent_group_reads_and_writes_all_succeed() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let api = host.api().clone();
    let org = id_of(&api.create_organization("Acme").await?)?;
    let project = id_of(&api.create_project(org, "backend").await?)?;
    let group = id_of(&api.create_group(project, "TypeError").await?)?;
    let requests = (0..64).map(|i| {
        let api = api.clone();
        async move {
            if i % 8 == 0 {
                let status = if i % 16 == 0 {
                    "resolved"
                } else {
                    "unresolved"
                };
                api.update_group(group, &json!({"status": status}))
                    .await
                    .map(|r| r.status)
            } else {
                api.get(&format!("/api/groups/{group}"))
                    .await
                    .map(|r| r.status)
            }
        }
    });
    let statuses: Vec<u16> = join_all(requests)
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    // A starved pool answers 503 once its acquire timeout runs out.
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    host.shutdown().await;
    Ok(())
}

/// More webhooks at once than the plugin instance pool holds (100): calls wait
/// for a free instance instead of being refused with 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_larger_than_the_instance_pool_is_accepted_whole() -> anyhow::Result<()> {
    use trackbridge_e2e::jira_sim::{JiraAuth, JiraSim};
    use trackbridge_e2e::scenario::{BOB_EMAIL, JiraScenario, deliver, http_client};

    const BURST: usize = 400;
    let jira = JiraSim::start(JiraAuth::basic("bot@example.com", "tok")).await?;
    let host = TestHost::start().await?;
    let api = host.api();
    let scenario = JiraScenario::setup(api, &jira).await?;
    scenario.linked_group(api, "BURST-1").await?;
    let payload = scenario.assignee_event("BURST-1", Some(BOB_EMAIL), 1_796_000_000_000);
    let http = http_client();
    let base = host.base_url();
    let sends = (0..BURST).map(|i| {
        let (http, base, payload) = (&http, &base, &payload);
        async move { deliver(http, base, payload, &format!("burst-{i}")).await }
    });
    let answers = join_all(sends).await;
    let mut refused = Vec::new();
    for answer in answers {
        let r = answer?;
        if r.status != 200 {
            refused.push(format!("{} {}", r.status, r.text()));
        }
    }
    anyhow::ensure!(
        refused.is_empty(),
        "{} of {BURST} refused, first: {:?}",
        refused.len(),
        refused.first()
    );
    Ok(())
}
