//! The admin token guarding `/api`.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

use super::{ApiError, AppState};

pub async fn require_admin_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let expected = state.settings.admin_token.as_bytes();
    // An empty configured token would accept an empty header: refuse everything instead.
    let ok = !expected.is_empty() && bool::from(presented.as_bytes().ct_eq(expected));
    if !ok {
        return Err(ApiError::Unauthorized);
    }
    Ok(next.run(request).await)
}
