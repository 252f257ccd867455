//! The built Jira Cloud plugin in the harness, against a fake Jira.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use trackbridge_plugin_test::{
    CallFailure, Change, Delivery, Expect, FakeTracker, Harness, HarnessError, Identity,
    Integration, PluginError, Reply, StatusAction, UserRef, WebhookRequest, hmac_sha256, issue,
    jwt_hs256, mapping,
};

const PLUGIN: &str = "trackbridge_plugin_jira.wasm";
const WEBHOOK_PATH: &str = "/extensions/jira/issue-updated/";
const WEBHOOK_SECRET: &str = "It's a Secret to Everybody";
/// `Basic base64("bot@example.com:s3cr3t")`.
const BASIC_AUTH: &str = "Basic Ym90QGV4YW1wbGUuY29tOnMzY3IzdA==";

fn install_input(jira: &FakeTracker) -> Value {
    json!({
        "base_url": format!("{}/", jira.url()),
        "credential": {"type": "api_token", "email": "bot@example.com", "api_token": "s3cr3t"},
        "webhook_secret": WEBHOOK_SECRET,
    })
}

/// Install through the plugin, the way the host's install endpoint does.
async fn installed(harness: &Harness, jira: &FakeTracker) -> Integration {
    jira.expect(Expect::get("/rest/api/2/serverInfo").header("authorization", BASIC_AUTH))
        .respond(Reply::ok().json(&json!({"baseUrl": jira.url(), "version": "1001.0.0"})));
    harness.install(install_input(jira)).await.unwrap()
}

/// An issue-updated delivery of an admin webhook for the fake site, signed
/// with `secret`.
fn hub_delivery(jira: &FakeTracker, body: Vec<u8>, secret: &str) -> WebhookRequest {
    WebhookRequest::post(WEBHOOK_PATH)
        .query_param("site", &jira.authority())
        .header("X-Atlassian-Webhook-Identifier", "delivery-7")
        .header("Content-Type", "application/json")
        .body(body)
        .hub_signature(secret)
}

#[tokio::test]
async fn install_checks_the_credential_at_the_site_and_stores_the_integration() {
    let harness = common::harness(PLUGIN).await;
    let jira = FakeTracker::start().await.unwrap();

    let integration = installed(&harness, &jira).await;

    assert_eq!(integration.provider, "jira");
    assert_eq!(integration.external_id, jira.authority());
    assert_eq!(integration.allowed_hosts, vec![jira.authority()]);
    let metadata: Value = serde_json::from_str(&integration.metadata).unwrap();
    assert_eq!(metadata["base_url"], jira.url());
    assert_eq!(metadata["auth"], "api_token");
    // What the plugin must read later is metadata: it uses secrets by handle only.
    assert_eq!(metadata["email"], "bot@example.com");
    let secrets: Value = serde_json::from_str(&integration.secrets).unwrap();
    assert_eq!(
        secrets,
        json!({"credential": {"api_token": "s3cr3t"}, "webhook_secret": WEBHOOK_SECRET})
    );
    // Stored: `select-integration` will find it.
    let stored = harness
        .store()
        .integration_by_external_id("jira", &jira.authority())
        .await
        .unwrap()
        .expect("the installation is stored");
    assert_eq!(stored.id, integration.id);
    assert_eq!(jira.requests().len(), 1);
    jira.verify();
}

#[tokio::test]
async fn a_refused_credential_fails_the_installation_and_stores_nothing() {
    let harness = common::harness(PLUGIN).await;
    let jira = FakeTracker::start().await.unwrap();
    jira.expect(Expect::get("/rest/api/2/serverInfo"))
        .respond(Reply::status(401).json(&json!({"errorMessages": ["Unauthorized"]})));

    let err = harness.install(install_input(&jira)).await.unwrap_err();

    match err.plugin_error() {
        Some(PluginError::Unauthorized(message)) => {
            assert!(
                message.starts_with("Jira refused the credential"),
                "{message}"
            )
        }
        other => panic!("expected unauthorized, got {other:?} ({err})"),
    }
    let stored = harness
        .store()
        .integration_by_external_id("jira", &jira.authority())
        .await
        .unwrap();
    assert!(stored.is_none(), "nothing is stored when the check fails");
    jira.verify();
}

#[tokio::test]
async fn the_host_refuses_input_that_breaks_the_schema_before_calling_the_plugin() {
    let harness = common::harness(PLUGIN).await;
    let jira = FakeTracker::start().await.unwrap();

    let err = harness
        .install(json!({"base_url": jira.url()}))
        .await
        .unwrap_err();

    assert!(matches!(err, HarnessError::InvalidInput(_)), "{err}");
    assert!(err.to_string().contains("credential"), "{err}");
    assert!(jira.requests().is_empty(), "the plugin never ran");
}

