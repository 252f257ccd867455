//! Outbound syncs (sentry-flows §7.4): moving a work item to the mapped state
//! with an optimistic-concurrency JSON Patch, and assigning it to the graph
//! user behind a verified email.

use serde_json::{Value, json};
use trackbridge_plugin_sdk::http::Response;
use trackbridge_plugin_sdk::provider::{StatusMapping, SyncOutcome, UserRef};
use trackbridge_plugin_sdk::{Error, Result, info, json as j, warn};

use crate::client::Client;

/// Projects per page and pages read when looking a project up by name.
pub const PROJECTS_PAGE: usize = 100;
pub const MAX_PROJECT_PAGES: usize = 10;

/// How often a status sync plans (reads the work item and patches it) when
/// someone else keeps editing the item in between.
pub const MAX_STATUS_ATTEMPTS: usize = 3;

/// Graph pages read before giving up on finding a user.
pub const MAX_USER_PAGES: usize = 100;

/// True when a PATCH failed because its `test /rev` op did not hold: the work
/// item changed since we read it.
pub fn is_revision_conflict(response: &Response) -> bool {
    if response.status == 412 {
        return true;
    }
    if !matches!(response.status, 400 | 409) {
        return false;
    }
    let reason = response.error_reason().to_lowercase();
    ["tf26071", "test operation", "changed by someone else"]
        .iter()
        .any(|needle| reason.contains(needle))
}

/// The id of the well-formed project named `name` (case-insensitive), reading
/// at most [`MAX_PROJECT_PAGES`] pages.
pub fn project_id(client: &Client, name: &str) -> Result<Option<String>> {
    let wanted = name.to_lowercase();
    for page in 0..MAX_PROJECT_PAGES {
        let answer = client.projects(PROJECTS_PAGE, page * PROJECTS_PAGE)?;
        let projects = answer
            .get("value")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let found = projects.iter().find(|p| {
            p.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.to_lowercase() == wanted)
        });
        if let Some(id) = found.and_then(|p| j::non_empty_str_at(p, &["id"])) {
            return Ok(Some(id.to_string()));
        }
        if projects.len() < PROJECTS_PAGE {
            break;
        }
    }
    Ok(None)
}

/// The JSON Patch moving a work item read at `rev` to `state`.
pub fn state_patch(rev: &Value, state: &str) -> Value {
    json!([
        {"op": "test", "path": "/rev", "value": rev},
        {"op": "replace", "path": "/fields/System.State", "value": state}
    ])
}

pub fn sync_status(
    client: &Client,
    id: &str,
    resolve: bool,
    mappings: &[StatusMapping],
) -> Result<SyncOutcome> {
    let mut project: Option<(String, String)> = None;
    for attempt in 1..=MAX_STATUS_ATTEMPTS {
        let item = client.work_item(id)?;
        let name = j::non_empty_str_at(&item, &["fields", "System.TeamProject"])
            .ok_or_else(|| {
                Error::upstream(200, format!("work item {id} has no System.TeamProject"))
            })?
            .to_string();
        let project_id = match &project {
            Some((known, pid)) if *known == name => pid.clone(),
            _ => {
                let Some(pid) = project_id(client, &name)? else {
                    return Ok(SyncOutcome::unchanged(format!(
                        "no well-formed Azure DevOps project named {name}"
                    )));
                };
                project = Some((name.clone(), pid.clone()));
                pid
            }
        };
        let Some(mapping) = mappings.iter().find(|m| m.external_project == project_id) else {
            return Ok(SyncOutcome::unchanged(format!(
                "no status mapping for Azure DevOps project {name} ({project_id})"
            )));
        };
        let target = if resolve {
            &mapping.on_resolve
        } else {
            &mapping.on_unresolve
        };
        if j::str_at(&item, &["fields", "System.State"]) == Some(target.as_str()) {
            return Ok(SyncOutcome::unchanged(format!("already in state {target}")));
        }
        let rev = item
            .get("rev")
            .cloned()
            .ok_or_else(|| Error::upstream(200, format!("work item {id} has no rev")))?;
        let response = client.patch_work_item(id, &state_patch(&rev, target))?;
        if response.is_success() {
            return Ok(SyncOutcome::changed());
        }
        if is_revision_conflict(&response) && attempt < MAX_STATUS_ATTEMPTS {
            info!("work item {id} changed since rev {rev}; planning again");
            continue;
        }
        response.error_for_status()?;
    }
    Err(Error::upstream(
        412,
        format!("work item {id} kept changing; gave up after {MAX_STATUS_ATTEMPTS} attempts"),
    ))
}

