//! `/console/plugins`: what serves, every version and switch, uploading a
//! version (the checks of `POST /api/plugins`, its refusal in its words) and
//! rolling back after a confirmation.

use axum::extract::{Multipart, Path, Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::format::utc;
use super::session::Session;
use super::{ConsoleError, enc, non_empty, page, see_other};
use crate::api::{ApiError, AppState};
use crate::time::now_ms;

pub struct ServingRow {
    pub name: String,
    pub version: String,
    pub contract: String,
    pub world: String,
    pub sha256: String,
    pub on_probation: bool,
}

#[derive(askama::Template)]
#[template(path = "console/plugins.html")]
struct ListPage {
    csrf: String,
    plugins: Vec<ServingRow>,
    error: Option<String>,
    installed: Option<String>,
}

async fn list_page(
    s: &AppState,
    session: &Session,
    error: Option<String>,
    installed: Option<String>,
) -> Result<Response, ConsoleError> {
    let mut plugins: Vec<ServingRow> = s
        .plugins
        .serving()
        .into_iter()
        .map(|p| ServingRow {
            name: p.name,
            version: p.version,
            contract: p.contract,
            world: p.world.to_owned(),
            sha256: p.sha256,
            on_probation: p.on_probation,
        })
        .collect();
    plugins.sort_by(|a, b| a.name.cmp(&b.name));
    page(ListPage {
        csrf: session.csrf().to_owned(),
        plugins,
        error,
        installed,
    })
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    installed: Option<String>,
}

/// `GET /console/plugins`.
pub async fn list(
    State(s): State<AppState>,
    session: Session,
    Query(q): Query<ListQuery>,
) -> Result<Response, ConsoleError> {
    list_page(&s, &session, None, non_empty(&q.installed)).await
}

/// `POST /console/plugins` (multipart: `csrf`, `module`): install the
/// module as `POST /api/plugins` does.
pub async fn upload(
    State(s): State<AppState>,
    session: Session,
    mut form: Multipart,
) -> Result<Response, ConsoleError> {
    let mut csrf = None;
    let mut module = Vec::new();
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| ConsoleError::Invalid(format!("the upload did not arrive whole: {e}")))?
    {
        match field.name() {
            Some("csrf") => {
                csrf = Some(field.text().await.map_err(|e| {
                    ConsoleError::Invalid(format!("the upload did not arrive whole: {e}"))
                })?)
            }
            Some("module") => {
                module = field
                    .bytes()
                    .await
                    .map_err(|e| {
                        ConsoleError::Invalid(format!("the upload did not arrive whole: {e}"))
                    })?
                    .to_vec()
            }
            _ => {}
        }
    }
    session.check_csrf(csrf.as_deref())?;
    if module.is_empty() {
        let error = "the body must be the plugin's .wasm file".to_owned();
        return list_page(&s, &session, Some(error), None).await;
    }
    let by = format!("console {}", session.who());
    match s.plugins.install(&module, &by).await {
        Ok(outcome) => {
            let what = format!("{} {}", outcome.version.name, outcome.version.version);
            s.store
                .record_console_audit(
                    &session.who(),
                    "installed a plugin version",
                    &what,
                    now_ms(),
                )
                .await?;
            Ok(see_other(&format!(
                "/console/plugins?installed={}",
                enc(&what)
            )))
        }
        Err(e) => {
            let refusal = ApiError::from(e).to_string();
            let mut response = list_page(&s, &session, Some(refusal), None).await?;
            *response.status_mut() = axum::http::StatusCode::BAD_REQUEST;
            Ok(response)
        }
    }
}

pub struct VersionRow {
    pub id: i64,
    pub version: String,
    pub sha256: String,
    pub contract: String,
    pub world: String,
    pub size: i64,
    pub installed_by: String,
    pub installed_at: String,
    pub serving: bool,
}

pub struct SwitchRow {
    pub at: String,
    pub kind: String,
    pub from: String,
    pub to: String,
    pub by: String,
    pub reason: String,
}

#[derive(askama::Template)]
#[template(path = "console/plugin.html")]
struct DetailPage {
    csrf: String,
    name: String,
    versions: Vec<VersionRow>,
    switches: Vec<SwitchRow>,
}

