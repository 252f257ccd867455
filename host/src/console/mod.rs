//! The operator console under `/console`: server-rendered pages (askama
//! templates checked at compile time), one stylesheet, a vendored htmx and
//! the small script that keeps lists live, embedded in the binary. Every page works without JavaScript; every change
//! needs a signed-in session and the session's CSRF token, and is recorded
//! in the audit table.

mod audit;
mod dead_letters;
mod deliveries;
pub mod format;
mod identities;
mod integrations;
mod live;
mod overview;
mod plugins;
pub mod session;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

use crate::api::{ApiError, AppState};

/// The largest plugin module the upload form takes (as the API does).
const MAX_PLUGIN_BYTES: usize = 64 << 20;

const STYLESHEET: &str = include_str!("../../static/console/console.css");
const HTMX: &str = include_str!("../../static/console/htmx.min.js");
const LIVE: &str = include_str!("../../static/console/live.js");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(overview::show))
        .route("/login", get(session::login_form).post(session::login))
        .route("/logout", post(session::logout))
        .route("/deliveries", get(deliveries::list))
        .route("/deliveries/{id}", get(deliveries::detail))
        .route("/deliveries/{id}/replay", post(deliveries::replay))
        .route("/dead-letters", get(dead_letters::list))
        .route(
            "/dead-letters/replay",
            get(dead_letters::confirm).post(dead_letters::replay_all),
        )
        .route(
            "/plugins",
            get(plugins::list)
                .post(plugins::upload)
                .layer(DefaultBodyLimit::max(MAX_PLUGIN_BYTES)),
        )
        .route("/plugins/{name}", get(plugins::detail))
        .route(
            "/plugins/{name}/rollback",
            get(plugins::confirm_rollback).post(plugins::rollback),
        )
        .route("/integrations/{id}", get(integrations::show))
        .route("/integrations/{id}/config", post(integrations::save))
        .route("/integrations/{id}/identities", post(identities::add))
        .route(
            "/integrations/{id}/identities/{identity}/delete",
            post(identities::delete),
        )
        .route("/audit", get(audit::show))
        .route("/live", get(live::stream))
        .route("/static/console.css", get(stylesheet))
        .route("/static/htmx.min.js", get(htmx))
        .route("/static/live.js", get(live_script))
}

async fn stylesheet() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLESHEET,
    )
}

async fn htmx() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        HTMX,
    )
}

async fn live_script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        LIVE,
    )
}

/// Why a console request did not do what it asked.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// What the admin API would have answered, in its words.
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("the form's CSRF token is missing or wrong; nothing was changed")]
    Csrf,
    #[error("{0}")]
    Invalid(String),
    #[error("cannot render the page: {0}")]
    Render(#[from] askama::Error),
    #[error("cannot make a session: {0}")]
    Random(String),
}

impl From<crate::store::StoreError> for ConsoleError {
    fn from(e: crate::store::StoreError) -> ConsoleError {
        ConsoleError::Api(e.into())
    }
}

#[derive(askama::Template)]
#[template(path = "console/error.html")]
struct ErrorPage {
    status: String,
    message: String,
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let status = match &self {
            ConsoleError::Api(e) => match e {
                ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
                ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
                ApiError::NotFound(_) => StatusCode::NOT_FOUND,
                ApiError::Conflict(_) => StatusCode::CONFLICT,
                ApiError::Upstream(_) => StatusCode::BAD_GATEWAY,
                ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            },
            ConsoleError::Csrf => StatusCode::FORBIDDEN,
            ConsoleError::Invalid(_) => StatusCode::BAD_REQUEST,
            ConsoleError::Render(_) | ConsoleError::Random(_) => {
                tracing::error!(error = %self, "console failure");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let message = self.to_string();
        let body = askama::Template::render(&ErrorPage {
            status: format!(
                "{} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            ),
            message: message.clone(),
        })
        .unwrap_or(message);
        (status, Html(body)).into_response()
    }
}

/// Render a page to HTML.
pub(crate) fn page(template: impl askama::Template) -> Result<Response, ConsoleError> {
    Ok(Html(template.render()?).into_response())
}

/// A `303 See Other` to `to` after a change (post/redirect/get).
pub(crate) fn see_other(to: &str) -> Response {
    axum::response::Redirect::to(to).into_response()
}

/// `None` for an empty or missing form/query value.
pub(crate) fn non_empty(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// Percent-encode a query value.
pub(crate) fn enc(v: &str) -> String {
    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
}