#[tokio::test]
async fn a_correctly_signed_delivery_is_verified_and_a_wrongly_signed_one_rejected() {
    let harness = common::harness(PLUGIN).await;
    let jira = FakeTracker::start().await.unwrap();
    let integration = installed(&harness, &jira).await;
    let body = common::fixture("sentry/jira/edit_issue_status_payload.json");

    let (verified, selected) = harness
        .verify_webhook_selecting(&hub_delivery(&jira, body.clone(), WEBHOOK_SECRET).build())
        .await
        .unwrap();
    let verified = verified.expect("a correctly signed delivery is verified");
    assert_eq!(verified.integration, jira.authority());
    assert_eq!(verified.delivery_id.as_deref(), Some("delivery-7"));
    assert!(!verified.ignore);
    assert_eq!(selected.map(|i| i.id), Some(integration.id));

    let rejected = harness
        .verify_webhook(&hub_delivery(&jira, body.clone(), "not the secret").build())
        .await
        .unwrap()
        .expect_err("a wrongly signed delivery is rejected");
    assert_eq!(
        (rejected.status, rejected.message.as_str()),
        (401, "Signature is invalid")
    );

    // The signature covers the raw body: the same signature over a changed body fails.
    let mut tampered = hub_delivery(&jira, body, WEBHOOK_SECRET).build();
    tampered.body.extend_from_slice(b" ");
    let rejected = harness
        .verify_webhook(&tampered)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(rejected.status, 401);
    // Verification never calls the tracker.
    assert_eq!(jira.requests().len(), 1, "only the installation's check");
    jira.verify();
}

#[tokio::test]
async fn a_connect_jwt_is_verified_against_the_installation_selected_by_its_issuer() {
    let harness = common::harness(PLUGIN).await;
    let jira = FakeTracker::start().await.unwrap();
    let client_key = "jira:8c3f-connect";
    let shared_secret = "connect-shared-secret";
    harness
        .integration()
        .external_id(client_key)
        .name(jira.authority())
        .metadata(
            json!({"base_url": jira.url(), "domain_name": jira.authority(),
            "auth": "connect", "client_key": client_key, "app_key": "trackbridge.jira"}),
        )
        .secrets(json!({"credential": {"shared_secret": shared_secret}}))
        .allowed_host(jira.authority())
        .install()
        .await
        .unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let qsh = hex(&Sha256::digest("POST&/extensions/jira/issue-updated&"));
    let claims = json!({"iss": client_key, "iat": now, "exp": now + 180, "qsh": qsh});
    let body = common::fixture("sentry/jira/edit_issue_assignee_payload.json");
    let delivery = |token: String| {
        WebhookRequest::post(WEBHOOK_PATH)
            .header("Authorization", format!("JWT {token}"))
            .body(body.clone())
            .build()
    };

    let verified = harness
        .verify_webhook(&delivery(jwt_hs256(&claims, shared_secret)))
        .await
        .unwrap()
        .expect("a token signed with the shared secret is verified");
    assert_eq!(verified.integration, client_key);

    let rejected = harness
        .verify_webhook(&delivery(jwt_hs256(&claims, "another secret")))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        (rejected.status, rejected.message.as_str()),
        (409, "Signature is invalid")
    );
    let mut expired = claims.clone();
    expired["exp"] = json!(now - 600);
    let rejected = harness
        .verify_webhook(&delivery(jwt_hs256(&expired, shared_secret)))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        (rejected.status, rejected.message.as_str()),
        (409, "Signature is expired")
    );
    assert!(jira.requests().is_empty());
}

