//! `/api/organizations/{org}/identities`: the operator's mappings from a
//! tracker's users (by their stable id) to the organization's users.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;

use super::resources::Body;
use super::{ApiError, AppState};
use crate::store::{Identity, IdentityRefused, NewIdentity};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewIdentityBody {
    integration_id: i64,
    external_id: String,
    user_id: i64,
    login: Option<String>,
    name: Option<String>,
}

pub async fn create(
    State(s): State<AppState>,
    Path(org): Path<i64>,
    Body(input): Body<NewIdentityBody>,
) -> Result<impl IntoResponse, ApiError> {
    let identity = create_identity(
        &s,
        org,
        NewIdentity {
            integration_id: input.integration_id,
            external_id: &input.external_id,
            user_id: input.user_id,
            login: input.login.as_deref(),
            name: input.name.as_deref(),
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(identity)))
}

/// Make a mapping as `POST /api/organizations/{org}/identities` does, its
/// checks and its refusals in its words (the console makes them here too).
pub(crate) async fn create_identity(
    s: &AppState,
    org: i64,
    new: NewIdentity<'_>,
) -> Result<Identity, ApiError> {
    let external_id = new.external_id.trim();
    if external_id.is_empty() {
        return Err(ApiError::BadRequest(
            "external_id is required: the tracker's stable id of its user".into(),
        ));
    }
    s.store
        .create_identity(org, NewIdentity { external_id, ..new })
        .await
        .map_err(|e| match e {
            IdentityRefused::NotInstalled(_) | IdentityRefused::NotAMember(_) => {
                ApiError::BadRequest(e.to_string())
            }
            IdentityRefused::Store(e) => e.into(),
        })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    integration_id: Option<i64>,
    user_id: Option<i64>,
}

pub async fn list(
    State(s): State<AppState>,
    Path(org): Path<i64>,
    Query(q): Query<ListQuery>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        s.store.identities(org, q.integration_id, q.user_id).await?,
    ))
}

pub async fn delete(
    State(s): State<AppState>,
    Path((org, id)): Path<(i64, i64)>,
) -> Result<StatusCode, ApiError> {
    s.store.delete_identity(org, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
