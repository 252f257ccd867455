//! Reading an issue-updated webhook's `changelog` (sentry-flows §2.4).

use serde_json::Value;
use trackbridge_plugin_sdk::json;

use crate::ids::id_string;

/// Whether the payload carries a (truthy) `changelog`; deliveries without one
/// are ignored.
pub fn has_changelog(payload: &Value) -> bool {
    payload.get("changelog").is_some_and(json::is_truthy)
}

/// The `changelog.items` of a payload (none when missing).
pub fn items(payload: &Value) -> &[Value] {
    json::get(payload, &["changelog", "items"])
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn field_is(item: &Value, name: &str) -> bool {
    item.get("field").and_then(Value::as_str) == Some(name)
}

/// Whether any item changes the assignee.
pub fn assignee_changed(items: &[Value]) -> bool {
    items.iter().any(|item| field_is(item, "assignee"))
}

/// `(from, to)` status ids of the first `status` item, if there is one.
pub fn status_change(items: &[Value]) -> Option<(Option<String>, Option<String>)> {
    let item = items.iter().find(|item| field_is(item, "status"))?;
    Some((
        item.get("from").and_then(id_string),
        item.get("to").and_then(id_string),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn first_status_item_and_assignee() {
        let payload = json!({"changelog": {"items": [
            {"field": "summary", "from": "a", "to": "b"},
            {"field": "status", "from": "1", "to": 2},
            {"field": "status", "from": "3", "to": "4"},
            {"field": "assignee"}
        ]}});
        let items = items(&payload);
        assert_eq!(
            status_change(items),
            Some((Some("1".into()), Some("2".into())))
        );
        assert!(assignee_changed(items));
        assert!(!assignee_changed(&items[..3]));
        assert_eq!(status_change(&items[..1]), None);
        assert!(super::items(&json!({"changelog": {}})).is_empty());
    }

    #[test]
    fn truthy_changelogs_only() {
        assert!(has_changelog(&json!({"changelog": {"items": []}})));
        for payload in [
            json!({}),
            json!({"changelog": {}}),
            json!({"changelog": null}),
        ] {
            assert!(!has_changelog(&payload), "{payload}");
        }
    }
}
