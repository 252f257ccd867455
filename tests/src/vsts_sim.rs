//! A simulated Azure DevOps organization: stateful (service hook subscriptions, work items with
//! revisions, work item type states, projects, graph users), recording (see [`crate::sim`]) and
//! strict about authentication and the API-version `Accept` header.
//!
//! Everything lives under the organization path `/acme/` (so the organization URL is
//! `http://127.0.0.1:PORT/acme/`), the graph users API included (tests point `graph_url` at the
//! same place). Seeded from Sentry's VSTS fixtures:
//! * collection id [`COLLECTION_ID`], the `resourceContainers.collection.id` of the
//!   `workitem_updated_*` payloads;
//! * project [`PROJECT_NAME`] ([`PROJECT_ID`], the payloads' project) and `Fabrikam-Fiber-Git`
//!   from `projects_response.json`;
//! * `Bug` states of [`PROJECT_ID`] from `work_item_type_states_response.json` (New, Active,
//!   CustomState, Resolved, Closed; Resolved/Closed are done); other types have no states;
//! * work items 31 and 33 (the payloads' items) and [`OUTBOUND_WORK_ITEM`], all `Bug`s in
//!   [`PROJECT_NAME`], state `New`, rev 1, unassigned;
//! * graph users from `graph_users_response.json` (Francis Totten, `ftotten@vscsi.us`, last).
//!
//! Quirks that matter to the plugin are modelled: `PATCH` needs `application/json-patch+json`
//! and honours a leading `test /rev` op (answering 412 when the revision differs); preview
//! resources (connection data, states, graph users) refuse a non-preview `api-version`; graph
//! users page with the `X-MS-ContinuationToken` header.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::fixtures::fixture;
use crate::sim::{Fault, Recorder, SimServer};

/// The organization's path segment.
pub const ORG: &str = "acme";
/// The collection id (`connectionData.instanceId`), as in Sentry's webhook fixtures.
pub const COLLECTION_ID: &str = "80ded3e8-3cd3-43b1-9f96-52032624aa3a";
/// The project of Sentry's webhook fixtures.
pub const PROJECT_ID: &str = "c0bf429a-c03c-4a99-9336-d45be74db5a6";
pub const PROJECT_NAME: &str = "MyFirstProject";
/// A work item no webhook fixture names, for outbound tests.
pub const OUTBOUND_WORK_ITEM: u64 = 42;
/// The graph user Sentry's outbound assignee test assigns.
pub const FTOTTEN_EMAIL: &str = "ftotten@vscsi.us";

/// `/acme/_apis/hooks/subscriptions`.
pub fn subscriptions_path() -> String {
    format!("/{ORG}/_apis/hooks/subscriptions")
}

/// `/acme/_apis/wit/workitems/{id}`.
pub fn work_item_path(id: u64) -> String {
    format!("/{ORG}/_apis/wit/workitems/{id}")
}

/// `/acme/_apis/graph/users`.
pub fn graph_users_path() -> String {
    format!("/{ORG}/_apis/graph/users")
}

/// `/acme/{project}/_apis/wit/workitemtypes/` (prefix of the states calls).
pub fn work_item_types_prefix(project: &str) -> String {
    format!("/{ORG}/{project}/_apis/wit/workitemtypes/")
}

/// The credential the simulator accepts; anything else is answered 401.
#[derive(Clone, Debug)]
pub enum VstsAuth {
    /// `Authorization: Basic base64(":" + pat)`.
    Pat(String),
    /// `Authorization: Bearer <token>`.
    Bearer(String),
}

impl VstsAuth {
    fn check(&self, authorization: Option<&str>) -> Result<(), String> {
        let authorization = authorization.ok_or("no Authorization header")?;
        let (scheme, credentials) = authorization
            .split_once(' ')
            .ok_or("malformed Authorization header")?;
        match (self, scheme.to_ascii_lowercase().as_str()) {
            (VstsAuth::Pat(pat), "basic") => {
                let decoded = STANDARD
                    .decode(credentials.trim())
                    .map_err(|_| "basic credentials are not base64")?;
                if decoded == format!(":{pat}").as_bytes() {
                    Ok(())
                } else {
                    Err("wrong personal access token".into())
                }
            }
            (VstsAuth::Bearer(token), "bearer") if token == credentials.trim() => Ok(()),
            (VstsAuth::Bearer(_), "bearer") => Err("wrong bearer token".into()),
            (_, other) => Err(format!("auth scheme {other:?} not accepted")),
        }
    }
}

