//! The built Jira Server plugin in the harness, against a fake Jira Server.

mod common;

use serde_json::{Value, json};
use trackbridge_plugin_test::{
    Change, Delivery, Expect, FakeTracker, Harness, HarnessError, Identity, Integration,
    PluginError, Reply, StatusAction, UserRef, WebhookRequest, issue, jwt_hs256,
};

const PLUGIN: &str = "trackbridge_plugin_jira_server.wasm";
/// The OAuth test cases' RSA key, which the plugin's own tests use too.
const PRIVATE_KEY: &str = include_str!("../../jira-server/testdata/oauth-test-cases-key.pem");
const CONSUMER_KEY: &str = "sentry-bot";
const ADMIN_WEBHOOK_SECRET: &str = "admin-webhook-secret";
const WEBHOOK_PREFIX: &str = "/extensions/jira-server/issue-updated/";

fn install_input(jira: &FakeTracker) -> Value {
    json!({
        "base_url": jira.url(),
        "consumer_key": CONSUMER_KEY,
        "private_key": PRIVATE_KEY,
        "access_token": "access-token",
        "access_token_secret": "access-token-secret",
        "webhook_secret": ADMIN_WEBHOOK_SECRET,
    })
}

/// Every call is signed with OAuth 1.0a RSA-SHA1 by the application link.
fn oauth(expect: Expect) -> Expect {
    expect
        .header_contains(
            "authorization",
            format!("oauth_consumer_key=\"{CONSUMER_KEY}\""),
        )
        .header_contains("authorization", "oauth_token=\"access-token\"")
        .header_contains("authorization", "oauth_signature_method=\"RSA-SHA1\"")
}

/// Install (registering the issue webhook at the fake Jira); returns the
/// integration and the path of the webhook URL registered.
async fn installed(harness: &Harness, jira: &FakeTracker) -> (Integration, String) {
    jira.expect(
        oauth(Expect::post("/rest/webhooks/1.0/webhook")).body_json(json!({
            "name": "trackbridge Issue Sync",
            "events": ["jira:issue_created", "jira:issue_updated"],
        })),
    )
    .respond(Reply::status(201).json(&json!({
        "name": "trackbridge Issue Sync",
        "self": format!("{}/rest/webhooks/1.0/webhook/42", jira.url()),
    })));
    let integration = harness.install(install_input(jira)).await.unwrap();
    let registration = jira
        .requests()
        .into_iter()
        .find(|r| r.path == "/rest/webhooks/1.0/webhook")
        .expect("the webhook was registered");
    let url = registration.json().unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = url
        .strip_prefix(common::PUBLIC_URL)
        .unwrap_or_else(|| panic!("the webhook URL {url} starts with the public URL"))
        .to_owned();
    (integration, path)
}

fn delivery(path: &str, body: Vec<u8>) -> WebhookRequest {
    WebhookRequest::post(path)
        .header("content-type", "application/json")
        .body(body)
}

#[tokio::test]
async fn install_registers_the_issue_webhook_before_storing() {
    let harness = common::harness(PLUGIN).await;
    let jira = FakeTracker::start().await.unwrap();

    let (integration, path) = installed(&harness, &jira).await;

    let external_id = format!("{}:{CONSUMER_KEY}", jira.authority());
    assert_eq!(integration.external_id, external_id);
    assert_eq!(integration.name, CONSUMER_KEY);
    assert_eq!(integration.allowed_hosts, vec![jira.authority()]);
    let metadata: Value = serde_json::from_str(&integration.metadata).unwrap();
    assert_eq!(metadata["webhook_id"], "42");
    // What the plugin needs in clear to build base strings is metadata; the
    // key the host signs with, and the webhook secrets, are secrets.
    assert_eq!(metadata["consumer_key"], CONSUMER_KEY);
    assert_eq!(metadata["access_token"], "access-token");
    assert!(!integration.metadata.contains("PRIVATE KEY"));
    let secrets: Value = serde_json::from_str(&integration.secrets).unwrap();
    let mut names: Vec<&str> = secrets
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["admin_webhook_secret", "private_key", "webhook_secret"]
    );
    assert!(!integration.secrets.contains("access-token-secret"));
    // The registered URL is served by the plugin's route, its token naming the integration.
    let params = harness
        .route("POST", &path)
        .expect("the plugin serves its webhook URL");
    assert_eq!(params.len(), 1);
    assert_eq!(params[0].0, "token");
    assert!(path.starts_with(WEBHOOK_PREFIX), "{path}");
    jira.verify();
}

