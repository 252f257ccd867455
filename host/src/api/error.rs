//! API errors: `{"error": "..."}` with the status that says what to do next.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::domain::DomainError;
use crate::plugins::contract::types::PluginError;
use crate::plugins::{PluginCallError, SwapError};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or wrong admin token")]
    Unauthorized,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The tracker refused or failed during a request that needed it.
    #[error("{0}")]
    Upstream(String),
    /// The database or a plugin is unavailable right now.
    #[error("{0}")]
    Unavailable(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        let mut response = (status, Json(json!({"error": self.to_string()}))).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static("5"),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            StoreError::Conflict(msg) => ApiError::Conflict(msg),
            StoreError::Snowflake(crate::store::snowflake::SnowflakeError::Exhausted) => {
                ApiError::Unavailable("No available ID; try again in a second".into())
            }
            other => {
                tracing::error!(error = %other, "database failure");
                ApiError::Unavailable("the database is unavailable; try again".into())
            }
        }
    }
}

impl From<SwapError> for ApiError {
    fn from(e: SwapError) -> ApiError {
        match e {
            SwapError::Invalid(_) | SwapError::Duplicate(_) => ApiError::BadRequest(e.to_string()),
            SwapError::Conflict(_) | SwapError::NoEarlierVersion(_) => {
                ApiError::Conflict(e.to_string())
            }
            SwapError::NotFound(msg) => ApiError::NotFound(msg),
            SwapError::Store(s) => s.into(),
            SwapError::ReadDir { .. } => ApiError::Unavailable(e.to_string()),
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> ApiError {
        match e {
            DomainError::Store(s) => s.into(),
            DomainError::Invalid(msg) => ApiError::BadRequest(msg),
        }
    }
}

impl From<PluginCallError> for ApiError {
    fn from(e: PluginCallError) -> ApiError {
        match e.plugin_error() {
            Some(PluginError::InvalidInput(m)) => ApiError::BadRequest(m.clone()),
            Some(
                PluginError::Unauthorized(_) | PluginError::Upstream(_) | PluginError::Rejected(_),
            ) => ApiError::Upstream(e.to_string()),
            _ => ApiError::Unavailable(e.to_string()),
        }
    }
}

/// Middleware: every error answer is `{"error": "..."}` JSON, including those
/// axum makes by itself (a path or query that does not parse, a method the
/// route does not serve, a body over its limit), whose text it keeps.
pub async fn json_errors(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    // The console's own pages say what went wrong in HTML.
    let is_html = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_json || is_html {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // axum's own messages are short; a body that is not is not echoed.
    let text = axum::body::to_bytes(body, 4096)
        .await
        .ok()
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    let body = serde_json::to_vec(&json!({ "error": text })).unwrap_or_default();
    parts.headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(http::header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}
