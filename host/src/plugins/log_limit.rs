//! A per-plugin budget for log lines: a plugin logging in a loop must not
//! drown the host's own log or fill its disk. A token bucket per plugin name;
//! what is dropped is counted, and the next line let through says how many.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// What one log line may do.
pub enum Verdict {
    /// Emit it; `dropped` lines were dropped since the last one emitted and
    /// should be mentioned.
    Emit {
        dropped: u64,
    },
    Drop,
}

struct Bucket {
    tokens: f64,
    refilled: Instant,
    dropped: u64,
}

pub struct LogLimiter {
    /// Lines per second per plugin, sustained; twice that in a burst.
    rate: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl LogLimiter {
    pub fn new(lines_per_second: u32) -> LogLimiter {
        LogLimiter {
            rate: f64::from(lines_per_second.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn check(&self, plugin: &str) -> Verdict {
        self.check_at(plugin, Instant::now())
    }

    fn check_at(&self, plugin: &str, now: Instant) -> Verdict {
        let burst = self.rate * 2.0;
        let Ok(mut buckets) = self.buckets.lock() else {
            return Verdict::Emit { dropped: 0 };
        };
        let bucket = buckets.entry(plugin.to_owned()).or_insert(Bucket {
            tokens: burst,
            refilled: now,
            dropped: 0,
        });
        let elapsed = now.saturating_duration_since(bucket.refilled);
        bucket.tokens = (bucket.tokens + elapsed.as_secs_f64() * self.rate).min(burst);
        bucket.refilled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            let dropped = std::mem::take(&mut bucket.dropped);
            Verdict::Emit { dropped }
        } else {
            bucket.dropped += 1;
            Verdict::Drop
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_holds_and_drops_are_counted() {
        let limiter = LogLimiter::new(10);
        let t0 = Instant::now();
        let emitted = (0..50)
            .filter(|_| matches!(limiter.check_at("jira", t0), Verdict::Emit { .. }))
            .count();
        assert_eq!(emitted, 20, "a burst of twice the rate");
        // Another plugin has its own budget.
        assert!(matches!(
            limiter.check_at("vsts", t0),
            Verdict::Emit { dropped: 0 }
        ));
        // A tenth of a second later one more line may pass, and says 30 were dropped.
        match limiter.check_at("jira", t0 + Duration::from_millis(100)) {
            Verdict::Emit { dropped } => assert_eq!(dropped, 30),
            Verdict::Drop => panic!("the bucket refilled"),
        }
        assert!(matches!(
            limiter.check_at("jira", t0 + Duration::from_millis(100)),
            Verdict::Drop
        ));
    }
}
