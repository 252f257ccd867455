//! The issue calls inbound and outbound share: reading an issue and finding
//! whom this product assigned last.

use serde_json::Value;
use trackbridge_plugin_sdk::http::{Method, Response};
use trackbridge_plugin_sdk::url::parse_query;
use trackbridge_plugin_sdk::{Result, warn};

use crate::api::{Client, check};
use crate::issue::{IssueKey, last_assigned_by};

/// Events per page (GitHub's maximum).
const PER_PAGE: u32 = 100;

/// The issue, or `None` when it is gone (404, 410: deleted, transferred
/// beyond reach).
pub fn fetch_issue(client: &Client, key: &IssueKey) -> Result<Option<Value>> {
    let response = client.send(Method::Get, &key.path(), None)?;
    if matches!(response.status, 404 | 410) {
        warn!("GitHub issue {key} is gone (HTTP {})", response.status);
        return Ok(None);
    }
    check(response, &format!("reading issue {key}"))?
        .json()
        .map(Some)
}

/// The page number of `rel="last"` in a `Link` header.
fn last_page(response: &Response) -> Option<u32> {
    response.header("link")?.split(',').find_map(|link| {
        let (target, params) = link.split_once(';')?;
        if !params.contains("rel=\"last\"") {
            return None;
        }
        let target = target.trim().trim_start_matches('<').trim_end_matches('>');
        let (_, query) = target.split_once('?')?;
        parse_query(query)
            .into_iter()
            .find(|(k, _)| k == "page")
            .and_then(|(_, v)| v.parse().ok())
    })
}

/// Whom `actor` assigned last on the issue. Events come oldest first, so
/// the last page is the one that matters.
pub fn assigned_by(client: &Client, key: &IssueKey, actor: &str) -> Result<Option<String>> {
    let path = format!("{}/events?per_page={PER_PAGE}", key.path());
    let first = check(
        client.send(Method::Get, &path, None)?,
        &format!("reading the events of {key}"),
    )?;
    let events = match last_page(&first) {
        Some(last) if last > 1 => check(
            client.send(Method::Get, &format!("{path}&page={last}"), None)?,
            &format!("reading the events of {key}"),
        )?
        .json::<Value>()?,
        _ => first.json::<Value>()?,
    };
    Ok(last_assigned_by(&events, actor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use trackbridge_plugin_sdk::testing;

    #[test]
    fn reads_the_last_page_of_events() {
        testing::reset();
        testing::on_http(|r| {
            Ok(if r.url.ends_with("&page=3") {
                Response::json_body(
                    200,
                    &json!([{"event": "assigned", "actor": {"login": "me"}, "assignee": {"login": "late"}}]),
                )
            } else {
                Response::json_body(200, &json!([{"event": "assigned", "actor": {"login": "me"}, "assignee": {"login": "early"}}]))
                    .with_header("link", "<https://api.github.com/repositories/1/issues/2/events?per_page=100&page=2>; rel=\"next\", <https://api.github.com/repositories/1/issues/2/events?per_page=100&page=3>; rel=\"last\"")
            })
        });
        let client = Client::new("https://api.github.com", "Bearer t".into());
        let key = IssueKey::parse("o/r#2").unwrap();
        assert_eq!(
            assigned_by(&client, &key, "me").unwrap().as_deref(),
            Some("late")
        );
        assert_eq!(
            testing::requests()[0].url,
            "https://api.github.com/repos/o/r/issues/2/events?per_page=100"
        );
    }

    #[test]
    fn a_deleted_issue_is_none() {
        testing::reset();
        testing::on_http(|_| {
            Ok(Response::json_body(
                410,
                &json!({"message": "This issue was deleted"}),
            ))
        });
        let client = Client::new("https://api.github.com", "Bearer t".into());
        assert!(
            fetch_issue(&client, &IssueKey::parse("o/r#2").unwrap())
                .unwrap()
                .is_none()
        );
    }
}