#[tokio::test]
async fn a_refused_registration_fails_the_installation() {
    let harness = common::harness(PLUGIN).await;
    let jira = FakeTracker::start().await.unwrap();
    jira.expect(Expect::post("/rest/webhooks/1.0/webhook"))
        .respond(Reply::status(403).json(&common::fixture_json(
            "sentry/jira_server/create_webhook_403_response.json",
        )));

    let err = harness.install(install_input(&jira)).await.unwrap_err();

    match err.plugin_error() {
        Some(PluginError::Unauthorized(message)) => assert!(
            message.starts_with("Could not create issue webhook in Jira."),
            "{message}"
        ),
        other => panic!("expected unauthorized, got {other:?} ({err})"),
    }
    let external_id = format!("{}:{CONSUMER_KEY}", jira.authority());
    assert!(
        harness
            .store()
            .integration_by_external_id("jira-server", &external_id)
            .await
            .unwrap()
            .is_none()
    );
    jira.verify();
}

#[tokio::test]
async fn the_url_token_authenticates_a_delivery_and_a_forged_one_is_rejected() {
    let harness = common::harness(PLUGIN).await;
    let jira = FakeTracker::start().await.unwrap();
    let (integration, path) = installed(&harness, &jira).await;
    let body = common::fixture("sentry/jira_server/webhook_issue_updated_status.json");

    let request = harness.routed(delivery(&path, body.clone())).unwrap();
    let verified = harness
        .verify_webhook(&request)
        .await
        .unwrap()
        .expect("the token Jira was given is accepted");
    assert_eq!(verified.integration, integration.external_id);
    assert!(!verified.ignore);

    // The same claims signed with another secret.
    let forged = jwt_hs256(&json!({"id": integration.external_id}), "guessed secret");
    let forged_path = format!("{WEBHOOK_PREFIX}{forged}/");
    let request = harness
        .routed(delivery(&forged_path, body.clone()))
        .unwrap();
    let rejected = harness.verify_webhook(&request).await.unwrap().unwrap_err();
    assert_eq!(
        (rejected.status, rejected.message.as_str()),
        (400, "The token's signature is invalid")
    );

    let request = harness
        .routed(delivery(&format!("{WEBHOOK_PREFIX}%20/"), body))
        .unwrap();
    let rejected = harness.verify_webhook(&request).await.unwrap().unwrap_err();
    assert_eq!(
        (rejected.status, rejected.message.as_str()),
        (400, "Token was not provided")
    );
    assert_eq!(jira.requests().len(), 1, "only the registration");
    jira.verify();
}

#[tokio::test]
async fn an_admin_webhook_signature_is_checked_when_present() {
    let harness = common::harness(PLUGIN).await;
    let jira = FakeTracker::start().await.unwrap();
    let (_, path) = installed(&harness, &jira).await;
    let body = common::fixture("sentry/jira_server/webhook_issue_updated_status.json");

    let signed = harness
        .routed(delivery(&path, body.clone()).hub_signature(ADMIN_WEBHOOK_SECRET))
        .unwrap();
    assert!(harness.verify_webhook(&signed).await.unwrap().is_ok());

    let wrongly_signed = harness
        .routed(delivery(&path, body).hub_signature("not the admin secret"))
        .unwrap();
    let rejected = harness
        .verify_webhook(&wrongly_signed)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        (rejected.status, rejected.message.as_str()),
        (401, "X-Hub-Signature is invalid")
    );
    jira.verify();
}

