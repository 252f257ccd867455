//! The webhook's verification and event tests.

use super::*;
use crate::auth::Credential;
use serde_json::json;
use trackbridge_plugin_sdk::crypto::hmac_sha256;
use trackbridge_plugin_sdk::http::Response;
use trackbridge_plugin_sdk::provider::{Change, StatusAction};
use trackbridge_plugin_sdk::testing;

const NOW: u64 = 1_700_000_000;
const PATH: &str = "/extensions/jira/issue-updated/";
const CLIENT_KEY: &str = "testserver.jira:123";
const SECRET: &str = "shared-super-secret";

const STATUS_PAYLOAD: &str = r#"{"changelog": {"items": [{"from": "10101", "field": "status",
    "fromString": "Done", "to": "3", "toString": "In Progress", "fieldtype": "jira",
    "fieldId": "status"}], "id": "10196"}, "timestamp": 1700000000123,
    "issue": {"self": "https://example.atlassian.net/rest/api/2/issue/10001",
    "fields": {"project": {"id": "10000", "key": "APP"}}, "key": "APP-123"}}"#;
const ASSIGNEE_PAYLOAD: &str = r#"{"changelog": {"items": [{"to": "admin", "field": "assignee",
    "toString": "Jess MacQueen", "from": null, "fromString": null, "fieldtype": "jira",
    "fieldId": "assignee"}], "id": "10172"}, "issue": {"id": "101", "fields": {"assignee":
    {"emailAddress": "jess@sentry.io", "accountId": "deadbeef123",
    "displayName": "Jess MacQueen"}}, "key": "APP-123"}}"#;

fn setup() {
    testing::reset();
    testing::set_now_ms(NOW * 1000);
    testing::add_integration(
        CLIENT_KEY,
        json!({"base_url": "https://example.atlassian.net", "auth": "connect",
               "client_key": CLIENT_KEY, "app_key": "a"}),
        json!({"credential": {"shared_secret": SECRET}}),
    );
    testing::add_integration(
        "example.atlassian.net",
        json!({"base_url": "https://example.atlassian.net", "auth": "api_token",
               "email": "e@x.test"}),
        json!({"credential": {"api_token": "t"}, "webhook_secret": "It's a Secret to Everybody"}),
    );
    testing::add_integration(
        "nosecret.atlassian.net",
        json!({"base_url": "https://nosecret.atlassian.net", "auth": "oauth2"}),
        json!({"credential": {"access_token": "t"}}),
    );
}

