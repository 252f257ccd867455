//! `POST /extensions/jira-server/issue-updated/{token}/` (sentry-flows §6.3):
//! the token in the URL names and authenticates the integration; an admin
//! webhook's `X-Hub-Signature` is checked too when one was configured. The
//! host does both checks with the stored secrets.

use serde_json::Value;
use trackbridge_jira_common::has_changelog;
use trackbridge_plugin_sdk::crypto::sha256_hex;
use trackbridge_plugin_sdk::provider::{InboundEvent, IncomingRequest, Rejection, VerifiedWebhook};
use trackbridge_plugin_sdk::secrets::{self, Secret};
use trackbridge_plugin_sdk::url::decode;
use trackbridge_plugin_sdk::{Result, integration, json, warn};

use crate::client::Client;
use crate::jwt;

/// The secret the URL token is signed with (derived at installation).
pub const WEBHOOK_SECRET: &str = "webhook_secret";
/// The operator's optional admin webhook secret, for `X-Hub-Signature`.
pub const ADMIN_WEBHOOK_SECRET: &str = "admin_webhook_secret";

fn bad_request(message: &str) -> Rejection {
    Rejection::new(400, message)
}

/// The route's token, percent-decoded and trimmed (the host passes raw segments).
fn token(request: &IncomingRequest) -> Option<String> {
    let raw = request.route_param("token")?;
    let token = decode(raw, false).trim().to_string();
    (!token.is_empty()).then_some(token)
}

pub fn verify(request: &IncomingRequest) -> Result<VerifiedWebhook, Rejection> {
    let token = token(request).ok_or_else(|| bad_request("Token was not provided"))?;
    // Unverified: it only says whose secret to verify it with.
    let claims =
        jwt::unverified_claims(&token).ok_or_else(|| bad_request("Could not decode the token"))?;
    let external_id = claims
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| bad_request("The token has no id"))?;
    let installation = integration::select(external_id)
        .ok_or_else(|| bad_request("No integration found for the token"))?;
    let secret = secrets::get(WEBHOOK_SECRET)
        .ok_or_else(|| bad_request("No integration found for the token"))?;
    let verified = secret.jwt_hs256_verify(&token);
    // The verified claims must name the integration selected by the unverified ones.
    if !verified.is_ok_and(|claims| claims.get("id").and_then(Value::as_str) == Some(external_id)) {
        warn!("jira_server.webhook.invalid_token for {external_id}");
        return Err(bad_request("The token's signature is invalid"));
    }
    if let (Some(signature), Some(admin_secret)) = (
        request.header("x-hub-signature"),
        secrets::get(ADMIN_WEBHOOK_SECRET),
    ) && !hub_signature_valid(&admin_secret, &request.body, signature)
    {
        return Err(Rejection::new(401, "X-Hub-Signature is invalid"));
    }
    let payload = parse_body(&request.body)?;
    Ok(VerifiedWebhook {
        integration: installation.external_id,
        delivery_id: delivery_id(&payload),
        event_time: json::u64_at(&payload, &["timestamp"]),
        ignore: !has_changelog(&payload),
    })
}

fn parse_body(body: &[u8]) -> Result<Value, Rejection> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad_request("empty body"));
    }
    match trackbridge_jira_common::payload::parse(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(bad_request("malformed JSON body")),
    }
}

/// `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw body>`, compared by
/// the host in constant time; any other algorithm fails.
pub fn hub_signature_valid(secret: &Secret, body: &[u8], header: &str) -> bool {
    let Some((algorithm, digest)) = header.trim().split_once('=') else {
        return false;
    };
    algorithm.eq_ignore_ascii_case("sha256") && secret.hmac_sha256_verify_hex(body, digest)
}

/// Data Center sends no delivery identifier: hex SHA-256 of (`webhookEvent`,
/// `issue.id`, `timestamp`, `changelog.id`) as a JSON array (webhook-reliability
/// §3.1). `None` when none of them is present.
pub fn delivery_id(payload: &Value) -> Option<String> {
    let parts = [
        json::get(payload, &["webhookEvent"]),
        json::get(payload, &["issue", "id"]),
        json::get(payload, &["timestamp"]),
        json::get(payload, &["changelog", "id"]),
    ];
    if parts.iter().all(|p| p.is_none_or(Value::is_null)) {
        return None;
    }
    let key = Value::Array(
        parts
            .iter()
            .map(|p| p.cloned().unwrap_or(Value::Null))
            .collect(),
    );
    Some(sha256_hex(key.to_string().as_bytes()))
}

