//! The figures as rows (value, baseline, ratio, target), the machine they were
//! measured on, and their rendering for the terminal and for `BENCHMARKS.md`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;

/// What a figure is held to.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// value / baseline at least this.
    MinRatio(f64),
    /// The value at most this (in the row's unit).
    AtMost(f64),
    /// The value at least this (in the row's unit).
    AtLeast(f64),
}

impl Target {
    fn describe(self, unit: &str) -> String {
        match self {
            Target::MinRatio(r) => format!("≥ {r}× baseline"),
            Target::AtMost(v) => format!("≤ {} {unit}", number(v)),
            Target::AtLeast(v) => format!("≥ {} {unit}", number(v)),
        }
    }

    fn met(self, value: f64, ratio: Option<f64>) -> Option<bool> {
        match self {
            Target::MinRatio(min) => ratio.map(|r| r >= min),
            Target::AtMost(max) => Some(value <= max),
            Target::AtLeast(min) => Some(value >= min),
        }
    }
}

/// One measured figure.
#[derive(Clone, Debug)]
pub struct Row {
    /// The issue's figure, e.g. `1. Ingress`.
    pub figure: &'static str,
    pub metric: String,
    pub unit: &'static str,
    /// `None` when the figure could not be produced.
    pub value: Option<f64>,
    /// What the value is compared with, and its measurement in this run.
    pub baseline: Option<(String, f64)>,
    pub target: Option<Target>,
    /// The value holds only with this reservation (shown as `met*`).
    pub caveat: Option<String>,
    pub note: String,
}

impl Row {
    pub fn new(figure: &'static str, metric: impl Into<String>, unit: &'static str) -> Row {
        Row {
            figure,
            metric: metric.into(),
            unit,
            value: None,
            baseline: None,
            target: None,
            caveat: None,
            note: String::new(),
        }
    }

    pub fn value(mut self, value: f64) -> Row {
        self.value = Some(value);
        self
    }

    pub fn baseline(mut self, label: impl Into<String>, value: f64) -> Row {
        self.baseline = Some((label.into(), value));
        self
    }

    pub fn target(mut self, target: Target) -> Row {
        self.target = Some(target);
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Row {
        self.note = note.into();
        self
    }

    /// A reservation without which the status would mislead.
    pub fn caveat(mut self, caveat: impl Into<String>) -> Row {
        self.caveat = Some(caveat.into());
        self
    }

    /// A figure that failed to be measured, with the reason.
    pub fn failed(figure: &'static str, metric: &str, why: &str) -> Row {
        Row::new(figure, metric, "").note(format!("NOT PRODUCED: {why}"))
    }

    pub fn ratio(&self) -> Option<f64> {
        match (self.value, &self.baseline) {
            (Some(v), Some((_, b))) if *b != 0.0 => Some(v / b),
            _ => None,
        }
    }

    pub fn met(&self) -> Option<bool> {
        self.target.and_then(|t| t.met(self.value?, self.ratio()))
    }

    pub fn produced(&self) -> bool {
        self.value.is_some_and(f64::is_finite)
    }
}

/// A number with a sensible number of digits for its size.
pub fn number(v: f64) -> String {
    let a = v.abs();
    if a >= 10_000.0 {
        let s = format!("{v:.0}");
        // Thousands separators make 5-digit rates readable at a glance.
        let (sign, digits) = s.split_at(usize::from(s.starts_with('-')));
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        format!("{sign}{out}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The machine the figures were measured on.
#[derive(Clone, Debug)]
pub struct Machine {
    pub nproc: String,
    pub cpu: String,
    pub kernel: String,
    pub memory: String,
    pub date: String,
    pub profile: &'static str,
    /// The commit measured, `+ changes` when the tree differs from it.
    pub source: String,
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

impl Machine {
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        let memory = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                let kb: f64 = m
                    .lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()?;
                Some(format!("{:.1} GiB", kb / (1024.0 * 1024.0)))
            })
            .unwrap_or_else(|| "unknown".into());
        Machine {
            nproc: command_output("nproc", &[]).unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.to_string())
                    .unwrap_or_else(|_| "?".into())
            }),
            cpu,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|k| k.trim().to_owned())
                .unwrap_or_else(|_| "unknown".into()),
            memory,
            date: command_output("date", &["-u", "+%Y-%m-%d %H:%M:%S UTC"])
                .unwrap_or_else(|| "unknown".into()),
            source: source(),
            profile: if cfg!(debug_assertions) {
                "debug (quick smoke check: figures are not representative)"
            } else {
                "release"
            },
        }
    }
}

