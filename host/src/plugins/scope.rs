//! What a unit of work (one webhook request, one job) knows about the plugin
//! calls made on its behalf: the request id their logs carry, and which plugin
//! version served them. Task-local, so no call signature has to carry it.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

struct Scope {
    request_id: String,
    served_by: Mutex<Option<String>>,
}

tokio::task_local! {
    static SCOPE: Scope;
}

/// Run `work` as request `request_id`; returns its output and the plugin
/// version (`name version`) of the last plugin call it made, if any.
pub async fn scoped<F: Future>(request_id: String, work: F) -> (F::Output, Option<String>) {
    let scope = Scope {
        request_id,
        served_by: Mutex::new(None),
    };
    SCOPE
        .scope(scope, async move {
            let output = work.await;
            let served_by = SCOPE.with(|s| s.served_by.lock().ok().and_then(|v| v.clone()));
            (output, served_by)
        })
        .await
}

/// The current request id, or a fresh one for a call outside any scope.
pub(crate) fn request_id() -> String {
    SCOPE
        .try_with(|s| s.request_id.clone())
        .unwrap_or_else(|_| new_request_id())
}

/// Remember that `plugin version` served the current scope.
pub(crate) fn served_by(plugin: &str, version: &str) {
    let _ = SCOPE.try_with(|s| {
        if let Ok(mut v) = s.served_by.lock() {
            *v = Some(format!("{plugin} {version}"));
        }
    });
}

/// A request id unique in this process and unlikely to repeat across
/// processes: a random prefix chosen at start, then a counter.
pub fn new_request_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let prefix = PREFIX.get_or_init(|| {
        let mut bytes = [0u8; 3];
        let _ = getrandom::fill(&mut bytes);
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    });
    format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_scope_reports_the_last_plugin_that_served_it() {
        let (id, served) = scoped("req-1".into(), async {
            served_by("jira", "0.1.0");
            served_by("jira", "0.2.0");
            request_id()
        })
        .await;
        assert_eq!(id, "req-1");
        assert_eq!(served.as_deref(), Some("jira 0.2.0"));
        let (_, none) = scoped("req-2".into(), async {}).await;
        assert_eq!(none, None);
        assert_ne!(
            request_id(),
            request_id(),
            "outside a scope every call is new"
        );
    }
}
