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
