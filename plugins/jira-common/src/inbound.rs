//! Turning a verified issue-updated delivery into inbound events: an
//! assignee change and a status change with its resolve/unresolve action.

use serde_json::Value;
use trackbridge_plugin_sdk::provider::{Change, InboundEvent, StatusChange};
use trackbridge_plugin_sdk::{Error, Result, json, warn};

use crate::api::JiraApi;
use crate::changelog::{assignee_changed, has_changelog, items, status_change};
use crate::statuses::status_action;

/// The events of the delivery `body`; `delivery_id` names the delivery from
/// its payload (each provider identifies deliveries its own way).
pub fn events<C: JiraApi>(
    body: &[u8],
    client: &C,
    delivery_id: impl FnOnce(&Value) -> Option<String>,
) -> Result<Vec<InboundEvent>> {
    let payload: Value = crate::payload::parse(body)
        .map_err(|e| Error::rejected(format!("malformed JSON body: {e}")))?;
    if !has_changelog(&payload) {
        return Ok(Vec::new());
    }
    let key = json::non_empty_str_at(&payload, &["issue", "key"])
        .ok_or_else(|| Error::rejected("the webhook has no issue.key"))?;
    let items = items(&payload);

    let mut changes = Vec::new();
    if assignee_changed(items)
        && let Some(change) = assignee_change(&payload, client)?
    {
        changes.push(change);
    }
    if let Some((from, to)) = status_change(items) {
        let done = client.done_status_ids()?;
        let action = status_action(from.as_deref(), to.as_deref(), &done);
        changes.push(Change::Status(StatusChange { from, to, action }));
    }

    let delivery_id = delivery_id(&payload);
    let event_time = json::u64_at(&payload, &["timestamp"]);
    Ok(changes
        .into_iter()
        .map(|change| InboundEvent {
            external_issue: key.to_string(),
            change,
            event_time,
            delivery_id: delivery_id.clone(),
        })
        .collect())
}

/// `Some(Assignee(None))` for a null or missing assignee,
/// `Some(Assignee(Some(identity)))` for an assignment (see
/// [`JiraApi::assignee_identity`]; the email is the `emailAddress`, else what
/// [`JiraApi::hidden_assignee_email`] finds), `None` when the assignee cannot
/// be named.
pub fn assignee_change<C: JiraApi>(payload: &Value, client: &C) -> Result<Option<Change>> {
    let assignee = match json::get(payload, &["issue", "fields", "assignee"]) {
        None | Some(Value::Null) => return Ok(Some(Change::Assignee(None))),
        Some(a) => a,
    };
    let email = match json::non_empty_str_at(assignee, &["emailAddress"]) {
        Some(email) => Some(email.to_string()),
        None => client.hidden_assignee_email(assignee)?,
    };
    match client.assignee_identity(assignee, email) {
        Some(identity) => Ok(Some(Change::Assignee(Some(identity)))),
        None => {
            warn!("jira.missing-assignee-email: the assignee of this issue has no visible email");
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_client::TestClient;
    use serde_json::json;
    use trackbridge_plugin_sdk::http::Response;
    use trackbridge_plugin_sdk::provider::{Identity, StatusAction};
    use trackbridge_plugin_sdk::testing;

    #[test]
    fn status_and_assignee_events() {
        testing::reset();
        testing::on_http(|_| {
            Ok(Response::json_body(
                200,
                &json!([{"id": "10", "statusCategory": {"key": "done"}}]),
            ))
        });
        let body = br#"{"changelog": {"items": [{"field": "status", "from": "3", "to": "10"},
            {"field": "assignee"}]}, "timestamp": 5,
            "issue": {"key": "APP-1", "fields": {"assignee": {"emailAddress": "a@x.test",
            "user": "u-1", "displayName": "A X"}}}}"#;
        let events = events(body, &TestClient, |p| Some(format!("d-{}", p["timestamp"]))).unwrap();
        assert_eq!(events.len(), 2);
        assert!(events.iter().all(|e| e.external_issue == "APP-1"
            && e.event_time == Some(5)
            && e.delivery_id.as_deref() == Some("d-5")));
        assert_eq!(
            format!("{:?}", events[0].change),
            format!(
                "{:?}",
                Change::Assignee(Some(
                    Identity::new("u-1")
                        .with_email("a@x.test", true)
                        .with_display_name("A X")
                ))
            )
        );
        assert_eq!(
            format!("{:?}", events[1].change),
            format!(
                "{:?}",
                Change::Status(StatusChange {
                    from: Some("3".into()),
                    to: Some("10".into()),
                    action: StatusAction::Resolve
                })
            )
        );
    }

    #[test]
    fn ignored_and_malformed_deliveries() {
        testing::reset();
        assert!(events(b"{}", &TestClient, |_| None).unwrap().is_empty());
        let e = events(b"{nope", &TestClient, |_| None).unwrap_err();
        assert!(e.message().starts_with("malformed JSON body"), "{e}");
        let e = events(br#"{"changelog": {"items": []}}"#, &TestClient, |_| None).unwrap_err();
        assert_eq!(e.message(), "the webhook has no issue.key");
        // Without an email API, a hidden email yields no event and a warning.
        let hidden = br#"{"changelog": {"items": [{"field": "assignee"}]},
            "issue": {"key": "APP-1", "fields": {"assignee": {"name": "bob"}}}}"#;
        assert!(events(hidden, &TestClient, |_| None).unwrap().is_empty());
        assert!(testing::requests().is_empty());
        assert!(
            testing::logs()
                .iter()
                .any(|(level, m)| level == "warn" && m.contains("missing-assignee-email"))
        );
    }
}
