//! The host's Prometheus metrics (`GET /metrics`, OpenMetrics text).
//!
//! Counters are kept as the work happens; the queue figures are read from the
//! database in the background ([`crate::monitor`]), so every host process
//! sharing it reports the same and a scrape never queries the database.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::store::QueueStats;

/// A plugin call: which plugin, which version, which export.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub plugin: String,
    pub version: String,
    pub export: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabels {
    pub plugin: String,
    pub version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActiveLabels {
    pub plugin: String,
    pub version: String,
    pub sha256: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SwitchLabels {
    pub plugin: String,
    /// `install`, `rollback` or `auto_rollback`.
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    pub provider: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabels {
    pub plugin: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IntegrationLabels {
    /// The integration id; empty for jobs that belong to no integration.
    pub integration: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    /// `headers` or `body`.
    pub phase: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn call_latency() -> Histogram {
    // 50 µs to ~13 s: a pure verification to a tracker call at its time limit.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 19))
}

/// Every metric the host exports.
pub struct Metrics {
    registry: Registry,
    pub plugin_calls: Family<CallLabels, Counter>,
    pub plugin_errors: Family<CallLabels, Counter>,
    pub plugin_traps: Family<CallLabels, Counter>,
    pub plugin_timeouts: Family<CallLabels, Counter>,
    pub plugin_call_seconds: HistogramFamily<CallLabels>,
    pub plugin_in_flight: Family<VersionLabels, Gauge>,
    pub plugin_active: Family<ActiveLabels, Gauge>,
    pub plugin_switches: Family<SwitchLabels, Counter>,
    pub plugin_compilations: Counter,
    pub plugin_cache_hits: Counter,
    pub plugin_log_dropped: Family<PluginLabels, Counter>,
    pub plugin_outbound_refused: Family<PluginLabels, Counter>,
    pub webhooks: Family<WebhookLabels, Counter>,
    pub http_connections_open: Gauge,
    pub http_connections_refused: Counter,
    pub http_timeouts: Family<PhaseLabels, Counter>,
    queue_depth: Family<IntegrationLabels, Gauge>,
    queue_dead_letters: Family<IntegrationLabels, Gauge>,
    queue_failures_last_hour: Family<IntegrationLabels, Gauge>,
    queue_oldest_pending_age: Family<IntegrationLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    queue_figures_age: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// When (ms) the queue figures were read; 0: not yet.
    queue_read_at: std::sync::atomic::AtomicI64,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("trackbridge");
        let m = Metrics {
            plugin_calls: Family::default(),
            plugin_errors: Family::default(),
            plugin_traps: Family::default(),
            plugin_timeouts: Family::default(),
            plugin_call_seconds: Family::new_with_constructor(call_latency),
            plugin_in_flight: Family::default(),
            plugin_active: Family::default(),
            plugin_switches: Family::default(),
            plugin_compilations: Counter::default(),
            plugin_cache_hits: Counter::default(),
            plugin_log_dropped: Family::default(),
            plugin_outbound_refused: Family::default(),
            webhooks: Family::default(),
            http_connections_open: Gauge::default(),
            http_connections_refused: Counter::default(),
            http_timeouts: Family::default(),
            queue_depth: Family::default(),
            queue_dead_letters: Family::default(),
            queue_failures_last_hour: Family::default(),
            queue_oldest_pending_age: Family::default(),
            queue_figures_age: Gauge::default(),
            queue_read_at: std::sync::atomic::AtomicI64::new(0),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "plugin_calls",
            "Plugin calls, by plugin, version and export",
            m.plugin_calls.clone(),
        );
        r.register(
            "plugin_call_errors",
            "Plugin calls that failed in any way (the plugin's own errors, traps, timeouts)",
            m.plugin_errors.clone(),
        );
        r.register(
            "plugin_call_traps",
            "Plugin calls that trapped (a panic, the memory cap, a bad access)",
            m.plugin_traps.clone(),
        );
        r.register(
            "plugin_call_timeouts",
            "Plugin calls stopped by the CPU deadline or the wall-clock limit",
            m.plugin_timeouts.clone(),
        );
        r.register(
            "plugin_call_duration_seconds",
            "Plugin call latency, instantiation included",
            m.plugin_call_seconds.clone(),
        );
        r.register(
            "plugin_instances_in_flight",
            "Plugin instances running a call right now",
            m.plugin_in_flight.clone(),
        );
        r.register(
            "plugin_active",
            "1 for the version each plugin serves with",
            m.plugin_active.clone(),
        );
        r.register(
            "plugin_switches",
            "Switches of a plugin to another version",
            m.plugin_switches.clone(),
        );
        r.register(
            "plugin_compilations",
            "Plugin modules compiled (a warm compiled-artifact cache avoids them)",
            m.plugin_compilations.clone(),
        );
        r.register(
            "plugin_artifact_cache_hits",
            "Plugin modules loaded from the compiled-artifact cache",
            m.plugin_cache_hits.clone(),
        );
        r.register(
            "plugin_log_lines_dropped",
            "Plugin log lines dropped over the per-plugin rate limit",
            m.plugin_log_dropped.clone(),
        );
        r.register(
            "plugin_outbound_refused",
            "Plugin outbound requests refused by the gate: not a host of the integration the call acts for",
            m.plugin_outbound_refused.clone(),
        );
        r.register(
            "webhooks",
            "Webhook requests answered, by provider and status code",
            m.webhooks.clone(),
        );
        r.register(
            "queue_depth",
            "Jobs pending or running, per integration",
            m.queue_depth.clone(),
        );
        r.register(
            "queue_dead_letters",
            "Dead-lettered jobs, per integration",
            m.queue_dead_letters.clone(),
        );
        r.register(
            "queue_failures_last_hour",
            "Jobs whose last attempt failed within the hour, per integration",
            m.queue_failures_last_hour.clone(),
        );
        r.register(
            "queue_oldest_pending_age_seconds",
            "Age of the oldest pending or running job, per integration",
            m.queue_oldest_pending_age.clone(),
        );
        r.register(
            "http_connections_open",
            "HTTP connections open now",
            m.http_connections_open.clone(),
        );
        r.register(
            "http_connections_refused",
            "Connections answered 503 and closed because the server had --max-connections open",
            m.http_connections_refused.clone(),
        );
        r.register(
            "http_request_timeouts",
            "Requests closed because their headers or body did not arrive in time, by phase",
            m.http_timeouts.clone(),
        );
        r.register(
            "queue_figures_age_seconds",
            "How old the queue figures are: they are read in the background every 2 s, never per scrape",
            m.queue_figures_age.clone(),
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// Set the queue gauges to `queue`, read from the database at `now` (ms).
    pub fn set_queue(&self, queue: &[QueueStats], now: i64) {
        for family in [
            &self.queue_depth,
            &self.queue_dead_letters,
            &self.queue_failures_last_hour,
        ] {
            family.clear();
        }
        self.queue_oldest_pending_age.clear();
        for q in queue {
            let labels = IntegrationLabels {
                integration: q.integration_id.map(|i| i.to_string()).unwrap_or_default(),
            };
            self.queue_depth.get_or_create(&labels).set(q.depth);
            self.queue_dead_letters
                .get_or_create(&labels)
                .set(q.dead_letters);
            self.queue_failures_last_hour
                .get_or_create(&labels)
                .set(q.failures_last_hour);
            let age = q
                .oldest_pending_at
                .map_or(0.0, |t| (now - t).max(0) as f64 / 1000.0);
            self.queue_oldest_pending_age
                .get_or_create(&labels)
                .set(age);
        }
        self.queue_read_at
            .store(now, std::sync::atomic::Ordering::Relaxed);
    }

    /// The text exposition, as of `now` (ms).
    pub fn render(&self, now: i64) -> String {
        let read_at = self
            .queue_read_at
            .load(std::sync::atomic::Ordering::Relaxed);
        self.queue_figures_age.set(if read_at > 0 {
            (now - read_at).max(0) as f64 / 1000.0
        } else {
            f64::NAN
        });
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            tracing::error!("cannot encode the metrics");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_queue_gauges() {
        let m = Metrics::default();
        let call = CallLabels {
            plugin: "jira".into(),
            version: "0.1.0".into(),
            export: "verify-webhook".into(),
        };
        m.plugin_calls.get_or_create(&call).inc();
        m.plugin_call_seconds.get_or_create(&call).observe(0.001);
        m.webhooks
            .get_or_create(&WebhookLabels {
                provider: "jira".into(),
                status: 200,
            })
            .inc();
        let queue = [QueueStats {
            integration_id: Some(7),
            depth: 3,
            oldest_pending_at: Some(1_000),
            failures_last_hour: 1,
            dead_letters: 2,
        }];
        m.set_queue(&queue, 3_000);
        let text = m.render(3_500);
        for line in [
            r#"trackbridge_plugin_calls_total{plugin="jira",version="0.1.0",export="verify-webhook"} 1"#,
            r#"trackbridge_webhooks_total{provider="jira",status="200"} 1"#,
            r#"trackbridge_queue_depth{integration="7"} 3"#,
            r#"trackbridge_queue_dead_letters{integration="7"} 2"#,
            r#"trackbridge_queue_oldest_pending_age_seconds{integration="7"} 2.0"#,
            "trackbridge_plugin_compilations_total 0",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(
            text.contains("trackbridge_queue_figures_age_seconds 0.5"),
            "{text}"
        );
        // Figures of an integration gone from the queue are not repeated.
        m.set_queue(&[], 4_000);
        assert!(!m.render(4_000).contains(r#"integration="7""#));
    }
}
