//! The log of the hosts a test process starts in-process, kept so that a test
//! can check what an operator would read: every line at `info` and above
//! (`plugin` lines from `debug`), without colours, as the host's own
//! formatter writes them, span fields (`request_id`, …) included; an event
//! whose message spans lines is one entry. The last [`KEPT`] entries are
//! kept; tests find theirs by an id only they use.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Lines kept, across every host of the test process.
pub const KEPT: usize = 50_000;

fn lines() -> &'static Mutex<VecDeque<String>> {
    static LINES: OnceLock<Mutex<VecDeque<String>>> = OnceLock::new();
    LINES.get_or_init(|| Mutex::new(VecDeque::new()))
}

/// Where the formatter writes: it formats each event whole and writes it
/// at once, so one write is one entry (a multi-line error stays together).
struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf).trim_end().to_owned();
        if let Ok(mut lines) = lines().lock() {
            if lines.len() == KEPT {
                lines.pop_front();
            }
            lines.push_back(text);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Install the test process's logging once: `RUST_LOG` to the test output
/// (nothing by default), and the capture.
pub fn init() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let shown = tracing_subscriber::fmt::layer()
            .with_test_writer()
            .with_filter(EnvFilter::from_default_env());
        let kept = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(|| Capture)
            .with_filter(EnvFilter::new("info,plugin=debug,sqlx=warn"));
        let _ = tracing_subscriber::registry()
            .with(shown)
            .with(kept)
            .try_init();
    });
}

/// Every kept entry that contains `needle`.
pub fn lines_with(needle: &str) -> Vec<String> {
    lines()
        .lock()
        .map(|l| l.iter().filter(|l| l.contains(needle)).cloned().collect())
        .unwrap_or_default()
}
