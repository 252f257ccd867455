//! `GET /console/live`: server-sent events for the open list pages. Each
//! stream looks once per [`CHECK_EVERY`] at a few maxima and counters
//! ([`crate::store::Store::console_change_marker`]) and sends `change` when
//! they moved; the page then fetches its list again. No database connection
//! is held between looks. A stream ends when the client goes away (the
//! keep-alive write fails at the latest), when its session ends, after
//! [`MAX_STREAM`] (the browser reconnects, through the session check), and
//! when the server stops.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use super::ConsoleError;
use super::session::Session;
use crate::api::AppState;
use crate::store::Store;
use crate::time::now_ms;

/// How often an open stream looks for a change.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);
/// A comment this often, so a client that went away is noticed by a failed
/// write and idle-connection limits are not reached.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// The longest one stream lasts.
const MAX_STREAM: Duration = Duration::from_secs(3600);

/// What a stream remembers between looks.
struct Watch {
    store: Store,
    id_hash: String,
    /// The plugins' serving versions: kept in memory, so compared for free.
    plugins: std::sync::Arc<crate::plugins::PluginManager>,
    last: (i64, i64, i64, String),
    ticks: tokio::time::Interval,
    until: Instant,
    stopping: watch::Receiver<bool>,
}

fn plugins_marker(plugins: &crate::plugins::PluginManager) -> String {
    let mut serving: Vec<String> = plugins
        .serving()
        .into_iter()
        .map(|p| {
            format!(
                "{}={}{}",
                p.name,
                p.version,
                if p.on_probation { "?" } else { "" }
            )
        })
        .collect();
    serving.sort();
    serving.join(",")
}

impl Watch {
    /// Wait for the next change; `None` when the stream is to end.
    async fn next_change(&mut self) -> Option<Event> {
        loop {
            tokio::select! {
                _ = self.ticks.tick() => {}
                _ = tokio::time::sleep_until(self.until) => return None,
                // A closed channel means the server is gone as well.
                _ = self.stopping.wait_for(|stopped| *stopped) => return None,
            }
            let marker = match self
                .store
                .console_change_marker(&self.id_hash, now_ms())
                .await
            {
                Ok(Some(m)) => m,
                Ok(None) => return None,
                Err(err) => {
                    // Looked at again next interval; the page keeps what it shows.
                    tracing::debug!(error = %err, "console live check failed");
                    continue;
                }
            };
            let now = (marker.0, marker.1, marker.2, plugins_marker(&self.plugins));
            if now != self.last {
                self.last = now;
                return Some(
                    Event::default()
                        .event("change")
                        .data(format!("{} {} {}", marker.0, marker.1, marker.2)),
                );
            }
        }
    }
}

/// `GET /console/live`.
pub async fn stream(State(s): State<AppState>, session: Session) -> Result<Response, ConsoleError> {
    let Some(first) = s
        .store
        .console_change_marker(&session.row.id_hash, now_ms())
        .await?
    else {
        return Ok(axum::response::Redirect::to("/console/login").into_response());
    };
    let left_ms = (session.row.expires_at - now_ms()).max(0) as u64;
    let until = Instant::now() + MAX_STREAM.min(Duration::from_millis(left_ms));
    let mut ticks = tokio::time::interval_at(Instant::now() + CHECK_EVERY, CHECK_EVERY);
    // A slow look delays the next one instead of bunching them.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let watch = Watch {
        store: s.store.clone(),
        id_hash: session.row.id_hash.clone(),
        last: (first.0, first.1, first.2, plugins_marker(&s.plugins)),
        plugins: s.plugins.clone(),
        ticks,
        until,
        stopping: s.stopping.clone(),
    };
    Ok(Sse::new(events(watch))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response())
}

fn events(watch: Watch) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(watch, |mut watch| async move {
        let event = watch.next_change().await?;
        Some((Ok(event), watch))
    })
}
