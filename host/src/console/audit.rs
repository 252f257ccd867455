//! `/console/audit`: every change made through the console, newest first.

use axum::extract::State;
use axum::response::Response;

use super::format::utc;
use super::session::Session;
use super::{ConsoleError, page};
use crate::api::AppState;

pub struct EntryRow {
    pub at: String,
    pub who: String,
    pub what: String,
    pub target: String,
}

#[derive(askama::Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    csrf: String,
    entries: Vec<EntryRow>,
}

/// `GET /console/audit`.
pub async fn show(State(s): State<AppState>, session: Session) -> Result<Response, ConsoleError> {
    let entries = s
        .store
        .console_audit(500)
        .await?
        .into_iter()
        .map(|e| EntryRow {
            at: utc(e.at),
            who: e.who,
            what: e.what,
            target: e.target,
        })
        .collect();
    page(AuditPage {
        csrf: session.csrf().to_owned(),
        entries,
    })
}
