//! One group linked to a Jira Cloud, a Jira Server and an Azure DevOps issue at
//! once: an assignment that arrives from one tracker is pushed to the other two
//! and never echoed back to the tracker it came from.

use serde_json::{Value, json};
use trackbridge_e2e::jira_server_sim::{
    ACCESS_TOKEN, ACCESS_TOKEN_SECRET, CONSUMER_KEY, JiraServerSim, OAuthConsumer, TEST_PRIVATE_KEY,
};
use trackbridge_e2e::jira_sim::{JiraAuth, JiraSim};
use trackbridge_e2e::vsts_sim::{VstsAuth, VstsSim, work_item_path};
use trackbridge_e2e::webhook::hub_signature;
use trackbridge_e2e::{OrgWithMember, TestHost, fixture, id_of};

const BOB_EMAIL: &str = "bob@example.com";
const HUB_SECRET: &str = "three-trackers-hub-secret";
const PAT: &str = "three-trackers-pat";
const WORK_ITEM: u64 = 4242;
const ISSUE: &str = "SEN-5";

#[tokio::test]
async fn an_assignment_from_jira_cloud_reaches_jira_server_and_azure_devops_but_not_jira_cloud()
-> anyhow::Result<()> {
    let cloud = JiraSim::start(JiraAuth::basic("bot@example.com", "tok")).await?;
    let server = JiraServerSim::start(OAuthConsumer::test()).await?;
    server.add_user("bob", "Bob", BOB_EMAIL);
    let ado = VstsSim::start(VstsAuth::Pat(PAT.into())).await?;
    ado.add_work_item(WORK_ITEM, "Active");
    ado.add_graph_user("Bob", BOB_EMAIL);

    let host = TestHost::start().await?;
    let api = host.api();
    let OrgWithMember {
        org,
        project,
        user: bob,
        ..
    } = api.org_with_member("bob", BOB_EMAIL).await?;

    let inputs: [(&str, Value); 3] = [
        (
            "jira",
            json!({
                "base_url": cloud.base_url(),
                "credential": {"type": "api_token", "email": "bot@example.com", "api_token": "tok"},
                "webhook_secret": HUB_SECRET,
            }),
        ),
        (
            "jira-server",
            json!({
                "base_url": server.base_url(),
                "verify_ssl": false,
                "consumer_key": CONSUMER_KEY,
                "private_key": TEST_PRIVATE_KEY,
                "access_token": ACCESS_TOKEN,
                "access_token_secret": ACCESS_TOKEN_SECRET,
            }),
        ),
        (
            "vsts",
            json!({
                "organization_url": ado.org_url(),
                "graph_url": ado.org_url(),
                "credential": {"type": "pat", "token": PAT},
            }),
        ),
    ];
    let group = id_of(&api.create_group(project, "TypeError in checkout").await?)?;
    let mut keys = Vec::new();
    for (provider, input) in inputs {
        let integration = id_of(&api.install_integration(org, provider, &input).await?)?;
        api.set_config(
            org,
            integration,
            &json!({"sync_forward_assignment": true, "sync_reverse_assignment": true}),
        )
        .await?;
        let key = if provider == "vsts" {
            WORK_ITEM.to_string()
        } else {
            ISSUE.to_string()
        };
        api.link_external_issue(group, integration, &key).await?;
        keys.push(key);
    }

    // Jira Cloud says SEN-5 is now Bob's (an admin webhook, signed).
    let mut payload = fixture("sentry/jira/edit_issue_assignee_payload.json");
    payload["issue"]["key"] = json!(ISSUE);
    payload["issue"]["self"] = json!(format!("{}/rest/api/2/issue/10000", cloud.base_url()));
    payload["issue"]["fields"]["assignee"]["emailAddress"] = json!(BOB_EMAIL);
    let body = serde_json::to_vec(&payload)?;
    let response = host
        .post_raw(
            "/extensions/jira/issue-updated/",
            &[
                ("content-type", "application/json".into()),
                ("x-hub-signature", hub_signature(HUB_SECRET, &body)),
            ],
            body,
        )
        .await?;
    assert_eq!(response.status, 200, "{}", response.text());
    api.wait_for_group(
        group,
        "assigned to Bob",
        trackbridge_e2e::DEFAULT_WAIT,
        |g| g["assignee"]["id"] == json!(bob),
    )
    .await?;

    let server_put = server
        .recorder()
        .wait_for_call("PUT", "/rest/api/2/issue/SEN-5/assignee")
        .await?;
    assert_eq!(server_put.json(), json!({"name": "bob"}));
    let ado_patch = ado
        .recorder()
        .wait_for_call("PATCH", &work_item_path(WORK_ITEM))
        .await?;
    assert!(
        ado_patch.json().as_array().is_some_and(|ops| ops
            .iter()
            .any(|op| { op["path"] == "/fields/System.AssignedTo" && op["value"] == BOB_EMAIL })),
        "{}",
        ado_patch.json()
    );
    // The fan-out goes link by link, Jira Cloud's first: had it been pushed back
    // to Jira Cloud, that PUT would have arrived before the two above.
    assert!(
        cloud
            .recorder()
            .calls("PUT", "/rest/api/2/issue/SEN-5/assignee")
            .is_empty(),
        "no echo to the tracker the change came from"
    );
    assert_eq!(keys.len(), 3);
    host.shutdown().await;
    Ok(())
}
