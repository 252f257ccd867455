//! Per-webhook time of the end-to-end path: a signed Jira Cloud admin webhook
//! (the full-size composed payload, ~7 KB) → host → plugin verification and
//! parsing → inbound assignee sync → committed in SQLite → 200. Sequential
//! requests on loopback; alternating assign / unassign so every one changes state.
//!
//! `cargo run -p trackbridge-e2e --bin webhook-latency -- [COUNT]` (default 500).

use std::time::{Duration, Instant};

use serde_json::json;
use trackbridge_e2e::jira_sim::{JiraAuth, JiraSim};
use trackbridge_e2e::webhook::hub_signature;
use trackbridge_e2e::{TestHost, fixture, id_of};

const SECRET: &str = "latency-hub-secret";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let count: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(500);
    let jira = JiraSim::start(JiraAuth::basic("bot@example.com", "tok")).await?;
    let host = TestHost::start().await?;
    let api = host.api();
    let org = id_of(&api.create_organization("Acme").await?)?;
    let project = id_of(&api.create_project(org, "backend").await?)?;
    let bob = id_of(&api.create_user("bob", &[("bob@example.com", true)]).await?)?;
    api.add_member(org, bob).await?;
    let team = id_of(&api.create_team(org, "core").await?)?;
    api.add_team_project(team, project).await?;
    api.add_team_member(team, bob, true).await?;
    let integration = id_of(
        &api.install_integration(
            org,
            "jira",
            &json!({"base_url": jira.base_url(),
                    "credential": {"type": "api_token", "email": "bot@example.com", "api_token": "tok"},
                    "webhook_secret": SECRET}),
        )
        .await?,
    )?;
    api.set_config(org, integration, &json!({"sync_reverse_assignment": true}))
        .await?;
    let group = id_of(&api.create_group(project, "TypeError").await?)?;
    api.link_external_issue(group, integration, "SEN-5").await?;

    let mut assign = fixture("composed/jira_cloud_issue_updated_full.json");
    assign["issue"]["key"] = json!("SEN-5");
    assign["issue"]["self"] = json!(format!("{}/rest/api/2/issue/10000", jira.base_url()));
    assign["issue"]["fields"]["assignee"]["emailAddress"] = json!("bob@example.com");
    let mut unassign = assign.clone();
    unassign["issue"]["fields"]["assignee"] = json!(null);
    let bodies = [serde_json::to_vec(&assign)?, serde_json::to_vec(&unassign)?];

    let warmup = 20;
    let mut times = Vec::with_capacity(count);
    for i in 0..warmup + count {
        let body = bodies[i % 2].clone();
        let signature = hub_signature(SECRET, &body);
        let started = Instant::now();
        let response = host
            .post_raw(
                "/extensions/jira/issue-updated/",
                &[
                    ("content-type", "application/json".into()),
                    ("x-hub-signature", signature),
                ],
                body,
            )
            .await?;
        let took = started.elapsed();
        anyhow::ensure!(
            response.status == 200,
            "webhook {i}: {} {}",
            response.status,
            response.text()
        );
        if i >= warmup {
            times.push(took);
        }
    }
    let activity = api.activity(group).await?;
    anyhow::ensure!(
        activity.len() == warmup + count,
        "every webhook changed the group ({} activities)",
        activity.len()
    );
    times.sort();
    let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    let total: Duration = times.iter().sum();
    println!(
        "{count} webhooks, body {} bytes: mean {:?}, p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
        bodies[0].len(),
        total / count as u32,
        pct(0.50),
        pct(0.90),
        pct(0.99),
        times[times.len() - 1]
    );
    host.shutdown().await;
    Ok(())
}