#[tokio::test]
async fn a_status_delivery_becomes_an_unresolve_and_the_done_set_is_fetched_once() {
    let harness = common::harness(PLUGIN).await;
    let jira = FakeTracker::start().await.unwrap();
    installed(&harness, &jira).await;
    // Sentry's statuses, with the changelog's `from` (10101) in the done category.
    let mut statuses = common::fixture_json("sentry/jira/status_response.json");
    statuses.as_array_mut().unwrap().push(
        json!({"id": "10101", "name": "Done", "statusCategory": {"key": "done", "name": "Done"}}),
    );
    jira.expect(Expect::get("/rest/api/2/status").header("authorization", BASIC_AUTH))
        .respond(Reply::ok().json(&statuses));
    let request = hub_delivery(
        &jira,
        common::fixture("sentry/jira/edit_issue_status_payload.json"),
        WEBHOOK_SECRET,
    )
    .build();

    for _ in 0..2 {
        let Delivery::Handled { events, .. } = harness.deliver(&request).await.unwrap() else {
            panic!("the delivery is handled");
        };
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].external_issue, "APP-123");
        assert_eq!(events[0].delivery_id.as_deref(), Some("delivery-7"));
        match &events[0].change {
            Change::Status(change) => {
                assert_eq!(change.from.as_deref(), Some("10101"));
                assert_eq!(change.to.as_deref(), Some("3"));
                assert!(matches!(change.action, StatusAction::Unresolve));
            }
            other => panic!("expected a status change, got {other:?}"),
        }
    }
    // One GET of the statuses for both deliveries: the second came from the host's cache.
    jira.verify();
}

#[tokio::test]
async fn an_assignee_delivery_names_the_email_without_calling_jira() {
    let harness = common::harness(PLUGIN).await;
    let jira = FakeTracker::start().await.unwrap();
    let integration = installed(&harness, &jira).await;
    let request = hub_delivery(
        &jira,
        common::fixture("sentry/jira/edit_issue_assignee_payload.json"),
        WEBHOOK_SECRET,
    )
    .build();

    let events = harness
        .handle_webhook(&integration, &request)
        .await
        .unwrap();

    assert_eq!(events.len(), 1);
    assert_eq!(events[0].external_issue, "APP-123");
    assert!(
        matches!(&events[0].change, Change::Assignee(Some(person))
            if person.id == "deadbeef123"
                && person.email.as_deref() == Some("jess@sentry.io")
                && person.email_verified),
        "{:?}",
        events[0].change
    );
    assert_eq!(jira.requests().len(), 1, "only the installation's check");
    jira.verify();
}

#[tokio::test]
async fn resolving_posts_the_transition_to_the_mapped_status() {
    let harness = common::harness(PLUGIN).await;
    let jira = FakeTracker::start().await.unwrap();
    let integration = installed(&harness, &jira).await;
    jira.expect(Expect::get("/rest/api/2/issue/APP-1"))
        .respond(Reply::ok().json(
        &json!({"key": "APP-1", "fields": {"project": {"id": "10100"}, "status": {"id": "10100"}}}),
    ));
    jira.expect(Expect::get("/rest/api/2/issue/APP-1/transitions"))
        .respond(Reply::ok().json(&common::fixture_json(
            "sentry/jira/transition_response.json",
        )));
    jira.expect(
        Expect::post("/rest/api/2/issue/APP-1/transitions")
            .header("authorization", BASIC_AUTH)
            .body_json_exact(json!({"transition": {"id": "31"}})),
    )
    .respond(Reply::status(204));

    let outcome = harness
        .sync_status(
            &integration,
            &issue("APP-1"),
            true,
            &[mapping("10100", "10101", "3")],
        )
        .await
        .unwrap();

    assert!(outcome.changed, "{:?}", outcome.note);
    jira.verify();
}

#[tokio::test]
async fn an_issue_already_in_the_target_status_is_left_alone() {
    let harness = common::harness(PLUGIN).await;
    let jira = FakeTracker::start().await.unwrap();
    let integration = installed(&harness, &jira).await;
    jira.expect(Expect::get("/rest/api/2/issue/APP-1"))
        .respond(Reply::ok().json(
        &json!({"key": "APP-1", "fields": {"project": {"id": "10100"}, "status": {"id": "10101"}}}),
    ));

    let outcome = harness
        .sync_status(
            &integration,
            &issue("APP-1"),
            true,
            &[mapping("10100", "10101", "3")],
        )
        .await
        .unwrap();

    assert!(!outcome.changed);
    assert_eq!(outcome.note.as_deref(), Some("already in status 10101"));
    // No transitions were read or posted: the tracker would have answered 599 and verify fails.
    jira.verify();
}

