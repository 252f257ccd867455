//! `POST /extensions/vsts/issue-updated/` (sentry-flows §7.3): authenticating
//! service hook deliveries by their `shared-secret` header and turning
//! `workitem.updated` events into assignee and status changes.

use serde_json::Value;
use trackbridge_plugin_sdk::provider::{
    Change, Identity, InboundEvent, IncomingRequest, Rejection, StatusAction, StatusChange,
    VerifiedWebhook,
};
use trackbridge_plugin_sdk::secrets;
use trackbridge_plugin_sdk::{Result, cache, integration, json as j, warn};

use crate::client::{Client, SHARED_SECRET_HEADER};
use crate::time;

/// The only event type processed.
pub const WORK_ITEM_UPDATED: &str = "workitem.updated";

/// Work item types whose states are asked for, in order, until one has any.
pub const STATE_TYPES: &[&str] = &["Bug", "Issue", "Task"];

/// State categories that mean "done".
pub const DONE_CATEGORIES: &[&str] = &["Resolved", "Completed", "Closed"];

/// How long the done states of a project are cached (Sentry's 240 s).
pub const STATES_CACHE_TTL_SECS: u32 = cache::DEFAULT_TTL_SECS;

const ASSIGNED_TO: &str = "System.AssignedTo";
const STATE: &str = "System.State";

fn parse_body(body: &[u8]) -> Result<Value, Rejection> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Rejection::new(400, "empty body"));
    }
    serde_json::from_slice(body).map_err(|_| Rejection::new(400, "malformed JSON body"))
}

/// A JSON id as text: strings as they are, numbers stringified.
fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub fn verify(request: &IncomingRequest) -> Result<VerifiedWebhook, Rejection> {
    let payload = parse_body(&request.body)?;
    let event_type = payload.get("eventType").and_then(Value::as_str);
    let collection =
        j::get(&payload, &["resourceContainers", "collection", "id"]).and_then(id_text);
    let (Some(event_type), Some(collection)) = (event_type, collection) else {
        return Err(Rejection::new(
            400,
            "the body needs eventType and resourceContainers.collection.id",
        ));
    };
    if event_type != WORK_ITEM_UPDATED {
        // Sentry answers 200 and checks nothing else.
        return Ok(VerifiedWebhook {
            ignore: true,
            ..VerifiedWebhook::new("")
        });
    }
    let installation = integration::select(&collection)
        .ok_or_else(|| Rejection::new(400, "Integration does not exist."))?;
    let expected = secrets::get("subscription_secret");
    let given = request.header(SHARED_SECRET_HEADER);
    let authentic = match (expected, given) {
        (Some(expected), Some(given)) if !given.is_empty() => expected.matches(given.as_bytes()),
        _ => false,
    };
    if !authentic {
        return Err(Rejection::new(401, "missing or wrong shared-secret"));
    }
    Ok(VerifiedWebhook {
        integration: installation.external_id,
        delivery_id: delivery_id(&payload),
        event_time: event_time(&payload),
        ignore: !has_work(&payload),
    })
}

/// The event's `id`, else `{workItemId}:{rev}`.
pub fn delivery_id(payload: &Value) -> Option<String> {
    if let Some(id) = payload.get("id").and_then(id_text) {
        return Some(id);
    }
    let item = j::get(payload, &["resource", "workItemId"]).and_then(id_text)?;
    let rev = j::get(payload, &["resource", "rev"]).and_then(id_text)?;
    Some(format!("{item}:{rev}"))
}

pub fn event_time(payload: &Value) -> Option<u64> {
    time::parse_ms(j::str_at(payload, &["createdDate"])?)
}

/// True when the update names a work item and changes its assignee or state.
fn has_work(payload: &Value) -> bool {
    let fields = j::get(payload, &["resource", "fields"]).and_then(Value::as_object);
    j::get(payload, &["resource", "workItemId"])
        .and_then(id_text)
        .is_some()
        && fields.is_some_and(|f| f.contains_key(ASSIGNED_TO) || f.contains_key(STATE))
}

