//! `/console`: each installation's health and queue, each plugin's serving
//! version.

use axum::extract::State;
use axum::response::Response;

use super::format::{age, utc_opt};
use super::session::Session;
use super::{ConsoleError, page};
use crate::api::AppState;
use crate::time::now_ms;

const HOUR_MS: i64 = 3600 * 1000;

pub struct IntegrationRow {
    pub id: i64,
    pub org: i64,
    pub provider: String,
    pub name: String,
    pub status: String,
    pub broken_reason: String,
    pub depth: i64,
    pub oldest_pending: String,
    pub failures_last_hour: i64,
    pub dead_letters: i64,
}

pub struct PluginRow {
    pub name: String,
    pub version: String,
    pub contract: String,
    pub world: String,
    pub on_probation: bool,
}

#[derive(askama::Template)]
#[template(path = "console/overview.html")]
struct OverviewPage {
    csrf: String,
    integrations: Vec<IntegrationRow>,
    plugins: Vec<PluginRow>,
}

/// `GET /console`.
pub async fn show(State(s): State<AppState>, session: Session) -> Result<Response, ConsoleError> {
    let now = now_ms();
    let stats = s.store.queue_stats(now - HOUR_MS).await?;
    let mut integrations = Vec::new();
    for (org, id) in s.store.all_installations().await? {
        let view = s.store.integration_view(org, id).await?;
        let q = stats.iter().find(|q| q.integration_id == Some(id));
        integrations.push(IntegrationRow {
            id,
            org,
            provider: view.provider,
            name: view.name,
            status: view.status,
            broken_reason: view.broken_reason.unwrap_or_default(),
            depth: q.map_or(0, |q| q.depth),
            oldest_pending: q
                .and_then(|q| q.oldest_pending_at)
                .map(|t| format!("{} ({} ago)", utc_opt(Some(t)), age(t, now)))
                .unwrap_or_else(|| "none pending".into()),
            failures_last_hour: q.map_or(0, |q| q.failures_last_hour),
            dead_letters: q.map_or(0, |q| q.dead_letters),
        });
    }
    let mut plugins: Vec<PluginRow> = s
        .plugins
        .serving()
        .into_iter()
        .map(|p| PluginRow {
            name: p.name,
            version: p.version,
            contract: p.contract,
            world: p.world.to_owned(),
            on_probation: p.on_probation,
        })
        .collect();
    plugins.sort_by(|a, b| a.name.cmp(&b.name));
    page(OverviewPage {
        csrf: session.csrf().to_owned(),
        integrations,
        plugins,
    })
}
