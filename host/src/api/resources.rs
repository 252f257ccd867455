//! Handlers for the host's own resources.

use axum::extract::{FromRequest, Path, Request, State};
use axum::http::StatusCode;
use axum::{Json, response::IntoResponse};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{ApiError, AppState};
use crate::domain::Source;
use crate::domain::status::GroupStatus;
use crate::store::{Assignee, UserEmail};

/// A JSON body whose rejection is an [`ApiError`] like every other error.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let Json(value) = Json::<T>::from_request(req, state)
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        Ok(Body(value))
    }
}

fn required(value: &str, field: &str) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        return Err(ApiError::BadRequest(format!("`{field}` is required")));
    }
    Ok(())
}

fn slug_or_name(slug: Option<String>, name: &str) -> Result<String, ApiError> {
    let slug = slug.unwrap_or_else(|| crate::store::slug::base_slug(name));
    if slug.is_empty() {
        return Err(ApiError::BadRequest(
            "cannot make a slug from this name; give `slug`".into(),
        ));
    }
    Ok(slug)
}

#[derive(Deserialize)]
pub struct NamedInput {
    name: String,
    slug: Option<String>,
}

pub async fn create_organization(
    State(s): State<AppState>,
    Body(input): Body<NamedInput>,
) -> Result<impl IntoResponse, ApiError> {
    required(&input.name, "name")?;
    let slug = slug_or_name(input.slug, &input.name)?;
    let org = s.store.create_organization(&input.name, &slug).await?;
    Ok((StatusCode::CREATED, Json(org)))
}

pub async fn get_organization(
    State(s): State<AppState>,
    Path(org): Path<i64>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.store.organization(org).await?))
}

pub async fn create_project(
    State(s): State<AppState>,
    Path(org): Path<i64>,
    Body(input): Body<NamedInput>,
) -> Result<impl IntoResponse, ApiError> {
    required(&input.name, "name")?;
    let slug = input.slug.filter(|s| !s.trim().is_empty());
    let project = s
        .store
        .create_project(org, &input.name, slug.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(project)))
}

pub async fn delete_project(
    State(s): State<AppState>,
    Path(project): Path<i64>,
) -> Result<StatusCode, ApiError> {
    s.store.delete_project(project).await?;
    tracing::info!(project, "project deleted");
    Ok(StatusCode::NO_CONTENT)
}

pub async fn create_team(
    State(s): State<AppState>,
    Path(org): Path<i64>,
    Body(input): Body<NamedInput>,
) -> Result<impl IntoResponse, ApiError> {
    required(&input.name, "name")?;
    let slug = slug_or_name(input.slug, &input.name)?;
    let team = s.store.create_team(org, &input.name, &slug).await?;
    Ok((StatusCode::CREATED, Json(team)))
}

#[derive(Deserialize)]
pub struct EmailInput {
    email: String,
    #[serde(default)]
    verified: bool,
}

#[derive(Deserialize)]
pub struct UserInput {
    name: String,
    #[serde(default)]
    emails: Vec<EmailInput>,
}

