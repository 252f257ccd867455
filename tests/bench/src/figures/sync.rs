//! Figure 7, sync latency: one group linked to a Jira Cloud issue, a Jira
//! Server issue and an Azure DevOps work item (as `tests/tests/three_trackers.rs`);
//! a signed Jira Cloud webhook assigns (then unassigns, ...) the issue, and the
//! clock runs from sending it to the `PUT …/assignee` arriving at the Jira
//! Server simulator and the `PATCH` of the work item arriving at the Azure
//! DevOps simulator (their recorders' arrival times). One webhook at a time.
//! Baseline: the bare hyper server relaying each webhook as one `PUT` to the
//! same Jira Server simulator, timed the same way.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use hdrhistogram::Histogram;
use serde_json::json;
use trackbridge_e2e::jira_server_sim::{
    ACCESS_TOKEN, ACCESS_TOKEN_SECRET, CONSUMER_KEY, JiraServerSim, OAuthConsumer, TEST_PRIVATE_KEY,
};
use trackbridge_e2e::vsts_sim::{VstsAuth, VstsSim, work_item_path};
use trackbridge_e2e::webhook::JIRA_ISSUE_UPDATED;
use trackbridge_e2e::{Recorder, id_of};

use crate::baseline::{self, Mode};
use crate::ctx::Ctx;
use crate::host::{BenchDatabase, BenchHost};
use crate::load::{micros_histogram, record};
use crate::report::{Row, Target};
use crate::scenario::{JESS_EMAIL, Payloads, Scenario, connect_authorization, webhook_headers};

const FIGURE: &str = "7. Sync latency";
const PAT: &str = "bench-pat";
const WORK_ITEM: u64 = 4242;