/// One work item's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkItem {
    pub id: u64,
    pub rev: u64,
    /// The project's name (`System.TeamProject`).
    pub project: String,
    pub work_item_type: String,
    pub state: String,
    /// The assignee's mail address.
    pub assigned_to: Option<String>,
}

#[derive(Default)]
struct VstsState {
    base_url: String,
    /// Subscription id → the body it was created with.
    subscriptions: BTreeMap<String, Value>,
    next_subscription: u64,
    /// (id, name), in listing order.
    projects: Vec<(String, String)>,
    /// (project id, work item type) → the states answer.
    states: BTreeMap<(String, String), Value>,
    work_items: BTreeMap<u64, WorkItem>,
    /// Work items whose revision is bumped (as by another user) just before the next PATCH.
    bump_before_patch: Vec<u64>,
    users: Vec<Value>,
    /// Graph users per page; `None` = all on one page.
    users_page_size: Option<usize>,
    work_item_template: Value,
}

type Shared = Arc<Mutex<VstsState>>;

/// The simulator. Dropping it (or [`VstsSim::shutdown`]) stops the server.
pub struct VstsSim {
    server: Option<SimServer>,
    recorder: Recorder,
    base_url: String,
    state: Shared,
}

impl VstsSim {
    /// Start a simulator that accepts `auth`, seeded as described in the module docs.
    pub async fn start(auth: VstsAuth) -> anyhow::Result<VstsSim> {
        let state: Shared = Arc::new(Mutex::new(seed_state()));
        let org = format!("/{ORG}");
        let router = Router::new()
            .route(&format!("{org}/_apis/connectionData"), get(connection_data))
            .route(
                &format!("{org}/_apis/hooks/subscriptions"),
                post(create_subscription),
            )
            .route(
                &format!("{org}/_apis/hooks/subscriptions/{{id}}"),
                delete(delete_subscription).put(replace_subscription),
            )
            .route(
                &format!("{org}/_apis/wit/workitems/{{id}}"),
                get(get_work_item).patch(patch_work_item),
            )
            .route(
                &format!("{org}/{{project}}/_apis/wit/workitemtypes/{{kind}}/states"),
                get(work_item_type_states),
            )
            .route(&format!("{org}/_apis/projects"), get(projects))
            .route(&format!("{org}/_apis/graph/users"), get(graph_users))
            .fallback(not_found)
            .layer(middleware::from_fn(check_api_version))
            .layer(middleware::from_fn_with_state(Arc::new(auth), authenticate))
            .with_state(state.clone());
        let recorder = Recorder::new();
        let server = SimServer::start(router, recorder.clone()).await?;
        let base_url = server.base_url();
        state.lock().unwrap().base_url = base_url.clone();
        Ok(VstsSim {
            server: Some(server),
            recorder,
            base_url,
            state,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The organization URL, `http://127.0.0.1:PORT/acme/`.
    pub fn org_url(&self) -> String {
        format!("{}/{ORG}/", self.base_url)
    }

    /// The request log and fault queue.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// Stop serving: connections are refused from now on.
    pub fn shutdown(&mut self) {
        self.server.take();
    }

    /// Subscriptions that exist now: id → the body they were created with.
    pub fn subscriptions(&self) -> BTreeMap<String, Value> {
        self.state.lock().unwrap().subscriptions.clone()
    }

    /// The next subscription creation is refused with `status` (401 or 403) and Sentry's
    /// fixture body for it.
    pub fn refuse_next_subscription(&self, status: u16) {
        let body = fixture(&format!(
            "sentry/vsts/create_subscription_{status}_response.json"
        ));
        self.recorder.inject(Fault {
            body,
            ..Fault::status(1, status).only("POST", &subscriptions_path())
        });
    }

    /// The next `n` work item type states calls for `project` fail with 403 and Sentry's
    /// fixture body.
    pub fn fail_states(&self, project: &str, n: usize) {
        self.recorder.inject(Fault {
            body: fixture("sentry/vsts/work_item_type_states_403_response.json"),
            ..Fault::status(n, 403).only("GET", &work_item_types_prefix(project))
        });
    }

    /// The state of work item `id`.
    pub fn work_item(&self, id: u64) -> Option<WorkItem> {
        self.state.lock().unwrap().work_items.get(&id).cloned()
    }

    /// Add (or replace) a `Bug` in [`PROJECT_NAME`] with `state`, rev 1, unassigned.
    pub fn add_work_item(&self, id: u64, state: &str) {
        self.state.lock().unwrap().work_items.insert(
            id,
            WorkItem {
                id,
                rev: 1,
                project: PROJECT_NAME.into(),
                work_item_type: "Bug".into(),
                state: state.into(),
                assigned_to: None,
            },
        );
    }

    /// Change work item `id` as a user would (its revision goes up).
    pub fn edit_work_item(&self, id: u64, state: Option<&str>, assigned_to: Option<Option<&str>>) {
        let mut s = self.state.lock().unwrap();
        let item = s.work_items.get_mut(&id).expect("unknown work item");
        if let Some(state) = state {
            item.state = state.into();
        }
        if let Some(assignee) = assigned_to {
            item.assigned_to = assignee.map(str::to_string);
        }
        item.rev += 1;
    }

    /// Just before the next PATCH of work item `id`, someone else edits it (its revision goes
    /// up), so a PATCH testing the revision read before fails. Once.
    pub fn bump_rev_before_next_patch(&self, id: u64) {
        self.state.lock().unwrap().bump_before_patch.push(id);
    }

    /// Page graph users `n` at a time (continuation via `X-MS-ContinuationToken`).
    pub fn set_graph_page_size(&self, n: usize) {
        self.state.lock().unwrap().users_page_size = Some(n.max(1));
    }

    /// Add a graph user with this display name and mail address.
    pub fn add_graph_user(&self, display_name: &str, mail: &str) {
        let mut s = self.state.lock().unwrap();
        let n = s.users.len();
        s.users.push(json!({
            "subjectKind": "user",
            "metaType": "member",
            "domain": "AAD",
            "principalName": mail,
            "mailAddress": mail,
            "origin": "aad",
            "originId": format!("origin-{n}"),
            "displayName": display_name,
            "descriptor": format!("aad.user-{n}"),
        }));
    }

    /// Add `n` well-formed projects named `Filler {i}` before the seeded ones.
    pub fn add_filler_projects(&self, n: usize) {
        let mut s = self.state.lock().unwrap();
        let fillers: Vec<(String, String)> = (0..n)
            .map(|i| {
                (
                    format!("00000000-0000-0000-0000-{i:012}"),
                    format!("Filler {i}"),
                )
            })
            .collect();
        s.projects.splice(0..0, fillers);
    }
}

fn seed_state() -> VstsState {
    let mut projects = vec![(PROJECT_ID.to_string(), PROJECT_NAME.to_string())];
    let listed = fixture("sentry/vsts/projects_response.json");
    for p in listed["value"].as_array().into_iter().flatten() {
        if let (Some(id), Some(name)) = (p["id"].as_str(), p["name"].as_str()) {
            projects.push((id.into(), name.into()));
        }
    }
    let mut states = BTreeMap::new();
    states.insert(
        (PROJECT_ID.to_string(), "Bug".to_string()),
        fixture("sentry/vsts/work_item_type_states_response.json"),
    );
    let mut work_items = BTreeMap::new();
    for id in [31, 33, OUTBOUND_WORK_ITEM] {
        work_items.insert(
            id,
            WorkItem {
                id,
                rev: 1,
                project: PROJECT_NAME.into(),
                work_item_type: "Bug".into(),
                state: "New".into(),
                assigned_to: None,
            },
        );
    }
    let users = fixture("sentry/vsts/graph_users_response.json")["value"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    VstsState {
        base_url: String::new(),
        subscriptions: BTreeMap::new(),
        next_subscription: 0,
        projects,
        states,
        work_items,
        bump_before_patch: Vec::new(),
        users,
        users_page_size: None,
        work_item_template: fixture("sentry/vsts/work_item_response.json"),
    }
}

/// An Azure DevOps-style error answer.
fn ado_error(status: StatusCode, type_key: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({
            "$id": "1",
            "innerException": null,
            "message": message.into(),
            "typeName": format!("Microsoft.VisualStudio.Services.{type_key}"),
            "typeKey": type_key,
            "errorCode": 0,
            "eventId": 3000
        })),
    )
        .into_response()
}

async fn authenticate(State(auth): State<Arc<VstsAuth>>, request: Request, next: Next) -> Response {
    let authorization = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    match auth.check(authorization) {
        Ok(()) => next.run(request).await,
        Err(reason) => ado_error(
            StatusCode::UNAUTHORIZED,
            "UnauthorizedRequestException",
            format!("TF400813: The user is not authorized to access this resource ({reason})."),
        ),
    }
}

/// The `api-version` of a request: the `Accept` header's parameter, else the query's.
fn api_version(headers: &HeaderMap, query: &str) -> Option<String> {
    let from_accept = headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .and_then(|accept| {
            accept.split(';').find_map(|p| {
                let (k, v) = p.trim().split_once('=')?;
                (k.trim() == "api-version").then(|| v.trim().to_string())
            })
        });
    from_accept.or_else(|| {
        crate::jwt::parse_query(query)
            .into_iter()
            .find(|(k, _)| k == "api-version")
            .map(|(_, v)| v)
    })
}

/// Every call names an API version; preview resources need a preview one.
async fn check_api_version(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let Some(version) = api_version(request.headers(), request.uri().query().unwrap_or("")) else {
        return ado_error(
            StatusCode::BAD_REQUEST,
            "VssVersionNotSpecifiedException",
            "No api-version was supplied for the request.",
        );
    };
    let preview_resource = path.ends_with("/_apis/connectionData")
        || path.ends_with("/states")
        || path.contains("/_apis/graph/");
    if preview_resource && !version.contains("-preview") {
        return ado_error(
            StatusCode::BAD_REQUEST,
            "VssInvalidPreviewVersionException",
            format!(
                "The requested version \"{version}\" of the resource is under preview. The -preview flag must be supplied in the api-version for such requests."
            ),
        );
    }
    next.run(request).await
}

async fn not_found() -> Response {
    ado_error(
        StatusCode::NOT_FOUND,
        "NotFoundException",
        "No such resource in the simulator.",
    )
}

async fn connection_data() -> Json<Value> {
    Json(json!({
        "authenticatedUser": {"id": "00ca946b-2fe9-4f2a-ae2f-40d5c48001bc", "providerDisplayName": "trackbridge bot"},
        "instanceId": COLLECTION_ID,
        "deploymentId": "d81542e4-cdfa-4333-b082-1ae2d6c3ad16",
        "deploymentType": "hosted",
        "locationServiceData": {"serviceOwner": "00025394-6065-48ca-87d9-7f5672854ef7"}
    }))
}

/// The subscription in a create or replace request, or why Azure DevOps
/// refuses it (400 `InvalidRequestException`).
fn subscription_request(body: &Bytes) -> Result<Value, String> {
    let body = serde_json::from_slice::<Value>(body)
        .map_err(|_| "The request body is not valid JSON.".to_string())?;
    for key in ["publisherId", "eventType", "consumerId", "consumerActionId"] {
        if !body[key].is_string() {
            return Err(format!("{key} is required."));
        }
    }
    if !body["consumerInputs"]["url"].is_string() {
        return Err("consumerInputs.url is required.".into());
    }
    Ok(body)
}

fn invalid_request(message: String) -> Response {
    ado_error(StatusCode::BAD_REQUEST, "InvalidRequestException", message)
}

/// Azure DevOps' answer about subscription `id`, made from `body`.
fn subscription_answer(s: &VstsState, id: &str, body: &Value) -> Response {
    let mut answer = fixture("sentry/vsts/create_subscription_response.json");
    answer["id"] = json!(id);
    answer["url"] = json!(format!(
        "{}/{ORG}/_apis/hooks/subscriptions/{id}",
        s.base_url
    ));
    for key in [
        "publisherId",
        "eventType",
        "resourceVersion",
        "consumerId",
        "consumerActionId",
    ] {
        answer[key] = body[key].clone();
    }
    answer["consumerInputs"] = body["consumerInputs"].clone();
    Json(answer).into_response()
}

async fn create_subscription(State(state): State<Shared>, body: Bytes) -> Response {
    let body = match subscription_request(&body) {
        Ok(body) => body,
        Err(why) => return invalid_request(why),
    };
    let mut s = state.lock().unwrap();
    s.next_subscription += 1;
    let id = format!("fd672255-8b6b-4769-9260-{:012}", s.next_subscription);
    s.subscriptions.insert(id.clone(), body.clone());
    subscription_answer(&s, &id, &body)
}

/// "Replace Subscription": the same id, the new body (and so the new secret).
async fn replace_subscription(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let body = match subscription_request(&body) {
        Ok(body) => body,
        Err(why) => return invalid_request(why),
    };
    let mut s = state.lock().unwrap();
    match s.subscriptions.get_mut(&id) {
        Some(existing) => *existing = body.clone(),
        None => {
            return ado_error(
                StatusCode::NOT_FOUND,
                "SubscriptionNotFoundException",
                format!("VS403217: Subscription {id} does not exist."),
            );
        }
    }
    subscription_answer(&s, &id, &body)
}

async fn delete_subscription(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    match state.lock().unwrap().subscriptions.remove(&id) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => ado_error(
            StatusCode::NOT_FOUND,
            "SubscriptionNotFoundException",
            format!("VS403217: Subscription {id} does not exist."),
        ),
    }
}

fn user_display(users: &[Value], mail: &str) -> String {
    let name = users
        .iter()
        .find(|u| u["mailAddress"].as_str() == Some(mail))
        .and_then(|u| u["displayName"].as_str())
        .unwrap_or(mail);
    format!("{name} <{mail}>")
}

fn work_item_json(s: &VstsState, item: &WorkItem) -> Value {
    let mut doc = s.work_item_template.clone();
    doc["id"] = json!(item.id);
    doc["rev"] = json!(item.rev);
    doc["url"] = json!(format!(
        "{}/{ORG}/_apis/wit/workItems/{}",
        s.base_url, item.id
    ));
    let fields = &mut doc["fields"];
    fields["System.TeamProject"] = json!(item.project);
    fields["System.AreaPath"] = json!(item.project);
    fields["System.IterationPath"] = json!(item.project);
    fields["System.WorkItemType"] = json!(item.work_item_type);
    fields["System.State"] = json!(item.state);
    match &item.assigned_to {
        Some(mail) => fields["System.AssignedTo"] = json!(user_display(&s.users, mail)),
        None => {
            if let Some(f) = fields.as_object_mut() {
                f.remove("System.AssignedTo");
            }
        }
    }
    doc
}

fn parse_id(id: &str) -> Option<u64> {
    id.parse().ok()
}

fn no_work_item(id: &str) -> Response {
    ado_error(
        StatusCode::NOT_FOUND,
        "WorkItemUnauthorizedAccessException",
        format!(
            "TF401232: Work item {id} does not exist, or you do not have permissions to read it."
        ),
    )
}

async fn get_work_item(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    let s = state.lock().unwrap();
    match parse_id(&id).and_then(|n| s.work_items.get(&n)) {
        Some(item) => Json(work_item_json(&s, item)).into_response(),
        None => no_work_item(&id),
    }
}

/// The state names allowed for `item` (none configured = anything goes).
fn allowed_states(s: &VstsState, item: &WorkItem) -> Option<Vec<String>> {
    let project_id = s
        .projects
        .iter()
        .find(|(_, name)| *name == item.project)
        .map(|(id, _)| id.clone())?;
    let states = s.states.get(&(project_id, item.work_item_type.clone()))?;
    Some(
        states["value"]
            .as_array()?
            .iter()
            .filter_map(|st| st["name"].as_str().map(str::to_string))
            .collect(),
    )
}

async fn patch_work_item(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/json-patch+json") {
        return ado_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "VssRequestContentTypeNotSupportedException",
            format!("The content type {content_type} is not supported."),
        );
    }
    let Ok(Value::Array(ops)) = serde_json::from_slice::<Value>(&body) else {
        return ado_error(
            StatusCode::BAD_REQUEST,
            "VssPropertyValidationException",
            "You must pass a valid patch document in the body of the request.",
        );
    };
    let mut guard = state.lock().unwrap();
    let s = &mut *guard;
    let Some(n) = parse_id(&id).filter(|n| s.work_items.contains_key(n)) else {
        return no_work_item(&id);
    };
    if let Some(pos) = s.bump_before_patch.iter().position(|b| *b == n) {
        s.bump_before_patch.remove(pos);
        s.work_items.get_mut(&n).expect("checked").rev += 1;
    }
    let mut item = s.work_items[&n].clone();
    let bad =
        |message: String| ado_error(StatusCode::BAD_REQUEST, "WorkItemPatchException", message);
    for op in &ops {
        let kind = op["op"].as_str().unwrap_or("");
        let path = op["path"].as_str().unwrap_or("");
        match (kind, path) {
            ("test", "/rev") => {
                if op["value"].as_u64() != Some(item.rev) {
                    return ado_error(
                        StatusCode::PRECONDITION_FAILED,
                        "WorkItemRevisionMismatchException",
                        format!(
                            "TF26071: This work item has been changed by someone else since you opened it. You will need to refresh it and discard your changes. (test /rev {} failed, rev is {})",
                            op["value"], item.rev
                        ),
                    );
                }
            }
            ("add" | "replace", "/fields/System.State") => {
                let Some(value) = op["value"].as_str() else {
                    return bad("System.State must be a string.".into());
                };
                if let Some(allowed) = allowed_states(s, &item)
                    && !allowed.iter().any(|a| a == value)
                {
                    return bad(format!(
                        "TF401320: Rule Error for field State. Error code: InvalidListValue. The value {value} is not in the list of supported values."
                    ));
                }
                item.state = value.to_string();
            }
            ("add" | "replace", "/fields/System.AssignedTo") => {
                let value = op["value"].as_str().unwrap_or("");
                let found = s.users.iter().find_map(|u| {
                    let mail = u["mailAddress"].as_str().filter(|m| !m.is_empty())?;
                    let principal = u["principalName"].as_str().unwrap_or("");
                    (mail.eq_ignore_ascii_case(value) || principal.eq_ignore_ascii_case(value))
                        .then(|| mail.to_string())
                });
                let Some(mail) = found else {
                    return bad(format!(
                        "TF401320: Rule Error for field Assigned To. Error code: HasValues, InvalidListValue. The identity {value} is unknown."
                    ));
                };
                item.assigned_to = Some(mail);
            }
            ("remove", "/fields/System.AssignedTo") => item.assigned_to = None,
            _ => return bad(format!("The operation {kind} {path} is not supported.")),
        }
    }
    item.rev += 1;
    s.work_items.insert(n, item.clone());
    Json(work_item_json(s, &item)).into_response()
}

