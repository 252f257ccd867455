//! The host as a separate process ([`HostProcess`]), for tests that kill it
//! with SIGKILL or run two hosts on one database.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

use crate::api::ApiClient;
use crate::host::ADMIN_TOKEN;

/// A host process. Dropping it kills it.
pub struct HostProcess {
    child: Child,
    base_url: String,
    api: ApiClient,
    logs: Arc<Mutex<Vec<String>>>,
}

impl HostProcess {
    /// Start `binary` (the `host-process` binary: integration tests pass
    /// `env!("CARGO_BIN_EXE_host-process")`) on `database_url` with the built
    /// plugins; `env` adds settings (`TB_RETRY_SCHEDULE`, `TB_JOB_LEASE_SECS`,
    /// `TB_LISTEN`, …).
    pub async fn start(
        binary: &str,
        database_url: &str,
        env: &[(&str, String)],
    ) -> anyhow::Result<HostProcess> {
        let plugins_dir = tokio::task::spawn_blocking(crate::plugins::plugins_dir)
            .await
            .context("building the plugins panicked")?;
        let mut command = Command::new(binary);
        command
            .env("TB_DATABASE_URL", database_url)
            .env("TB_PLUGINS_DIR", plugins_dir)
            .env("TB_PLUGIN_CACHE_DIR", crate::host::shared_artifact_cache())
            .env("TB_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("TB_OUTBOUND_ALLOW_NETWORKS", crate::host::LOOPBACK)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG")
                    .unwrap_or_else(|_| {
                        "info,trackbridge_host::queue=debug,trackbridge_host::plugins=debug,sqlx=warn,wasmtime=warn,cranelift=warn".into()
                    }),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().context("starting host-process")?;
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().context("host-process stderr")?;
        let kept = logs.clone();
        // Kept for tests about logging and for failure reports; read to the
        // end whatever it holds, so the process never blocks on a full pipe.
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            loop {
                match lines.next_line().await {
                    Ok(Some(line)) => {
                        if let Ok(mut kept) = kept.lock() {
                            kept.push(line);
                        }
                    }
                    Ok(None) => break,
                    Err(_) => continue,
                }
            }
        });
        let stdout = child.stdout.take().context("host-process stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    return Ok(addr.trim().to_owned());
                }
            }
            bail!("host-process exited before listening")
        })
        .await
        .context("host-process did not start within 60 s")??;
        // Keep reading so the process never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let base_url = format!("http://{addr}");
        Ok(HostProcess {
            api: ApiClient::new(base_url.clone(), Some(ADMIN_TOKEN.to_string())),
            base_url,
            child,
            logs,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn api(&self) -> &ApiClient {
        &self.api
    }

    /// The log lines it wrote so far (stderr, without colours; `info` and up
    /// unless `RUST_LOG` says otherwise).
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Its last `n` log lines, for a failure report.
    pub fn last_logs(&self, n: usize) -> String {
        let logs = self.logs();
        logs[logs.len().saturating_sub(n)..].join("\n")
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// CPU time it has used so far (user + system), from `/proc`.
    pub fn cpu_time(&self) -> anyhow::Result<Duration> {
        let pid = self.pid().context("host-process has exited")?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // Fields after the command name (which is in parentheses): utime is
        // the 14th field of the line, stime the 15th, in clock ticks.
        let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks: u64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0)
            + fields
                .get(12)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0);
        // The kernel's USER_HZ is 100 on every Linux this runs on.
        Ok(Duration::from_millis(ticks * 10))
    }

    /// SIGTERM, as systemd, containers and Kubernetes stop a service.
    pub fn terminate(&self) -> anyhow::Result<()> {
        let pid = self.child.id().context("host-process has exited")?;
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .context("running kill")?;
        anyhow::ensure!(status.success(), "kill -TERM {pid}: {status}");
        Ok(())
    }

    /// Wait for the process to exit, at most `within`.
    pub async fn wait_exit(
        &mut self,
        within: Duration,
    ) -> anyhow::Result<std::process::ExitStatus> {
        tokio::time::timeout(within, self.child.wait())
            .await
            .with_context(|| format!("host-process still running after {within:?}"))?
            .context("waiting for host-process")
    }

    /// SIGKILL: no shutdown, no flushing, jobs left running.
    pub async fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill().await.context("killing host-process")?;
        Ok(())
    }
}
