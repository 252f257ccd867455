//! The HTTP surface: the admin API under `/api` (bearer token), the OpenAPI
//! document, health, readiness and metrics, and the webhook routes the
//! plugins declare.

mod auth;
mod error;
mod health;
pub(crate) mod identities;
pub(crate) mod integrations;
mod openapi;
mod plugins;
mod queue;
mod resources;
mod webhooks;

pub use error::ApiError;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};

use crate::domain::Domain;
use crate::metrics::Metrics;
use crate::monitor::Monitor;
use crate::plugins::{PluginManager, Registry};
use crate::queue::Intake;
use crate::settings::Settings;
use crate::store::Store;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub domain: Domain,
    /// Where verified webhooks are committed before their 2xx.
    pub intake: Intake,
    pub registry: Arc<Registry>,
    pub plugins: Arc<PluginManager>,
    pub metrics: Arc<Metrics>,
    /// Readiness, measured in the background.
    pub monitor: Arc<Monitor>,
    pub settings: Arc<Settings>,
    /// Turns true when the server stops: long-lived responses (the console's
    /// live streams) end then instead of holding the shutdown for its grace.
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

/// The largest plugin module the API accepts.
const MAX_PLUGIN_BYTES: usize = 64 << 20;

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/organizations", post(resources::create_organization))
        .route("/organizations/{org}", get(resources::get_organization))
        .route(
            "/organizations/{org}/projects",
            post(resources::create_project),
        )
        .route("/organizations/{org}/members", post(resources::add_member))
        .route("/organizations/{org}/teams", post(resources::create_team))
        .route(
            "/organizations/{org}/identities",
            post(identities::create).get(identities::list),
        )
        .route(
            "/organizations/{org}/identities/{id}",
            delete(identities::delete),
        )
        .route(
            "/organizations/{org}/integrations",
            post(integrations::install).get(integrations::list),
        )
        .route(
            "/organizations/{org}/integrations/{id}",
            get(integrations::get).delete(integrations::uninstall),
        )
        .route(
            "/organizations/{org}/integrations/{id}/config",
            put(integrations::save_config),
        )
        .route("/users", post(resources::create_user))
        .route("/teams/{team}/projects", post(resources::add_team_project))
        .route("/teams/{team}/members", post(resources::add_team_member))
        .route("/projects/{project}", delete(resources::delete_project))
        .route("/projects/{project}/groups", post(resources::create_group))
        .route(
            "/groups/{group}",
            get(resources::get_group).put(resources::update_group),
        )
        .route("/groups/{group}/activity", get(resources::group_activity))
        .route("/groups/{group}/history", get(resources::group_history))
        .route(
            "/groups/{group}/subscriptions",
            get(resources::group_subscriptions),
        )
        .route(
            "/groups/{group}/external-issues",
            post(resources::link_external_issue),
        )
        .route(
            "/plugins",
            get(plugins::list)
                .post(plugins::install)
                .layer(DefaultBodyLimit::max(MAX_PLUGIN_BYTES)),
        )
        .route("/plugins/{name}/versions", get(plugins::versions))
        .route("/plugins/{name}/rollback", post(plugins::rollback))
        .route("/queue", get(queue::stats))
        .route("/integrations/{id}/queue", get(queue::integration_stats))
        .route("/jobs", get(queue::list))
        .route("/jobs/replay", post(queue::replay_dead))
        .route("/jobs/{id}", get(queue::get))
        .route("/jobs/{id}/replay", post(queue::replay))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_admin_token,
        ))
        .fallback(|| async { ApiError::NotFound("no such API route".into()) });
    let body_timeout = state.settings.http.body_timeout;
    let metrics = state.metrics.clone();
    Router::new()
        .nest("/api", api)
        .route("/openapi.json", get(openapi::document))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(health::ready))
        .route("/metrics", get(health::metrics))
        .nest("/console", crate::console::router())
        .fallback(webhooks::dispatch)
        .layer(axum::middleware::from_fn(move |request, next| {
            crate::listener::body_deadline(body_timeout, metrics.clone(), request, next)
        }))
        .layer(axum::middleware::from_fn(error::json_errors))
        .with_state(state)
}