/// `git` is optional: a tarball has no history, and the figures stand anyway.
fn source() -> String {
    let Some(commit) = command_output("git", &["rev-parse", "--short", "HEAD"]) else {
        return "unknown (not a git checkout)".into();
    };
    match command_output("git", &["status", "--porcelain", "--untracked-files=no"]) {
        Some(changes) if !changes.is_empty() => {
            // `XY path` lines; the first one lost its leading blank to the trim.
            let files: Vec<&str> = changes
                .lines()
                .filter_map(|l| l.trim_start().split_once(' ').map(|(_, p)| p.trim()))
                .collect();
            format!("{commit} + uncommitted changes to {}", files.join(", "))
        }
        Some(_) => commit,
        None => format!("{commit} (status unknown)"),
    }
}

fn status(row: &Row) -> &'static str {
    if row.value.is_none() {
        return "NOT PRODUCED";
    }
    match (row.met(), row.caveat.is_some()) {
        (Some(true), false) => "met",
        (Some(true), true) => "met*",
        (Some(false), false) => "MISSED",
        (Some(false), true) => "MISSED*",
        (None, _) => "—",
    }
}

fn cells(row: &Row) -> [String; 7] {
    let value = match row.value {
        Some(v) => format!("{} {}", number(v), row.unit),
        None => "—".into(),
    };
    let baseline = row
        .baseline
        .as_ref()
        .map(|(label, b)| format!("{} {} ({label})", number(*b), row.unit))
        .unwrap_or_else(|| "—".into());
    let ratio = row
        .ratio()
        .map(|r| format!("{r:.3}×"))
        .unwrap_or_else(|| "—".into());
    let target = row
        .target
        .map(|t| t.describe(row.unit))
        .unwrap_or_else(|| "—".into());
    [
        row.figure.to_owned(),
        row.metric.clone(),
        value,
        baseline,
        ratio,
        target,
        status(row).to_owned(),
    ]
}

const HEADERS: [&str; 7] = [
    "figure", "metric", "value", "baseline", "ratio", "target", "status",
];

/// The rows as a Markdown table, then their notes.
pub fn markdown_table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| {} |", HEADERS.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(HEADERS.len()));
    for row in rows {
        let cells = cells(row).map(|c| c.replace('|', "\\|"));
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    let notes: Vec<_> = rows
        .iter()
        .filter(|r| !r.note.is_empty() || r.caveat.is_some())
        .collect();
    if !notes.is_empty() {
        out.push('\n');
        for row in notes {
            let caveat = row
                .caveat
                .as_deref()
                .map(|c| format!("\\* {c} "))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "- **{} — {}**: {caveat}{}",
                row.figure, row.metric, row.note
            );
        }
    }
    out
}

/// The rows as aligned plain text for the terminal.
pub fn text_table(rows: &[Row]) -> String {
    let all: Vec<[String; 7]> = std::iter::once(HEADERS.map(str::to_owned))
        .chain(rows.iter().map(cells))
        .collect();
    let widths: Vec<usize> = (0..HEADERS.len())
        .map(|i| all.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &all {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

/// Marks around the part of `BENCHMARKS.md` this command writes; the rest of the
/// file (the notes on missed targets and their profiles) is kept as it is.
pub const BEGIN: &str =
    "<!-- bench:begin (written by `cargo xtask bench`; edit outside these marks) -->";
pub const END: &str = "<!-- bench:end -->";

pub fn results_section(command: &str, machine: &Machine, rows: &[Row], log: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{BEGIN}");
    let _ = writeln!(out, "## Latest run\n");
    let _ = writeln!(out, "- command: `{command}`");
    let _ = writeln!(out, "- date: {}", machine.date);
    let _ = writeln!(
        out,
        "- machine: `nproc` = {}, CPU {}, {} RAM, kernel {}",
        machine.nproc, machine.cpu, machine.memory, machine.kernel
    );
    let _ = writeln!(out, "- build: {}", machine.profile);
    let _ = writeln!(out, "- source: {}\n", machine.source);
    out.push_str(
        "Ratios are value ÷ baseline, both measured in this run on this machine: above 1 is \
         more throughput (or more time, for latencies) than the baseline.\n\n",
    );
    out.push_str(&markdown_table(rows));
    let _ = writeln!(out, "\n### Full output\n\n```text\n{}```", log);
    let _ = writeln!(out, "{END}");
    out
}

/// Replace the generated section of `path` (or create the file around it).
pub fn write_benchmarks_md(path: &Path, section: &str) -> anyhow::Result<()> {
    let existing = std::fs::read_to_string(path).unwrap_or_default();
    let updated = match (existing.find(BEGIN), existing.find(END)) {
        (Some(b), Some(e)) if e > b => format!(
            "{}{}{}",
            &existing[..b],
            section.trim_end(),
            &existing[e + END.len()..]
        ),
        _ if existing.is_empty() => format!(
            "# Benchmarks\n\nFigures of issue #7, each beside a baseline measured in the same run. \
             Regenerate with `cargo xtask bench` (about 10 minutes on 2 cores, most of it the \
             release build).\n\n{section}\n"
        ),
        _ => format!("{}\n\n{section}\n", existing.trim_end()),
    };
    std::fs::write(path, updated).with_context(|| format!("writing {}", path.display()))
}
