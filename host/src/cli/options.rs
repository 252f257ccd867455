//! The server's options: each from the command line, else the environment,
//! else the configuration file (`--config`, TOML, the same names in
//! snake_case), else its default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde::Deserialize;
use trackbridge_host::Settings;
use trackbridge_host::plugins::SwapSettings;
use trackbridge_host::plugins::health::ProbationPolicy;
use trackbridge_host::queue::{RetryPolicy, WorkerSettings};
use trackbridge_host::store::sealing::SecretKeys;

/// Seconds before each retry, as `5,30,120`.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule(pub Vec<Duration>);

pub fn parse_schedule(text: &str) -> Result<Schedule, String> {
    text.split(',')
        .map(|part| {
            part.trim()
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| format!("`{part}` is not a number of seconds"))
        })
        .collect::<Result<_, _>>()
        .map(Schedule)
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Schedule, D::Error> {
        let text = String::deserialize(d)?;
        parse_schedule(&text).map_err(serde::de::Error::custom)
    }
}

/// Address ranges, as `127.0.0.1/32,fd00::/8`.
#[derive(Clone, Debug, PartialEq)]
pub struct Networks(pub Vec<ipnet::IpNet>);

pub fn parse_networks(text: &str) -> Result<Networks, String> {
    text.split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| {
            n.parse::<ipnet::IpNet>()
                .or_else(|_| n.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| format!("`{n}` is not an address range (`127.0.0.1/32`)"))
        })
        .collect::<Result<_, _>>()
        .map(Networks)
}

impl<'de> Deserialize<'de> for Networks {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Networks, D::Error> {
        let text = String::deserialize(d)?;
        parse_networks(&text).map_err(serde::de::Error::custom)
    }
}

