//! The built Azure DevOps plugin in the harness, against a fake Azure DevOps
//! Server collection.

mod common;

use serde_json::{Value, json};
use trackbridge_plugin_test::{
    Change, Expect, FakeTracker, Harness, Integration, PluginError, Reply, StatusAction,
    WebhookRequest, issue, mapping,
};

const PLUGIN: &str = "trackbridge_plugin_vsts.wasm";
const WEBHOOK_PATH: &str = "/extensions/vsts/issue-updated/";
/// The collection of Sentry's fixtures.
const COLLECTION: &str = "80ded3e8-3cd3-43b1-9f96-52032624aa3a";
/// The project of `workitem_updated_status.json`.
const FIXTURE_PROJECT: &str = "c0bf429a-c03c-4a99-9336-d45be74db5a6";
const PROJECT_ID: &str = "ac7c05bb-7f8e-4880-85a6-e08f37fd4a10";
/// `Basic base64(":" + "pat-token")`.
const PAT_AUTH: &str = "Basic OnBhdC10b2tlbg==";

fn install_input(ado: &FakeTracker) -> Value {
    json!({
        "organization_url": format!("{}/acme", ado.url()),
        "credential": {"type": "pat", "token": "pat-token"},
    })
}

fn expect_connection_data(ado: &FakeTracker) {
    ado.expect(
        Expect::get("/acme/_apis/connectionData")
            .header("authorization", PAT_AUTH)
            .header("accept", "application/json; api-version=4.1-preview.1"),
    )
    .respond(Reply::ok().json(&json!({"instanceId": COLLECTION})));
}

