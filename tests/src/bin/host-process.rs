//! The host as a process of its own, for the fault tests that kill it
//! (`kill -9`) or run two of them on one PostgreSQL. Configured through the
//! environment by `trackbridge_e2e::process::HostProcess`; prints
//! `listening on ADDR` once it serves.

use std::time::Duration;

use anyhow::Context as _;
use trackbridge_host::{Server, Settings};

fn var(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set"))
}

fn seconds(text: &str) -> anyhow::Result<Duration> {
    Ok(Duration::from_secs_f64(text.trim().parse::<f64>()?))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let mut settings = Settings::new(
        var("TB_DATABASE_URL")?,
        var("TB_PLUGINS_DIR")?,
        var("TB_ADMIN_TOKEN")?,
    );
    if let Ok(listen) = var("TB_LISTEN") {
        settings.listen = listen.parse()?;
    }
    if let Ok(schedule) = var("TB_RETRY_SCHEDULE") {
        settings.jobs.retry.schedule =
            schedule.split(',').map(seconds).collect::<Result<_, _>>()?;
    }
    if let Ok(lease) = var("TB_JOB_LEASE_SECS") {
        settings.jobs.lease = seconds(&lease)?;
    }
    if let Ok(batch) = var("TB_JOB_BATCH") {
        settings.jobs.batch = batch.parse()?;
    }
    if let Ok(poll) = var("TB_JOB_POLL_SECS") {
        settings.jobs.poll = seconds(&poll)?;
    }
    if let Ok(sync) = var("TB_PLUGIN_SYNC_SECS") {
        settings.swap.sync_every = seconds(&sync)?;
    }
    if let Ok(networks) = var("TB_OUTBOUND_ALLOW_NETWORKS") {
        settings.outbound_allow_networks = networks
            .split(',')
            .filter(|n| !n.trim().is_empty())
            .map(|n| n.trim().parse())
            .collect::<Result<_, _>>()?;
    }
    if let Ok(grace) = var("TB_SHUTDOWN_GRACE_SECS") {
        settings.shutdown_grace = seconds(&grace)?;
    }
    if let Ok(ms) = var("TB_HTTP_HEADER_TIMEOUT_MS") {
        settings.http.header_timeout = Duration::from_millis(ms.parse()?);
    }
    if let Ok(ms) = var("TB_HTTP_BODY_TIMEOUT_MS") {
        settings.http.body_timeout = Duration::from_millis(ms.parse()?);
    }
    if let Ok(ms) = var("TB_HTTP_IDLE_TIMEOUT_MS") {
        settings.http.idle_timeout = Duration::from_millis(ms.parse()?);
    }
    if let Ok(max) = var("TB_MAX_CONNECTIONS") {
        settings.http.max_connections = max.parse()?;
    }
    if let Ok(ms) = var("TB_DATABASE_TIMEOUT_MS") {
        settings.database_timeout = Duration::from_millis(ms.parse()?);
    }
    if let Ok(timeout) = var("TB_PLUGIN_TIMEOUT_SECS") {
        settings.plugin_timeout = seconds(&timeout)?;
    }
    if let Ok(dir) = var("TB_PLUGIN_CACHE_DIR") {
        settings.plugin_cache_dir = Some(dir.into());
    }
    let server = Server::start(settings).await?;
    println!("listening on {}", server.local_addr());
    trackbridge_host::signals::stopped().await?;
    server.shutdown().await;
    Ok(())
}
