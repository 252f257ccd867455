//! `/console/deliveries`: the delivery log (stored webhooks and outbound
//! jobs) with its filters in the URL, one delivery with its stored request
//! (credentials masked), and replay.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::format::{MASK, is_sensitive, parse_utc, pretty_masked, utc, utc_input, utc_opt};
use super::session::Session;
use super::{ConsoleError, enc, non_empty, page, see_other};
use crate::api::AppState;
use crate::store::{DeliveryFilter, JobAttempt, JobView};
use crate::time::now_ms;

const PAGE_SIZE: i64 = 50;
const STATES: &[&str] = &["pending", "running", "done", "dead"];
const KINDS: &[&str] = &[
    "webhook",
    "group_changed",
    "sync_status",
    "sync_assignee",
    "notify",
];

#[derive(Deserialize, Default, Clone)]
pub struct ListQuery {
    state: Option<String>,
    kind: Option<String>,
    integration: Option<String>,
    provider: Option<String>,
    group: Option<String>,
    from: Option<String>,
    to: Option<String>,
    id: Option<String>,
    before: Option<String>,
}

pub struct Row {
    pub id: i64,
    pub kind: String,
    pub state: String,
    pub integration: String,
    pub attempts: i64,
    pub created: String,
    pub last_error: String,
}

pub struct Choice {
    pub value: String,
    pub selected: bool,
}

#[derive(askama::Template)]
#[template(path = "console/deliveries.html")]
struct ListPage {
    csrf: String,
    states: Vec<Choice>,
    kinds: Vec<Choice>,
    integration: String,
    provider: String,
    group: String,
    from: String,
    to: String,
    id: String,
    rows: Vec<Row>,
    /// This view's URL, to share.
    share: String,
    next: Option<String>,
}

fn choices(all: &[&str], chosen: &Option<String>) -> Vec<Choice> {
    all.iter()
        .map(|v| Choice {
            value: (*v).to_owned(),
            selected: chosen.as_deref() == Some(*v),
        })
        .collect()
}

fn parse_time(field: &str, v: &Option<String>) -> Result<Option<i64>, ConsoleError> {
    non_empty(v)
        .map(|t| {
            parse_utc(&t).ok_or_else(|| {
                ConsoleError::Invalid(format!(
                    "`{field}` must be a UTC time such as 2026-01-31T12:00, not `{t}`"
                ))
            })
        })
        .transpose()
}

fn parse_id(field: &str, v: &Option<String>) -> Result<Option<i64>, ConsoleError> {
    non_empty(v)
        .map(|t| {
            t.parse::<i64>().map_err(|_| {
                ConsoleError::Invalid(format!("`{field}` must be a number, not `{t}`"))
            })
        })
        .transpose()
}

/// The query string of a filter (empty fields left out), paging aside.
fn query_string(q: &ListQuery) -> String {
    [
        ("state", &q.state),
        ("kind", &q.kind),
        ("integration", &q.integration),
        ("provider", &q.provider),
        ("group", &q.group),
        ("from", &q.from),
        ("to", &q.to),
        ("id", &q.id),
    ]
    .iter()
    .filter_map(|(k, v)| non_empty(v).map(|v| format!("{k}={}", enc(&v))))
    .collect::<Vec<_>>()
    .join("&")
}

fn row(j: &JobView) -> Row {
    Row {
        id: j.id,
        kind: j.kind.clone(),
        state: j.state.clone(),
        integration: j
            .integration_id
            .map(|i| i.to_string())
            .unwrap_or_else(|| "—".into()),
        attempts: j.attempts,
        created: utc(j.created_at),
        // A job that succeeded has no error to show in a list of states; its
        // page keeps the earlier one.
        last_error: if j.state == "done" {
            String::new()
        } else {
            j.last_error.clone().unwrap_or_default()
        },
    }
}

/// `GET /console/deliveries?state=&kind=&integration=&provider=&group=&from=&to=&id=&before=`.
pub async fn list(
    State(s): State<AppState>,
    session: Session,
    Query(q): Query<ListQuery>,
) -> Result<Response, ConsoleError> {
    let from = parse_time("from", &q.from)?;
    let to = parse_time("to", &q.to)?;
    let filter = DeliveryFilter {
        state: non_empty(&q.state),
        kind: non_empty(&q.kind),
        integration_id: parse_id("integration", &q.integration)?,
        provider: non_empty(&q.provider),
        group_id: parse_id("group", &q.group)?,
        from,
        to,
        any_id: non_empty(&q.id),
        before: parse_id("before", &q.before)?,
        limit: PAGE_SIZE,
    };
    let jobs = s.store.console_jobs(&filter).await?;
    let filters = query_string(&q);
    let next = match jobs.last() {
        Some(last) if jobs.len() as i64 == PAGE_SIZE => Some(format!(
            "/console/deliveries?{filters}{}before={}",
            if filters.is_empty() { "" } else { "&" },
            last.id
        )),
        _ => None,
    };
    let mut share = format!("/console/deliveries?{filters}");
    if let Some(before) = filter.before {
        share.push_str(&format!(
            "{}before={before}",
            if filters.is_empty() { "" } else { "&" }
        ));
    }
    page(ListPage {
        csrf: session.csrf().to_owned(),
        states: choices(STATES, &filter.state),
        kinds: choices(KINDS, &filter.kind),
        integration: non_empty(&q.integration).unwrap_or_default(),
        provider: filter.provider.clone().unwrap_or_default(),
        group: non_empty(&q.group).unwrap_or_default(),
        from: from.map(utc_input).unwrap_or_default(),
        to: to.map(utc_input).unwrap_or_default(),
        id: filter.any_id.clone().unwrap_or_default(),
        rows: jobs.iter().map(row).collect(),
        share,
        next,
    })
}

