//! The queue, for operators: figures per integration, jobs (dead letters
//! first of all) with their last error, and replay — one job or every dead
//! letter at once. Payloads are never shown: webhooks carry customer data.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;

use super::resources::Body;
use super::{ApiError, AppState};
use crate::store::{JobFilter, QueueStats};
use crate::time::now_ms;

const HOUR_MS: i64 = 3600 * 1000;

/// `GET /api/queue`: figures of every integration with jobs.
pub async fn stats(State(s): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.store.queue_stats(now_ms() - HOUR_MS).await?))
}

/// `GET /api/integrations/{id}/queue`: one integration's figures (zeros when
/// it has no jobs).
pub async fn integration_stats(
    State(s): State<AppState>,
    Path(id): Path<i64>,
) -> Result<impl IntoResponse, ApiError> {
    s.store.integration(id).await?;
    let stats = s
        .store
        .queue_stats(now_ms() - HOUR_MS)
        .await?
        .into_iter()
        .find(|q| q.integration_id == Some(id))
        .unwrap_or(QueueStats {
            integration_id: Some(id),
            depth: 0,
            oldest_pending_at: None,
            failures_last_hour: 0,
            dead_letters: 0,
        });
    Ok(Json(stats))
}

#[derive(Deserialize)]
pub struct ListQuery {
    state: Option<String>,
    integration: Option<i64>,
    kind: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/jobs?state=dead&integration=ID&kind=…&limit=N`, newest first.
pub async fn list(
    State(s): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<impl IntoResponse, ApiError> {
    if let Some(state) = &q.state
        && !["pending", "running", "done", "dead"].contains(&state.as_str())
    {
        return Err(ApiError::BadRequest(format!(
            "unknown state `{state}`: pending, running, done or dead"
        )));
    }
    let filter = JobFilter {
        state: q.state,
        integration_id: q.integration,
        kind: q.kind,
        limit: q.limit.unwrap_or(100).clamp(1, 1000),
    };
    Ok(Json(s.store.jobs(&filter).await?))
}

/// `GET /api/jobs/{id}`.
pub async fn get(
    State(s): State<AppState>,
    Path(id): Path<i64>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.store.job(id).await?))
}

/// `POST /api/jobs/{id}/replay`: a dead job, or a done webhook (to process it
/// again after fixing a plugin), goes back in line.
pub async fn replay(
    State(s): State<AppState>,
    Path(id): Path<i64>,
) -> Result<impl IntoResponse, ApiError> {
    let job = s.store.replay_job(id, now_ms()).await?;
    s.domain.jobs_committed();
    tracing::info!(job = id, kind = %job.kind, "job replayed by an operator");
    Ok(Json(job))
}

#[derive(Deserialize, Default)]
pub struct BulkReplay {
    integration: Option<i64>,
}

/// `POST /api/jobs/replay` with `{"integration": ID}` (optional): every dead
/// letter (of that integration) goes back in line.
pub async fn replay_dead(
    State(s): State<AppState>,
    Body(input): Body<BulkReplay>,
) -> Result<impl IntoResponse, ApiError> {
    let ids = s.store.replay_dead(input.integration, now_ms()).await?;
    s.domain.jobs_committed();
    tracing::info!(jobs = ids.len(), "dead letters replayed by an operator");
    Ok(Json(json!({ "replayed": ids })))
}