#[tokio::test]
async fn a_status_delivery_into_the_done_category_resolves() {
    let harness = common::harness(PLUGIN).await;
    let jira = FakeTracker::start().await.unwrap();
    let (integration, path) = installed(&harness, &jira).await;
    jira.expect(oauth(Expect::get("/rest/api/2/status")))
        .respond(Reply::ok().json(&json!([
            {"id": "10101", "name": "In Progress", "statusCategory": {"key": "indeterminate"}},
            {"id": "10102", "name": "Done", "statusCategory": {"key": "done"}}
        ])));
    let request = harness
        .routed(delivery(
            &path,
            common::fixture("sentry/jira_server/webhook_issue_updated_status.json"),
        ))
        .unwrap();

    let Delivery::Handled {
        integration: selected,
        events,
        ..
    } = harness.deliver(&request).await.unwrap()
    else {
        panic!("the delivery is handled");
    };

    assert_eq!(selected.id, integration.id);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].external_issue, "APP-1");
    match &events[0].change {
        Change::Status(change) => {
            assert_eq!(
                (change.from.as_deref(), change.to.as_deref()),
                (Some("10101"), Some("10102"))
            );
            assert!(matches!(change.action, StatusAction::Resolve));
        }
        other => panic!("expected a status change, got {other:?}"),
    }
    jira.verify();
}

#[tokio::test]
async fn assigning_puts_the_single_user_the_search_finds() {
    let harness = common::harness(PLUGIN).await;
    let jira = FakeTracker::start().await.unwrap();
    let (integration, _) = installed(&harness, &jira).await;
    jira.expect(oauth(
        Expect::get("/rest/api/2/user/assignable/search")
            .query_param("issueKey", "APP-1")
            .query_param("username", "bob@example.org"),
    ))
    .respond(Reply::ok().json(&common::fixture_json(
        "sentry/jira_server/user_assignable_search_response.json",
    )));
    jira.expect(oauth(
        Expect::put("/rest/api/2/issue/APP-1/assignee").body_json_exact(json!({"name": "bob"})),
    ))
    .respond(Reply::status(204));

    let emails = vec!["bob@example.org".to_string()];
    let outcome = harness
        .sync_assignee(&integration, &issue("APP-1"), Some(&emails))
        .await
        .unwrap();

    assert!(outcome.changed);
    jira.verify();
}

#[tokio::test]
async fn a_mapped_user_name_is_assigned_without_a_search() {
    let harness = common::harness(PLUGIN).await;
    let jira = FakeTracker::start().await.unwrap();
    let (integration, _) = installed(&harness, &jira).await;
    jira.expect(oauth(
        Expect::put("/rest/api/2/issue/APP-1/assignee").body_json_exact(json!({"name": "bob.b"})),
    ))
    .respond(Reply::status(204));

    let user = UserRef {
        emails: vec!["bob@example.org".to_string()],
        identities: vec![Identity {
            id: "bob.b".into(),
            login: Some("bob.b".into()),
            display_name: None,
            email: None,
            email_verified: false,
            bot: false,
        }],
    };
    let outcome = harness
        .sync_assignee_to(&integration, &issue("APP-1"), Some(&user))
        .await
        .unwrap();

    assert!(outcome.changed);
    assert!(
        jira.requests().iter().all(|r| r.method != "GET"),
        "no search"
    );
    jira.verify();
}

#[tokio::test]
async fn an_assignee_delivery_names_the_jira_user() {
    let harness = common::harness(PLUGIN).await;
    let jira = FakeTracker::start().await.unwrap();
    let (_, path) = installed(&harness, &jira).await;
    let body = json!({
        "changelog": {"items": [{"field": "assignee"}], "id": 12346},
        "webhookEvent": "jira:issue_updated",
        "timestamp": 1_700_000_000_456_u64,
        "issue": {"id": "10001", "key": "APP-1", "fields": {"assignee": {
            "name": "bob", "key": "JIRAUSER10100", "displayName": "Bobby",
            "emailAddress": "bob@example.org"}}}
    });
    let request = harness
        .routed(delivery(&path, body.to_string().into_bytes()))
        .unwrap();

    let Delivery::Handled { events, .. } = harness.deliver(&request).await.unwrap() else {
        panic!("the delivery is handled");
    };

    assert_eq!(events.len(), 1, "{events:?}");
    match &events[0].change {
        Change::Assignee(Some(identity)) => {
            assert_eq!(identity.id, "bob");
            assert_eq!(identity.login.as_deref(), Some("bob"));
            assert_eq!(identity.display_name.as_deref(), Some("Bobby"));
            assert_eq!(identity.email.as_deref(), Some("bob@example.org"));
            assert!(
                identity.email_verified,
                "Jira Server's directory vouches for it"
            );
        }
        other => panic!("expected an assignee, got {other:?}"),
    }
    assert_eq!(jira.requests().len(), 1, "only the registration");
    jira.verify();
}

