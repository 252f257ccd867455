//! What an operator can configure.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::plugins::SwapSettings;
use crate::queue::WorkerSettings;

/// Host settings. [`Settings::new`] fills in defaults for everything but the
/// database, the plugins directory and the admin token.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Where the HTTP server listens (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// `sqlite://path?mode=rwc` (default) or `postgres://…`.
    pub database_url: String,
    /// Directory whose `*.wasm` files are loaded as plugins at start.
    pub plugins_dir: PathBuf,
    /// Bearer token required by every `/api` request.
    pub admin_token: String,
    /// The URL trackers use to reach this host (for webhook URLs created at
    /// installation). Defaults to `http://<listen address>`.
    pub public_url: Option<String>,
    /// One budget per plugin call: the CPU deadline (epoch interruption) and
    /// the wall-clock limit on the whole call, outbound HTTP included.
    pub plugin_timeout: Duration,
    /// Linear-memory cap of one plugin instance.
    pub plugin_memory_bytes: usize,
    /// Largest webhook body accepted; larger ones get 413 before being read whole.
    pub max_webhook_bytes: usize,
    /// Region segment (0–4095) of the snowflake ids this process makes.
    pub region_id: u16,
    /// The job workers: how many, leases, retries, retention.
    pub jobs: WorkerSettings,
    /// Where compiled plugin modules are cached (`None`: compile every time).
    pub plugin_cache_dir: Option<PathBuf>,
    /// Plugin swaps: probation, convergence across processes, watching.
    pub swap: SwapSettings,
    /// Log lines a plugin may write per second (twice that in a burst).
    pub plugin_log_lines_per_sec: u32,
    /// Internal address ranges (loopback, link-local) that plugins' outbound
    /// requests may reach nevertheless; none by default.
    pub outbound_allow_networks: Vec<ipnet::IpNet>,
    /// HTTP timeouts and the connection cap.
    pub http: crate::listener::HttpLimits,
    /// On SIGTERM or SIGINT: how long requests and jobs in flight may take
    /// to finish before they are cut (jobs then go back to the queue).
    pub shutdown_grace: Duration,
    /// The longest any single wait on the database may take (a connection,
    /// the turn to write, a lock, a statement); past it the request gets 503.
    pub database_timeout: Duration,
    /// The keys integration secrets are sealed with at rest; none: stored as
    /// plain text (development).
    pub secret_keys: crate::store::sealing::SecretKeys,
}

impl Settings {
    pub fn new(
        database_url: impl Into<String>,
        plugins_dir: impl Into<PathBuf>,
        admin_token: impl Into<String>,
    ) -> Settings {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: database_url.into(),
            plugins_dir: plugins_dir.into(),
            admin_token: admin_token.into(),
            public_url: None,
            plugin_timeout: Duration::from_secs(10),
            plugin_memory_bytes: 64 << 20,
            max_webhook_bytes: 1 << 20,
            region_id: 0,
            jobs: WorkerSettings::default(),
            plugin_cache_dir: None,
            swap: SwapSettings::default(),
            plugin_log_lines_per_sec: 100,
            database_timeout: crate::store::DEFAULT_TIMEOUT,
            outbound_allow_networks: Vec::new(),
            http: crate::listener::HttpLimits::default(),
            shutdown_grace: Duration::from_secs(30),
            secret_keys: Default::default(),
        }
    }

    /// How old the last committed write probe may be for the host to be ready:
    /// one probe interval, plus the longest each of its waits may take.
    pub fn readiness_stale(&self) -> Duration {
        crate::monitor::PROBE_EVERY + self.database_timeout * 2
    }
}