fn request(headers: &[(&str, &str)], query: &str, body: &str) -> IncomingRequest {
    IncomingRequest {
        method: "POST".into(),
        path: PATH.into(),
        query: query.into(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        route_params: vec![],
        body: body.as_bytes().to_vec(),
    }
}

fn jwt(claims: Value, secret: &str) -> String {
    let sign = |input: &[u8]| hmac_sha256(secret.as_bytes(), input).to_vec();
    format!("JWT {}", connect_jwt::sign_hs256(&claims.to_string(), sign))
}

fn good_claims() -> Value {
    json!({"iss": CLIENT_KEY, "iat": NOW, "exp": NOW + 180,
           "qsh": qsh::qsh("POST", PATH, &[])})
}

fn rejection(r: Result<VerifiedWebhook, Rejection>) -> (u16, String) {
    let e = r.unwrap_err();
    (e.status, e.message)
}

#[test]
fn connect_jwt_accepted() {
    setup();
    let auth = jwt(good_claims(), SECRET);
    let req = request(
        &[
            ("Authorization", &auth),
            ("X-Atlassian-Webhook-Identifier", "d-1"),
        ],
        "",
        STATUS_PAYLOAD,
    );
    let verified = verify(&req).unwrap();
    assert_eq!(verified.integration, CLIENT_KEY);
    assert_eq!(verified.delivery_id.as_deref(), Some("d-1"));
    assert_eq!(verified.event_time, Some(1_700_000_000_123));
    assert!(!verified.ignore);
    // The `Bearer` scheme works as well as `JWT`, as in Sentry.
    let bearer = auth.replacen("JWT", "Bearer", 1);
    assert!(verify(&request(&[("authorization", &bearer)], "", STATUS_PAYLOAD)).is_ok());
}

#[test]
fn connect_qsh_covers_the_query_but_not_jwt() {
    setup();
    let mut claims = good_claims();
    claims["qsh"] = json!(qsh::qsh(
        "POST",
        PATH,
        &[("user_id".into(), "a b".into()), ("x".into(), "1".into())]
    ));
    let auth = jwt(claims, SECRET);
    let ok = request(
        &[("authorization", &auth)],
        "x=1&user_id=a+b&jwt=ignored",
        "{}",
    );
    assert!(verify(&ok).is_ok());
    let changed = request(&[("authorization", &auth)], "x=2&user_id=a+b", "{}");
    assert_eq!(
        rejection(verify(&changed)),
        (409, "Query hash mismatch".into())
    );
}

#[test]
fn connect_jwt_in_the_query() {
    setup();
    let token = jwt(good_claims(), SECRET);
    let token = token.trim_start_matches("JWT ");
    let verified = verify(&request(&[], &format!("jwt={token}"), STATUS_PAYLOAD)).unwrap();
    assert_eq!(verified.integration, CLIENT_KEY);
    let forged = jwt(good_claims(), "wrong-secret");
    let forged = forged.trim_start_matches("JWT ");
    assert_eq!(
        rejection(verify(&request(
            &[],
            &format!("jwt={forged}"),
            STATUS_PAYLOAD
        ))),
        (409, "Signature is invalid".into())
    );
    assert_eq!(
        rejection(verify(&request(&[], "jwt=", STATUS_PAYLOAD))),
        (409, "No token parameter".into())
    );
}

#[test]
fn connect_rejections() {
    setup();
    let cases: Vec<(String, &str)> = vec![
        ("JWTnospace".into(), "No token parameter"),
        ("JWT not-a-token".into(), "Malformed token"),
        (
            jwt(json!({"iss": "unknown", "exp": NOW + 100}), SECRET),
            "No integration found",
        ),
        // An API-token install must not be reachable through a JWT naming its site.
        (
            jwt(
                json!({"iss": "example.atlassian.net", "exp": NOW + 100}),
                SECRET,
            ),
            "No integration found",
        ),
        (jwt(good_claims(), "wrong-secret"), "Signature is invalid"),
        (
            jwt(
                json!({"iss": CLIENT_KEY, "exp": 1234567890, "qsh": qsh::qsh("POST", PATH, &[])}),
                SECRET,
            ),
            "Signature is expired",
        ),
        (
            jwt(
                json!({"iss": CLIENT_KEY, "qsh": qsh::qsh("POST", PATH, &[])}),
                SECRET,
            ),
            "Token has no expiry",
        ),
        (
            jwt(
                json!({"iss": CLIENT_KEY, "iat": NOW + 3600, "exp": NOW + 3900,
                       "qsh": qsh::qsh("POST", PATH, &[])}),
                SECRET,
            ),
            "Token is not yet valid",
        ),
        // A token that would stay valid for days, or forever, is refused.
        (
            jwt(
                json!({"iss": CLIENT_KEY, "iat": NOW, "exp": NOW + 7 * 86_400,
                       "qsh": qsh::qsh("POST", PATH, &[])}),
                SECRET,
            ),
            "Token is valid for too long",
        ),
        (
            jwt(
                json!({"iss": CLIENT_KEY, "exp": NOW + 2 * 3600,
                       "qsh": qsh::qsh("POST", PATH, &[])}),
                SECRET,
            ),
            "Token is valid for too long",
        ),
        (
            jwt(
                json!({"iss": CLIENT_KEY, "exp": 1e300, "qsh": qsh::qsh("POST", PATH, &[])}),
                SECRET,
            ),
            "Token has no expiry",
        ),
        (
            jwt(
                json!({"iss": CLIENT_KEY, "exp": NOW + 100, "qsh": "context-qsh"}),
                SECRET,
            ),
            "Query hash mismatch",
        ),
        (
            jwt(
                json!({"iss": CLIENT_KEY, "exp": NOW + 100, "qsh": qsh::qsh("GET", PATH, &[])}),
                SECRET,
            ),
            "Query hash mismatch",
        ),
    ];
    for (auth, message) in cases {
        let r = verify(&request(&[("authorization", &auth)], "", STATUS_PAYLOAD));
        assert_eq!(rejection(r), (409, message.to_string()), "{auth}");
    }
    // alg none (unsigned) is refused before anything else.
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let none = format!(
        "JWT {}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(&good_claims().to_string())
    );
    assert_eq!(
        rejection(verify(&request(
            &[("authorization", &none)],
            "",
            STATUS_PAYLOAD
        ))),
        (409, "Unsupported token algorithm".into())
    );
    assert_eq!(
        rejection(verify(&request(&[], "", STATUS_PAYLOAD))),
        (409, "No token parameter".into())
    );
}

#[test]
fn connect_body_checks_after_auth() {
    setup();
    let auth = jwt(good_claims(), SECRET);
    assert_eq!(
        rejection(verify(&request(&[("authorization", &auth)], "", ""))),
        (400, "empty body".into())
    );
    assert_eq!(
        rejection(verify(&request(&[("authorization", &auth)], "", "{nope"))),
        (400, "malformed JSON body".into())
    );
    for body in ["{}", r#"{"changelog": {}}"#, r#"{"changelog": null}"#, "[]"] {
        let verified = verify(&request(&[("authorization", &auth)], "", body)).unwrap();
        assert!(verified.ignore, "{body}");
        assert_eq!(verified.event_time, None);
    }
}

#[test]
fn hub_signature_github_vector_goes_through_verification() {
    setup();
    // "Hello, World!" is not JSON, so the verification stops at the body check...
    let github = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    assert_eq!(
        rejection(verify(&request(
            &[("x-hub-signature", github)],
            "site=example.atlassian.net",
            "Hello, World!"
        ))),
        (400, "malformed JSON body".into())
    );
    // ...and the same secret signs a JSON payload exactly like GitHub's vector.
    assert_eq!(
        hub_signature::sign(b"It's a Secret to Everybody", b"Hello, World!"),
        github
    );
    let signature = hub_signature::sign(b"It's a Secret to Everybody", STATUS_PAYLOAD.as_bytes());
    let verified = verify(&request(
        &[("X-Hub-Signature", &signature)],
        "",
        STATUS_PAYLOAD,
    ))
    .unwrap();
    assert_eq!(verified.integration, "example.atlassian.net");
    assert!(!verified.ignore);
}

#[test]
fn hub_site_lookup_and_rejections() {
    setup();
    let secret = b"It's a Secret to Everybody";
    // No `self` link: the site comes from `?site=`, as a URL or a bare host.
    let body = r#"{"changelog": {"items": []}, "issue": {"key": "APP-1"}}"#;
    let sig = hub_signature::sign(secret, body.as_bytes());
    for site in [
        "example.atlassian.net",
        "https%3A%2F%2Fexample.atlassian.net%2F",
    ] {
        let r = verify(&request(
            &[("x-hub-signature", &sig)],
            &format!("site={site}"),
            body,
        ));
        assert_eq!(r.unwrap().integration, "example.atlassian.net");
    }
    // `user.self` is used when there is no issue.
    let body = r#"{"user": {"self": "https://EXAMPLE.atlassian.net/rest/api/2/user?accountId=1"}}"#;
    let sig = hub_signature::sign(secret, body.as_bytes());
    let verified = verify(&request(&[("x-hub-signature", &sig)], "", body)).unwrap();
    assert!(verified.ignore);

    let cases = [
        (
            sig.as_str(),
            "",
            r#"{"changelog": {"items": [1]}}"#,
            401,
            "No integration found",
        ),
        (
            sig.as_str(),
            "site=other.atlassian.net",
            "{}",
            401,
            "No integration found",
        ),
        (
            sig.as_str(),
            "site=nosecret.atlassian.net",
            "{}",
            401,
            "Signature is invalid",
        ),
        ("sha256=00", "", body, 401, "Signature is invalid"),
        (sig.as_str(), "", "", 400, "empty body"),
    ];
    for (signature, query, body, status, message) in cases {
        let r = verify(&request(&[("x-hub-signature", signature)], query, body));
        assert_eq!(
            rejection(r),
            (status, message.to_string()),
            "{query} {body}"
        );
    }
}

fn client() -> Client {
    let credential =
        Credential::parse(&json!({"type": "api_token", "email": "e@x.test", "api_token": "t"}))
            .unwrap();
    Client::new("https://example.atlassian.net", credential)
}

#[test]
fn status_event() {
    setup();
    testing::on_http(|req| {
        assert_eq!(
            req.full_url(),
            "https://example.atlassian.net/rest/api/2/status"
        );
        Ok(Response::json_body(
            200,
            &json!([{"id": "10101", "statusCategory": {"key": "done"}},
                    {"id": "3", "statusCategory": {"key": "indeterminate"}}]),
        ))
    });
    let req = request(
        &[("x-atlassian-webhook-identifier", "d-9")],
        "",
        STATUS_PAYLOAD,
    );
    let events = handle(&req, &client()).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].external_issue, "APP-123");
    assert_eq!(events[0].delivery_id.as_deref(), Some("d-9"));
    assert_eq!(events[0].event_time, Some(1_700_000_000_123));
    let Change::Status(change) = &events[0].change else {
        panic!("not a status change")
    };
    assert_eq!(change.from.as_deref(), Some("10101"));
    assert_eq!(change.to.as_deref(), Some("3"));
    assert_eq!(change.action, StatusAction::Unresolve);
    // The done set is cached: a second delivery makes no call.
    handle(&req, &client()).unwrap();
    assert_eq!(testing::requests().len(), 1);
    assert_eq!(
        testing::cache_entry("statuses:done").map(|(_, ttl)| ttl),
        Some(240)
    );
}