#[tokio::test]
async fn an_integration_of_the_0_1_0_build_is_asked_to_be_installed_again() {
    let harness = common::harness(PLUGIN).await;
    let jira = FakeTracker::start().await.unwrap();
    // 0.1.0 stored the consumer key and the access token among the secrets.
    let integration = harness
        .integration()
        .external_id(format!("{}:{CONSUMER_KEY}", jira.authority()))
        .name(CONSUMER_KEY)
        .metadata(
            json!({"base_url": jira.url(), "domain_name": jira.authority(),
                         "verify_ssl": true, "webhook_id": "42"}),
        )
        .secrets(
            json!({"consumer_key": CONSUMER_KEY, "private_key": PRIVATE_KEY,
                        "access_token": "access-token",
                        "access_token_secret": "access-token-secret",
                        "webhook_secret": "derived"}),
        )
        .allowed_host(jira.authority())
        .build();

    let err = harness
        .sync_assignee(&integration, &issue("APP-1"), None)
        .await
        .unwrap_err();

    assert!(
        matches!(err.plugin_error(), Some(PluginError::Unauthorized(m)) if m.contains("install it again")),
        "{err}"
    );
    assert!(jira.requests().is_empty());
    jira.verify();
}

#[tokio::test]
async fn no_matching_user_is_a_rejection_and_nothing_is_put() {
    let harness = common::harness(PLUGIN).await;
    let jira = FakeTracker::start().await.unwrap();
    let (integration, _) = installed(&harness, &jira).await;
    jira.expect(Expect::get("/rest/api/2/user/assignable/search"))
        .respond(Reply::ok().json(&json!([])));

    let emails = vec!["nobody@example.org".to_string()];
    let err = harness
        .sync_assignee(&integration, &issue("APP-1"), Some(&emails))
        .await
        .unwrap_err();

    assert!(
        matches!(err.plugin_error(), Some(PluginError::Rejected(m)) if m.starts_with("Failed to assign user to Jira Server issue")),
        "{err}"
    );
    assert!(jira.requests().iter().all(|r| r.method != "PUT"));
    jira.verify();
}

#[tokio::test]
async fn uninstall_deletes_the_registered_webhook() {
    let harness = common::harness(PLUGIN).await;
    let jira = FakeTracker::start().await.unwrap();
    let (integration, _) = installed(&harness, &jira).await;
    jira.expect(oauth(Expect::delete("/rest/webhooks/1.0/webhook/42")))
        .respond(Reply::status(204));

    harness.uninstall(&integration).await.unwrap();

    jira.verify();
}

#[tokio::test]
async fn the_gate_refuses_a_host_outside_the_integration() {
    let harness = common::harness(PLUGIN).await;
    let jira = FakeTracker::start().await.unwrap();
    let elsewhere = FakeTracker::start().await.unwrap();
    let (integration, _) = installed(&harness, &jira).await;
    // The same installation, its stored base URL now pointing at a host it may not reach.
    let mut metadata: Value = serde_json::from_str(&integration.metadata).unwrap();
    metadata["base_url"] = json!(elsewhere.url());
    let redirected = Integration {
        metadata: metadata.to_string(),
        ..integration
    };

    let err = harness.uninstall(&redirected).await.unwrap_err();

    assert!(
        matches!(err.plugin_error(), Some(PluginError::Upstream(u)) if u.status.is_none()),
        "{err}"
    );
    assert!(
        elsewhere.requests().is_empty(),
        "the refused host received nothing"
    );
    assert_eq!(jira.requests().len(), 1, "only the registration");
    jira.verify();
}

#[tokio::test]
async fn provider_exports_are_refused_on_the_wrong_world_by_the_harness() {
    let harness = common::harness(PLUGIN).await;
    let integration = harness.integration().build();

    let err = harness
        .notify(
            &integration,
            &trackbridge_plugin_test::group(1, "x"),
            trackbridge_plugin_test::GroupEvent::Resolved,
            None,
        )
        .await
        .unwrap_err();

    assert!(
        matches!(
            &err,
            HarnessError::WrongWorld {
                world: "provider-plugin",
                export: "notify",
                ..
            }
        ),
        "{err}"
    );
}