/// Options of `trackbridge serve`. Every one is optional here: what is unset
/// comes from the configuration file, then from the default in its help.
// One struct serves both clap (command line, environment) and serde (the
// file), so an option cannot exist in one and be forgotten in the other.
#[derive(clap::Args, Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct ServeOptions {
    /// Address to listen on. [default: 127.0.0.1:8080]
    #[arg(long, env = "TRACKBRIDGE_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Database URL: `sqlite://FILE?mode=rwc` (created if missing) or
    /// `postgres://…` (several host processes may share it).
    /// [default: sqlite://trackbridge.db?mode=rwc]
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Directory whose `*.wasm` files are installed as plugins at start (a
    /// module the database knows already changes nothing). [default: the
    /// first of plugins/ beside the binary, then the build output of the
    /// workspace it was built in (target/plugins/wasm32-wasip2/release) that
    /// holds a .wasm file]
    #[arg(long, env = "TRACKBRIDGE_PLUGINS_DIR")]
    pub plugins_dir: Option<PathBuf>,
    /// Install a plugin again whenever its file in the plugins directory
    /// changes (development); the same checks as any install. [default: false]
    #[arg(long, env = "TRACKBRIDGE_WATCH", num_args = 0..=1, default_missing_value = "true")]
    pub watch: Option<bool>,
    /// Directory of compiled plugin modules, so a restart does not compile
    /// them again; empty to disable. [default: trackbridge-plugin-cache]
    #[arg(long, env = "TRACKBRIDGE_PLUGIN_CACHE_DIR")]
    pub plugin_cache_dir: Option<PathBuf>,
    /// Bearer token for the admin API. When unset, a random one is generated and
    /// written to `--admin-token-file` (never to the log).
    #[arg(long, env = "TRACKBRIDGE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Where a generated admin token is written (mode 0600).
    /// [default: trackbridge.admin-token]
    #[arg(long, env = "TRACKBRIDGE_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// File of the keys integration secrets are sealed with (AES-256-GCM),
    /// one per line as base64 or hex of 32 bytes: the first seals, every one
    /// opens (`trackbridge secrets new-key` makes one). Unset: secrets are
    /// stored as plain text, and the host says so. [default: none]
    #[arg(long, env = "TRACKBRIDGE_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,
    /// The URL trackers use to reach this host (the base of webhook URLs
    /// registered at installation). [default: http://<listen address>]
    #[arg(long, env = "TRACKBRIDGE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Budget of one plugin call, in milliseconds: both its CPU deadline and
    /// its wall-clock limit, outbound HTTP included. [default: 10000]
    #[arg(long, env = "TRACKBRIDGE_PLUGIN_TIMEOUT_MS")]
    pub plugin_timeout_ms: Option<u64>,
    /// Memory cap of one plugin instance, in MiB. [default: 64]
    #[arg(long, env = "TRACKBRIDGE_PLUGIN_MEMORY_MIB")]
    pub plugin_memory_mib: Option<usize>,
    /// Log lines a plugin may write per second (twice that in a burst); the
    /// rest is dropped and counted. [default: 100]
    #[arg(long, env = "TRACKBRIDGE_PLUGIN_LOG_LINES_PER_SEC")]
    pub plugin_log_lines_per_sec: Option<u32>,
    /// How many first calls of a newly installed plugin version are watched;
    /// 0 turns automatic rollback off. [default: 20]
    #[arg(long, env = "TRACKBRIDGE_PLUGIN_PROBATION_CALLS")]
    pub plugin_probation_calls: Option<u32>,
    /// The largest share (0–1) of those calls that may trap, time out or fail
    /// inside the plugin before the host rolls back to the version it
    /// replaced. [default: 0.5]
    #[arg(long, env = "TRACKBRIDGE_PLUGIN_MAX_FAILURE_RATE")]
    pub plugin_max_failure_rate: Option<f64>,
    /// How often, in milliseconds, to look for plugin swaps made by other
    /// host processes sharing the database. [default: 2000]
    #[arg(long, env = "TRACKBRIDGE_PLUGIN_SYNC_MS")]
    pub plugin_sync_ms: Option<u64>,
    /// Largest webhook body accepted, in bytes (larger ones get 413).
    /// [default: 1048576]
    #[arg(long, env = "TRACKBRIDGE_MAX_WEBHOOK_BYTES")]
    pub max_webhook_bytes: Option<usize>,
    /// The longest any one wait on the database may take, in milliseconds:
    /// for a connection, for this process's turn to write, for a lock
    /// (SQLite's busy timeout), for a statement (PostgreSQL's
    /// statement_timeout). Past it the request gets 503 with Retry-After
    /// rather than waiting on. [default: 5000]
    #[arg(long, env = "TRACKBRIDGE_DATABASE_TIMEOUT_MS")]
    pub database_timeout_ms: Option<u64>,
    /// Internal address ranges plugins' outbound requests may reach, comma
    /// separated (`127.0.0.1/32,fd00::/8`). Loopback, link-local (where
    /// clouds serve instance metadata), unspecified and multicast addresses
    /// are refused otherwise, whatever name resolves to them; private ranges
    /// (10/8, 172.16/12, 192.168/16) are always allowed. [default: none]
    #[arg(long, env = "TRACKBRIDGE_OUTBOUND_ALLOW_NETWORKS", value_parser = parse_networks)]
    pub outbound_allow_networks: Option<Networks>,
    /// Milliseconds a client has, from the first byte of a request, to send
    /// its headers; then 408 and the connection is closed (slow clients hold
    /// a connection each). [default: 10000]
    #[arg(long, env = "TRACKBRIDGE_HTTP_HEADER_TIMEOUT_MS")]
    pub http_header_timeout_ms: Option<u64>,
    /// Milliseconds a client has, after the headers, to send the request's
    /// body; then 408 and the connection is closed. [default: 30000]
    #[arg(long, env = "TRACKBRIDGE_HTTP_BODY_TIMEOUT_MS")]
    pub http_body_timeout_ms: Option<u64>,
    /// Milliseconds a kept-alive connection may wait for its next request
    /// before it is closed. [default: 60000]
    #[arg(long, env = "TRACKBRIDGE_HTTP_IDLE_TIMEOUT_MS")]
    pub http_idle_timeout_ms: Option<u64>,
    /// Connections open at once; more are answered 503 (Retry-After: 1) and
    /// closed. Lowered at start to what the open-file limit leaves room for.
    /// [default: 1024]
    #[arg(long, env = "TRACKBRIDGE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Seconds that requests and jobs in flight get to finish on SIGTERM or
    /// SIGINT; then connections are closed and unfinished jobs go back to
    /// the queue. [default: 30]
    #[arg(long, env = "TRACKBRIDGE_SHUTDOWN_GRACE_SECS")]
    pub shutdown_grace_secs: Option<f64>,
    /// Region segment (0–4095) of the snowflake ids of organizations, projects
    /// and teams made by this process. [default: 0]
    #[arg(long, env = "TRACKBRIDGE_REGION_ID")]
    pub region_id: Option<u16>,
    /// Workers of this process, each running one batch of jobs (stored
    /// webhooks, tracker calls, notifications) at a time. [default: 4]
    #[arg(long, env = "TRACKBRIDGE_WORKERS")]
    pub workers: Option<usize>,
    /// The most jobs one worker claims at once and writes in one transaction
    /// (their effects and results). [default: 32]
    #[arg(long, env = "TRACKBRIDGE_JOB_BATCH")]
    pub job_batch: Option<usize>,
    /// Seconds a claimed job stays this process's without renewal; when the
    /// process dies, another one (or this one, restarted) takes it over after
    /// this. [default: 30]
    #[arg(long, env = "TRACKBRIDGE_JOB_LEASE_SECS")]
    pub job_lease_secs: Option<f64>,
    /// Longest idle wait, in milliseconds, before looking for jobs written by
    /// other processes or retries that fell due. [default: 1000]
    #[arg(long, env = "TRACKBRIDGE_JOB_POLL_MS")]
    pub job_poll_ms: Option<u64>,
    /// Seconds to wait before each retry of a failed job, comma-separated
    /// (±20 % jitter); once they are spent the job is dead-lettered.
    /// [default: 5,30,120,600,1800,3600,7200,14400]
    #[arg(long, env = "TRACKBRIDGE_RETRY_SCHEDULE", value_parser = parse_schedule)]
    pub retry_schedule: Option<Schedule>,
    /// The longest Retry-After a tracker can ask for, in seconds. [default: 900]
    #[arg(long, env = "TRACKBRIDGE_MAX_RETRY_AFTER_SECS")]
    pub max_retry_after_secs: Option<u64>,
    /// Hours done jobs are kept; stored webhooks are the dedup records, so keep
    /// at least a week (trackers retry for up to about 36 hours). [default: 168]
    #[arg(long, env = "TRACKBRIDGE_JOB_RETENTION_HOURS")]
    pub job_retention_hours: Option<u64>,
}