/// Install, creating the subscription; returns the integration and the
/// secret the subscription was told to send.
async fn installed(harness: &Harness, ado: &FakeTracker) -> (Integration, String) {
    expect_connection_data(ado);
    ado.expect(
        Expect::post("/acme/_apis/hooks/subscriptions")
            .header("authorization", PAT_AUTH)
            .body_json(json!({
                "publisherId": "tfs",
                "eventType": "workitem.updated",
                "consumerId": "webHooks",
                "consumerActionId": "httpRequest",
                "consumerInputs": {"url": format!("{}{WEBHOOK_PATH}", common::PUBLIC_URL)},
            })),
    )
    .respond(Reply::ok().json(&json!({"id": "sub-1", "eventType": "workitem.updated"})));
    let integration = harness.install(install_input(ado)).await.unwrap();
    let subscription = ado
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .and_then(|r| r.json())
        .expect("the subscription was created");
    let headers = subscription["consumerInputs"]["httpHeaders"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret = headers
        .strip_prefix("shared-secret:")
        .unwrap_or_else(|| panic!("{headers} sends the shared-secret header"))
        .to_owned();
    (integration, secret)
}

fn delivery(fixture: &str, secret: &str) -> WebhookRequest {
    WebhookRequest::post(WEBHOOK_PATH)
        .header("Shared-Secret", secret)
        .json(&common::fixture_json(fixture))
}

#[tokio::test]
async fn install_names_the_collection_and_creates_the_subscription() {
    let harness = common::harness(PLUGIN).await;
    let ado = FakeTracker::start().await.unwrap();

    let (integration, secret) = installed(&harness, &ado).await;

    assert_eq!(integration.external_id, COLLECTION);
    assert_eq!(integration.name, "acme");
    assert_eq!(integration.allowed_hosts, vec![ado.authority()]);
    let metadata: Value = serde_json::from_str(&integration.metadata).unwrap();
    assert_eq!(metadata["subscription"]["id"], "sub-1");
    assert_eq!(metadata["domain_name"], format!("{}/acme/", ado.url()));
    let secrets: Value = serde_json::from_str(&integration.secrets).unwrap();
    assert_eq!(secrets["subscription_secret"], secret.as_str());
    assert_eq!(secret.len(), 64);
    assert!(
        secret
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    ado.verify();
}

#[tokio::test]
async fn installing_the_collection_again_reuses_its_subscription_with_a_new_secret() {
    let harness = common::harness(PLUGIN).await;
    let ado = FakeTracker::start().await.unwrap();
    let (first, old_secret) = installed(&harness, &ado).await;
    // `lookup-integration` finds the subscription's id (never its secret):
    // the subscription is replaced, under the same id, with a new secret.
    expect_connection_data(&ado);
    ado.expect(
        Expect::put("/acme/_apis/hooks/subscriptions/sub-1")
            .header("authorization", PAT_AUTH)
            .body_json(json!({
                "publisherId": "tfs",
                "eventType": "workitem.updated",
                "consumerInputs": {"url": format!("{}{WEBHOOK_PATH}", common::PUBLIC_URL)},
            })),
    )
    .respond(Reply::ok().json(&json!({"id": "sub-1", "eventType": "workitem.updated"})));

    let again = harness.install(install_input(&ado)).await.unwrap();

    assert_eq!(again.id, first.id);
    let secrets: Value = serde_json::from_str(&again.secrets).unwrap();
    let new_secret = secrets["subscription_secret"].as_str().unwrap();
    assert_ne!(new_secret, old_secret);
    let replaced = ado
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT")
        .and_then(|r| r.json())
        .expect("the subscription was replaced");
    assert_eq!(
        replaced["consumerInputs"]["httpHeaders"],
        format!("shared-secret:{new_secret}")
    );
    assert_eq!(
        ado.requests().iter().filter(|r| r.method == "POST").count(),
        1
    );
    ado.verify();
}

#[tokio::test]
async fn the_shared_secret_authenticates_a_delivery_and_a_wrong_one_is_rejected() {
    let harness = common::harness(PLUGIN).await;
    let ado = FakeTracker::start().await.unwrap();
    let (integration, secret) = installed(&harness, &ado).await;

    let (verified, selected) = harness
        .verify_webhook_selecting(
            &delivery("sentry/vsts/workitem_updated_status.json", &secret).build(),
        )
        .await
        .unwrap();
    let verified = verified.expect("the subscription's secret is accepted");
    assert_eq!(verified.integration, COLLECTION);
    assert_eq!(
        verified.delivery_id.as_deref(),
        Some("cc349c85-6595-4939-9b69-f89480be6a26")
    );
    assert!(!verified.ignore);
    assert_eq!(selected.map(|i| i.id), Some(integration.id));

    let wrong = "0".repeat(64);
    let rejected = harness
        .verify_webhook(&delivery("sentry/vsts/workitem_updated_status.json", &wrong).build())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        (rejected.status, rejected.message.as_str()),
        (401, "missing or wrong shared-secret")
    );
    let unsigned = WebhookRequest::post(WEBHOOK_PATH)
        .json(&common::fixture_json(
            "sentry/vsts/workitem_updated_status.json",
        ))
        .build();
    let rejected = harness
        .verify_webhook(&unsigned)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(rejected.status, 401);
    assert_eq!(ado.requests().len(), 2, "only the installation's calls");
    ado.verify();
}

#[tokio::test]
async fn a_state_change_into_a_resolved_category_resolves_the_work_item() {
    let harness = common::harness(PLUGIN).await;
    let ado = FakeTracker::start().await.unwrap();
    let (integration, secret) = installed(&harness, &ado).await;
    ado.expect(
        Expect::get(format!(
            "/acme/{FIXTURE_PROJECT}/_apis/wit/workitemtypes/Bug/states"
        ))
        .header("accept", "application/json; api-version=4.1-preview.1"),
    )
    .respond(Reply::ok().json(&common::fixture_json(
        "sentry/vsts/work_item_type_states_response.json",
    )));

    let events = harness
        .handle_webhook(
            &integration,
            &delivery("sentry/vsts/workitem_updated_status.json", &secret).build(),
        )
        .await
        .unwrap();

    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].external_issue, "33");
    match &events[0].change {
        Change::Status(change) => {
            assert_eq!(
                (change.from.as_deref(), change.to.as_deref()),
                (Some("New"), Some("Resolved"))
            );
            assert!(matches!(change.action, StatusAction::Resolve));
        }
        other => panic!("expected a status change, got {other:?}"),
    }
    ado.verify();
}

#[tokio::test]
async fn an_assignment_names_the_email_in_angle_brackets() {
    let harness = common::harness(PLUGIN).await;
    let ado = FakeTracker::start().await.unwrap();
    let (integration, secret) = installed(&harness, &ado).await;

    let events = harness
        .handle_webhook(
            &integration,
            &delivery("sentry/vsts/workitem_updated_assigned.json", &secret).build(),
        )
        .await
        .unwrap();

    assert!(
        events.iter().any(|e| e.external_issue == "31"
            && matches!(&e.change, Change::Assignee(Some(person)) if person.email.as_deref() == Some("lauryn@sentry.io"))),
        "{events:?}"
    );
    ado.verify();
}