/// The `mailAddress` of the first graph user whose address is one of
/// `emails` (case-insensitive), paging with continuation tokens.
pub fn find_user(client: &Client, emails: &[String]) -> Result<Option<String>> {
    let wanted: Vec<String> = emails.iter().map(|e| e.trim().to_lowercase()).collect();
    let mut continuation: Option<String> = None;
    for _ in 0..MAX_USER_PAGES {
        let (page, next) = client.graph_users(continuation.as_deref())?;
        let users = page.get("value").and_then(Value::as_array);
        for user in users.into_iter().flatten() {
            if let Some(mail) = j::non_empty_str_at(user, &["mailAddress"])
                && wanted.contains(&mail.to_lowercase())
            {
                return Ok(Some(mail.to_string()));
            }
        }
        match next {
            Some(token) => continuation = Some(token),
            None => return Ok(None),
        }
    }
    warn!("vsts: stopped looking for a user after {MAX_USER_PAGES} graph pages");
    Ok(None)
}

pub fn sync_assignee(client: &Client, id: &str, user: Option<&UserRef>) -> Result<SyncOutcome> {
    let assign =
        |name: &str| json!([{"op": "replace", "path": "/fields/System.AssignedTo", "value": name}]);
    let ops = match user {
        None => json!([{"op": "remove", "path": "/fields/System.AssignedTo"}]),
        // An identity operators mapped is the user's unique name, which
        // `System.AssignedTo` takes as it is: no search.
        Some(user) => match user.identity_id() {
            Some(name) => assign(name),
            None if user.emails.is_empty() => {
                return Ok(SyncOutcome::unchanged(
                    "the user has no verified email and no Azure DevOps identity mapped",
                ));
            }
            None => {
                let Some(mail) = find_user(client, &user.emails)? else {
                    return Ok(SyncOutcome::unchanged(
                        "no Azure DevOps user with a matching email",
                    ));
                };
                assign(&mail)
            }
        },
    };
    let response = client.patch_work_item(id, &ops)?;
    if response.status == 404 {
        return Err(Error::rejected(format!(
            "Azure DevOps work item {id} does not exist or is not visible"
        )));
    }
    response.error_for_status()?;
    Ok(SyncOutcome::changed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Credential;
    use std::cell::Cell;
    use std::rc::Rc;
    use trackbridge_plugin_sdk::http::Method;
    use trackbridge_plugin_sdk::testing;

    const ORG: &str = "https://fabrikam.visualstudio.com/";
    const PROJECT_ID: &str = "ac7c05bb-7f8e-4880-85a6-e08f37fd4a10";

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../../tests/fixtures/sentry/vsts/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
    }

    fn client() -> Client {
        Client::new(
            ORG,
            "https://fabrikam.vssps.visualstudio.com/",
            Credential::OAuth {
                access_token: "t".into(),
            },
        )
    }

    fn mappings() -> Vec<StatusMapping> {
        vec![StatusMapping {
            external_project: PROJECT_ID.into(),
            on_resolve: "Resolved".into(),
            on_unresolve: "Active".into(),
        }]
    }

    fn body(req: &trackbridge_plugin_sdk::http::Request) -> Value {
        serde_json::from_slice(req.body.as_deref().unwrap()).unwrap()
    }

    #[test]
    fn status_sync_makes_three_calls_and_patches_with_test_and_replace() {
        testing::reset();
        testing::on_http(|req| {
            Ok(match req.method {
                Method::Get if req.url.ends_with("_apis/projects") => {
                    Response::json_body(200, &fixture("projects_response.json"))
                }
                Method::Get => Response::json_body(200, &fixture("work_item_response.json")),
                _ => Response::json_body(200, &json!({})),
            })
        });
        let outcome = sync_status(&client(), "309", true, &mappings()).unwrap();
        assert!(outcome.changed);
        let sent = testing::requests();
        assert_eq!(sent.len(), 3);
        assert_eq!(sent[0].full_url(), format!("{ORG}_apis/wit/workitems/309"));
        assert_eq!(
            sent[1].full_url(),
            format!("{ORG}_apis/projects?stateFilter=WellFormed&%24top=100&%24skip=0")
        );
        assert_eq!(sent[2].method, Method::Patch);
        assert_eq!(
            body(&sent[2]),
            json!([{"op": "test", "path": "/rev", "value": 1},
                   {"op": "replace", "path": "/fields/System.State", "value": "Resolved"}])
        );
    }

    #[test]
    fn status_sync_replans_after_a_revision_conflict() {
        testing::reset();
        let patches = Rc::new(Cell::new(0));
        let seen = patches.clone();
        testing::on_http(move |req| {
            Ok(match req.method {
                Method::Get if req.url.ends_with("_apis/projects") => {
                    Response::json_body(200, &fixture("projects_response.json"))
                }
                Method::Get => {
                    let mut item = fixture("work_item_response.json");
                    item["rev"] = json!(1 + seen.get());
                    Response::json_body(200, &item)
                }
                _ => {
                    seen.set(seen.get() + 1);
                    if seen.get() == 1 {
                        Response::json_body(
                            412,
                            &json!({"message": "TF26071: This work item has been changed by someone else since you opened it."}),
                        )
                    } else {
                        Response::json_body(200, &json!({}))
                    }
                }
            })
        });
        let outcome = sync_status(&client(), "309", false, &mappings()).unwrap();
        assert!(outcome.changed);
        let patches: Vec<Value> = testing::requests()
            .iter()
            .filter(|r| r.method == Method::Patch)
            .map(body)
            .collect();
        assert_eq!(patches.len(), 2);
        assert_eq!(patches[0][0]["value"], 1);
        assert_eq!(patches[1][0]["value"], 2);
        assert_eq!(patches[1][1]["value"], "Active");
        // The project was looked up once.
        let project_calls = testing::requests()
            .iter()
            .filter(|r| r.url.ends_with("_apis/projects"))
            .count();
        assert_eq!(project_calls, 1);
    }

    #[test]
    fn status_sync_gives_up_after_repeated_conflicts() {
        testing::reset();
        testing::on_http(|req| {
            Ok(match req.method {
                Method::Get if req.url.ends_with("_apis/projects") => {
                    Response::json_body(200, &fixture("projects_response.json"))
                }
                Method::Get => Response::json_body(200, &fixture("work_item_response.json")),
                _ => Response::json_body(
                    400,
                    &json!({"message": "Test operation failed for path /rev"}),
                ),
            })
        });
        let e = sync_status(&client(), "309", true, &mappings()).unwrap_err();
        assert_eq!(e.status(), Some(400));
        let patches = testing::requests()
            .iter()
            .filter(|r| r.method == Method::Patch)
            .count();
        assert_eq!(patches, MAX_STATUS_ATTEMPTS);
    }

    #[test]
    fn status_sync_without_change_or_mapping_patches_nothing() {
        testing::reset();
        testing::on_http(|req| {
            Ok(if req.url.ends_with("_apis/projects") {
                Response::json_body(200, &fixture("projects_response.json"))
            } else {
                Response::json_body(200, &fixture("work_item_response.json"))
            })
        });
        let mut m = mappings();
        m[0].on_unresolve = "New".into();
        let outcome = sync_status(&client(), "309", false, &m).unwrap();
        assert!(!outcome.changed);
        assert_eq!(outcome.note.as_deref(), Some("already in state New"));
        m[0].external_project = "other".into();
        let outcome = sync_status(&client(), "309", true, &m).unwrap();
        assert!(!outcome.changed);
        assert!(testing::requests().iter().all(|r| r.method == Method::Get));
    }

    #[test]
    fn projects_are_paged_up_to_ten_pages() {
        testing::reset();
        testing::on_http(|_| {
            let value: Vec<Value> = (0..PROJECTS_PAGE)
                .map(|i| json!({"id": format!("id-{i}"), "name": format!("p{i}")}))
                .collect();
            Ok(Response::json_body(
                200,
                &json!({"count": value.len(), "value": value}),
            ))
        });
        assert_eq!(project_id(&client(), "nope").unwrap(), None);
        let sent = testing::requests();
        assert_eq!(sent.len(), MAX_PROJECT_PAGES);
        assert!(sent[9].full_url().ends_with("%24skip=900"));
        testing::reset();
        testing::on_http(|_| Ok(Response::json_body(200, &fixture("projects_response.json"))));
        assert_eq!(
            project_id(&client(), "fabrikam-fiber-git")
                .unwrap()
                .as_deref(),
            Some(PROJECT_ID)
        );
    }

    #[test]
    fn assignee_sync_pages_graph_users_and_patches_the_mail_address() {
        testing::reset();
        testing::on_http(|req| {
            Ok(match req.method {
                Method::Get if !req.full_url().contains("continuationToken") => {
                    Response::json_body(200, &json!({"count": 1, "value": [{"mailAddress": ""}]}))
                        .with_header("X-MS-ContinuationToken", "next-page")
                }
                Method::Get => Response::json_body(200, &fixture("graph_users_response.json")),
                _ => Response::json_body(200, &json!({})),
            })
        });
        let user = by_emails(&["nobody@example.com", "FTotten@vscsi.us"]);
        let outcome = sync_assignee(&client(), "309", Some(&user)).unwrap();
        assert!(outcome.changed);
        let sent = testing::requests();
        assert_eq!(sent.len(), 3);
        assert_eq!(
            sent[1].full_url(),
            "https://fabrikam.vssps.visualstudio.com/_apis/graph/users?continuationToken=next-page"
        );
        assert_eq!(
            body(&sent[2]),
            json!([{"op": "replace", "path": "/fields/System.AssignedTo", "value": "ftotten@vscsi.us"}])
        );
    }

    #[test]
    fn assignee_sync_unassigns_and_reports_no_match() {
        testing::reset();
        testing::on_http(|req| {
            Ok(match req.method {
                Method::Get => Response::json_body(200, &fixture("graph_users_response.json")),
                _ => Response::json_body(200, &json!({})),
            })
        });
        let outcome = sync_assignee(&client(), "309", None).unwrap();
        assert!(outcome.changed);
        assert_eq!(
            body(&testing::requests()[0]),
            json!([{"op": "remove", "path": "/fields/System.AssignedTo"}])
        );
        let user = by_emails(&["nobody@example.com"]);
        let outcome = sync_assignee(&client(), "309", Some(&user)).unwrap();
        assert!(!outcome.changed);
        assert!(outcome.note.is_some());
        assert_eq!(testing::requests().len(), 2);

        testing::on_http(|_| Ok(Response::new(503, "down")));
        let e = sync_assignee(&client(), "309", Some(&user)).unwrap_err();
        assert_eq!(e.status(), Some(503));
    }

    fn by_emails(emails: &[&str]) -> UserRef {
        UserRef {
            emails: emails.iter().map(|e| e.to_string()).collect(),
            identities: vec![],
        }
    }

    #[test]
    fn a_mapped_identity_is_assigned_by_its_unique_name_without_a_search() {
        testing::reset();
        testing::on_http(|req| {
            Ok(match req.method {
                Method::Patch => Response::json_body(200, &json!({})),
                _ => Response::new(500, "no search expected"),
            })
        });
        let user = UserRef {
            emails: vec!["ftotten@vscsi.us".into()],
            identities: vec![trackbridge_plugin_sdk::provider::Identity::new(
                "DOMAIN\\ftotten",
            )],
        };
        assert!(
            sync_assignee(&client(), "309", Some(&user))
                .unwrap()
                .changed
        );
        let sent = testing::requests();
        assert_eq!(sent.len(), 1);
        assert_eq!(
            body(&sent[0]),
            json!([{"op": "replace", "path": "/fields/System.AssignedTo", "value": "DOMAIN\\ftotten"}])
        );

        // Neither an identity nor an email: nothing to search for.
        let nobody = by_emails(&[]);
        let outcome = sync_assignee(&client(), "309", Some(&nobody)).unwrap();
        assert!(!outcome.changed && outcome.note.is_some());
        assert_eq!(testing::requests().len(), 1);
    }
}
