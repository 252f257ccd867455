//! What every figure is given: the mode, where things are, and the run's log
//! (printed as it goes, and kept for `BENCHMARKS.md`).

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

pub struct Ctx {
    /// The smoke check: small counts and short runs.
    pub quick: bool,
    /// The built `.wasm` plugins (exactly the built-in ones).
    pub plugins_dir: PathBuf,
    /// The `trackbridge` binary, for the figures that need a process of it.
    pub trackbridge: PathBuf,
    /// A PostgreSQL URL to create the `tb_bench_*` databases from.
    pub postgres_admin: String,
    log: Mutex<String>,
}

impl Ctx {
    pub fn new(
        quick: bool,
        plugins_dir: PathBuf,
        trackbridge: PathBuf,
        postgres_admin: String,
    ) -> Ctx {
        Ctx {
            quick,
            plugins_dir,
            trackbridge,
            postgres_admin,
            log: Mutex::new(String::new()),
        }
    }

    /// Print a line and keep it for the report.
    pub fn say(&self, line: impl AsRef<str>) {
        let line = line.as_ref();
        println!("{line}");
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.push_str(line);
        log.push('\n');
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// `full` in the full run, `quick` in the smoke check.
    pub fn pick<T>(&self, full: T, quick: T) -> T {
        if self.quick { quick } else { full }
    }

    /// A measuring period.
    pub fn period(&self, full_secs: f64, quick_secs: f64) -> Duration {
        Duration::from_secs_f64(self.pick(full_secs, quick_secs))
    }
}
