//! The built GitHub Issues plugin in the harness, against a fake GitHub API.

mod common;

use serde_json::{Value, json};
use trackbridge_plugin_test::{
    Change, Delivery, Expect, FakeTracker, Harness, Identity, Integration, PluginError, Reply,
    StatusAction, UserRef, WebhookRequest, issue,
};

const PLUGIN: &str = "trackbridge_plugin_github.wasm";
const WEBHOOK_PATH: &str = "/extensions/github/webhook";
const FULL_NAME: &str = "octo/hello";
const REPO_ID: u64 = 1296269;
const HOOK_ID: u64 = 12345678;
const ISSUE: &str = "octo/hello#1";

/// `YYYY-MM-DDTHH:MM:SSZ` of a Unix time (days-to-civil, proleptic Gregorian).
fn rfc3339(secs: u64) -> String {
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn repository(gh: &FakeTracker) -> Value {
    json!({"id": REPO_ID, "full_name": FULL_NAME, "has_issues": true, "permissions": {"admin": true, "push": true}, "url": format!("{}/repos/{FULL_NAME}", gh.url())})
}

fn token_input(gh: &FakeTracker) -> Value {
    json!({"repository": FULL_NAME, "api_url": gh.url(), "credential": {"type": "token", "token": "pat-1"}})
}

/// Install with a token; returns the integration and the hook's secret.
async fn installed(harness: &Harness, gh: &FakeTracker) -> (Integration, String) {
    gh.expect(Expect::get("/user").header("authorization", "Bearer pat-1"))
        .respond(Reply::ok().json(&json!({"login": "tb-bot", "id": 500})));
    gh.expect(Expect::get(format!("/repos/{FULL_NAME}")))
        .respond(Reply::ok().json(&repository(gh)));
    gh.expect(
        Expect::post(format!("/repos/{FULL_NAME}/hooks"))
            .header("authorization", "Bearer pat-1")
            .header("x-github-api-version", "2022-11-28")
            .body_json(json!({"name": "web", "active": true, "events": ["issues"], "config": {"url": format!("{}{WEBHOOK_PATH}", common::PUBLIC_URL), "content_type": "json", "insecure_ssl": "0"}})),
    )
    .respond(Reply::status(201).json(&common::fixture_json("github/rest_create_repo_hook_201.json")));
    let integration = harness.install(token_input(gh)).await.unwrap();
    let hook = gh
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .and_then(|r| r.json())
        .expect("the hook was created");
    let secret = hook["config"]["secret"].as_str().unwrap().to_owned();
    (integration, secret)
}

/// A fixture body moved to the fake GitHub's repository.
fn payload(fixture: &str, gh: &FakeTracker) -> Value {
    let mut body = common::fixture_json(fixture);
    body["repository"]["id"] = json!(REPO_ID);
    body["repository"]["full_name"] = json!(FULL_NAME);
    body["repository"]["url"] = json!(format!("{}/repos/{FULL_NAME}", gh.url()));
    if body.get("issue").is_some() {
        body["issue"]["number"] = json!(1);
    }
    body
}

fn delivery(event: &str, guid: &str, body: &Value, secret: &str) -> WebhookRequest {
    WebhookRequest::post(WEBHOOK_PATH)
        .header("X-GitHub-Event", event)
        .header("X-GitHub-Delivery", guid)
        .header("X-GitHub-Hook-ID", HOOK_ID.to_string())
        .json(body)
        .hmac_sha256_header("x-hub-signature-256", secret, "sha256=")
}

fn user(login: &str, id: u64) -> Value {
    json!({"login": login, "id": id, "type": "User"})
}

fn issue_with_assignees(assignees: &[Value], state: &str) -> Value {
    json!({"number": 1, "state": state, "updated_at": "2024-05-10T12:00:00Z", "assignees": assignees})
}

fn expect_issue(gh: &FakeTracker, body: Value) {
    gh.expect(Expect::get(format!("/repos/{FULL_NAME}/issues/1")))
        .respond(Reply::ok().json(&body));
}

fn expect_events(gh: &FakeTracker, events: Value) {
    gh.expect(
        Expect::get(format!("/repos/{FULL_NAME}/issues/1/events")).query_param("per_page", "100"),
    )
    .respond(Reply::ok().json(&events));
}

async fn handled(
    harness: &Harness,
    request: WebhookRequest,
) -> Vec<trackbridge_plugin_test::InboundEvent> {
    match harness.deliver(&request.build()).await.unwrap() {
        Delivery::Handled { events, .. } => events,
        other => panic!("expected a handled delivery, got {other:?}"),
    }
}

fn assignee_login(change: &Change) -> Option<Option<String>> {
    match change {
        Change::Assignee(who) => Some(who.as_ref().and_then(|i| i.login.clone())),
        _ => None,
    }
}

#[tokio::test]
async fn install_with_a_token_creates_the_json_issues_hook() {
    let harness = common::harness(PLUGIN).await;
    let gh = FakeTracker::start().await.unwrap();
    let (integration, secret) = installed(&harness, &gh).await;

    assert_eq!(
        integration.external_id,
        format!("{}:{REPO_ID}", gh.authority())
    );
    assert_eq!(integration.name, FULL_NAME);
    let metadata: Value = serde_json::from_str(&integration.metadata).unwrap();
    assert_eq!(metadata["hook_id"], HOOK_ID);
    assert_eq!(metadata["actor_login"], "tb-bot");
    let secrets: Value = serde_json::from_str(&integration.secrets).unwrap();
    assert_eq!(secrets["webhook_secret"], secret.as_str());
    assert_eq!(secret.len(), 64);
    gh.verify();
}

#[tokio::test]
async fn install_errors_name_what_is_missing() {
    let harness = common::harness(PLUGIN).await;
    let gh = FakeTracker::start().await.unwrap();
    gh.expect(Expect::get("/user"))
        .respond(Reply::status(401).json(&json!({"message": "Bad credentials"})));
    let err = harness.install(token_input(&gh)).await.unwrap_err();
    assert!(
        matches!(err.plugin_error(), Some(PluginError::Unauthorized(m)) if m.contains("refused the token")),
        "{err}"
    );

    gh.expect(Expect::get("/user"))
        .respond(Reply::ok().json(&json!({"login": "tb-bot"})));
    gh.expect(Expect::get(format!("/repos/{FULL_NAME}")))
        .respond(Reply::status(404).json(&json!({"message": "Not Found"})));
    let err = harness.install(token_input(&gh)).await.unwrap_err();
    assert!(
        matches!(err.plugin_error(), Some(PluginError::InvalidInput(m)) if m.contains("octo/hello was not found") && m.contains("repo scope")),
        "{err}"
    );

    gh.expect(Expect::get("/user"))
        .respond(Reply::ok().json(&json!({"login": "tb-bot"})));
    gh.expect(Expect::get(format!("/repos/{FULL_NAME}")))
        .respond(Reply::ok().json(&repository(&gh)));
    gh.expect(Expect::post(format!("/repos/{FULL_NAME}/hooks")))
        .respond(Reply::status(404).json(&json!({"message": "Not Found"})));
    let err = harness.install(token_input(&gh)).await.unwrap_err();
    assert!(
        matches!(err.plugin_error(), Some(PluginError::Unauthorized(m)) if m.contains("admin:repo_hook")),
        "{err}"
    );
    assert!(
        harness
            .store()
            .integration_by_external_id("github", &format!("{}:{REPO_ID}", gh.authority()))
            .await
            .unwrap()
            .is_none(),
        "nothing stored"
    );
    gh.verify();
}

#[tokio::test]
async fn install_as_an_app_mints_an_installation_token_and_reuses_it() {
    let harness = common::harness(PLUGIN).await;
    let gh = FakeTracker::start().await.unwrap();
    let key = String::from_utf8(common::fixture("github/test-app-key.pem")).unwrap();
    let expires = rfc3339(now_secs() + 3600);
    gh.expect(Expect::get("/app").header_contains("authorization", "Bearer ey"))
        .respond(Reply::ok().json(&json!({"slug": "trackbridge", "id": 42})));
    gh.expect(Expect::get(format!("/repos/{FULL_NAME}/installation")))
        .respond(Reply::ok().json(&json!({"id": 99})));
    gh.expect(
        Expect::post("/app/installations/99/access_tokens")
            .header_contains("authorization", "Bearer ey"),
    )
    .respond(Reply::status(201).json(&json!({"token": "ghs_install", "expires_at": expires})));
    gh.expect(
        Expect::get(format!("/repos/{FULL_NAME}")).header("authorization", "Bearer ghs_install"),
    )
    .respond(Reply::ok().json(&repository(&gh)));
    let integration = harness
        .install(json!({"repository": FULL_NAME, "api_url": gh.url(), "credential": {"type": "app", "app_id": 42, "private_key": key, "webhook_secret": "app-secret"}}))
        .await
        .unwrap();
    let metadata: Value = serde_json::from_str(&integration.metadata).unwrap();
    assert_eq!(
        (
            metadata["auth"].as_str(),
            metadata["installation_id"].as_u64()
        ),
        (Some("app"), Some(99))
    );
    assert_eq!(metadata["actor_login"], "trackbridge[bot]");
    assert!(
        metadata.get("hook_id").is_none(),
        "the App's own hook delivers"
    );

    // Two syncs, one token: minted once, then found as a remembered secret.
    gh.expect(Expect::post("/app/installations/99/access_tokens"))
        .respond(Reply::status(201).json(&json!({"token": "ghs_later", "expires_at": expires})));
    gh.expect(
        Expect::get(format!("/repos/{FULL_NAME}/issues/1"))
            .header("authorization", "Bearer ghs_later"),
    )
    .respond(Reply::ok().json(&issue_with_assignees(&[], "closed")))
    .times(2);
    for _ in 0..2 {
        let outcome = harness
            .sync_status(&integration, &issue(ISSUE), true, &[])
            .await
            .unwrap();
        assert!(!outcome.changed, "already closed");
    }
    let jwt = gh.requests()[0]
        .header("authorization")
        .unwrap()
        .trim_start_matches("Bearer ")
        .to_owned();
    let claims: Value = {
        use base64::Engine as _;
        let part = jwt.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(claims["iss"], 42);
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap(),
        claims["exp"].as_u64().unwrap(),
    );
    assert!(
        iat + 60 <= now_secs() + 1 && exp > now_secs() && exp - iat <= 600,
        "{claims}"
    );
    gh.verify();
}

#[tokio::test]
async fn a_ping_is_verified_and_ignored() {
    let harness = common::harness(PLUGIN).await;
    let gh = FakeTracker::start().await.unwrap();
    let (_, secret) = installed(&harness, &gh).await;
    let ping = payload("github/webhook_ping.json", &gh);
    match harness
        .deliver(&delivery("ping", "p-1", &ping, &secret).build())
        .await
        .unwrap()
    {
        Delivery::Ignored(v) => assert_eq!(v.integration, format!("{}:{REPO_ID}", gh.authority())),
        other => panic!("{other:?}"),
    }
    gh.verify();
}

#[tokio::test]
async fn closed_and_reopened_resolve_and_unresolve() {
    let harness = common::harness(PLUGIN).await;
    let gh = FakeTracker::start().await.unwrap();
    let (_, secret) = installed(&harness, &gh).await;
    let closed = payload("github/webhook_issues_closed.json", &gh);
    let events = handled(&harness, delivery("issues", "c-1", &closed, &secret)).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].external_issue, ISSUE);
    assert_eq!(events[0].delivery_id.as_deref(), Some("c-1"));
    assert_eq!(
        events[0].event_time,
        Some(1_657_288_496_000),
        "issue.updated_at"
    );
    assert!(
        matches!(&events[0].change, Change::Status(s) if matches!(s.action, StatusAction::Resolve))
    );

    let reopened = payload("github/webhook_issues_reopened.json", &gh);
    let events = handled(&harness, delivery("issues", "r-1", &reopened, &secret)).await;
    assert!(
        matches!(&events[0].change, Change::Status(s) if matches!(s.action, StatusAction::Unresolve) && s.to.as_deref() == Some("open"))
    );
    gh.verify();
}

