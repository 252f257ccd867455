//! Liveness, readiness and metrics — unauthenticated, read-only, for probes
//! and scrapers.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use serde_json::json;

use super::AppState;
use crate::time::now_ms;

/// How long readiness waits for the database.
const DATABASE_PROBE: Duration = Duration::from_secs(2);

/// `GET /readyz`: 200 when the database answers and plugins are loaded.
pub async fn ready(State(s): State<AppState>) -> impl IntoResponse {
    let database = tokio::time::timeout(DATABASE_PROBE, s.store.ping()).await;
    let database_ok = matches!(database, Ok(Ok(())));
    let plugins = s.registry.plugins().len();
    let ready = database_ok && plugins > 0;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if ready { "ready" } else { "not ready" },
            "database": if database_ok { "ok" } else { "unreachable" },
            "plugins": plugins,
        })),
    )
}

/// `GET /metrics`: Prometheus text; the queue figures are read from the
/// database now (left out, with the rest served, when it is away).
pub async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    let now = now_ms();
    let queue =
        match tokio::time::timeout(DATABASE_PROBE, s.store.queue_stats(now - 3600 * 1000)).await {
            Ok(Ok(queue)) => queue,
            _ => Vec::new(),
        };
    (
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.render(&queue, now),
    )
}