#[tokio::test]
async fn assigning_searches_by_email_and_puts_the_matching_account() {
    let harness = common::harness(PLUGIN).await;
    let jira = FakeTracker::start().await.unwrap();
    let integration = installed(&harness, &jira).await;
    jira.expect(
        Expect::get("/rest/api/2/user/assignable/search")
            .query_param("issueKey", "APP-1")
            .query_param("query", "jess@sentry.io"),
    )
    .respond(Reply::ok().json(&json!([
        {"accountId": "someone-else", "emailAddress": "other@sentry.io"},
        {"accountId": "deadbeef123", "emailAddress": "Jess@Sentry.io"}
    ])));
    jira.expect(
        Expect::put("/rest/api/2/issue/APP-1/assignee")
            .body_json_exact(json!({"accountId": "deadbeef123"})),
    )
    .respond(Reply::status(204));
    jira.expect(
        Expect::put("/rest/api/2/issue/APP-1/assignee").body_json_exact(json!({"accountId": null})),
    )
    .respond(Reply::status(204));

    let emails = vec!["jess@sentry.io".to_string()];
    let assigned = harness
        .sync_assignee(&integration, &issue("APP-1"), Some(&emails))
        .await
        .unwrap();
    let unassigned = harness
        .sync_assignee(&integration, &issue("APP-1"), None)
        .await
        .unwrap();

    assert!(assigned.changed && unassigned.changed);
    let puts: Vec<Value> = jira
        .requests()
        .iter()
        .filter(|r| r.method == "PUT")
        .map(|r| r.json().unwrap())
        .collect();
    assert_eq!(
        puts,
        vec![
            json!({"accountId": "deadbeef123"}),
            json!({"accountId": null})
        ]
    );
    jira.verify();
}

#[tokio::test]
async fn a_mapped_identity_is_assigned_by_account_id_without_a_search() {
    let harness = common::harness(PLUGIN).await;
    let jira = FakeTracker::start().await.unwrap();
    let integration = installed(&harness, &jira).await;
    jira.expect(
        Expect::put("/rest/api/2/issue/APP-1/assignee")
            .header("authorization", BASIC_AUTH)
            .body_json_exact(json!({"accountId": "5b10ac8d82e05b22cc7d4ef5"})),
    )
    .respond(Reply::status(204));
    let user = UserRef {
        emails: vec!["jess@sentry.io".to_string()],
        identities: vec![Identity {
            id: "5b10ac8d82e05b22cc7d4ef5".into(),
            login: None,
            display_name: Some("Jess MacQueen".into()),
            email: None,
            email_verified: false,
            bot: false,
        }],
    };

    let outcome = harness
        .sync_assignee_to(&integration, &issue("APP-1"), Some(&user))
        .await
        .unwrap();

    assert!(outcome.changed, "{:?}", outcome.note);
    // The installation's check and the PUT: no user search.
    assert_eq!(jira.requests().len(), 2, "{:?}", jira.requests());
    jira.verify();
}

#[tokio::test]
async fn a_connect_installation_signs_its_calls_with_the_shared_secret() {
    let harness = common::harness(PLUGIN).await;
    let jira = FakeTracker::start().await.unwrap();
    let shared_secret = "connect-shared-secret";
    let integration = harness
        .integration()
        .external_id("jira:8c3f-connect")
        .metadata(
            json!({"base_url": jira.url(), "domain_name": jira.authority(),
            "auth": "connect", "client_key": "jira:8c3f-connect", "app_key": "my.app"}),
        )
        .secrets(json!({"credential": {"shared_secret": shared_secret}}))
        .allowed_host(jira.authority())
        .build();
    jira.expect(Expect::put("/rest/api/2/issue/APP-1/assignee"))
        .respond(Reply::status(204));

    harness
        .sync_assignee(&integration, &issue("APP-1"), None)
        .await
        .unwrap();

    let authorization = jira.requests()[0]
        .header("authorization")
        .unwrap()
        .to_string();
    let token = authorization.strip_prefix("JWT ").expect("a Connect JWT");
    let (signing_input, signature) = token.rsplit_once('.').unwrap();
    assert_eq!(
        URL_SAFE_NO_PAD.decode(signature).unwrap(),
        hmac_sha256(shared_secret, signing_input),
        "signed with the shared secret"
    );
    let (_, payload) = signing_input.split_once('.').unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["iss"], "my.app");
    let qsh = hex(&Sha256::digest("PUT&/rest/api/2/issue/APP-1/assignee&"));
    assert_eq!(claims["qsh"], qsh);
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        300
    );
    jira.verify();
}

#[tokio::test]
async fn an_api_token_installation_stored_without_its_email_must_be_installed_again() {
    let harness = common::harness(PLUGIN).await;
    let jira = FakeTracker::start().await.unwrap();
    // As the 0.1.0 build stored it: the account email only inside the secrets.
    let integration = harness
        .integration()
        .external_id(jira.authority())
        .metadata(
            json!({"base_url": jira.url(), "domain_name": jira.authority(), "auth": "api_token"}),
        )
        .secrets(
            json!({"credential": {"type": "api_token", "email": "bot@example.com",
            "api_token": "s3cr3t"}, "webhook_secret": WEBHOOK_SECRET}),
        )
        .allowed_host(jira.authority())
        .build();

    let err = harness
        .sync_assignee(&integration, &issue("APP-1"), None)
        .await
        .unwrap_err();

    match err.plugin_error() {
        Some(PluginError::InvalidInput(message)) => {
            assert!(message.contains("install it again"), "{message}")
        }
        other => panic!("expected the reinstall error, got {other:?} ({err})"),
    }
    assert!(jira.requests().is_empty(), "nothing reached Jira");
}