pub struct Field {
    pub name: String,
    pub value: String,
}

pub struct AttemptRow {
    pub number: i64,
    pub started: String,
    pub finished: String,
    /// The outcome's code (`done`, `retry`, `deferred`, `dead`), and in words.
    pub outcome: String,
    pub outcome_words: &'static str,
    pub error: String,
    pub next_retry: String,
}

fn attempt_row(a: JobAttempt) -> AttemptRow {
    let outcome_words = match a.outcome.as_str() {
        "done" => "succeeded",
        "retry" => "failed; retried",
        "deferred" => "database failed under it; run again, not counted",
        "dead" => "failed; dead-lettered",
        _ => "unknown",
    };
    AttemptRow {
        number: a.attempt,
        started: utc(a.started_at),
        finished: utc(a.finished_at),
        outcome: a.outcome,
        outcome_words,
        error: a
            .error
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| "—".into()),
        next_retry: utc_opt(a.next_retry_at),
    }
}

#[derive(askama::Template)]
#[template(path = "console/delivery.html")]
struct DetailPage {
    csrf: String,
    job: Row,
    fields: Vec<Field>,
    headers: Vec<Field>,
    request_line: String,
    body: String,
    payload: String,
    replayable: bool,
    attempts: Vec<AttemptRow>,
}

/// `GET /console/deliveries/{id}`.
pub async fn detail(
    State(s): State<AppState>,
    session: Session,
    Path(id): Path<i64>,
) -> Result<Response, ConsoleError> {
    let job = s.store.job(id).await?;
    let (payload, body) = s.store.job_payload(id).await?.unwrap_or_default();
    let attempts = s.store.job_attempts(id).await?;
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".into());
    let now = now_ms();
    let next_retry = if job.state == "pending" && job.run_after > now {
        utc(job.run_after)
    } else if job.state == "pending" {
        "due now".into()
    } else {
        "—".into()
    };
    let fields = [
        ("Job id", job.id.to_string()),
        ("Kind", job.kind.clone()),
        ("State", job.state.clone()),
        (
            "Integration",
            job.integration_id.map_or("—".into(), |i| i.to_string()),
        ),
        ("Group", job.group_id.map_or("—".into(), |g| g.to_string())),
        ("Dedup key", opt(&job.dedup_key)),
        ("Event time (provider)", utc_opt(job.event_time)),
        ("Stored at", utc(job.created_at)),
        ("Verified by", opt(&job.verified_by)),
        ("Handled by", opt(&job.handled_by)),
        ("Attempts", job.attempts.to_string()),
        ("Last failed at", utc_opt(job.last_failed_at)),
        // Kept as history once the job is done: it is no longer the job's state.
        (
            if job.state == "done" {
                "Error before it succeeded"
            } else {
                "Last error"
            },
            opt(&job.last_error),
        ),
        ("Next retry", next_retry),
        ("Finished at", utc_opt(job.finished_at)),
        ("Note", opt(&job.note)),
    ]
    .into_iter()
    .map(|(name, value)| Field {
        name: name.into(),
        value,
    })
    .collect();
    let mut headers = Vec::new();
    let mut request_line = String::new();
    let mut payload_text = String::new();
    if job.kind == "webhook" {
        let stored: serde_json::Value = serde_json::from_str(&payload).unwrap_or_default();
        request_line = format!(
            "{} {}{}{}",
            stored["method"].as_str().unwrap_or(""),
            stored["path"].as_str().unwrap_or(""),
            if stored["query"].as_str().unwrap_or("").is_empty() {
                ""
            } else {
                "?"
            },
            stored["query"].as_str().unwrap_or("")
        );
        for pair in stored["headers"].as_array().into_iter().flatten() {
            let name = pair[0].as_str().unwrap_or("").to_owned();
            let value = if is_sensitive(&name) {
                MASK.to_owned()
            } else {
                pair[1].as_str().unwrap_or("").to_owned()
            };
            headers.push(Field { name, value });
        }
    } else {
        payload_text = pretty_masked(payload.as_bytes());
    }
    let replayable = job.state == "dead" || (job.state == "done" && job.kind == "webhook");
    page(DetailPage {
        csrf: session.csrf().to_owned(),
        job: row(&job),
        fields,
        headers,
        request_line,
        body: body.as_deref().map(pretty_masked).unwrap_or_default(),
        payload: payload_text,
        replayable,
        attempts: attempts.into_iter().map(attempt_row).collect(),
    })
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: Option<String>,
}

/// `POST /console/deliveries/{id}/replay`: as `POST /api/jobs/{id}/replay`.
pub async fn replay(
    State(s): State<AppState>,
    session: Session,
    Path(id): Path<i64>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    session.check_csrf(form.csrf.as_deref())?;
    let job = s.store.replay_job(id, now_ms()).await?;
    s.domain.jobs_committed();
    s.store
        .record_console_audit(
            &session.who(),
            "replayed a job",
            &format!("job {id}"),
            now_ms(),
        )
        .await?;
    tracing::info!(job = id, kind = %job.kind, "job replayed through the console");
    Ok(see_other(&format!("/console/deliveries/{id}")))
}
