//! The redelivery sweep (`maintain`): GitHub never retries a failed
//! delivery, so every interval the plugin lists the hook's recent deliveries
//! and asks GitHub to redeliver each one that never got a 2xx.

use std::collections::BTreeMap;

use serde_json::Value;
use trackbridge_plugin_sdk::http::{Method, Response};
use trackbridge_plugin_sdk::{Result, clock, info, json as j, time};

use crate::api::{Client, check};

/// How often the host runs the sweep.
pub const INTERVAL_SECS: u32 = 300;
/// GitHub.com keeps deliveries redeliverable for 3 days (GHES 7): the sweep
/// stays an hour inside the shorter one.
pub const WINDOW_SECS: u64 = 3 * 24 * 3600 - 3600;
/// Pages of 100 deliveries read per sweep.
const MAX_PAGES: usize = 5;
/// Redeliveries asked per sweep: each is a content-creating request, which
/// GitHub's secondary limits count (80 a minute); the next sweep goes on.
pub const MAX_REDELIVERIES: usize = 25;

/// Where a hook's deliveries are listed: a repository hook, or the App's hook.
pub struct Hook<'a> {
    pub client: &'a Client,
    /// `/repos/{o}/{r}/hooks/{id}` or `/app/hook`.
    pub base: String,
    /// For the App's hook, which serves every installation: only this repository's.
    pub repository_id: Option<u64>,
}

/// The `rel="next"` target of a `Link` header, relative to the API base.
fn next_page(response: &Response, api_url: &str) -> Option<String> {
    response.header("link")?.split(',').find_map(|link| {
        let (target, params) = link.split_once(';')?;
        if !params.contains("rel=\"next\"") {
            return None;
        }
        let target = target.trim().trim_start_matches('<').trim_end_matches('>');
        target.strip_prefix(api_url).map(str::to_string)
    })
}

fn succeeded(delivery: &Value) -> bool {
    j::u64_at(delivery, &["status_code"]).is_some_and(|s| (200..300).contains(&s))
}

/// Asks GitHub to redeliver every failed delivery in the window; returns how many.
pub fn sweep(hook: &Hook) -> Result<usize> {
    let cutoff_ms = clock::now_ms().saturating_sub(WINDOW_SECS * 1000);
    let in_window = |d: &Value| {
        j::str_at(d, &["delivered_at"])
            .and_then(time::parse_ms)
            .is_some_and(|t| t >= cutoff_ms)
    };
    let mut deliveries: Vec<Value> = Vec::new();
    let mut path = Some(format!("{}/deliveries?per_page=100", hook.base));
    for _ in 0..MAX_PAGES {
        let Some(current) = path.take() else { break };
        let response = check(
            hook.client.send(Method::Get, &current, None)?,
            "listing the webhook's deliveries",
        )?;
        let page: Vec<Value> = response.json::<Option<Vec<Value>>>()?.unwrap_or_default();
        // Newest first: a page reaching past the window is the last one needed.
        let more = !page.is_empty() && page.iter().all(in_window);
        deliveries.extend(page);
        if more {
            path = next_page(&response, hook.client.api_url());
        }
    }
    let ours = |d: &Value| {
        hook.repository_id
            .is_none_or(|id| j::u64_at(d, &["repository_id"]) == Some(id))
    };
    // Attempts of one delivery share its GUID; one 2xx among them is enough.
    let mut by_guid: BTreeMap<String, (bool, u64)> = BTreeMap::new();
    for d in deliveries.iter().filter(|d| in_window(d) && ours(d)) {
        let (Some(guid), Some(id)) = (j::str_at(d, &["guid"]), j::u64_at(d, &["id"])) else {
            continue;
        };
        // A ping carries nothing to recover.
        if j::str_at(d, &["event"]) == Some("ping") {
            continue;
        }
        let entry = by_guid.entry(guid.to_string()).or_insert((false, id));
        entry.0 |= succeeded(d);
        entry.1 = entry.1.max(id);
    }
    let failed: Vec<u64> = by_guid
        .values()
        .filter(|(ok, _)| !ok)
        .map(|(_, id)| *id)
        .take(MAX_REDELIVERIES)
        .collect();
    for id in &failed {
        let path = format!("{}/deliveries/{id}/attempts", hook.base);
        check(
            hook.client.send(Method::Post, &path, None)?,
            &format!("redelivering delivery {id}"),
        )?;
    }
    if !failed.is_empty() {
        info!(
            "asked GitHub to redeliver {} failed deliveries",
            failed.len()
        );
    }
    Ok(failed.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use trackbridge_plugin_sdk::testing;

    #[test]
    fn redelivers_failed_guids_inside_the_window_once() {
        testing::reset();
        testing::set_now_ms(time::parse_ms("2024-05-10T12:00:00Z").unwrap());
        let listed = json!([
            {"id": 9, "guid": "a", "status_code": 502, "event": "issues", "delivered_at": "2024-05-10T11:00:00Z", "repository_id": 1},
            {"id": 8, "guid": "a", "status_code": 500, "event": "issues", "delivered_at": "2024-05-10T10:00:00Z", "repository_id": 1},
            {"id": 7, "guid": "b", "status_code": 200, "event": "issues", "delivered_at": "2024-05-10T10:00:00Z", "repository_id": 1},
            {"id": 6, "guid": "b", "status_code": 0, "event": "issues", "delivered_at": "2024-05-10T09:00:00Z", "repository_id": 1},
            {"id": 5, "guid": "c", "status_code": 404, "event": "ping", "delivered_at": "2024-05-10T09:00:00Z", "repository_id": 1},
            {"id": 4, "guid": "d", "status_code": 500, "event": "issues", "delivered_at": "2024-05-10T09:00:00Z", "repository_id": 2},
            {"id": 3, "guid": "e", "status_code": 500, "event": "issues", "delivered_at": "2024-05-01T09:00:00Z", "repository_id": 1}
        ]);
        testing::on_http(move |r| {
            Ok(match r.method {
                Method::Get => Response::json_body(200, &listed),
                _ => Response::new(202, "{}"),
            })
        });
        let client = Client::new("https://api.github.com", "Bearer t".into());
        let hook = Hook {
            client: &client,
            base: "/app/hook".into(),
            repository_id: Some(1),
        };
        assert_eq!(sweep(&hook).unwrap(), 1);
        let posts: Vec<String> = testing::requests()
            .iter()
            .filter(|r| r.method == Method::Post)
            .map(|r| r.url.clone())
            .collect();
        assert_eq!(
            posts,
            ["https://api.github.com/app/hook/deliveries/9/attempts"]
        );
    }
}