/// Each assignee change as (account id, email, email verified, display name).
type Person = (String, Option<String>, bool, Option<String>);

fn assignee(events: &[InboundEvent]) -> Vec<Option<Person>> {
    events
        .iter()
        .filter_map(|e| match &e.change {
            Change::Assignee(a) => Some(a.as_ref().map(|i| {
                (
                    i.id.clone(),
                    i.email.clone(),
                    i.email_verified,
                    i.display_name.clone(),
                )
            })),
            _ => None,
        })
        .collect()
}

fn person(email: Option<&str>) -> Option<Person> {
    Some((
        "deadbeef123".into(),
        email.map(str::to_string),
        email.is_some(),
        Some("Jess MacQueen".into()),
    ))
}

#[test]
fn assignee_events() {
    setup();
    let events = handle(&request(&[], "", ASSIGNEE_PAYLOAD), &client()).unwrap();
    assert_eq!(assignee(&events), vec![person(Some("jess@sentry.io"))]);
    assert!(testing::requests().is_empty());

    let mut unassigned: Value = serde_json::from_str(ASSIGNEE_PAYLOAD).unwrap();
    unassigned["issue"]["fields"]["assignee"] = Value::Null;
    let unassigned = unassigned.to_string();
    let events = handle(&request(&[], "", &unassigned), &client()).unwrap();
    assert_eq!(assignee(&events), vec![None]);
    let missing = r#"{"changelog": {"items": [{"field": "assignee", "from": null}], "id": "1"},
                      "issue": {"fields": {}, "key": "APP-123"}}"#;
    let events = handle(&request(&[], "", missing), &client()).unwrap();
    assert_eq!(assignee(&events), vec![None]);
    assert!(
        handle(&request(&[], "", "{}"), &client())
            .unwrap()
            .is_empty()
    );
    // Without an account id, the email names the assignee.
    let no_account = ASSIGNEE_PAYLOAD.replace(r#""accountId": "deadbeef123","#, "");
    let events = handle(&request(&[], "", &no_account), &client()).unwrap();
    assert_eq!(
        assignee(&events),
        vec![Some((
            "jess@sentry.io".into(),
            Some("jess@sentry.io".into()),
            true,
            Some("Jess MacQueen".into())
        ))]
    );
}

