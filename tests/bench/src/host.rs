//! Hosts under test: in-process ([`BenchHost`], the library's `Server`) and as
//! a process of the `trackbridge` binary ([`ServeProcess`]), each on a database
//! of its own ([`BenchDatabase`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use trackbridge_e2e::ApiClient;
use trackbridge_e2e::host::{PostgresDatabase, fresh_postgres_database};
use trackbridge_host::{Server, Settings};

/// The admin token of every host the benchmark starts.
pub const ADMIN_TOKEN: &str = "bench-admin-token";

/// A database for one figure: a SQLite file in a temporary directory, or a
/// PostgreSQL database `tb_bench_<pid>_<n>` dropped with this value.
pub struct BenchDatabase {
    url: String,
    postgres: Option<PostgresDatabase>,
    dir: tempfile::TempDir,
}

impl BenchDatabase {
    pub fn sqlite() -> anyhow::Result<BenchDatabase> {
        let dir = tempfile::Builder::new().prefix("tb-bench-").tempdir()?;
        Ok(BenchDatabase {
            url: format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("trackbridge.db").display()
            ),
            postgres: None,
            dir,
        })
    }

    /// A fresh database on the server of `admin_url` (a URL of an existing
    /// database there, e.g. `postgres://postgres@127.0.0.1:5432/postgres`).
    pub async fn postgres(admin_url: &str) -> anyhow::Result<BenchDatabase> {
        let database = fresh_postgres_database(admin_url, "tb_bench").await?;
        Ok(BenchDatabase {
            url: database.url().to_owned(),
            postgres: Some(database),
            dir: tempfile::Builder::new().prefix("tb-bench-").tempdir()?,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }

    /// A directory that lives as long as the database.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// The host library's `Server`, in this process, on loopback.
pub struct BenchHost {
    server: Option<Server>,
    pub addr: SocketAddr,
    pub api: ApiClient,
}

impl BenchHost {
    /// Start on `database` with the plugins of `plugins_dir`; `adjust` may
    /// change the settings (defaults are the production defaults).
    pub async fn start(
        database: &BenchDatabase,
        plugins_dir: &Path,
        adjust: impl FnOnce(&mut Settings),
    ) -> anyhow::Result<BenchHost> {
        let mut settings = Settings::new(database.url(), plugins_dir, ADMIN_TOKEN);
        // The simulated trackers listen on loopback.
        settings.outbound_allow_networks = vec![trackbridge_e2e::host::LOOPBACK.parse()?];
        adjust(&mut settings);
        let server = Server::start(settings).await.context("starting the host")?;
        let addr = server.local_addr();
        Ok(BenchHost {
            server: Some(server),
            addr,
            api: ApiClient::new(format!("http://{addr}"), Some(ADMIN_TOKEN.into())),
        })
    }

    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

/// A free loopback port (bound, read, released: the host binds it next).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A `trackbridge serve` process; killed when dropped.
pub struct ServeProcess {
    child: tokio::process::Child,
    pub addr: SocketAddr,
    pub api: ApiClient,
    /// From spawning the process to `/healthz` answering 200.
    pub ready_after: Duration,
}

/// The path that says the host is ready.
// The lead is adding `/readyz` (ready once every plugin is loaded); switch to it
// when it lands. Today `/healthz` answers only once the plugins are loaded,
// because the server starts serving after loading them.
pub const READY_PATH: &str = "/healthz";

impl ServeProcess {
    /// Run `binary serve` on `database_url` with `plugins_dir` (and `extra`
    /// arguments); returns once `READY_PATH` answers 200.
    pub async fn start(
        binary: &Path,
        database_url: &str,
        plugins_dir: &Path,
        extra: &[String],
        log: &Path,
    ) -> anyhow::Result<ServeProcess> {
        let port = free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log_file = std::fs::File::create(log)?;
        let mut command = tokio::process::Command::new(binary);
        command
            .arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--database-url")
            .arg(database_url)
            .arg("--plugins-dir")
            .arg(plugins_dir)
            .arg("--admin-token")
            .arg(ADMIN_TOKEN)
            // The simulated trackers listen on loopback.
            .arg("--outbound-allow-networks")
            .arg("127.0.0.0/8")
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .kill_on_drop(true);
        let started = Instant::now();
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let ready = wait_ready(&mut child, addr, Duration::from_secs(120)).await;
        let ready_after = started.elapsed();
        if let Err(e) = ready {
            let _ = child.kill().await;
            let log = std::fs::read_to_string(log).unwrap_or_default();
            bail!("{e:#}; its log:\n{log}");
        }
        Ok(ServeProcess {
            child,
            addr,
            api: ApiClient::new(format!("http://{addr}"), Some(ADMIN_TOKEN.into())),
            ready_after,
        })
    }

    pub fn pid(&self) -> anyhow::Result<u32> {
        self.child.id().context("the host process has exited")
    }

    /// A `kB` field of `/proc/PID/status` (`VmRSS`, `VmHWM`), in MiB.
    pub fn status_mib(&self, field: &str) -> anyhow::Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?))?;
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .with_context(|| format!("no {field} in /proc/PID/status"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()?;
        Ok(kb / 1024.0)
    }

    /// Reset the process's peak RSS (`VmHWM`) to its current RSS, so a later
    /// read tells the peak from here on (`clear_refs`, value 5).
    pub fn reset_peak(&self) -> anyhow::Result<()> {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()?), "5")
            .context("resetting VmHWM through /proc/PID/clear_refs")
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Poll `READY_PATH` until it answers 200, the process exits, or `timeout`.
async fn wait_ready(
    child: &mut tokio::process::Child,
    addr: SocketAddr,
    timeout: Duration,
) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()?;
    let url = format!("http://{addr}{READY_PATH}");
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("the host exited with {status} before it was ready");
        }
        match client.get(&url).send().await {
            Ok(r) if r.status().as_u16() == 200 => return Ok(()),
            _ if Instant::now() > deadline => bail!("not ready within {timeout:?}"),
            // Refused until the port is bound; the delay bounds the measurement's
            // resolution, not the host's start.
            _ => tokio::time::sleep(Duration::from_millis(2)).await,
        }
    }
}

/// Run `binary migrate` on `database_url` (so later starts find the schema).
pub async fn migrate(binary: &Path, database_url: &str) -> anyhow::Result<()> {
    let out = tokio::process::Command::new(binary)
        .args(["migrate", "--database-url", database_url])
        .env("RUST_LOG", "warn")
        .output()
        .await?;
    if !out.status.success() {
        bail!(
            "{} migrate failed: {}",
            binary.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// An empty plugins directory (the host with nothing to load).
pub fn empty_plugins_dir(parent: &Path) -> anyhow::Result<PathBuf> {
    let dir = parent.join("no-plugins");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