#[tokio::test]
async fn a_revision_conflict_is_planned_again_with_the_new_revision() {
    let harness = common::harness(PLUGIN).await;
    let ado = FakeTracker::start().await.unwrap();
    let (integration, _) = installed(&harness, &ado).await;
    let work_item = |rev: u32| json!({"id": 33, "rev": rev, "fields": {"System.TeamProject": "Fabrikam", "System.State": "Active"}});
    let patch = |rev: u32| {
        json!([
            {"op": "test", "path": "/rev", "value": rev},
            {"op": "replace", "path": "/fields/System.State", "value": "Resolved"}
        ])
    };
    ado.expect(Expect::get("/acme/_apis/wit/workitems/33"))
        .respond(Reply::ok().json(&work_item(4)));
    ado.expect(
        Expect::get("/acme/_apis/projects")
            .query_param("stateFilter", "WellFormed")
            .query_param("$top", "100")
            .query_param("$skip", "0"),
    )
    .respond(
        Reply::ok().json(&json!({"count": 1, "value": [{"id": PROJECT_ID, "name": "fabrikam"}]})),
    );
    ado.expect(
        Expect::patch("/acme/_apis/wit/workitems/33")
            .header("content-type", "application/json-patch+json")
            .body_json_exact(patch(4)),
    )
    .respond(Reply::status(412).json(&json!({"message": "TF26071: This work item has been changed by someone else since you opened it."})));
    ado.expect(Expect::get("/acme/_apis/wit/workitems/33"))
        .respond(Reply::ok().json(&work_item(5)));
    ado.expect(Expect::patch("/acme/_apis/wit/workitems/33").body_json_exact(patch(5)))
        .respond(Reply::ok().json(&work_item(6)));

    let outcome = harness
        .sync_status(
            &integration,
            &issue("33"),
            true,
            &[mapping(PROJECT_ID, "Resolved", "Active")],
        )
        .await
        .unwrap();

    assert!(outcome.changed, "{:?}", outcome.note);
    let order: Vec<String> = ado
        .requests()
        .iter()
        .skip(2)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        order,
        [
            "GET /acme/_apis/wit/workitems/33",
            "GET /acme/_apis/projects",
            "PATCH /acme/_apis/wit/workitems/33",
            "GET /acme/_apis/wit/workitems/33",
            "PATCH /acme/_apis/wit/workitems/33",
        ]
    );
    ado.verify();
}

#[tokio::test]
async fn assigning_patches_the_graph_users_mail_address() {
    let harness = common::harness(PLUGIN).await;
    let ado = FakeTracker::start().await.unwrap();
    let (integration, _) = installed(&harness, &ado).await;
    // Azure DevOps Server serves the graph from the collection.
    ado.expect(Expect::get("/acme/_apis/graph/users"))
        .respond(Reply::ok().json(&common::fixture_json(
            "sentry/vsts/graph_users_response.json",
        )));
    ado.expect(
        Expect::patch("/acme/_apis/wit/workitems/31").body_json_exact(json!([
            {"op": "replace", "path": "/fields/System.AssignedTo", "value": "ftotten@vscsi.us"}
        ])),
    )
    .respond(Reply::ok().json(&json!({"id": 31, "rev": 2})));

    let emails = vec!["FTotten@vscsi.us".to_string()];
    let outcome = harness
        .sync_assignee(&integration, &issue("31"), Some(&emails))
        .await
        .unwrap();

    assert!(outcome.changed, "{:?}", outcome.note);
    ado.verify();
}

#[tokio::test]
async fn uninstall_deletes_the_subscription() {
    let harness = common::harness(PLUGIN).await;
    let ado = FakeTracker::start().await.unwrap();
    let (integration, _) = installed(&harness, &ado).await;
    ado.expect(Expect::delete("/acme/_apis/hooks/subscriptions/sub-1"))
        .respond(Reply::status(204));

    harness.uninstall(&integration).await.unwrap();

    ado.verify();
}

#[tokio::test]
async fn the_gate_refuses_a_graph_host_outside_the_integration() {
    let harness = common::harness(PLUGIN).await;
    let ado = FakeTracker::start().await.unwrap();
    let graph = FakeTracker::start().await.unwrap();
    let (integration, _) = installed(&harness, &ado).await;
    let mut metadata: Value = serde_json::from_str(&integration.metadata).unwrap();
    metadata["graph_url"] = json!(format!("{}/", graph.url()));
    let redirected = Integration {
        metadata: metadata.to_string(),
        ..integration
    };

    let emails = vec!["ftotten@vscsi.us".to_string()];
    let err = harness
        .sync_assignee(&redirected, &issue("31"), Some(&emails))
        .await
        .unwrap_err();

    assert!(
        matches!(err.plugin_error(), Some(PluginError::Upstream(u)) if u.status.is_none()),
        "{err}"
    );
    assert!(
        graph.requests().is_empty(),
        "the refused host received nothing"
    );
    ado.verify();
}