#[test]
fn hidden_assignee_email_uses_the_email_api() {
    setup();
    let hidden = ASSIGNEE_PAYLOAD.replace(r#""jess@sentry.io""#, r#""""#);
    testing::on_http(|req| {
        assert_eq!(
            req.full_url(),
            "https://example.atlassian.net/rest/api/3/user/email?accountId=deadbeef123"
        );
        Ok(Response::json_body(
            200,
            &json!({"accountId": "deadbeef123", "email": "bob@example.com"}),
        ))
    });
    let events = handle(&request(&[], "", &hidden), &client()).unwrap();
    assert_eq!(assignee(&events), vec![person(Some("bob@example.com"))]);

    // No email at all: the account alone, for an identity mapping to match.
    testing::reset();
    testing::on_http(|_| {
        Ok(Response::json_body(
            200,
            &json!({"accountId": "deadbeef123"}),
        ))
    });
    let events = handle(&request(&[], "", &hidden), &client()).unwrap();
    assert_eq!(assignee(&events), vec![person(None)]);
    assert!(
        testing::logs()
            .iter()
            .any(|(level, m)| level == "warn" && m.contains("missing-assignee-email"))
    );

    testing::reset();
    testing::on_http(|_| Ok(Response::new(500, "boom")));
    let e = handle(&request(&[], "", &hidden), &client()).unwrap_err();
    assert_eq!(e.status(), Some(500));
}

#[test]
fn installations_stored_by_the_old_build_still_verify() {
    testing::reset();
    testing::set_now_ms(NOW * 1000);
    // 0.1.0's layout: the whole credential in the secrets; one without `auth`.
    testing::add_integration(
        CLIENT_KEY,
        json!({"base_url": "https://example.atlassian.net"}),
        json!({"credential": {"type": "connect", "client_key": CLIENT_KEY,
                              "shared_secret": SECRET, "app_key": "a"}}),
    );
    testing::add_integration(
        "example.atlassian.net",
        json!({"base_url": "https://example.atlassian.net", "auth": "api_token"}),
        json!({"credential": {"type": "api_token", "email": "e@x.test", "api_token": "t"},
               "webhook_secret": "w"}),
    );
    let auth = jwt(good_claims(), SECRET);
    let verified = verify(&request(&[("authorization", &auth)], "", STATUS_PAYLOAD)).unwrap();
    assert_eq!(verified.integration, CLIENT_KEY);
    let sig = hub_signature::sign(b"w", STATUS_PAYLOAD.as_bytes());
    let verified = verify(&request(&[("x-hub-signature", &sig)], "", STATUS_PAYLOAD)).unwrap();
    assert_eq!(verified.integration, "example.atlassian.net");
    // The API-token site has no shared secret: a JWT naming it finds nothing.
    let claims = json!({"iss": "example.atlassian.net", "exp": NOW + 100});
    assert_eq!(
        rejection(verify(&request(
            &[("authorization", &jwt(claims, "t"))],
            "",
            STATUS_PAYLOAD
        ))),
        (409, "No integration found".into())
    );
}

#[test]
fn secrets_are_used_by_handle() {
    setup();
    let auth = jwt(good_claims(), SECRET);
    verify(&request(&[("authorization", &auth)], "", STATUS_PAYLOAD)).unwrap();
    let sig = hub_signature::sign(b"It's a Secret to Everybody", STATUS_PAYLOAD.as_bytes());
    verify(&request(&[("x-hub-signature", &sig)], "", STATUS_PAYLOAD)).unwrap();
    assert_eq!(
        testing::secret_uses(),
        vec![
            (auth::SHARED_SECRET.to_string(), "get".to_string()),
            (
                auth::SHARED_SECRET.to_string(),
                "jwt-hs256-verify".to_string()
            ),
            ("webhook_secret".to_string(), "get".to_string()),
            (
                "webhook_secret".to_string(),
                "hmac-sha256-verify".to_string()
            )
        ]
    );
}