async fn work_item_type_states(
    State(state): State<Shared>,
    Path((project, kind)): Path<(String, String)>,
) -> Response {
    let s = state.lock().unwrap();
    let Some((id, _)) = s
        .projects
        .iter()
        .find(|(id, name)| *id == project || name.eq_ignore_ascii_case(&project))
    else {
        return ado_error(
            StatusCode::NOT_FOUND,
            "ProjectDoesNotExistWithNameException",
            format!("TF200016: The following project does not exist: {project}."),
        );
    };
    match s.states.get(&(id.clone(), kind)) {
        Some(states) => Json(states.clone()).into_response(),
        None => Json(json!({"count": 0, "value": []})).into_response(),
    }
}

async fn projects(
    State(state): State<Shared>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    let s = state.lock().unwrap();
    let top: usize = params
        .get("$top")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let skip: usize = params
        .get("$skip")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let value: Vec<Value> = s
        .projects
        .iter()
        .skip(skip)
        .take(top)
        .map(|(id, name)| {
            json!({
                "id": id,
                "name": name,
                "url": format!("{}/{ORG}/_apis/projects/{id}", s.base_url),
                "state": "wellFormed",
                "revision": 16,
                "visibility": "private"
            })
        })
        .collect();
    Json(json!({"count": value.len(), "value": value})).into_response()
}

