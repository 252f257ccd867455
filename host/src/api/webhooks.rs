//! Webhook routes: whatever the loaded plugins declare. The host finds the
//! plugin, lets it verify the request, then applies the events it returns.

use axum::Json;
use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{ApiError, AppState};
use crate::domain::apply_events;
use crate::plugins::bindings::provider_types::IncomingRequest;
use crate::plugins::bindings::types::PluginError;

pub async fn dispatch(State(s): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let Some((plugin, route_params)) = s.registry.route(parts.method.as_str(), &path) else {
        return ApiError::NotFound("no such route".into()).into_response();
    };
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
    let Ok(body) = to_bytes(body, limit).await else {
        return too_large();
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

    let verified = match plugin.verify_webhook(&request).await {
        Ok(v) => v,
        Err(err) => return ApiError::Unavailable(err.to_string()).into_response(),
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
        return ApiError::Unavailable("the plugin could not identify the integration".into())
            .into_response();
    };
    let events = match plugin.handle_webhook(integration.clone(), &request).await {
        Ok(events) => events,
        Err(err) => {
            return match err.plugin_error() {
                // Sentry answers 200 with the reason when the tracker itself failed
                // while the event was being read (e.g. the email lookup).
                Some(PluginError::Upstream(_) | PluginError::Unauthorized(_)) => {
                    tracing::warn!(error = %err, "webhook handled with a tracker error");
                    (
                        StatusCode::OK,
                        Json(json!({"error_message": err.to_string()})),
                    )
                        .into_response()
                }
                Some(PluginError::InvalidInput(m) | PluginError::Rejected(m)) => {
                    (StatusCode::BAD_REQUEST, Json(json!({"error": m}))).into_response()
                }
                _ => ApiError::Unavailable(err.to_string()).into_response(),
            };
        }
    };
    let provider = (plugin.name(), plugin.info.display_name.as_str());
    match apply_events(&s.domain, &integration, provider, events).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(err) => ApiError::from(err).into_response(),
    }
}
