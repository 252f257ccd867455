//! `/console/dead-letters`: dead letters grouped by integration and error;
//! replay one (from its delivery page) or all matching, after a confirmation
//! saying how many.

use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::session::Session;
use super::{ConsoleError, enc, non_empty, page, see_other};
use crate::api::AppState;
use crate::time::now_ms;

pub struct GroupRow {
    pub integration: String,
    pub error: String,
    pub count: i64,
    pub newest_id: i64,
    /// The deliveries page listing them.
    pub list_url: String,
    /// The confirmation page replaying them.
    pub replay_url: String,
}

#[derive(askama::Template)]
#[template(path = "console/dead_letters.html")]
struct ListPage {
    csrf: String,
    groups: Vec<GroupRow>,
    total: i64,
}

/// `GET /console/dead-letters`.
pub async fn list(State(s): State<AppState>, session: Session) -> Result<Response, ConsoleError> {
    let groups: Vec<GroupRow> = s
        .store
        .dead_letter_groups()
        .await?
        .into_iter()
        .map(|g| {
            let integration = g.integration_id.map(|i| i.to_string()).unwrap_or_default();
            let mut replay = format!("/console/dead-letters/replay?error={}", enc(&g.error));
            let mut list = "/console/deliveries?state=dead".to_owned();
            if !integration.is_empty() {
                replay.push_str(&format!("&integration={integration}"));
                list.push_str(&format!("&integration={integration}"));
            }
            GroupRow {
                integration: if integration.is_empty() {
                    "none".into()
                } else {
                    integration
                },
                error: if g.error.is_empty() {
                    "(no error recorded)".into()
                } else {
                    g.error
                },
                count: g.count,
                newest_id: g.newest_id,
                list_url: list,
                replay_url: replay,
            }
        })
        .collect();
    page(ListPage {
        csrf: session.csrf().to_owned(),
        total: groups.iter().map(|g| g.count).sum(),
        groups,
    })
}

#[derive(Deserialize, Default)]
pub struct Matching {
    integration: Option<String>,
    /// The last error, exactly; absent: any.
    error: Option<String>,
    csrf: Option<String>,
}

impl Matching {
    fn integration(&self) -> Result<Option<i64>, ConsoleError> {
        non_empty(&self.integration)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| ConsoleError::Invalid(format!("no integration `{v}`")))
            })
            .transpose()
    }
}

#[derive(askama::Template)]
#[template(path = "console/replay_confirm.html")]
struct ConfirmPage {
    csrf: String,
    count: usize,
    integration: String,
    error: String,
    has_error: bool,
}

/// `GET /console/dead-letters/replay?integration=&error=`: how many would go.
pub async fn confirm(
    State(s): State<AppState>,
    session: Session,
    Query(m): Query<Matching>,
) -> Result<Response, ConsoleError> {
    let ids = s
        .store
        .dead_letter_ids(m.integration()?, m.error.as_deref())
        .await?;
    page(ConfirmPage {
        csrf: session.csrf().to_owned(),
        count: ids.len(),
        integration: non_empty(&m.integration).unwrap_or_default(),
        has_error: m.error.is_some(),
        error: m.error.unwrap_or_default(),
    })
}

/// `POST /console/dead-letters/replay`: every matching dead letter goes back
/// in line, one by one as `POST /api/jobs/{id}/replay` does it.
pub async fn replay_all(
    State(s): State<AppState>,
    session: Session,
    axum::Form(m): axum::Form<Matching>,
) -> Result<Response, ConsoleError> {
    session.check_csrf(m.csrf.as_deref())?;
    let has_error = m.error.is_some();
    let ids = s
        .store
        .dead_letter_ids(m.integration()?, m.error.as_deref())
        .await?;
    let now = now_ms();
    for id in &ids {
        s.store.replay_job(*id, now).await?;
    }
    s.domain.jobs_committed();
    let target = format!(
        "{} dead letter(s){}{}",
        ids.len(),
        non_empty(&m.integration)
            .map(|i| format!(" of integration {i}"))
            .unwrap_or_default(),
        if has_error {
            format!(" with error “{}”", m.error.unwrap_or_default())
        } else {
            String::new()
        }
    );
    s.store
        .record_console_audit(&session.who(), "replayed dead letters", &target, now)
        .await?;
    tracing::info!(
        jobs = ids.len(),
        "dead letters replayed through the console"
    );
    Ok(see_other("/console/dead-letters"))
}
