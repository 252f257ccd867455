//! `/console/integrations/{id}?org=`: one organization's sync settings of an
//! installation (status and assignee, each direction), its status-mapping
//! table, saved through the validation of
//! `PUT /api/organizations/{org}/integrations/{id}/config`, and its
//! identity mappings (added and deleted in [`super::identities`]).

use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::format::utc;
use super::session::Session;
use super::{ConsoleError, non_empty, page, see_other};
use crate::api::integrations::parse_config;
use crate::api::{ApiError, AppState};
use crate::plugins::contract::provider_types::StatusModel;
use crate::time::now_ms;

/// The switches shown, with what they mean.
const SWITCHES: &[(&str, &str)] = &[
    (
        "sync_status_reverse",
        "Inbound status: the tracker's status changes resolve and unresolve groups",
    ),
    (
        "sync_forward_assignment",
        "Outbound assignee: assigning a group assigns the linked issue",
    ),
    (
        "sync_reverse_assignment",
        "Inbound assignee: assigning the issue at the tracker assigns the group",
    ),
];

#[derive(Deserialize, Default)]
pub struct OrgQuery {
    pub(super) org: Option<String>,
    saved: Option<String>,
    /// `added` or `deleted`: an identity mapping changed.
    identity: Option<String>,
}

pub struct Switch {
    pub key: String,
    pub label: String,
    pub on: bool,
}

pub struct MappingRow {
    pub index: usize,
    pub project: String,
    pub on_resolve: String,
    pub on_unresolve: String,
}

pub struct IdentityRow {
    pub id: i64,
    pub external_id: String,
    pub login: String,
    pub name: String,
    pub user_id: i64,
    pub created: String,
}

/// The add-a-mapping form as sent, shown again with the refusal when it
/// was refused.
#[derive(Default)]
pub struct IdentityForm {
    pub external_id: String,
    pub login: String,
    pub name: String,
    pub user: String,
    pub error: Option<String>,
    /// A mapping was added or deleted.
    pub changed: Option<&'static str>,
}

#[derive(askama::Template)]
#[template(path = "console/integration.html")]
struct IntegrationPage {
    csrf: String,
    id: i64,
    org: i64,
    name: String,
    provider: String,
    status: String,
    broken_reason: String,
    open_closed: bool,
    status_forward_on: bool,
    switches: Vec<Switch>,
    mappings: Vec<MappingRow>,
    identities: Vec<IdentityRow>,
    identity_form: IdentityForm,
    error: Option<String>,
    saved: bool,
}

/// The organization the page is about: `?org=`, else the only one that
/// installed the integration.
pub(super) async fn org_of(
    s: &AppState,
    id: i64,
    org: &Option<String>,
) -> Result<i64, ConsoleError> {
    if let Some(org) = non_empty(org) {
        return org
            .parse::<i64>()
            .map_err(|_| ConsoleError::Invalid(format!("no organization `{org}`")));
    }
    match s.store.integration_orgs(id).await?.as_slice() {
        [only] => Ok(*only),
        [] => Err(ApiError::NotFound("integration not found".into()).into()),
        _ => Err(ConsoleError::Invalid(
            "several organizations installed this integration: say which with ?org=".into(),
        )),
    }
}

async fn open_closed(s: &AppState, id: i64) -> Result<bool, ConsoleError> {
    let integration = s.store.integration(id).await?;
    Ok(s.registry
        .provider(&integration.provider)
        .is_some_and(|p| p.info.status_model == StatusModel::OpenClosed))
}