/// Fill what `$a` leaves unset from `$b`, field by field.
macro_rules! or_fields {
    ($a:expr, $b:expr; $($field:ident),* $(,)?) => {
        ServeOptions { $($field: $a.$field.or($b.$field),)* }
    };
}

pub const DEFAULT_DATABASE_URL: &str = "sqlite://trackbridge.db?mode=rwc";

impl ServeOptions {
    /// These options, with what they leave unset taken from `file`.
    pub fn or(self, file: ServeOptions) -> ServeOptions {
        or_fields!(self, file;
            listen, database_url, plugins_dir, watch, plugin_cache_dir, admin_token,
            admin_token_file, secret_key_file, public_url, plugin_timeout_ms, plugin_memory_mib,
            plugin_log_lines_per_sec, plugin_probation_calls, plugin_max_failure_rate,
            plugin_sync_ms, max_webhook_bytes, database_timeout_ms, outbound_allow_networks,
            http_header_timeout_ms,
            http_body_timeout_ms, http_idle_timeout_ms, max_connections, shutdown_grace_secs,
            region_id, workers, job_batch, job_lease_secs, job_poll_ms,
            retry_schedule, max_retry_after_secs, job_retention_hours)
    }

    /// Read a configuration file.
    pub fn from_file(path: &Path) -> anyhow::Result<ServeOptions> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the configuration file {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("in the configuration file {}", path.display()))
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned())
    }

    /// The keys of `--secret-key-file`, or none.
    pub fn secret_keys(&self) -> anyhow::Result<SecretKeys> {
        Ok(match &self.secret_key_file {
            Some(path) => SecretKeys::from_file(path)?,
            None => SecretKeys::default(),
        })
    }

    pub fn admin_token_file(&self) -> PathBuf {
        self.admin_token_file
            .clone()
            .unwrap_or_else(|| PathBuf::from("trackbridge.admin-token"))
    }

    /// The host's settings, defaults filled in; `admin_token` is decided by
    /// the caller (it may be generated).
    pub fn settings(
        &self,
        admin_token: String,
        default_plugins_dir: PathBuf,
    ) -> anyhow::Result<Settings> {
        let plugins_dir = self.plugins_dir.clone().unwrap_or(default_plugins_dir);
        let mut s = Settings::new(self.database_url(), plugins_dir, admin_token);
        s.listen = self
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        s.public_url = self.public_url.clone();
        s.secret_keys = self.secret_keys()?;
        s.plugin_timeout = Duration::from_millis(self.plugin_timeout_ms.unwrap_or(10_000));
        s.plugin_memory_bytes = self.plugin_memory_mib.unwrap_or(64) << 20;
        s.plugin_log_lines_per_sec = self.plugin_log_lines_per_sec.unwrap_or(100);
        s.max_webhook_bytes = self.max_webhook_bytes.unwrap_or(1 << 20);
        s.region_id = self.region_id.unwrap_or(0);
        s.database_timeout = Duration::from_millis(self.database_timeout_ms.unwrap_or(5000).max(1));
        s.outbound_allow_networks = self
            .outbound_allow_networks
            .clone()
            .map(|n| n.0)
            .unwrap_or_default();
        let ms = |v: Option<u64>, default: u64| Duration::from_millis(v.unwrap_or(default).max(1));
        s.http = trackbridge_host::listener::HttpLimits {
            header_timeout: ms(self.http_header_timeout_ms, 10_000),
            body_timeout: ms(self.http_body_timeout_ms, 30_000),
            idle_timeout: ms(self.http_idle_timeout_ms, 60_000),
            max_connections: self.max_connections.unwrap_or(1024).max(1),
        };
        s.shutdown_grace =
            Duration::from_secs_f64(self.shutdown_grace_secs.unwrap_or(30.0).max(0.0));
        s.plugin_cache_dir = match &self.plugin_cache_dir {
            Some(dir) if dir.as_os_str().is_empty() => None,
            Some(dir) => Some(dir.clone()),
            None => Some(PathBuf::from("trackbridge-plugin-cache")),
        };
        let rate = self.plugin_max_failure_rate.unwrap_or(0.5);
        anyhow::ensure!(
            (0.0..=1.0).contains(&rate),
            "plugin_max_failure_rate must be between 0 and 1, not {rate}"
        );
        s.swap = SwapSettings {
            probation: ProbationPolicy {
                calls: self.plugin_probation_calls.unwrap_or(20),
                max_failure_rate: rate,
            },
            sync_every: Duration::from_millis(self.plugin_sync_ms.unwrap_or(2000).max(10)),
            watch: self.watch.unwrap_or(false),
            ..SwapSettings::default()
        };
        let defaults = WorkerSettings::default();
        s.jobs = WorkerSettings {
            workers: self.workers.unwrap_or(defaults.workers).max(1),
            batch: self.job_batch.unwrap_or(defaults.batch).max(1),
            lease: self
                .job_lease_secs
                .map_or(defaults.lease, |l| Duration::from_secs_f64(l.max(0.1))),
            poll: self
                .job_poll_ms
                .map_or(defaults.poll, |p| Duration::from_millis(p.max(1))),
            retry: RetryPolicy {
                schedule: self
                    .retry_schedule
                    .clone()
                    .map_or(defaults.retry.schedule, |s| s.0),
                max_retry_after: self
                    .max_retry_after_secs
                    .map_or(defaults.retry.max_retry_after, Duration::from_secs),
            },
            retention: self
                .job_retention_hours
                .map_or(defaults.retention, |h| Duration::from_secs(h * 3600)),
        };
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_wins_over_the_file_which_wins_over_defaults() {
        let file: ServeOptions = toml::from_str(
            r#"
            listen = "0.0.0.0:9000"
            workers = 8
            retry_schedule = "1,2"
            watch = true
            plugin_cache_dir = ""
            "#,
        )
        .expect("valid file");
        let cli = ServeOptions {
            workers: Some(2),
            ..ServeOptions::default()
        };
        let s = cli
            .or(file)
            .settings("t".into(), PathBuf::from("plugins"))
            .expect("settings");
        assert_eq!(s.jobs.workers, 2, "command line");
        assert_eq!(s.listen, "0.0.0.0:9000".parse().expect("addr"), "file");
        assert_eq!(
            s.jobs.retry.schedule,
            vec![Duration::from_secs(1), Duration::from_secs(2)]
        );
        assert!(s.swap.watch);
        assert_eq!(s.plugin_cache_dir, None, "an empty cache dir disables it");
        assert_eq!(s.plugin_timeout, Duration::from_secs(10), "default");
        assert_eq!(s.database_url, DEFAULT_DATABASE_URL);
    }

    #[test]
    fn a_misspelt_option_in_the_file_is_an_error() {
        let err = toml::from_str::<ServeOptions>("listne = \"0.0.0.0:1\"").expect_err("refused");
        assert!(err.to_string().contains("unknown field `listne`"), "{err}");
    }

    /// The example configuration shipped in the release archive lists every
    /// option, and what it sets is exactly the defaults.
    #[test]
    fn the_example_configuration_lists_every_option_at_its_default() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/trackbridge.example.toml");
        let text = std::fs::read_to_string(&path).expect("packaging/trackbridge.example.toml");
        let command = <ServeOptions as clap::Args>::augment_args(clap::Command::new("serve"));
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            let listed = text.lines().any(|l| {
                let l = l.trim_start_matches('#').trim_start();
                l.strip_prefix(id)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            });
            assert!(listed, "option `{id}` is missing from {}", path.display());
        }
        let file: ServeOptions = toml::from_str(&text).expect("the example parses");
        let from_file = file
            .settings("t".into(), PathBuf::from("p"))
            .expect("settings");
        let defaults = ServeOptions::default()
            .settings("t".into(), PathBuf::from("p"))
            .expect("settings");
        assert_eq!(format!("{from_file:?}"), format!("{defaults:?}"));
    }
}