async fn graph_users(
    State(state): State<Shared>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    let s = state.lock().unwrap();
    let start = match params.get("continuationToken") {
        None => 0,
        Some(token) => match token.strip_prefix("page:").and_then(|n| n.parse().ok()) {
            Some(n) => n,
            None => {
                return ado_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidContinuationTokenException",
                    format!("The continuation token {token} is not valid."),
                );
            }
        },
    };
    let size = s.users_page_size.unwrap_or(usize::MAX);
    let page: Vec<Value> = s.users.iter().skip(start).take(size).cloned().collect();
    let next = start.saturating_add(size);
    let mut response = Json(json!({"count": page.len(), "value": page})).into_response();
    if next < s.users.len() {
        response.headers_mut().insert(
            "x-ms-continuationtoken",
            HeaderValue::from_str(&format!("page:{next}")).expect("ascii"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(pat: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!(":{pat}")))
    }

    #[tokio::test]
    async fn simulator_honours_the_rev_test_and_checks_auth_and_versions() {
        let sim = VstsSim::start(VstsAuth::Pat("pat".into())).await.unwrap();
        let http = reqwest::Client::new();
        let url = format!("{}{}", sim.base_url(), work_item_path(OUTBOUND_WORK_ITEM));
        let patch = |rev: u64, state: &str| {
            http.patch(&url)
                .header("authorization", basic("pat"))
                .header("accept", "application/json; api-version=4.1")
                .header("content-type", "application/json-patch+json")
                .body(
                    json!([{"op": "test", "path": "/rev", "value": rev},
                           {"op": "replace", "path": "/fields/System.State", "value": state}])
                    .to_string(),
                )
        };

        let denied = http
            .get(&url)
            .header("authorization", basic("nope"))
            .header("accept", "application/json; api-version=4.1")
            .send()
            .await
            .unwrap();
        assert_eq!(denied.status(), 401);

        assert_eq!(patch(1, "Resolved").send().await.unwrap().status(), 200);
        assert_eq!(sim.work_item(OUTBOUND_WORK_ITEM).unwrap().rev, 2);
        let stale = patch(1, "Active").send().await.unwrap();
        assert_eq!(stale.status(), 412);
        assert_eq!(sim.work_item(OUTBOUND_WORK_ITEM).unwrap().state, "Resolved");
        assert_eq!(patch(2, "Nonsense").send().await.unwrap().status(), 400);

        sim.bump_rev_before_next_patch(OUTBOUND_WORK_ITEM);
        assert_eq!(patch(2, "Active").send().await.unwrap().status(), 412);
        assert_eq!(patch(3, "Active").send().await.unwrap().status(), 200);
        let item = sim.work_item(OUTBOUND_WORK_ITEM).unwrap();
        assert_eq!((item.rev, item.state.as_str()), (4, "Active"));

        let states = format!(
            "{}{}Bug/states",
            sim.base_url(),
            work_item_types_prefix(PROJECT_ID)
        );
        let released = http
            .get(&states)
            .header("authorization", basic("pat"))
            .header("accept", "application/json; api-version=4.1")
            .send()
            .await
            .unwrap();
        assert_eq!(released.status(), 400);
        let preview = http
            .get(&states)
            .header("authorization", basic("pat"))
            .header("accept", "application/json; api-version=4.1-preview.1")
            .send()
            .await
            .unwrap();
        assert_eq!(preview.status(), 200);
    }

    #[tokio::test]
    async fn simulator_pages_graph_users() {
        let sim = VstsSim::start(VstsAuth::Bearer("tok".into()))
            .await
            .unwrap();
        sim.set_graph_page_size(3);
        let http = reqwest::Client::new();
        let get = |query: &str| {
            http.get(format!("{}{}{query}", sim.base_url(), graph_users_path()))
                .bearer_auth("tok")
                .header("accept", "application/json; api-version=4.1-preview.1")
                .send()
        };
        let first = get("").await.unwrap();
        let token = first.headers()["x-ms-continuationtoken"]
            .to_str()
            .unwrap()
            .to_string();
        let body: Value = first.json().await.unwrap();
        assert_eq!(body["count"], 3);
        let second = get(&format!("?continuationToken={token}")).await.unwrap();
        assert!(second.headers().get("x-ms-continuationtoken").is_none());
        let body: Value = second.json().await.unwrap();
        assert_eq!(body["value"][0]["mailAddress"], FTOTTEN_EMAIL);
    }
}