/// What `System.AssignedTo` says: `Some(Some(identity))` assigned,
/// `Some(None)` unassigned, `None` nothing to do.
///
/// The identity's id is the user's unique name (the sign-in name, usually an
/// email address; `DOMAIN\user` on Azure DevOps Server): it is what
/// `System.AssignedTo` accepts when the host assigns a mapped identity back.
/// Emails come from the organization's directory (Microsoft Entra ID or the
/// server's), which vouches for them, so they are marked verified.
pub fn assignee_change(field: &Value) -> Option<Option<Identity>> {
    match field.get("newValue") {
        None | Some(Value::Null) => Some(None),
        Some(Value::String(s)) if s.trim().is_empty() => Some(None),
        Some(Value::String(s)) => match email_in_brackets(s) {
            Some(email) => {
                let name = s[..s.find('<').unwrap_or(0)].trim();
                let mut identity = Identity::new(email.clone()).with_email(email, true);
                if !name.is_empty() {
                    identity = identity.with_display_name(name);
                }
                Some(Some(identity))
            }
            None => {
                warn!("vsts.assignee-without-email: System.AssignedTo names no email address");
                None
            }
        },
        Some(value @ Value::Object(_)) => {
            let mail = j::non_empty_str_at(value, &["mailAddress"]);
            let unique = j::non_empty_str_at(value, &["uniqueName"]);
            let email = mail.or(unique.filter(|u| u.contains('@')));
            let Some(id) = unique.or(email) else {
                warn!(
                    "vsts.assignee-without-name: the assignee identity has no unique name or email"
                );
                return None;
            };
            let mut identity = Identity::new(id.trim()).with_login(id.trim());
            if let Some(email) = email {
                identity = identity.with_email(email.trim(), true);
            }
            if let Some(name) = j::non_empty_str_at(value, &["displayName"]) {
                identity = identity.with_display_name(name);
            }
            Some(Some(identity))
        }
        Some(_) => None,
    }
}

/// The text inside the first `<…>`, as Sentry's `<([^>]*)>`.
pub fn email_in_brackets(value: &str) -> Option<String> {
    let start = value.find('<')? + 1;
    let len = value[start..].find('>')?;
    Some(value[start..start + len].trim().to_string())
}

/// Sentry's `get_resolve_sync_action`: resolve when leaving the done states
/// for one of them, unresolve when landing outside them or when there was no
/// old state; both (or neither) → none.
pub fn status_action(old: Option<&str>, new: Option<&str>, done: &[String]) -> StatusAction {
    let is_done = |state: Option<&str>| state.is_some_and(|s| done.iter().any(|d| d == s));
    let should_resolve = !is_done(old) && is_done(new);
    let should_unresolve = !is_done(new) || old.is_none();
    match (should_resolve, should_unresolve) {
        (true, false) => StatusAction::Resolve,
        (false, true) => StatusAction::Unresolve,
        _ => StatusAction::None,
    }
}

