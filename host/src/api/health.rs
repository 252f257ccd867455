//! Liveness, readiness and metrics — unauthenticated, read-only, for probes
//! and scrapers. None of them touches the database: readiness and the queue
//! figures are measured in the background ([`crate::monitor`]), so a flood of
//! probes or scrapes costs CPU and nothing else.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use serde_json::json;

use super::AppState;
use crate::time::now_ms;

/// `GET /readyz`: 200 when the host can store (its last write probe
/// committed recently, no writer is stuck, the intake commits) and plugins
/// are loaded; 503 otherwise, saying why.
pub async fn ready(State(s): State<AppState>) -> impl IntoResponse {
    let readiness = s.monitor.readiness(
        &s.store,
        s.registry.plugins().len(),
        now_ms(),
        s.settings.readiness_stale(),
    );
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if readiness.ready { "ready" } else { "not ready" },
            "database": readiness.database,
            "plugins": readiness.plugins,
        })),
    )
}

/// `GET /metrics`: Prometheus text.
pub async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.render(now_ms()),
    )
}