/// The events of a verified delivery; the integration is current. An
/// assignee is named by its user name (see [`Client`]'s `assignee_identity`).
pub fn handle(request: &IncomingRequest, client: &Client) -> Result<Vec<InboundEvent>> {
    trackbridge_jira_common::events(&request.body, client, delivery_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::tests::test_oauth;
    use serde_json::json;
    use trackbridge_jira_common::status_action;
    use trackbridge_plugin_sdk::crypto::hmac_sha256_hex;
    use trackbridge_plugin_sdk::http::Response;
    use trackbridge_plugin_sdk::provider::{Change, Identity, StatusAction, StatusChange};
    use trackbridge_plugin_sdk::testing;

    const EXTERNAL_ID: &str = "jira.example.com:sentry-bot";
    const SECRET: &str = "a-webhook-secret";
    const ADMIN_SECRET: &str = "It's a Secret to Everybody";
    const ASSIGNEE: &str = r#"{"changelog": {"items": [{"field": "assignee"}], "id": 12345},
        "issue": {"fields": {"assignee": {"emailAddress": "bob@example.org"}}, "key": "APP-1"}}"#;
    const STATUS: &str = r#"{"changelog": {"items": [{"from": "10101", "field": "status",
        "fromString": "In Progress", "to": "10102", "toString": "Done", "fieldtype": "jira",
        "fieldId": "status"}], "id": 12345}, "timestamp": 1700000000123,
        "webhookEvent": "jira:issue_updated",
        "issue": {"id": "10001", "project": {"key": "APP", "id": "10000"}, "key": "APP-1"}}"#;

    fn setup(admin_secret: Option<&str>) {
        testing::reset();
        let mut secrets = json!({"webhook_secret": SECRET, "private_key": crate::tests::TEST_KEY});
        if let Some(s) = admin_secret {
            secrets["admin_webhook_secret"] = json!(s);
        }
        testing::add_integration(
            EXTERNAL_ID,
            json!({"base_url": "https://jira.example.com", "consumer_key": "sentry-bot",
                   "access_token": "access-token"}),
            secrets,
        );
        testing::make_current(EXTERNAL_ID);
    }

    fn token(claims: Value, secret: &str) -> String {
        jwt::sign(&claims, secret.as_bytes())
    }

    fn good_token() -> String {
        token(json!({"id": EXTERNAL_ID}), SECRET)
    }

    fn request(token: &str, headers: &[(&str, &str)], body: &str) -> IncomingRequest {
        IncomingRequest {
            method: "POST".into(),
            path: format!("/extensions/jira-server/issue-updated/{token}/"),
            query: String::new(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            route_params: vec![("token".into(), token.into())],
            body: body.as_bytes().to_vec(),
        }
    }

    fn status_of(r: Result<VerifiedWebhook, Rejection>) -> u16 {
        r.map(|_| 200).unwrap_or_else(|e| e.status)
    }

    #[test]
    fn valid_token_is_accepted() {
        setup(None);
        let verified = verify(&request(&good_token(), &[], STATUS)).unwrap();
        assert_eq!(verified.integration, EXTERNAL_ID);
        assert_eq!(verified.event_time, Some(1_700_000_000_123));
        assert!(!verified.ignore);
        let expected = sha256_hex(br#"["jira:issue_updated","10001",1700000000123,12345]"#);
        assert_eq!(verified.delivery_id, Some(expected));
        // The host verified the token with the stored secret.
        assert!(
            testing::secret_uses()
                .contains(&("webhook_secret".to_string(), "jwt-hs256-verify".to_string()))
        );
    }

    #[test]
    fn sentry_rejections_are_400() {
        setup(None);
        for (token, why) in [
            ("%20".to_string(), "blank"),
            (" ".to_string(), "space"),
            ("not-a-jwt".to_string(), "undecodable"),
            (token(json!({}), SECRET), "no id"),
            (token(json!({"id": ""}), SECRET), "empty id"),
            (token(json!({"id": 5}), SECRET), "numeric id"),
            (
                token(json!({"id": "other:key"}), SECRET),
                "unknown integration",
            ),
            (
                token(json!({"id": EXTERNAL_ID}), "bad-secret"),
                "bad secret",
            ),
        ] {
            assert_eq!(
                status_of(verify(&request(&token, &[], ASSIGNEE))),
                400,
                "{why}"
            );
        }
        assert_eq!(status_of(verify(&request(&good_token(), &[], ""))), 400);
        assert_eq!(
            status_of(verify(&request(&good_token(), &[], "{\"changelog\""))),
            400
        );
        assert_eq!(status_of(verify(&request(&good_token(), &[], "[1]"))), 400);
    }

    #[test]
    fn no_changelog_is_ignored() {
        setup(None);
        for body in ["{}", r#"{"changelog": {}}"#, r#"{"changelog": null}"#] {
            assert!(
                verify(&request(&good_token(), &[], body)).unwrap().ignore,
                "{body}"
            );
        }
    }

    #[test]
    fn hub_signature_checked_when_configured() {
        setup(Some(ADMIN_SECRET));
        let sign = |secret: &[u8], body: &str| {
            format!("sha256={}", hmac_sha256_hex(secret, body.as_bytes()))
        };
        let good = sign(ADMIN_SECRET.as_bytes(), ASSIGNEE);
        let bad = sign(b"other", ASSIGNEE);
        let t = good_token();
        assert_eq!(
            status_of(verify(&request(
                &t,
                &[("X-Hub-Signature", &good)],
                ASSIGNEE
            ))),
            200
        );
        assert_eq!(
            status_of(verify(&request(&t, &[("x-hub-signature", &bad)], ASSIGNEE))),
            401
        );
        assert_eq!(
            status_of(verify(&request(
                &t,
                &[("x-hub-signature", "sha1=00")],
                ASSIGNEE
            ))),
            401
        );
        // Without the header, the URL token alone authenticates (as in Sentry).
        assert_eq!(status_of(verify(&request(&t, &[], ASSIGNEE))), 200);
        // The GitHub vector.
        testing::make_current(EXTERNAL_ID);
        assert!(hub_signature_valid(
            &secrets::require(ADMIN_WEBHOOK_SECRET).unwrap(),
            b"Hello, World!",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        ));
        // Without an admin secret the header is not checked.
        setup(None);
        assert_eq!(
            status_of(verify(&request(&t, &[("x-hub-signature", &bad)], ASSIGNEE))),
            200
        );
    }

    fn client() -> Client {
        Client::new("https://jira.example.com", test_oauth())
    }

    fn assignee_of(body: &str) -> Vec<String> {
        handle(&request(&good_token(), &[], body), &client())
            .unwrap()
            .iter()
            .map(|e| format!("{:?}", e.change))
            .collect()
    }

    fn assigned(identity: Identity) -> Vec<String> {
        vec![format!("{:?}", Change::Assignee(Some(identity)))]
    }

    #[test]
    fn assignee_events() {
        setup(None);
        let events = handle(&request(&good_token(), &[], ASSIGNEE), &client()).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].external_issue, "APP-1");
        // Without a user name, the email is all there is to name the assignee by.
        assert_eq!(
            assignee_of(ASSIGNEE),
            assigned(Identity::new("bob@example.org").with_email("bob@example.org", true))
        );
        let full = r#"{"changelog": {"items": [{"field": "assignee"}]}, "issue": {"key": "APP-1",
            "fields": {"assignee": {"name": "bob", "key": "JIRAUSER10100", "displayName": "Bob B",
            "emailAddress": "bob@example.org"}}}}"#;
        assert_eq!(
            assignee_of(full),
            assigned(
                Identity::new("bob")
                    .with_login("bob")
                    .with_display_name("Bob B")
                    .with_email("bob@example.org", true)
            )
        );
        let unassigned = r#"{"changelog": {"items": [{"field": "assignee"}]}, "issue": {"key": "APP-1", "fields": {"assignee": null}}}"#;
        let missing = r#"{"changelog": {"items": [{"field": "assignee"}]}, "issue": {"key": "APP-1", "fields": {}}}"#;
        for body in [unassigned, missing] {
            assert_eq!(
                assignee_of(body),
                vec![format!("{:?}", Change::Assignee(None))]
            );
        }
        // A hidden email no longer loses the event: the name is enough for
        // an operator's mapping.
        let no_email = r#"{"changelog": {"items": [{"field": "assignee"}]}, "issue": {"key": "APP-1", "fields": {"assignee": {"name": "bob", "emailAddress": ""}}}}"#;
        assert_eq!(
            assignee_of(no_email),
            assigned(Identity::new("bob").with_login("bob"))
        );
        let nameless = r#"{"changelog": {"items": [{"field": "assignee"}]}, "issue": {"key": "APP-1", "fields": {"assignee": {"displayName": "Bob"}}}}"#;
        assert!(assignee_of(nameless).is_empty());
        // Never an outbound call for assignee changes.
        assert!(testing::requests().is_empty());
    }

    #[test]
    fn status_events_use_done_categories() {
        setup(None);
        testing::make_current(EXTERNAL_ID);
        testing::on_http(|req| {
            assert_eq!(req.full_url(), "https://jira.example.com/rest/api/2/status");
            Ok(Response::json_body(
                200,
                &json!([
                    {"id": "10101", "statusCategory": {"key": "indeterminate"}},
                    {"id": "10102", "statusCategory": {"key": "done"}}
                ]),
            ))
        });
        let events = handle(&request(&good_token(), &[], STATUS), &client()).unwrap();
        assert_eq!(
            format!("{:?}", events[0].change),
            format!(
                "{:?}",
                Change::Status(StatusChange {
                    from: Some("10101".into()),
                    to: Some("10102".into()),
                    action: StatusAction::Resolve
                })
            )
        );
        assert_eq!(events[0].event_time, Some(1_700_000_000_123));
        let done = vec!["10102".to_string()];
        assert_eq!(
            status_action(Some("10102"), Some("3"), &done),
            StatusAction::Unresolve
        );
        assert_eq!(
            status_action(Some("3"), Some("4"), &done),
            StatusAction::None
        );
        assert_eq!(
            status_action(Some("10102"), Some("10102"), &done),
            StatusAction::None
        );
    }
}
