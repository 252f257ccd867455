//! What happens after an attempt: the retry schedule with jitter, Retry-After
//! within bounds, and the errors retrying cannot fix.

use std::time::Duration;

/// The result of running a job once.
#[derive(Debug)]
pub enum Outcome {
    /// Finished (what a job leads to was written by the job itself, in the
    /// transaction of its change).
    Done { note: Option<String> },
    /// Failed in a way that may pass later; `after` is the service's own
    /// Retry-After, when it gave one.
    Retry {
        error: String,
        after: Option<Duration>,
    },
    /// Failed in a way no retry can fix (401, 403, 404, a rejected transition):
    /// dead-lettered at once, to be replayed once someone fixed the cause.
    Fail { error: String },
    /// The host's own database failed under the job (a timeout, a full
    /// disk): nothing about the job or its tracker is wrong, so the attempt
    /// is not counted and the job runs again after [`DEFERRAL`], not after
    /// the schedule's wait for a tracker to come back.
    Deferred { error: String },
}

/// How long a job the database failed under waits before it runs again.
pub const DEFERRAL: Duration = Duration::from_secs(2);

impl Outcome {
    pub fn done() -> Outcome {
        Outcome::Done { note: None }
    }

    pub fn note(note: impl Into<String>) -> Outcome {
        Outcome::Done {
            note: Some(note.into()),
        }
    }
}

/// When failed attempts run again.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Wait before each retry; a job that failed once more than this has
    /// entries is dead-lettered.
    pub schedule: Vec<Duration>,
    /// The longest Retry-After honoured: a service asking for a day gets this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// About 8 hours from the first attempt to the dead letter, covering a
    /// tracker's maintenance window (Svix-like, shorter at the tail).
    fn default() -> RetryPolicy {
        RetryPolicy {
            schedule: [5, 30, 120, 600, 1800, 3600, 7200, 14400]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            max_retry_after: Duration::from_secs(900),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempts + 1`, or `None` when the schedule is
    /// spent. `random` in [0, 1) spreads retries by ±20 % so that jobs failed
    /// together do not come back together; a Retry-After is a floor.
    pub fn next_delay(
        &self,
        attempts: i64,
        retry_after: Option<Duration>,
        random: f64,
    ) -> Option<Duration> {
        let index = usize::try_from(attempts).ok()?.checked_sub(1)?;
        let base = *self.schedule.get(index)?;
        let jittered = spread(base, random);
        let floor = retry_after.map_or(Duration::ZERO, |d| d.min(self.max_retry_after));
        Some(jittered.max(floor))
    }
}

/// `base` spread by ±20 % (`random` in [0, 1)), so that jobs failed together
/// do not come back together.
pub fn spread(base: Duration, random: f64) -> Duration {
    base.mul_f64(0.8 + 0.4 * random.clamp(0.0, 1.0))
}

/// A random number in [0, 1) for jitter.
pub fn jitter() -> f64 {
    let mut bytes = [0u8; 4];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            schedule: vec![Duration::from_secs(10), Duration::from_secs(100)],
            max_retry_after: Duration::from_secs(60),
        }
    }

    #[test]
    fn follows_the_schedule_then_gives_up() {
        let p = policy();
        assert_eq!(p.next_delay(1, None, 0.5), Some(Duration::from_secs(10)));
        assert_eq!(p.next_delay(2, None, 0.5), Some(Duration::from_secs(100)));
        assert_eq!(p.next_delay(3, None, 0.5), None);
        assert_eq!(p.next_delay(0, None, 0.5), None);
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let p = policy();
        assert_eq!(p.next_delay(1, None, 0.0), Some(Duration::from_secs(8)));
        let high = p.next_delay(1, None, 0.999_999).unwrap();
        assert!(high <= Duration::from_secs(12) && high > Duration::from_secs(11));
    }

    #[test]
    fn retry_after_is_a_floor_within_bounds() {
        let p = policy();
        let asked = Some(Duration::from_secs(30));
        assert_eq!(p.next_delay(1, asked, 0.5), Some(Duration::from_secs(30)));
        let absurd = Some(Duration::from_secs(86_400));
        assert_eq!(p.next_delay(1, absurd, 0.5), Some(Duration::from_secs(60)));
        // Shorter than the schedule: the schedule wins.
        let short = Some(Duration::from_secs(1));
        assert_eq!(p.next_delay(2, short, 0.5), Some(Duration::from_secs(100)));
    }
}
