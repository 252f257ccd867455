//! Outbound status sync: moving an issue to the status its project's mapping
//! names (sentry-flows §2.2).

use serde_json::Value;
use trackbridge_plugin_sdk::provider::{StatusMapping, SyncOutcome};
use trackbridge_plugin_sdk::{Error, Result, json};

use crate::api::JiraApi;
use crate::ids::id_string;

/// Get the issue, find its project's mapping, stop if it is already in the
/// target status, else POST the first transition leading there.
pub fn sync_status<C: JiraApi>(
    client: &C,
    key: &str,
    resolve: bool,
    mappings: &[StatusMapping],
) -> Result<SyncOutcome> {
    let issue = client.issue(key)?;
    let project = json::get(&issue, &["fields", "project", "id"])
        .and_then(id_string)
        .ok_or_else(|| {
            Error::upstream(200, format!("Jira issue {key} has no fields.project.id"))
        })?;
    let Some(mapping) = mappings.iter().find(|m| m.external_project == project) else {
        return Ok(SyncOutcome::unchanged(format!(
            "no status mapping for Jira project {project}"
        )));
    };
    let target = if resolve {
        &mapping.on_resolve
    } else {
        &mapping.on_unresolve
    };
    let current = json::get(&issue, &["fields", "status", "id"]).and_then(id_string);
    if current.as_deref() == Some(target.as_str()) {
        return Ok(SyncOutcome::unchanged(format!(
            "already in status {target}"
        )));
    }
    let transitions = client
        .transitions(key)
        .map_err(|e| client.transitions_error(e))?;
    let Some(transition) = pick_transition(&transitions, target) else {
        client.no_transition(key, target);
        return Err(Error::rejected(format!(
            "no transition to status {target} is available for {key}"
        )));
    };
    client.transition(key, &transition)?;
    Ok(SyncOutcome::changed())
}

/// The id of the first transition leading to `target`; transitions without a
/// `to` status are skipped.
pub fn pick_transition(transitions: &Value, target: &str) -> Option<String> {
    transitions.as_array()?.iter().find_map(|t| {
        let to = json::get(t, &["to", "id"]).and_then(id_string)?;
        if to == target {
            t.get("id").and_then(id_string)
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_client::{BASE, TestClient};
    use serde_json::json;
    use trackbridge_plugin_sdk::http::{Method, Response};
    use trackbridge_plugin_sdk::testing;

    fn client() -> TestClient {
        TestClient
    }

    fn transitions() -> Value {
        json!({"expand": "transitions", "transitions": [
            {"id": "11", "name": "To Do", "to": {"id": "10100"}},
            {"id": "21", "name": "In Progress", "to": {"id": "3"}},
            {"id": "31", "name": "Done", "to": {"id": "10101"}},
            {"id": "61", "name": "Kicked"}
        ]})
    }

    fn mapping() -> Vec<StatusMapping> {
        vec![StatusMapping {
            external_project: "10100".into(),
            on_resolve: "10101".into(),
            on_unresolve: "3".into(),
        }]
    }

    /// A fake Jira: issue SEN-5 in project 10100, status 10100.
    fn fake_jira(status: &'static str) {
        testing::on_http(move |req| {
            let url = req.full_url();
            let path = url.strip_prefix(BASE).unwrap_or(&url).to_string();
            Ok(match (req.method, path.as_str()) {
                (Method::Get, "/rest/api/2/issue/SEN-5") => Response::json_body(
                    200,
                    &json!({"key": "SEN-5", "fields": {"project": {"id": "10100"}, "status": {"id": status}}}),
                ),
                (Method::Get, "/rest/api/2/issue/SEN-5/transitions") => {
                    Response::json_body(200, &transitions())
                }
                (Method::Post, "/rest/api/2/issue/SEN-5/transitions") => Response::new(204, ""),
                _ => Response::json_body(404, &json!({"errorMessages": ["Issue does not exist"]})),
            })
        });
    }

    fn posted_transition() -> Option<Value> {
        testing::requests()
            .iter()
            .find(|r| r.method == Method::Post)
            .map(|r| serde_json::from_slice(r.body.as_deref().unwrap_or_default()).unwrap())
    }

    #[test]
    fn transitions_like_sentry() {
        for (resolve, expected) in [(false, "21"), (true, "31")] {
            testing::reset();
            fake_jira("10100");
            let outcome = sync_status(&client(), "SEN-5", resolve, &mapping()).unwrap();
            assert!(outcome.changed);
            assert_eq!(
                posted_transition(),
                Some(json!({"transition": {"id": expected}}))
            );
        }
    }

    #[test]
    fn status_noops_and_failures() {
        testing::reset();
        fake_jira("10101");
        let outcome = sync_status(&client(), "SEN-5", true, &mapping()).unwrap();
        assert_eq!(
            (outcome.changed, outcome.note.as_deref()),
            (false, Some("already in status 10101"))
        );
        assert_eq!(testing::requests().len(), 1);

        let outcome = sync_status(&client(), "SEN-5", true, &[]).unwrap();
        assert_eq!(
            outcome.note.as_deref(),
            Some("no status mapping for Jira project 10100")
        );

        let mut unknown_target = mapping();
        unknown_target[0].on_resolve = "99".into();
        let e = sync_status(&client(), "SEN-5", true, &unknown_target).unwrap_err();
        assert!(
            matches!(e, Error::Rejected(ref m) if m.starts_with("no transition to status 99")),
            "{e}"
        );

        let e = sync_status(&client(), "NOPE-1", true, &mapping()).unwrap_err();
        assert!(matches!(e, Error::Rejected(_)), "{e}");
    }

    #[test]
    fn picks_first_matching_transition() {
        let t =
            json!([{"id": "1"}, {"id": "2", "to": {"id": "5"}}, {"id": "3", "to": {"id": "5"}}]);
        assert_eq!(pick_transition(&t, "5").as_deref(), Some("2"));
        assert_eq!(pick_transition(&t, "6"), None);
        assert_eq!(pick_transition(&json!({}), "5"), None);
    }
}
