//! `/console/integrations/{id}/identities?org=`: adding an identity mapping
//! (a tracker's user, by its stable id, is one of the organization's users)
//! through the checks of `POST /api/organizations/{org}/identities`, and
//! deleting one; each recorded in the audit table.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::integrations::{IdentityForm, OrgQuery, org_of, render};
use super::session::Session;
use super::{ConsoleError, non_empty, see_other};
use crate::api::identities::create_identity;
use crate::api::{ApiError, AppState};
use crate::store::NewIdentity;
use crate::time::now_ms;

#[derive(Deserialize)]
pub struct AddForm {
    csrf: Option<String>,
    #[serde(default)]
    external_id: String,
    login: Option<String>,
    name: Option<String>,
    #[serde(default)]
    user: String,
}

/// `POST /console/integrations/{id}/identities?org=`.
pub async fn add(
    State(s): State<AppState>,
    session: Session,
    Path(id): Path<i64>,
    Query(q): Query<OrgQuery>,
    axum::Form(form): axum::Form<AddForm>,
) -> Result<Response, ConsoleError> {
    session.check_csrf(form.csrf.as_deref())?;
    let org = org_of(&s, id, &q.org).await?;
    // The installation must be this organization's before anything is written.
    s.store.integration_view(org, id).await?;
    let (login, name) = (non_empty(&form.login), non_empty(&form.name));
    let made = match form.user.trim().parse::<i64>() {
        Ok(user_id) => {
            create_identity(
                &s,
                org,
                NewIdentity {
                    integration_id: id,
                    external_id: &form.external_id,
                    user_id,
                    login: login.as_deref(),
                    name: name.as_deref(),
                },
            )
            .await
        }
        // What the API's body would say of a user id that is not a number.
        Err(_) => Err(ApiError::BadRequest(format!(
            "user_id must be a user's id (a number), not `{}`",
            form.user.trim()
        ))),
    };
    let identity = match made {
        Ok(identity) => identity,
        Err(refusal @ (ApiError::BadRequest(_) | ApiError::Conflict(_))) => {
            let status = if matches!(refusal, ApiError::Conflict(_)) {
                StatusCode::CONFLICT
            } else {
                StatusCode::BAD_REQUEST
            };
            let shown = IdentityForm {
                external_id: form.external_id,
                login: login.unwrap_or_default(),
                name: name.unwrap_or_default(),
                user: form.user,
                error: Some(refusal.to_string()),
                changed: None,
            };
            let mut response = render(&s, &session, id, org, None, false, shown).await?;
            *response.status_mut() = status;
            return Ok(response);
        }
        Err(other) => return Err(other.into()),
    };
    s.store
        .record_console_audit(
            &session.who(),
            "added an identity mapping",
            &format!(
                "integration {id} of organization {org}: tracker user {} is user {}",
                identity.external_id, identity.user_id
            ),
            now_ms(),
        )
        .await?;
    Ok(see_other(&format!(
        "/console/integrations/{id}?org={org}&identity=added"
    )))
}

#[derive(Deserialize)]
pub struct DeleteForm {
    csrf: Option<String>,
}

/// `POST /console/integrations/{id}/identities/{identity}/delete?org=`.
pub async fn delete(
    State(s): State<AppState>,
    session: Session,
    Path((id, identity)): Path<(i64, i64)>,
    Query(q): Query<OrgQuery>,
    axum::Form(form): axum::Form<DeleteForm>,
) -> Result<Response, ConsoleError> {
    session.check_csrf(form.csrf.as_deref())?;
    let org = org_of(&s, id, &q.org).await?;
    // Only a mapping of the integration the page is about.
    let mapping = s
        .store
        .identities(org, Some(id), None)
        .await?
        .into_iter()
        .find(|i| i.id == identity)
        .ok_or_else(|| ApiError::NotFound("identity not found".into()))?;
    s.store.delete_identity(org, identity).await?;
    s.store
        .record_console_audit(
            &session.who(),
            "deleted an identity mapping",
            &format!(
                "integration {id} of organization {org}: tracker user {} was user {}",
                mapping.external_id, mapping.user_id
            ),
            now_ms(),
        )
        .await?;
    Ok(see_other(&format!(
        "/console/integrations/{id}?org={org}&identity=deleted"
    )))
}
