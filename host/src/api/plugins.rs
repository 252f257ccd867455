//! Plugin operations for operators: what serves, every version, install a new
//! one from a `.wasm` body, roll back. The same checks as at start apply, and a
//! refused module leaves the serving version in place.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;

use super::{ApiError, AppState};

/// Who an operation is recorded as done by: the `X-Trackbridge-Operator`
/// header (the CLI sends the local user), else `admin-api`. A label for the
/// record, not an identity: the admin token is the only credential.
fn operator(headers: &HeaderMap) -> String {
    headers
        .get("x-trackbridge-operator")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().chars().take(100).collect::<String>())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "admin-api".into())
}

/// `GET /api/plugins`: the version of each plugin serving in this process.
pub async fn list(State(s): State<AppState>) -> impl IntoResponse {
    Json(s.plugins.serving())
}

/// `POST /api/plugins` with the module as the body: install it as the serving
/// version of the plugin it describes.
pub async fn install(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    if body.is_empty() {
        return Err(ApiError::BadRequest(
            "the body must be the plugin's .wasm file".into(),
        ));
    }
    let by = operator(&headers);
    let outcome = s.plugins.install(&body, &by).await?;
    let status = if outcome.switch.is_some() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(outcome)))
}

/// `GET /api/plugins/{name}/versions`.
pub async fn versions(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.plugins.history(&name).await?))
}

#[derive(Deserialize, Default)]
pub struct RollbackInput {
    /// A version id, a version, or a sha256 prefix; default: the version
    /// installed before the serving one.
    to: Option<String>,
}

/// `POST /api/plugins/{name}/rollback` with `{"to"?: ...}` (or no body).
pub async fn rollback(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let input: RollbackInput = if body.iter().all(u8::is_ascii_whitespace) {
        RollbackInput::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON: {e}")))?
    };
    let by = operator(&headers);
    Ok(Json(
        s.plugins.rollback(&name, input.to.as_deref(), &by).await?,
    ))
}