#[tokio::test]
async fn assigned_and_unassigned_read_the_issue_as_it_is_now() {
    let harness = common::harness(PLUGIN).await;
    let gh = FakeTracker::start().await.unwrap();
    let (_, secret) = installed(&harness, &gh).await;
    expect_issue(
        &gh,
        issue_with_assignees(
            &[json!({"login": "bob", "id": 2, "type": "User", "email": "bob@example.com"})],
            "open",
        ),
    );
    expect_events(&gh, json!([]));
    let assigned = payload("github/webhook_issues_assigned.json", &gh);
    let events = handled(&harness, delivery("issues", "a-1", &assigned, &secret)).await;
    match &events[0].change {
        Change::Assignee(Some(who)) => {
            assert_eq!((who.id.as_str(), who.login.as_deref()), ("2", Some("bob")));
            assert!(
                !who.email_verified,
                "GitHub does not vouch for profile emails"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        events[0].event_time,
        Some(1_715_342_400_000),
        "the fetched issue's updated_at"
    );

    // The payload still lists the removed user; the issue says nobody.
    expect_issue(&gh, issue_with_assignees(&[], "open"));
    expect_events(&gh, json!([]));
    let unassigned = payload("github/webhook_issues_unassigned.json", &gh);
    assert!(
        !unassigned["issue"]["assignees"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let events = handled(&harness, delivery("issues", "u-1", &unassigned, &secret)).await;
    assert_eq!(assignee_login(&events[0].change), Some(None));
    gh.verify();
}

#[tokio::test]
async fn a_swap_delivered_in_reverse_order_ends_with_the_new_assignee() {
    let harness = common::harness(PLUGIN).await;
    let gh = FakeTracker::start().await.unwrap();
    let (_, secret) = installed(&harness, &gh).await;
    // alice → bob: `assigned`(bob) arrives first, `unassigned`(alice) last,
    // whose snapshot still names alice. GitHub has bob all along.
    for _ in 0..2 {
        expect_issue(&gh, issue_with_assignees(&[user("bob", 2)], "open"));
        expect_events(&gh, json!([]));
    }
    let mut assigned = payload("github/webhook_issues_assigned.json", &gh);
    assigned["assignee"] = user("bob", 2);
    assigned["issue"]["assignees"] = json!([user("alice", 1), user("bob", 2)]);
    let mut unassigned = payload("github/webhook_issues_unassigned.json", &gh);
    unassigned["assignee"] = user("alice", 1);
    unassigned["issue"]["assignees"] = json!([user("alice", 1)]);

    let first = handled(&harness, delivery("issues", "s-2", &assigned, &secret)).await;
    let last = handled(&harness, delivery("issues", "s-1", &unassigned, &secret)).await;
    assert_eq!(assignee_login(&first[0].change), Some(Some("bob".into())));
    assert_eq!(
        assignee_login(&last[0].change),
        Some(Some("bob".into())),
        "the late unassignment does not bring alice back"
    );
    gh.verify();
}

#[tokio::test]
async fn a_redelivery_keeps_its_delivery_id() {
    let harness = common::harness(PLUGIN).await;
    let gh = FakeTracker::start().await.unwrap();
    let (_, secret) = installed(&harness, &gh).await;
    let closed = payload("github/webhook_issues_closed.json", &gh);
    let guid = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
    let first = harness
        .verify_webhook(&delivery("issues", guid, &closed, &secret).build())
        .await
        .unwrap()
        .unwrap();
    let again = harness
        .verify_webhook(&delivery("issues", guid, &closed, &secret).build())
        .await
        .unwrap()
        .unwrap();
    // The host deduplicates on it: the same key both times.
    assert_eq!(first.delivery_id.as_deref(), Some(guid));
    assert_eq!(again.delivery_id, first.delivery_id);
    gh.verify();
}

#[tokio::test]
async fn a_signature_over_one_altered_byte_is_rejected() {
    let harness = common::harness(PLUGIN).await;
    let gh = FakeTracker::start().await.unwrap();
    let (_, secret) = installed(&harness, &gh).await;
    let closed = payload("github/webhook_issues_closed.json", &gh);
    let mut request = delivery("issues", "x-1", &closed, &secret).build();
    let at = request
        .body
        .windows(6)
        .position(|w| w == b"closed")
        .unwrap();
    request.body[at] = b'C';
    let rejected = harness.verify_webhook(&request).await.unwrap().unwrap_err();
    assert_eq!(
        (rejected.status, rejected.message.as_str()),
        (401, "X-Hub-Signature-256 does not match the body")
    );
    let unsigned = WebhookRequest::post(WEBHOOK_PATH)
        .header("X-GitHub-Event", "issues")
        .json(&closed)
        .build();
    assert_eq!(
        harness
            .verify_webhook(&unsigned)
            .await
            .unwrap()
            .unwrap_err()
            .status,
        401
    );
    gh.verify();
}

#[tokio::test]
async fn resolving_closes_as_completed_and_unresolving_reopens() {
    let harness = common::harness(PLUGIN).await;
    let gh = FakeTracker::start().await.unwrap();
    let (integration, _) = installed(&harness, &gh).await;
    expect_issue(&gh, issue_with_assignees(&[], "open"));
    gh.expect(
        Expect::patch(format!("/repos/{FULL_NAME}/issues/1"))
            .body_json_exact(json!({"state": "closed", "state_reason": "completed"})),
    )
    .respond(Reply::ok().json(&issue_with_assignees(&[], "closed")));
    assert!(
        harness
            .sync_status(&integration, &issue(ISSUE), true, &[])
            .await
            .unwrap()
            .changed
    );
    expect_issue(&gh, issue_with_assignees(&[], "closed"));
    gh.expect(
        Expect::patch(format!("/repos/{FULL_NAME}/issues/1"))
            .body_json_exact(json!({"state": "open"})),
    )
    .respond(Reply::ok().json(&issue_with_assignees(&[], "open")));
    assert!(
        harness
            .sync_status(&integration, &issue(ISSUE), false, &[])
            .await
            .unwrap()
            .changed
    );
    gh.verify();
}

fn mapped(login: &str, id: u64) -> UserRef {
    UserRef {
        emails: vec![format!("{login}@example.com")],
        identities: vec![Identity {
            id: id.to_string(),
            login: Some(login.into()),
            display_name: None,
            email: None,
            email_verified: false,
            bot: false,
        }],
    }
}

#[tokio::test]
async fn assigning_adds_the_login_and_removes_only_whom_trackbridge_set() {
    let harness = common::harness(PLUGIN).await;
    let gh = FakeTracker::start().await.unwrap();
    let (integration, _) = installed(&harness, &gh).await;
    // carol was added in GitHub; alice by trackbridge (its token's user).
    expect_issue(
        &gh,
        issue_with_assignees(&[user("carol", 3), user("alice", 1)], "open"),
    );
    expect_events(
        &gh,
        json!([
            {"event": "assigned", "actor": {"login": "carol"}, "assignee": {"login": "carol"}},
            {"event": "assigned", "actor": {"login": "tb-bot"}, "assignee": {"login": "alice"}}
        ]),
    );
    gh.expect(Expect::get(format!("/repos/{FULL_NAME}/assignees/bob")))
        .respond(Reply::status(204));
    gh.expect(
        Expect::post(format!("/repos/{FULL_NAME}/issues/1/assignees"))
            .body_json_exact(json!({"assignees": ["bob"]})),
    )
    .respond(Reply::status(201).json(&issue_with_assignees(
        &[user("carol", 3), user("alice", 1), user("bob", 2)],
        "open",
    )));
    gh.expect(
        Expect::delete(format!("/repos/{FULL_NAME}/issues/1/assignees"))
            .body_json_exact(json!({"assignees": ["alice"]})),
    )
    .respond(Reply::ok().json(&issue_with_assignees(
        &[user("carol", 3), user("bob", 2)],
        "open",
    )));

    let outcome = harness
        .sync_assignee_to(&integration, &issue(ISSUE), Some(&mapped("bob", 2)))
        .await
        .unwrap();
    assert!(outcome.changed, "{:?}", outcome.note);
    gh.verify();
}

#[tokio::test]
async fn a_user_who_cannot_be_assigned_is_reported() {
    let harness = common::harness(PLUGIN).await;
    let gh = FakeTracker::start().await.unwrap();
    let (integration, _) = installed(&harness, &gh).await;
    expect_issue(&gh, issue_with_assignees(&[], "open"));
    expect_events(&gh, json!([]));
    gh.expect(Expect::get(format!("/repos/{FULL_NAME}/assignees/mallory")))
        .respond(Reply::status(404).json(&json!({"message": "Not Found"})));
    let err = harness
        .sync_assignee_to(&integration, &issue(ISSUE), Some(&mapped("mallory", 9)))
        .await
        .unwrap_err();
    assert!(
        matches!(err.plugin_error(), Some(PluginError::Rejected(m)) if m.contains("@mallory cannot be assigned")),
        "{err}"
    );

    // Only emails, no mapped identity: GitHub cannot assign by email.
    let emails = vec!["dave@example.com".to_string()];
    expect_issue(&gh, issue_with_assignees(&[], "open"));
    expect_events(&gh, json!([]));
    let outcome = harness
        .sync_assignee(&integration, &issue(ISSUE), Some(&emails))
        .await
        .unwrap();
    assert!(!outcome.changed && outcome.note.unwrap().contains("no GitHub identity"));
    gh.verify();
}

#[tokio::test]
async fn rate_limits_become_retry_after_errors() {
    let harness = common::harness(PLUGIN).await;
    let gh = FakeTracker::start().await.unwrap();
    let (integration, _) = installed(&harness, &gh).await;
    let reset = now_secs() + 120;
    gh.expect(Expect::get(format!("/repos/{FULL_NAME}/issues/1")))
        .respond(
            Reply::status(403)
                .header("x-ratelimit-remaining", "0")
                .header("x-ratelimit-reset", reset.to_string())
                .json(&json!({"message": "API rate limit exceeded"})),
        );
    gh.expect(Expect::get(format!("/repos/{FULL_NAME}/issues/1")))
        .respond(
            Reply::status(429)
                .header("retry-after", "30")
                .json(&json!({"message": "You have exceeded a secondary rate limit"})),
        );
    gh.expect(Expect::get(format!("/repos/{FULL_NAME}/issues/1")))
        .respond(
            Reply::status(403)
                .header("x-ratelimit-remaining", "4000")
                .json(&json!({"message": "Resource not accessible by personal access token"})),
        );

    let primary = harness
        .sync_status(&integration, &issue(ISSUE), true, &[])
        .await
        .unwrap_err();
    match primary.plugin_error() {
        Some(PluginError::Upstream(u)) => {
            assert_eq!(u.status, Some(403));
            let wait = u.retry_after_secs.unwrap();
            assert!((115..=121).contains(&wait), "{wait}");
        }
        other => panic!("{other:?}"),
    }
    let secondary = harness
        .sync_status(&integration, &issue(ISSUE), true, &[])
        .await
        .unwrap_err();
    assert!(
        matches!(secondary.plugin_error(), Some(PluginError::Upstream(u)) if u.retry_after_secs == Some(30) && u.status == Some(429))
    );
    let permission = harness
        .sync_status(&integration, &issue(ISSUE), true, &[])
        .await
        .unwrap_err();
    assert!(
        matches!(
            permission.plugin_error(),
            Some(PluginError::Unauthorized(_))
        ),
        "a plain 403 is not retried: {permission}"
    );
    gh.verify();
}

#[tokio::test]
async fn the_sweep_asks_github_to_redeliver_failed_deliveries() {
    let harness = common::harness(PLUGIN).await;
    let gh = FakeTracker::start().await.unwrap();
    let (integration, _) = installed(&harness, &gh).await;
    let recent = rfc3339(now_secs() - 600);
    let old = rfc3339(now_secs() - 4 * 86_400);
    gh.expect(Expect::get(format!("/repos/{FULL_NAME}/hooks/{HOOK_ID}/deliveries")).query_param("per_page", "100"))
        .respond(Reply::ok().json(&json!([
            {"id": 31, "guid": "g-failed", "status": "Invalid HTTP Response: 503", "status_code": 503, "event": "issues", "action": "closed", "delivered_at": recent, "redelivery": false},
            {"id": 30, "guid": "g-ok", "status": "OK", "status_code": 200, "event": "issues", "action": "assigned", "delivered_at": recent, "redelivery": true},
            {"id": 29, "guid": "g-ok", "status": "timed out", "status_code": 0, "event": "issues", "action": "assigned", "delivered_at": recent, "redelivery": false},
            {"id": 28, "guid": "g-ping", "status": "Not Found", "status_code": 404, "event": "ping", "delivered_at": recent},
            {"id": 27, "guid": "g-old", "status": "Invalid HTTP Response: 500", "status_code": 500, "event": "issues", "delivered_at": old}
        ])));
    gh.expect(Expect::post(format!(
        "/repos/{FULL_NAME}/hooks/{HOOK_ID}/deliveries/31/attempts"
    )))
    .respond(Reply::status(202).json(&json!({})));

    harness.maintain(&integration).await.unwrap();
    gh.verify();
}

#[tokio::test]
async fn uninstall_deletes_the_hook() {
    let harness = common::harness(PLUGIN).await;
    let gh = FakeTracker::start().await.unwrap();
    let (integration, _) = installed(&harness, &gh).await;
    gh.expect(Expect::delete(format!(
        "/repos/{FULL_NAME}/hooks/{HOOK_ID}"
    )))
    .respond(Reply::status(204));
    harness.uninstall(&integration).await.unwrap();
    gh.verify();
}

#[tokio::test]
async fn the_conformance_checks_pass() {
    let harness = common::harness(PLUGIN).await;
    let bytes = std::fs::read(common::plugin_path(PLUGIN)).unwrap();
    let checks = trackbridge_plugin_test::trackbridge_host::plugins::conformance::run(
        harness.runtime(),
        &bytes,
        PLUGIN,
    )
    .await;
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    assert!(checks.len() > 5, "{} checks", checks.len());
    assert!(failed.is_empty(), "{failed:#?}");
}