/// When the `count`-th (from 1) completed `method path` request arrived.
async fn arrival(
    recorder: &Recorder,
    method: &str,
    path: &str,
    count: usize,
    timeout: Duration,
) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + timeout;
    loop {
        let calls = recorder.calls(method, path);
        if let Some(call) = calls.get(count - 1) {
            return Ok(call.received_at);
        }
        if Instant::now() > deadline {
            bail!(
                "{method} {path} #{count} did not arrive within {timeout:?}; requests:\n{}",
                recorder.describe()
            );
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

pub async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let db = BenchDatabase::sqlite()?;
    let host = BenchHost::start(&db, &ctx.plugins_dir, |_| {}).await?;
    let api = &host.api;
    let scenario = Scenario::setup(api).await?;
    let server = JiraServerSim::start(OAuthConsumer::test()).await?;
    server.add_user("jess", "Jess", JESS_EMAIL);
    let ado = VstsSim::start(VstsAuth::Pat(PAT.into())).await?;
    ado.add_work_item(WORK_ITEM, "Active");
    ado.add_graph_user("Jess", JESS_EMAIL);
    let config = json!({"sync_forward_assignment": true, "sync_reverse_assignment": true});
    let server_integration = id_of(
        &api.install_integration(
            scenario.org,
            "jira-server",
            &json!({
                "base_url": server.base_url(),
                "verify_ssl": false,
                "consumer_key": CONSUMER_KEY,
                "private_key": TEST_PRIVATE_KEY,
                "access_token": ACCESS_TOKEN,
                "access_token_secret": ACCESS_TOKEN_SECRET,
            }),
        )
        .await?,
    )
    .context("installing Jira Server")?;
    api.set_config(scenario.org, server_integration, &config)
        .await?;
    let ado_integration = id_of(
        &api.install_integration(
            scenario.org,
            "vsts",
            &json!({
                "organization_url": ado.org_url(),
                "graph_url": ado.org_url(),
                "credential": {"type": "pat", "token": PAT},
            }),
        )
        .await?,
    )
    .context("installing Azure DevOps")?;
    api.set_config(scenario.org, ado_integration, &config)
        .await?;
    // The one issue the Jira Server simulator knows, and the work item added above.
    let key = "SEN-5".to_owned();
    let group = id_of(
        &api.create_group(scenario.project, "TypeError in checkout")
            .await?,
    )?;
    for (integration, linked) in [
        (scenario.integration, key.clone()),
        (server_integration, key.clone()),
        (ado_integration, WORK_ITEM.to_string()),
    ] {
        api.link_external_issue(group, integration, &linked).await?;
    }
    let put_path = format!("/rest/api/2/issue/{key}/assignee");
    let patch_path = work_item_path(WORK_ITEM);
    let payloads = Payloads::new()?;
    let http = reqwest::Client::builder().no_proxy().build()?;
    let base_ms = trackbridge_host::time::now_ms();
    let (warm, count) = (3, ctx.pick(200, 20));
    let timeout = Duration::from_secs(10);

    let (mut to_server, mut to_ado) = (micros_histogram(), micros_histogram());
    for i in 0..warm + count {
        let body = payloads.body(&key, base_ms + i as i64, i % 2 == 0);
        let sent = Instant::now();
        let mut request = http
            .post(format!("http://{}{JIRA_ISSUE_UPDATED}", host.addr))
            .body(body);
        for (name, value) in webhook_headers(&connect_authorization(), &format!("sync-{i}")) {
            request = request.header(name, value);
        }
        let status = request.send().await?.status();
        anyhow::ensure!(status.is_success(), "webhook {i} answered {status}");
        let put = arrival(server.recorder(), "PUT", &put_path, i + 1, timeout).await?;
        let patch = arrival(ado.recorder(), "PATCH", &patch_path, i + 1, timeout).await?;
        if i >= warm {
            record(&mut to_server, put.duration_since(sent));
            record(&mut to_ado, patch.duration_since(sent));
        }
        // Let the jobs of this change be recorded before the next one comes.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    host.shutdown().await;

    // The baseline relays to the same simulator, whose recorder keeps counting.
    let already = server.recorder().calls("PUT", &put_path).len();
    let relay = baseline::start(Mode::Relay(format!("{}{put_path}", server.base_url()))).await?;
    let mut relayed = micros_histogram();
    for i in 0..warm + count {
        let body = payloads.body(&key, base_ms + i as i64, i % 2 == 0);
        let sent = Instant::now();
        let mut request = http
            .post(format!("http://{}{JIRA_ISSUE_UPDATED}", relay.addr))
            .body(body);
        for (name, value) in webhook_headers(&connect_authorization(), &format!("relay-{i}")) {
            request = request.header(name, value);
        }
        request.send().await?;
        let put = arrival(
            server.recorder(),
            "PUT",
            &put_path,
            already + i + 1,
            timeout,
        )
        .await?;
        if i >= warm {
            record(&mut relayed, put.duration_since(sent));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    ctx.say(format!(
        "  [7] {count} webhooks: to Jira Server p50 {:.2} ms p99 {:.2} ms; to Azure DevOps p50 {:.2} ms \
         p99 {:.2} ms; bare relay p50 {:.2} ms p99 {:.2} ms",
        ms(&to_server, 0.5),
        ms(&to_server, 0.99),
        ms(&to_ado, 0.5),
        ms(&to_ado, 0.99),
        ms(&relayed, 0.5),
        ms(&relayed, 0.99)
    ));
    let label = "bare hyper relaying one PUT";
    Ok(vec![
        Row::new(FIGURE, "Jira Cloud webhook → PUT at Jira Server, p50", "ms")
            .value(ms(&to_server, 0.5))
            .baseline(label, ms(&relayed, 0.5))
            .target(Target::AtMost(10.0)),
        Row::new(FIGURE, "Jira Cloud webhook → PUT at Jira Server, p99", "ms")
            .value(ms(&to_server, 0.99))
            .baseline(label, ms(&relayed, 0.99)),
        Row::new(
            FIGURE,
            "Jira Cloud webhook → PATCH at Azure DevOps, p50",
            "ms",
        )
        .value(ms(&to_ado, 0.5))
        .baseline(label, ms(&relayed, 0.5))
        .target(Target::AtMost(10.0)),
        Row::new(
            FIGURE,
            "Jira Cloud webhook → PATCH at Azure DevOps, p99",
            "ms",
        )
        .value(ms(&to_ado, 0.99))
        .baseline(label, ms(&relayed, 0.99)),
    ])
}
