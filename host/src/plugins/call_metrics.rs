//! The metrics of one plugin version's calls, as handles made once when the
//! version is loaded: counting a call is then a few atomic additions, not a
//! lookup of every series by freshly allocated label strings.

use std::collections::HashMap;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

use super::error::{CallFailure, PluginCallError};
use crate::metrics::{CallLabels, Metrics, VersionLabels};

/// One export's series.
struct Export {
    calls: Counter,
    errors: Counter,
    traps: Counter,
    timeouts: Counter,
    seconds: Histogram,
}

/// Every export's series of one plugin version, and its instances in flight.
pub struct CallMetrics {
    exports: HashMap<&'static str, Export>,
    in_flight: Gauge,
}

/// Counts a call as in flight for as long as it lives.
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl CallMetrics {
    /// The series of `plugin version` for `exports`. Every series exists from
    /// now on, at 0 until it counts: a rate over a series that appears late
    /// starts wrong.
    pub fn new(
        metrics: &Metrics,
        plugin: &str,
        version: &str,
        exports: &[&'static str],
    ) -> CallMetrics {
        let exports = exports
            .iter()
            .map(|export| {
                let labels = CallLabels {
                    plugin: plugin.to_owned(),
                    version: version.to_owned(),
                    export: (*export).to_owned(),
                };
                (
                    *export,
                    Export {
                        calls: metrics.plugin_calls.get_or_create(&labels).clone(),
                        errors: metrics.plugin_errors.get_or_create(&labels).clone(),
                        traps: metrics.plugin_traps.get_or_create(&labels).clone(),
                        timeouts: metrics.plugin_timeouts.get_or_create(&labels).clone(),
                        seconds: metrics.plugin_call_seconds.get_or_create(&labels).clone(),
                    },
                )
            })
            .collect();
        let in_flight = metrics
            .plugin_in_flight
            .get_or_create(&VersionLabels {
                plugin: plugin.to_owned(),
                version: version.to_owned(),
            })
            .clone();
        CallMetrics { exports, in_flight }
    }

    /// Count a call as in flight until the guard drops.
    pub fn in_flight(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    /// Count a finished call of `export` that took `seconds`.
    pub fn count(&self, export: &str, seconds: f64, error: Option<&PluginCallError>) {
        let Some(series) = self.exports.get(export) else {
            return;
        };
        series.calls.inc();
        series.seconds.observe(seconds);
        if let Some(error) = error {
            series.errors.inc();
            match error.failure {
                CallFailure::Trap { .. } => {
                    series.traps.inc();
                }
                CallFailure::Timeout => {
                    series.timeouts.inc();
                }
                _ => {}
            }
        }
    }
}