pub(super) async fn render(
    s: &AppState,
    session: &Session,
    id: i64,
    org: i64,
    error: Option<String>,
    saved: bool,
    identity_form: IdentityForm,
) -> Result<Response, ConsoleError> {
    let view = s.store.integration_view(org, id).await?;
    let open_closed = open_closed(s, id).await?;
    let switches = SWITCHES
        .iter()
        .map(|(key, label)| Switch {
            key: (*key).into(),
            label: (*label).into(),
            on: view.config.get(*key) == Some(&Value::Bool(true)),
        })
        .collect();
    let mut mappings: Vec<MappingRow> = s
        .store
        .status_mappings(org, id)
        .await?
        .into_iter()
        .enumerate()
        .map(|(index, m)| MappingRow {
            index,
            project: m.external_project,
            on_resolve: m.on_resolve,
            on_unresolve: m.on_unresolve,
        })
        .collect();
    // One empty row to add a mapping.
    mappings.push(MappingRow {
        index: mappings.len(),
        project: String::new(),
        on_resolve: String::new(),
        on_unresolve: String::new(),
    });
    let identities = s
        .store
        .identities(org, Some(id), None)
        .await?
        .into_iter()
        .map(|i| IdentityRow {
            id: i.id,
            external_id: i.external_id,
            login: i.login.unwrap_or_default(),
            name: i.name.unwrap_or_default(),
            user_id: i.user_id,
            created: utc(i.created_at),
        })
        .collect();
    let status_forward_on = view.config.get("sync_status_forward") == Some(&Value::Bool(true));
    page(IntegrationPage {
        csrf: session.csrf().to_owned(),
        id,
        org,
        name: view.name,
        provider: view.provider,
        status: view.status,
        broken_reason: view.broken_reason.unwrap_or_default(),
        open_closed,
        status_forward_on,
        switches,
        mappings,
        identities,
        identity_form,
        error,
        saved,
    })
}

/// `GET /console/integrations/{id}?org=`.
pub async fn show(
    State(s): State<AppState>,
    session: Session,
    Path(id): Path<i64>,
    Query(q): Query<OrgQuery>,
) -> Result<Response, ConsoleError> {
    let org = org_of(&s, id, &q.org).await?;
    let identity_form = IdentityForm {
        changed: match q.identity.as_deref() {
            Some("added") => Some("Identity mapping added."),
            Some("deleted") => Some("Identity mapping deleted."),
            _ => None,
        },
        ..IdentityForm::default()
    };
    render(
        &s,
        &session,
        id,
        org,
        None,
        q.saved.is_some(),
        identity_form,
    )
    .await
}

/// The form as the API's JSON body: every switch shown (an unticked box is
/// `false`) and the mapping table (or the open/closed switch).
fn config_body(form: &[(String, String)], open_closed: bool) -> Result<Map<String, Value>, String> {
    let get = |k: &str| {
        form.iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.trim().to_owned())
    };
    let mut body = Map::new();
    for (key, _) in SWITCHES {
        body.insert((*key).into(), Value::Bool(get(key).is_some()));
    }
    if open_closed {
        body.insert(
            "sync_status_forward".into(),
            Value::Bool(get("sync_status_forward").is_some()),
        );
        return Ok(body);
    }
    let mut forward = Map::new();
    for index in 0.. {
        let Some(project) = get(&format!("project_{index}")) else {
            break;
        };
        let resolve = get(&format!("resolve_{index}")).unwrap_or_default();
        let unresolve = get(&format!("unresolve_{index}")).unwrap_or_default();
        if project.is_empty() {
            if !resolve.is_empty() || !unresolve.is_empty() {
                return Err("Each status mapping needs its external project.".into());
            }
            continue;
        }
        forward.insert(
            project,
            json!({"on_resolve": resolve, "on_unresolve": unresolve}),
        );
    }
    body.insert("sync_status_forward".into(), Value::Object(forward));
    Ok(body)
}

/// `POST /console/integrations/{id}/config?org=`.
pub async fn save(
    State(s): State<AppState>,
    session: Session,
    Path(id): Path<i64>,
    Query(q): Query<OrgQuery>,
    axum::Form(form): axum::Form<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let csrf = form
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str());
    session.check_csrf(csrf)?;
    let org = org_of(&s, id, &q.org).await?;
    // The installation must be this organization's before anything is read.
    s.store.integration_view(org, id).await?;
    let open_closed = open_closed(&s, id).await?;
    let update = config_body(&form, open_closed)
        .map_err(ApiError::BadRequest)
        .and_then(|body| parse_config(body, open_closed));
    let update = match update {
        Ok(update) => update,
        Err(refusal) => {
            let mut response = render(
                &s,
                &session,
                id,
                org,
                Some(refusal.to_string()),
                false,
                IdentityForm::default(),
            )
            .await?;
            *response.status_mut() = axum::http::StatusCode::BAD_REQUEST;
            return Ok(response);
        }
    };
    let saved = s.store.save_config(org, id, update).await?;
    s.store
        .record_console_audit(
            &session.who(),
            "saved sync settings",
            &format!("integration {id} of organization {org}: {saved}"),
            now_ms(),
        )
        .await?;
    Ok(see_other(&format!(
        "/console/integrations/{id}?org={org}&saved=1"
    )))
}