/// `GET /console/plugins/{name}`.
pub async fn detail(
    State(s): State<AppState>,
    session: Session,
    Path(name): Path<String>,
) -> Result<Response, ConsoleError> {
    let history = s.plugins.history(&name).await.map_err(ApiError::from)?;
    let label = |id: Option<i64>| {
        id.and_then(|id| history.versions.iter().find(|v| v.id == id))
            .map(|v| format!("{} (#{})", v.version, v.id))
            .unwrap_or_else(|| "—".into())
    };
    let switches = history
        .switches
        .iter()
        .rev()
        .map(|w| SwitchRow {
            at: utc(w.at),
            kind: w.kind.clone(),
            from: label(w.from_version_id),
            to: label(Some(w.to_version_id)),
            by: w.by.clone(),
            reason: w.reason.clone(),
        })
        .collect();
    let versions = history
        .versions
        .iter()
        .map(|v| VersionRow {
            id: v.id,
            version: v.version.clone(),
            sha256: v.sha256.clone(),
            contract: v.contract.clone(),
            world: v.world.clone(),
            size: v.size,
            installed_by: v.installed_by.clone(),
            installed_at: utc(v.installed_at),
            serving: history.serving_version_id == Some(v.id),
        })
        .collect();
    page(DetailPage {
        csrf: session.csrf().to_owned(),
        name: history.name.clone(),
        versions,
        switches,
    })
}

#[derive(Deserialize, Default)]
pub struct RollbackForm {
    to: Option<String>,
    csrf: Option<String>,
}

#[derive(askama::Template)]
#[template(path = "console/rollback_confirm.html")]
struct ConfirmPage {
    csrf: String,
    name: String,
    to: String,
    to_label: String,
    from_label: String,
}

/// `GET /console/plugins/{name}/rollback?to=`: what a rollback would switch.
pub async fn confirm_rollback(
    State(s): State<AppState>,
    session: Session,
    Path(name): Path<String>,
    Query(q): Query<RollbackForm>,
) -> Result<Response, ConsoleError> {
    let history = s.plugins.history(&name).await.map_err(ApiError::from)?;
    let to = non_empty(&q.to);
    let find = |id: Option<i64>| {
        id.and_then(|id| history.versions.iter().find(|v| v.id == id))
            .map(|v| format!("{} (#{}, sha256 {})", v.version, v.id, v.sha256))
    };
    let to_label = match &to {
        Some(t) => history
            .versions
            .iter()
            .find(|v| v.id.to_string() == *t || v.version == *t || v.sha256.starts_with(t))
            .map(|v| format!("{} (#{}, sha256 {})", v.version, v.id, v.sha256))
            .unwrap_or_else(|| format!("`{t}`")),
        // As the rollback picks it: the newest version installed before the serving one.
        None => find(
            history
                .versions
                .iter()
                .filter(|v| history.serving_version_id.is_some_and(|s| v.id < s))
                .map(|v| v.id)
                .max(),
        )
        .unwrap_or_else(|| "none: no version was installed before the serving one".into()),
    };
    page(ConfirmPage {
        csrf: session.csrf().to_owned(),
        name: history.name.clone(),
        to: to.unwrap_or_default(),
        to_label,
        from_label: find(history.serving_version_id).unwrap_or_else(|| "—".into()),
    })
}

/// `POST /console/plugins/{name}/rollback`: as `POST /api/plugins/{name}/rollback`.
pub async fn rollback(
    State(s): State<AppState>,
    session: Session,
    Path(name): Path<String>,
    axum::Form(form): axum::Form<RollbackForm>,
) -> Result<Response, ConsoleError> {
    session.check_csrf(form.csrf.as_deref())?;
    let to = non_empty(&form.to);
    let by = format!("console {}", session.who());
    let outcome = s
        .plugins
        .rollback(&name, to.as_deref(), &by)
        .await
        .map_err(ApiError::from)?;
    s.store
        .record_console_audit(
            &session.who(),
            "rolled a plugin back",
            &format!("{name} to {}", outcome.version.version),
            now_ms(),
        )
        .await?;
    Ok(see_other(&format!("/console/plugins/{}", enc(&name))))
}