/// Names of the states in a done category, from a states answer.
pub fn done_names(states: &Value) -> Vec<String> {
    states
        .get("value")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter(|s| {
                    s.get("category")
                        .and_then(Value::as_str)
                        .is_some_and(|c| DONE_CATEGORIES.contains(&c))
                })
                .filter_map(|s| s.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The done states of `project`: the first of Bug, Issue, Task with any
/// states; an API failure gives the empty set (not cached).
pub fn done_states(client: &Client, project: &str) -> Vec<String> {
    let key = format!("done-states:{project}");
    if let Some(hit) = cache::get_json::<Vec<String>>(&key) {
        return hit;
    }
    for work_item_type in STATE_TYPES {
        match client.work_item_type_states(project, work_item_type) {
            Ok(states) => {
                if j::u64_at(&states, &["count"]).unwrap_or(0) > 0 {
                    let done = done_names(&states);
                    cache::set_json(&key, &done, STATES_CACHE_TTL_SECS);
                    return done;
                }
            }
            Err(e) => {
                warn!("vsts: could not read the states of {work_item_type} in {project}: {e}");
                return Vec::new();
            }
        }
    }
    Vec::new()
}

/// The events of a verified delivery; the integration is current.
pub fn handle(request: &IncomingRequest, client: &Client) -> Result<Vec<InboundEvent>> {
    let Ok(payload) = serde_json::from_slice::<Value>(&request.body) else {
        return Ok(Vec::new());
    };
    let Some(work_item) = j::get(&payload, &["resource", "workItemId"]).and_then(id_text) else {
        warn!("vsts: workitem.updated without resource.workItemId");
        return Ok(Vec::new());
    };
    let Some(fields) = j::get(&payload, &["resource", "fields"]) else {
        return Ok(Vec::new());
    };

    let mut changes = Vec::new();
    if let Some(field) = fields.get(ASSIGNED_TO)
        && let Some(identity) = assignee_change(field)
    {
        changes.push(Change::Assignee(identity));
    }
    if let Some(field) = fields.get(STATE) {
        let text = |key: &str| field.get(key).and_then(Value::as_str).map(str::to_string);
        let (old, new) = (text("oldValue"), text("newValue"));
        let done =
            match j::get(&payload, &["resourceContainers", "project", "id"]).and_then(id_text) {
                Some(project) => done_states(client, &project),
                None => {
                    warn!("vsts: no resourceContainers.project.id, so no done states");
                    Vec::new()
                }
            };
        let action = status_action(old.as_deref(), new.as_deref(), &done);
        changes.push(Change::Status(StatusChange {
            from: old,
            to: new,
            action,
        }));
    }

    let delivery_id = delivery_id(&payload);
    let event_time = event_time(&payload);
    Ok(changes
        .into_iter()
        .map(|change| InboundEvent {
            external_issue: work_item.clone(),
            change,
            event_time,
            delivery_id: delivery_id.clone(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Credential;
    use serde_json::json;
    use trackbridge_plugin_sdk::http::Response;
    use trackbridge_plugin_sdk::testing;

    const COLLECTION: &str = "80ded3e8-3cd3-43b1-9f96-52032624aa3a";
    const PROJECT: &str = "c0bf429a-c03c-4a99-9336-d45be74db5a6";
    const SECRET: &str = "1234567890";

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../../tests/fixtures/sentry/vsts/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
    }

    fn request(payload: &Value, secret: Option<&str>) -> IncomingRequest {
        let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
        if let Some(secret) = secret {
            headers.push(("shared-secret".to_string(), secret.to_string()));
        }
        IncomingRequest {
            method: "POST".into(),
            path: "/extensions/vsts/issue-updated/".into(),
            query: String::new(),
            headers,
            route_params: vec![],
            body: serde_json::to_vec(payload).unwrap(),
        }
    }

    fn setup() {
        testing::reset();
        testing::add_integration(
            COLLECTION,
            json!({"domain_name": "https://laurynsentry.visualstudio.com/", "subscription": {"id": "s"}}),
            json!({"credential": {"type": "pat", "token": "p"}, "subscription_secret": SECRET}),
        );
    }

    fn client() -> Client {
        Client::new(
            "https://laurynsentry.visualstudio.com/",
            "https://laurynsentry.vssps.visualstudio.com/",
            Credential::Pat { token: "p".into() },
        )
    }

    #[test]
    fn verifies_the_shared_secret() {
        setup();
        let payload = fixture("workitem_updated_assigned.json");
        let ok = verify(&request(&payload, Some(SECRET))).unwrap();
        assert_eq!(ok.integration, COLLECTION);
        assert_eq!(
            ok.delivery_id.as_deref(),
            Some("18f51331-2640-4bce-9ebd-c59c855956a2")
        );
        assert_eq!(ok.event_time, Some(1_530_823_936_305));
        assert!(!ok.ignore);
        assert_eq!(
            integration::current().map(|i| i.external_id).as_deref(),
            Some(COLLECTION)
        );

        for secret in [None, Some("123456789"), Some("1234567891"), Some("")] {
            let e = verify(&request(&payload, secret)).unwrap_err();
            assert_eq!(e.status, 401, "{secret:?}");
        }
    }

    #[test]
    fn refuses_malformed_and_unknown() {
        setup();
        let payload = fixture("workitem_updated_assigned.json");
        let status = |body: Vec<u8>| {
            let mut r = request(&json!({}), Some(SECRET));
            r.body = body;
            verify(&r).map(|_| 200).unwrap_or_else(|e| e.status)
        };
        assert_eq!(status(b"{\"eventType\": ".to_vec()), 400);
        assert_eq!(status(Vec::new()), 400);
        assert_eq!(status(b"[]".to_vec()), 400);
        let mut no_type = payload.clone();
        no_type.as_object_mut().unwrap().remove("eventType");
        assert_eq!(status(serde_json::to_vec(&no_type).unwrap()), 400);
        let mut no_collection = payload.clone();
        no_collection["resourceContainers"]
            .as_object_mut()
            .unwrap()
            .remove("collection");
        assert_eq!(status(serde_json::to_vec(&no_collection).unwrap()), 400);
        let mut unknown = payload.clone();
        unknown["resourceContainers"]["collection"]["id"] = json!("someone-else");
        let e = verify(&request(&unknown, Some(SECRET))).unwrap_err();
        assert_eq!(
            (e.status, e.message.as_str()),
            (400, "Integration does not exist.")
        );
    }

    #[test]
    fn other_event_types_are_ignored_unchecked() {
        testing::reset();
        let mut payload = fixture("workitem_updated_assigned.json");
        payload["eventType"] = json!("workitem.created");
        payload["resourceContainers"]["collection"]["id"] = json!(12);
        let v = verify(&request(&payload, None)).unwrap();
        assert!(v.ignore);
        assert_eq!(v.integration, "");
    }

    #[test]
    fn delivery_id_falls_back_to_work_item_and_rev() {
        let mut payload = fixture("workitem_updated_status.json");
        payload.as_object_mut().unwrap().remove("id");
        assert_eq!(delivery_id(&payload).as_deref(), Some("33:3"));
        assert_eq!(event_time(&payload), Some(1_530_832_991_193));
    }

    #[test]
    fn assignee_forms() {
        assert_eq!(
            assignee_change(&json!({"newValue": "lauryn <lauryn@sentry.io>", "oldValue": "x"})),
            Some(Some(
                Identity::new("lauryn@sentry.io")
                    .with_email("lauryn@sentry.io", true)
                    .with_display_name("lauryn")
            ))
        );
        assert_eq!(
            assignee_change(&json!({"oldValue": "lauryn <lauryn@sentry.io>"})),
            Some(None)
        );
        assert_eq!(assignee_change(&json!({"newValue": "lauryn"})), None);
        assert_eq!(
            assignee_change(
                &json!({"newValue": {"displayName": "Bob", "uniqueName": "bob@example.com"}})
            ),
            Some(Some(
                Identity::new("bob@example.com")
                    .with_login("bob@example.com")
                    .with_email("bob@example.com", true)
                    .with_display_name("Bob")
            ))
        );
        assert_eq!(
            assignee_change(
                &json!({"newValue": {"uniqueName": "DOMAIN\\bob", "mailAddress": "Bob@Example.com"}})
            ),
            Some(Some(
                Identity::new("DOMAIN\\bob")
                    .with_login("DOMAIN\\bob")
                    .with_email("Bob@Example.com", true)
            ))
        );
        // No email, but a name operators can map.
        assert_eq!(
            assignee_change(&json!({"newValue": {"uniqueName": "DOMAIN\\bob"}})),
            Some(Some(Identity::new("DOMAIN\\bob").with_login("DOMAIN\\bob")))
        );
        assert_eq!(
            assignee_change(&json!({"newValue": {"displayName": "Bob"}})),
            None
        );
        assert_eq!(email_in_brackets("a <b> <c>").as_deref(), Some("b"));
        assert_eq!(email_in_brackets("a <b"), None);
    }

    /// `(from, to, action)` of a status change.
    fn status(change: &Change) -> (Option<&str>, Option<&str>, StatusAction) {
        match change {
            Change::Status(c) => (c.from.as_deref(), c.to.as_deref(), c.action),
            other => panic!("not a status change: {other:?}"),
        }
    }

    fn assignee(change: &Change) -> Option<&str> {
        match change {
            Change::Assignee(identity) => identity.as_ref().and_then(|i| i.email.as_deref()),
            other => panic!("not an assignee change: {other:?}"),
        }
    }

    fn done() -> Vec<String> {
        done_names(&fixture("work_item_type_states_response.json"))
    }

    #[test]
    fn done_states_come_from_categories() {
        assert_eq!(done(), vec!["Resolved".to_string(), "Closed".to_string()]);
    }

    #[test]
    fn resolve_actions_follow_sentry() {
        let done = done();
        let action =
            |old: Option<&str>, new: &str, done: &[String]| status_action(old, Some(new), done);
        // Sentry's test_get_resolve_sync_action cases.
        assert_eq!(action(None, "New", &done), StatusAction::Unresolve);
        assert_eq!(action(None, "Resolved", &done), StatusAction::None);
        assert_eq!(
            action(Some("Resolved"), "Closed", &done),
            StatusAction::None
        );
        assert_eq!(
            action(Some("Active"), "Resolved", &[]),
            StatusAction::Unresolve
        );
        assert_eq!(
            action(Some("Active"), "Resolved", &done),
            StatusAction::Resolve
        );
        assert_eq!(
            action(Some("Resolved"), "Active", &done),
            StatusAction::Unresolve
        );
        assert_eq!(
            action(Some("New"), "Active", &done),
            StatusAction::Unresolve
        );
    }

    #[test]
    fn states_failure_gives_the_empty_set() {
        setup();
        testing::make_current(COLLECTION);
        testing::on_http(|_| {
            Ok(Response::json_body(
                403,
                &fixture("work_item_type_states_403_response.json"),
            ))
        });
        assert!(done_states(&client(), PROJECT).is_empty());
        assert!(testing::cache_entry(&format!("done-states:{PROJECT}")).is_none());
        // …so Active → Resolved unresolves.
        let mut payload = fixture("workitem_updated_status.json");
        payload["resource"]["fields"]["System.State"] =
            json!({"oldValue": "Active", "newValue": "Resolved"});
        let events = handle(&request(&payload, Some(SECRET)), &client()).unwrap();
        assert_eq!(
            status(&events[0].change),
            (Some("Active"), Some("Resolved"), StatusAction::Unresolve)
        );
    }

    #[test]
    fn states_try_bug_issue_task_and_are_cached() {
        setup();
        testing::make_current(COLLECTION);
        testing::on_http(|req| {
            if req.url.contains("/workitemtypes/Task/") {
                Ok(Response::json_body(
                    200,
                    &fixture("work_item_type_states_response.json"),
                ))
            } else {
                Ok(Response::json_body(200, &json!({"count": 0, "value": []})))
            }
        });
        assert_eq!(done_states(&client(), PROJECT), done());
        assert_eq!(done_states(&client(), PROJECT), done());
        let urls: Vec<String> = testing::requests().iter().map(|r| r.full_url()).collect();
        assert_eq!(
            urls,
            ["Bug", "Issue", "Task"]
                .iter()
                .map(|t| format!("https://laurynsentry.visualstudio.com/{PROJECT}/_apis/wit/workitemtypes/{t}/states"))
                .collect::<Vec<_>>()
        );
        assert_eq!(
            testing::cache_entry(&format!("done-states:{PROJECT}")).map(|(_, ttl)| ttl),
            Some(240)
        );
    }

    #[test]
    fn handles_sentry_fixtures() {
        setup();
        testing::make_current(COLLECTION);
        testing::on_http(|_| {
            Ok(Response::json_body(
                200,
                &fixture("work_item_type_states_response.json"),
            ))
        });
        let events = handle(
            &request(&fixture("workitem_updated_assigned.json"), None),
            &client(),
        )
        .unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].external_issue, "31");
        assert_eq!(assignee(&events[0].change), Some("lauryn@sentry.io"));
        assert_eq!(
            events[0].delivery_id.as_deref(),
            Some("18f51331-2640-4bce-9ebd-c59c855956a2")
        );

        let events = handle(
            &request(&fixture("workitem_updated_unassigned.json"), None),
            &client(),
        )
        .unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].external_issue, "33");
        assert_eq!(assignee(&events[0].change), None);

        let events = handle(
            &request(&fixture("workitem_updated_status.json"), None),
            &client(),
        )
        .unwrap();
        assert_eq!(
            status(&events[0].change),
            (Some("New"), Some("Resolved"), StatusAction::Resolve)
        );
        let states = &testing::requests()[0];
        assert_eq!(
            states.header_value("accept"),
            Some("application/json; api-version=4.1-preview.1")
        );
    }
}