pub async fn create_user(
    State(s): State<AppState>,
    Body(input): Body<UserInput>,
) -> Result<impl IntoResponse, ApiError> {
    required(&input.name, "name")?;
    let emails: Vec<UserEmail> = input
        .emails
        .into_iter()
        .map(|e| UserEmail {
            email: e.email.trim().to_owned(),
            verified: e.verified,
        })
        .collect();
    if emails.iter().any(|e| !e.email.contains('@')) {
        return Err(ApiError::BadRequest("every email needs an `@`".into()));
    }
    let user = s.store.create_user(&input.name, &emails).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[derive(Deserialize)]
pub struct UserRef {
    user_id: i64,
    #[serde(default = "yes")]
    active: bool,
}

fn yes() -> bool {
    true
}

pub async fn add_member(
    State(s): State<AppState>,
    Path(org): Path<i64>,
    Body(input): Body<UserRef>,
) -> Result<impl IntoResponse, ApiError> {
    let member = s.store.add_member(org, input.user_id).await?;
    Ok((StatusCode::CREATED, Json(member)))
}

pub async fn add_team_member(
    State(s): State<AppState>,
    Path(team): Path<i64>,
    Body(input): Body<UserRef>,
) -> Result<StatusCode, ApiError> {
    if !s
        .store
        .add_team_member(team, input.user_id, input.active)
        .await?
    {
        return Err(ApiError::BadRequest(
            "the user is not a member of the team's organization".into(),
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct ProjectRef {
    project_id: i64,
}

pub async fn add_team_project(
    State(s): State<AppState>,
    Path(team): Path<i64>,
    Body(input): Body<ProjectRef>,
) -> Result<StatusCode, ApiError> {
    s.store.add_team_project(team, input.project_id).await?;
    // Who can be assigned in the project changed.
    s.domain
        .invalidate_project_assignee_cache(input.project_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct GroupInput {
    title: String,
}

pub async fn create_group(
    State(s): State<AppState>,
    Path(project): Path<i64>,
    Body(input): Body<GroupInput>,
) -> Result<impl IntoResponse, ApiError> {
    required(&input.title, "title")?;
    let group = s.store.create_group(project, &input.title).await?;
    Ok((StatusCode::CREATED, Json(group)))
}

pub async fn get_group(
    State(s): State<AppState>,
    Path(group): Path<i64>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.store.group(group).await?))
}

/// `assignedTo`: `"user:ID"`, `"team:ID"` or null.
fn parse_assignee(value: &Value) -> Result<Option<Assignee>, ApiError> {
    let bad =
        || ApiError::BadRequest("`assignedTo` must be \"user:ID\", \"team:ID\" or null".into());
    match value {
        Value::Null => Ok(None),
        Value::String(s) => {
            let (kind, id) = s.split_once(':').ok_or_else(bad)?;
            let id: i64 = id.parse().map_err(|_| bad())?;
            match kind {
                "user" => Ok(Some(Assignee::User(id))),
                "team" => Ok(Some(Assignee::Team(id))),
                _ => Err(bad()),
            }
        }
        _ => Err(bad()),
    }
}

pub async fn update_group(
    State(s): State<AppState>,
    Path(group): Path<i64>,
    Body(input): Body<serde_json::Map<String, Value>>,
) -> Result<impl IntoResponse, ApiError> {
    let status = match input.get("status") {
        None => None,
        Some(Value::String(v)) => Some(GroupStatus::parse(v).ok_or_else(|| {
            ApiError::BadRequest("`status` must be \"resolved\" or \"unresolved\"".into())
        })?),
        Some(_) => return Err(ApiError::BadRequest("`status` must be a string".into())),
    };
    let assignee = input.get("assignedTo").map(parse_assignee).transpose()?;
    let create_only = match input.get("createOnly") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "`createOnly` must be true or false".into(),
            ));
        }
    };
    // Validate the whole request before changing anything.
    s.store.group(group).await?;
    let source = Source::Api { user: None };
    if let Some(status) = status {
        s.domain
            .set_status(group, status, source, json!({}))
            .await?;
    }
    match assignee {
        Some(Some(to)) => {
            s.domain.assign(group, to, source, create_only).await?;
        }
        Some(None) => {
            s.domain.deassign(group, source).await?;
        }
        None => {}
    }
    Ok(Json(s.store.group(group).await?))
}

pub async fn group_activity(
    State(s): State<AppState>,
    Path(group): Path<i64>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.store.activity(group).await?))
}

pub async fn group_subscriptions(
    State(s): State<AppState>,
    Path(group): Path<i64>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.store.subscriptions(group).await?))
}

pub async fn group_history(
    State(s): State<AppState>,
    Path(group): Path<i64>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.store.history(group).await?))
}

#[derive(Deserialize)]
pub struct LinkInput {
    integration_id: i64,
    key: String,
}

pub async fn link_external_issue(
    State(s): State<AppState>,
    Path(group): Path<i64>,
    Body(input): Body<LinkInput>,
) -> Result<impl IntoResponse, ApiError> {
    required(&input.key, "key")?;
    let g = s.store.group(group).await?;
    let org = s.store.project(g.project_id).await?.organization_id;
    // The integration must be installed in the group's organization.
    s.store.integration_view(org, input.integration_id).await?;
    let link = s
        .store
        .link_external_issue(group, input.integration_id, input.key.trim())
        .await?;
    Ok((StatusCode::CREATED, Json(link)))
}