#[tokio::test]
async fn an_error_answer_reaches_the_test_as_the_plugins_upstream_error() {
    let harness = common::harness(PLUGIN).await;
    let jira = FakeTracker::start().await.unwrap();
    let integration = installed(&harness, &jira).await;
    jira.expect(Expect::put("/rest/api/2/issue/APP-1/assignee"))
        .respond(
            Reply::status(503)
                .header("Retry-After", "7")
                .json(&json!({"errorMessages": ["maintenance"]})),
        );

    let err = harness
        .sync_assignee(&integration, &issue("APP-1"), None)
        .await
        .unwrap_err();

    match err.plugin_error() {
        Some(PluginError::Upstream(upstream)) => {
            assert_eq!(upstream.status, Some(503));
            assert_eq!(upstream.retry_after_secs, Some(7));
            assert!(
                upstream.message.contains("maintenance"),
                "{}",
                upstream.message
            );
        }
        other => panic!("expected an upstream error, got {other:?} ({err})"),
    }
    jira.verify();
}

#[tokio::test]
async fn the_gate_refuses_a_host_outside_the_integration() {
    let harness = common::harness(PLUGIN).await;
    let jira = FakeTracker::start().await.unwrap();
    let elsewhere = FakeTracker::start().await.unwrap();
    // The stored base URL points at `elsewhere`, but the integration may reach only `jira`.
    let integration = harness
        .integration()
        .external_id(jira.authority())
        .metadata(
            json!({"base_url": elsewhere.url(), "domain_name": jira.authority(),
            "auth": "api_token", "email": "bot@example.com"}),
        )
        .secrets(json!({"credential": {"api_token": "s3cr3t"}}))
        .allowed_host(jira.authority())
        .build();

    let err = harness
        .sync_status(
            &integration,
            &issue("APP-1"),
            true,
            &[mapping("10100", "10101", "3")],
        )
        .await
        .unwrap_err();

    match err.plugin_error() {
        Some(PluginError::Upstream(upstream)) => {
            assert_eq!(upstream.status, None, "unreachable: {}", upstream.message)
        }
        other => panic!("expected the plugin to report an unreachable host, got {other:?} ({err})"),
    }
    assert!(
        elsewhere.requests().is_empty(),
        "the refused host received nothing"
    );
    assert!(jira.requests().is_empty());

    // Control: allowed to reach `elsewhere`, the same call gets there.
    elsewhere
        .expect(Expect::get("/rest/api/2/issue/APP-1"))
        .respond(Reply::status(404));
    let allowed = Integration {
        allowed_hosts: vec![elsewhere.authority()],
        ..integration
    };
    let err = harness
        .sync_status(
            &allowed,
            &issue("APP-1"),
            true,
            &[mapping("10100", "10101", "3")],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err.plugin_error(), Some(PluginError::Rejected(_))),
        "a 404 for the issue: {err}"
    );
    elsewhere.verify();
}

#[tokio::test]
async fn a_call_past_its_time_budget_is_a_timeout() {
    let harness = common::harness_with(
        PLUGIN,
        Harness::builder().timeout(Duration::from_millis(1500)),
    )
    .await;
    let jira = FakeTracker::start().await.unwrap();
    let integration = harness
        .integration()
        .external_id(jira.authority())
        .metadata(json!({"base_url": jira.url(), "auth": "api_token", "email": "bot@example.com"}))
        .secrets(json!({"credential": {"api_token": "s3cr3t"}}))
        .allowed_host(jira.authority())
        .build();
    jira.expect(Expect::put("/rest/api/2/issue/APP-1/assignee"))
        .respond(Reply::status(204).delay(Duration::from_secs(10)));

    let started = std::time::Instant::now();
    let err = harness
        .sync_assignee(&integration, &issue("APP-1"), None)
        .await
        .unwrap_err();

    assert!(
        matches!(err.call_failure(), Some(CallFailure::Timeout)),
        "expected a timeout, got {err}"
    );
    assert!(err.is_timeout());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    jira.verify();
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
