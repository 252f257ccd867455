//! How a freshly switched-to plugin version is doing. Its first calls are its
//! probation: when more of them fail than the configured rate allows, the
//! version is reported (once) so the swapper can roll back to the previous one.
//!
//! A failure here is the plugin's own fault — a trap, a timeout, or an
//! internal error it reported — never a tracker that refused or failed, which
//! would roll back a good plugin because its tracker is down.

use std::sync::Mutex;

use tokio::sync::mpsc;

use super::contract::types::PluginError;
use super::error::CallFailure;

/// A version that failed its probation.
#[derive(Debug, Clone)]
pub struct Tripped {
    pub name: String,
    pub sha256: String,
    pub reason: String,
}

/// What probation allows.
#[derive(Clone, Copy, Debug)]
pub struct ProbationPolicy {
    /// How many first calls the probation lasts.
    pub calls: u32,
    /// The largest share of them that may fail (0–1).
    pub max_failure_rate: f64,
}

impl Default for ProbationPolicy {
    fn default() -> ProbationPolicy {
        ProbationPolicy {
            calls: 20,
            max_failure_rate: 0.5,
        }
    }
}

struct Probation {
    policy: ProbationPolicy,
    name: String,
    sha256: String,
    seen: u32,
    failed: u32,
    traps: u32,
    timeouts: u32,
    last_error: String,
    report: mpsc::UnboundedSender<Tripped>,
}

/// Per loaded version: its probation, while it lasts.
#[derive(Default)]
pub struct CallStats {
    probation: Mutex<Option<Probation>>,
}

/// Whether a failure counts against the version.
pub fn is_plugin_fault(failure: &CallFailure) -> bool {
    match failure {
        CallFailure::Trap { .. } | CallFailure::Timeout => true,
        CallFailure::Plugin(PluginError::Internal(_)) => true,
        CallFailure::Plugin(_) | CallFailure::Host(_) => false,
    }
}

impl CallStats {
    /// Start this version's probation; a failed one is sent to `report`.
    pub fn start_probation(
        &self,
        policy: ProbationPolicy,
        name: &str,
        sha256: &str,
        report: mpsc::UnboundedSender<Tripped>,
    ) {
        if policy.calls == 0 {
            return;
        }
        if let Ok(mut p) = self.probation.lock() {
            *p = Some(Probation {
                policy,
                name: name.to_owned(),
                sha256: sha256.to_owned(),
                seen: 0,
                failed: 0,
                traps: 0,
                timeouts: 0,
                last_error: String::new(),
                report,
            });
        }
    }

    /// Stop watching (the version serves again after a rollback: it had its chance).
    pub fn end_probation(&self) {
        if let Ok(mut p) = self.probation.lock() {
            *p = None;
        }
    }

    pub fn on_probation(&self) -> bool {
        self.probation.lock().map(|p| p.is_some()).unwrap_or(false)
    }

    /// Count one finished call; `failure` is `None` for a success.
    pub fn record(&self, failure: Option<(&CallFailure, String)>) {
        let Ok(mut guard) = self.probation.lock() else {
            return;
        };
        let Some(p) = guard.as_mut() else {
            return;
        };
        p.seen += 1;
        if let Some((failure, message)) = failure
            && is_plugin_fault(failure)
        {
            p.failed += 1;
            match failure {
                CallFailure::Trap { .. } => p.traps += 1,
                CallFailure::Timeout => p.timeouts += 1,
                _ => {}
            }
            p.last_error = message;
        }
        let allowed = (f64::from(p.policy.calls) * p.policy.max_failure_rate).floor() as u32;
        if p.failed > allowed {
            let reason = format!(
                "{} of its first {} calls failed (traps {}, timeouts {}; at most {} of {} may fail); last: {}",
                p.failed, p.seen, p.traps, p.timeouts, allowed, p.policy.calls, p.last_error
            );
            let _ = p.report.send(Tripped {
                name: p.name.clone(),
                sha256: p.sha256.clone(),
                reason,
            });
            *guard = None;
        } else if p.seen >= p.policy.calls {
            tracing::info!(plugin = %p.name, sha256 = %&p.sha256[..12.min(p.sha256.len())], failed = p.failed, calls = p.seen, "plugin version passed its probation");
            *guard = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trap() -> CallFailure {
        CallFailure::Trap {
            cause: "unreachable".into(),
            guest_output: String::new(),
        }
    }

    #[test]
    fn trips_once_more_calls_failed_than_allowed() {
        let stats = CallStats::default();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let policy = ProbationPolicy {
            calls: 4,
            max_failure_rate: 0.5,
        };
        stats.start_probation(policy, "jira", "abcdef0123456789", tx);
        stats.record(Some((&trap(), "boom".into())));
        stats.record(None);
        stats.record(Some((&trap(), "boom".into())));
        assert!(rx.try_recv().is_err(), "2 of 4 may fail");
        stats.record(Some((&trap(), "boom 3".into())));
        let tripped = rx.try_recv().expect("tripped");
        assert_eq!(tripped.name, "jira");
        assert!(
            tripped
                .reason
                .starts_with("3 of its first 4 calls failed (traps 3"),
            "{}",
            tripped.reason
        );
        assert!(tripped.reason.ends_with("last: boom 3"));
        assert!(!stats.on_probation());
    }

    #[test]
    fn a_tracker_failure_is_not_the_plugins_fault_and_probation_ends() {
        let stats = CallStats::default();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let policy = ProbationPolicy {
            calls: 2,
            max_failure_rate: 0.0,
        };
        stats.start_probation(policy, "jira", "abcdef0123456789", tx);
        let upstream = CallFailure::Plugin(PluginError::Unauthorized("bad token".into()));
        stats.record(Some((&upstream, "401".into())));
        stats.record(None);
        assert!(rx.try_recv().is_err());
        assert!(!stats.on_probation(), "passed after 2 calls");
    }
}
