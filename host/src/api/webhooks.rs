//! Webhook routes: whatever the loaded plugins declare. The host finds the
//! plugin, lets it verify the request, stores the verified delivery, and only
//! then answers 2xx; workers process it afterwards ([`crate::domain::jobs`]).
//! Unauthenticated requests are never stored.

use std::sync::Arc;

use axum::Json;
use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tracing::Instrument as _;

use super::{ApiError, AppState};
use crate::domain::jobs::{WebhookPayload, is_credential_header};
use crate::metrics::WebhookLabels;
use crate::plugins::ProviderPlugin;
use crate::plugins::contract::provider_types::IncomingRequest;
use crate::plugins::registry::RouteParams;
use crate::plugins::scope::{new_request_id, scoped};
use crate::store::{Enqueued, NewJob};
use crate::time::now_ms;

pub async fn dispatch(State(s): State<AppState>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let Some((plugin, route_params)) = s.registry.route(request.method().as_str(), &path) else {
        return ApiError::NotFound("no such route".into()).into_response();
    };
    let provider = plugin.name().to_owned();
    // A tracker that sends one tells us its request id; else one is made, and
    // the plugin's log lines about this delivery carry it.
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64)
        .map(str::to_owned)
        .unwrap_or_else(new_request_id);
    let span = tracing::info_span!("webhook", %provider, %request_id);
    let (response, _) = scoped(
        request_id.clone(),
        receive(&s, plugin, route_params, request, &request_id).instrument(span),
    )
    .await;
    s.metrics
        .webhooks
        .get_or_create(&WebhookLabels {
            provider,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// What the sender of a webhook hears when it cannot be taken now: 503 with
/// Retry-After, a short reason and the request id — never the plugin's own
/// error, which can carry a backtrace, source paths or the guest's panic
/// text. Those go to the log, under the same request id.
fn unavailable(request_id: &str, reason: &str) -> Response {
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"error": format!("{reason}; retry later"), "request_id": request_id})),
    )
        .into_response();
    response.headers_mut().insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from_static("5"),
    );
    response
}

async fn receive(
    s: &AppState,
    plugin: Arc<ProviderPlugin>,
    route_params: RouteParams,
    request: Request,
    request_id: &str,
) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let limit = s.settings.max_webhook_bytes;
    let too_large = || {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(json!({"error": format!("body larger than {limit} bytes")})),
        )
            .into_response()
    };
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return too_large();
    }
    let body = match to_bytes(body, limit).await {
        Ok(body) => body,
        Err(err) if is_length_limit(&err) => return too_large(),
        // The client stopped sending before the length it declared (or the
        // body timed out, which the body deadline turns into 408).
        Err(_) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "the request body ended before its declared length"})),
            )
                .into_response();
        }
    };
    let request = IncomingRequest {
        method: parts.method.as_str().to_owned(),
        path,
        query: parts.uri.query().unwrap_or("").to_owned(),
        headers: parts
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
        route_params,
        body: body.to_vec(),
    };

    let verified_by = format!("{} {}", plugin.name(), plugin.version());
    let verified = match plugin.verify_webhook(&request).await {
        Ok(v) => v,
        Err(err) => {
            // The detail was logged with the request id when the call failed.
            return unavailable(
                request_id,
                &format!(
                    "the {} plugin could not check this delivery ({})",
                    plugin.name(),
                    err.failure.kind()
                ),
            );
        }
    };
    let webhook = match verified.value {
        Ok(webhook) => webhook,
        Err(rejection) => {
            // A plugin may choose any 4xx; anything else would tell trackers to
            // retry a request that can never succeed.
            let status = StatusCode::from_u16(rejection.status)
                .ok()
                .filter(StatusCode::is_client_error)
                .unwrap_or(StatusCode::BAD_REQUEST);
            tracing::info!(plugin = plugin.name(), %status, reason = %rejection.message, "webhook rejected");
            return (status, Json(json!({"error": rejection.message}))).into_response();
        }
    };
    // Authentic but empty of work (or an event type the provider ignores before it
    // could even tell the integration): acknowledge, change nothing.
    if webhook.ignore {
        return StatusCode::OK.into_response();
    }
    let Some(integration) = verified
        .integration
        .filter(|i| i.external_id == webhook.integration)
    else {
        tracing::error!(
            plugin = plugin.name(),
            "plugin verified a webhook without selecting its integration"
        );
        return unavailable(request_id, "the plugin could not identify the integration");
    };
    let payload = WebhookPayload {
        plugin: plugin.name().to_owned(),
        method: request.method,
        path: request.path,
        query: request.query,
        headers: request
            .headers
            .into_iter()
            .filter(|(name, _)| !is_credential_header(name))
            .collect(),
        route_params: request.route_params,
    };
    let job = NewJob {
        kind: "webhook",
        integration_id: Some(integration.id),
        group_id: None,
        dedup_key: webhook.delivery_id.filter(|k| !k.is_empty()),
        body_sha256: Some(hex_sha256(&request.body)),
        event_time: webhook
            .event_time
            .and_then(|t| i64::try_from(t).ok())
            .map(|t| crate::domain::believable_time(t, now_ms())),
        payload: match serde_json::to_string(&payload) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode a verified webhook");
                return unavailable(request_id, "cannot store the webhook right now");
            }
        },
        body: Some(request.body),
        verified_by: Some(verified_by),
    };
    // Committed before the 2xx: from here on the delivery cannot be lost. When
    // it cannot be stored the tracker must retry, so the answer is 503.
    match s.intake.store(job).await {
        Ok(Enqueued::Stored(id)) => {
            s.domain.jobs_committed();
            (
                StatusCode::OK,
                Json(json!({"status": "accepted", "job": id})),
            )
                .into_response()
        }
        Ok(Enqueued::Duplicate) => {
            tracing::info!(
                plugin = plugin.name(),
                integration = integration.id,
                "duplicate delivery acknowledged"
            );
            (StatusCode::OK, Json(json!({"status": "duplicate"}))).into_response()
        }
        Err(err) => {
            tracing::error!(error = %err, "cannot store a verified webhook");
            unavailable(request_id, "cannot store the webhook right now")
        }
    }
}

/// Whether reading a body failed because it was over the size limit.
fn is_length_limit(err: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
