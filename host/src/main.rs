//! The `trackbridge` binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use trackbridge_host::queue::{RetryPolicy, WorkerSettings};
use trackbridge_host::{Server, Settings};

#[derive(Parser)]
#[command(
    name = "trackbridge",
    version,
    about = "Keeps issue trackers and issue groups in sync; integrations are sandboxed WebAssembly plugins."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(Box<ServeArgs>),
    /// Create or update the database schema, then exit.
    Migrate {
        /// Database URL: `sqlite://FILE?mode=rwc` or `postgres://…`.
        #[arg(
            long,
            env = "DATABASE_URL",
            default_value = "sqlite://trackbridge.db?mode=rwc"
        )]
        database_url: String,
    },
    /// Work with plugin files without a running host.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Validate FILE as a host would before loading it: compile it, check it
    /// implements a contract world this host supports, and run its `describe`.
    /// Exits non-zero with the reason when it would be refused.
    Check { file: PathBuf },
    /// Print what FILE is: world and contract version, name and version, routes,
    /// declared capabilities (URL fields, host patterns), imports and exports,
    /// size and sha256 — as JSON.
    Inspect { file: PathBuf },
    /// List the plugins of a plugins directory (name, version, world, sha256).
    List {
        /// Defaults to the plugins this workspace builds.
        #[arg(long, env = "TRACKBRIDGE_PLUGINS_DIR")]
        plugins_dir: Option<PathBuf>,
    },
}

#[derive(Parser)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TRACKBRIDGE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Database URL: `sqlite://FILE?mode=rwc` (created if missing).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://trackbridge.db?mode=rwc"
    )]
    database_url: String,
    /// Directory whose `*.wasm` files are loaded as plugins. Defaults to the
    /// plugins this workspace builds (`cargo xtask plugins`).
    #[arg(long, env = "TRACKBRIDGE_PLUGINS_DIR")]
    plugins_dir: Option<PathBuf>,
    /// Bearer token for the admin API. When unset, a random one is generated and
    /// written to `--admin-token-file` (never to the log).
    #[arg(long, env = "TRACKBRIDGE_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Where a generated admin token is written (mode 0600).
    #[arg(
        long,
        env = "TRACKBRIDGE_ADMIN_TOKEN_FILE",
        default_value = "trackbridge.admin-token"
    )]
    admin_token_file: PathBuf,
    /// The URL trackers use to reach this host.
    #[arg(long, env = "TRACKBRIDGE_PUBLIC_URL")]
    public_url: Option<String>,
    /// Budget of one plugin call (CPU deadline and wall clock), in milliseconds.
    #[arg(long, env = "TRACKBRIDGE_PLUGIN_TIMEOUT_MS", default_value_t = 10_000)]
    plugin_timeout_ms: u64,
    /// Memory cap of one plugin instance, in MiB.
    #[arg(long, env = "TRACKBRIDGE_PLUGIN_MEMORY_MIB", default_value_t = 64)]
    plugin_memory_mib: usize,
    /// Largest webhook body accepted, in bytes (larger ones get 413).
    #[arg(long, env = "TRACKBRIDGE_MAX_WEBHOOK_BYTES", default_value_t = 1 << 20)]
    max_webhook_bytes: usize,
    /// Region segment (0–4095) of the snowflake ids of organizations, projects
    /// and teams made by this process.
    #[arg(long, env = "TRACKBRIDGE_REGION_ID", default_value_t = 0)]
    region_id: u16,
    /// Jobs (stored webhooks, tracker calls, notifications) this process runs at once.
    #[arg(long, env = "TRACKBRIDGE_WORKERS", default_value_t = 4)]
    workers: usize,
    /// Seconds a claimed job stays this process's without renewal; when the
    /// process dies, another one (or this one, restarted) takes it over after this.
    #[arg(long, env = "TRACKBRIDGE_JOB_LEASE_SECS", default_value_t = 30.0)]
    job_lease_secs: f64,
    /// Longest idle wait, in milliseconds, before looking for jobs written by
    /// other processes or retries that fell due.
    #[arg(long, env = "TRACKBRIDGE_JOB_POLL_MS", default_value_t = 1000)]
    job_poll_ms: u64,
    /// Seconds to wait before each retry of a failed job, comma-separated
    /// (±20 % jitter); once they are spent the job is dead-lettered.
    #[arg(
        long,
        env = "TRACKBRIDGE_RETRY_SCHEDULE",
        default_value = "5,30,120,600,1800,3600,7200,14400",
        value_parser = parse_schedule
    )]
    retry_schedule: Schedule,
    /// The longest Retry-After a tracker can ask for, in seconds.
    #[arg(long, env = "TRACKBRIDGE_MAX_RETRY_AFTER_SECS", default_value_t = 900)]
    max_retry_after_secs: u64,
    /// Hours done jobs are kept; stored webhooks are the dedup records, so keep
    /// at least a week (trackers retry for up to about 36 hours).
    #[arg(long, env = "TRACKBRIDGE_JOB_RETENTION_HOURS", default_value_t = 168)]
    job_retention_hours: u64,
}

#[derive(Clone, Debug)]
struct Schedule(Vec<Duration>);

fn parse_schedule(text: &str) -> Result<Schedule, String> {
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

fn default_plugins_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins/wasm32-wasip2/release")
}

fn generated_token(file: &PathBuf) -> anyhow::Result<String> {
    use std::io::Write;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("random token: {e}"))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options
        .open(file)
        .with_context(|| format!("writing the admin token to {}", file.display()))?;
    f.write_all(token.as_bytes())?;
    Ok(token)
}

/// A runtime for looking at plugin files: the host's engine settings, and an
/// in-memory database (a plugin's `describe` touches none).
async fn offline_runtime() -> anyhow::Result<std::sync::Arc<trackbridge_host::plugins::Runtime>> {
    let settings = Settings::new("sqlite::memory:", PathBuf::new(), "");
    let store = trackbridge_host::store::Store::connect(&settings.database_url).await?;
    Ok(trackbridge_host::server::build_runtime(
        &settings,
        store,
        "http://localhost".into(),
    )?)
}

async fn plugin_command(command: PluginCommand) -> anyhow::Result<()> {
    let runtime = offline_runtime().await?;
    match command {
        PluginCommand::Check { file } => {
            let i = trackbridge_host::plugins::inspect(&runtime, &file).await?;
            println!(
                "ok: {} {} implements {} of {}",
                i.name, i.version, i.world, i.contract
            );
        }
        PluginCommand::Inspect { file } => {
            let i = trackbridge_host::plugins::inspect(&runtime, &file).await?;
            println!("{}", serde_json::to_string_pretty(&i)?);
        }
        PluginCommand::List { plugins_dir } => {
            let dir = plugins_dir.unwrap_or_else(default_plugins_dir);
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .with_context(|| format!("reading {}", dir.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
                .collect();
            files.sort();
            for file in files {
                match trackbridge_host::plugins::inspect(&runtime, &file).await {
                    Ok(i) => println!(
                        "{:<14} {:<10} {:<16} {}  {}",
                        i.name,
                        i.version,
                        i.world,
                        &i.sha256[..16],
                        i.path
                    ),
                    Err(e) => println!("refused        {e}"),
                }
            }
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,wasmtime=warn,cranelift=warn".into()),
        )
        .init();
    let args = match Cli::parse().command {
        Command::Serve(args) => *args,
        Command::Migrate { database_url } => {
            trackbridge_host::store::Store::connect(&database_url).await?;
            println!("database schema is up to date");
            return Ok(());
        }
        Command::Plugin(command) => return plugin_command(command).await,
    };
    let admin_token = match args.admin_token {
        Some(token) if !token.is_empty() => token,
        _ => {
            let token = generated_token(&args.admin_token_file)?;
            println!("admin token written to {}", args.admin_token_file.display());
            token
        }
    };
    let plugins_dir = args.plugins_dir.unwrap_or_else(default_plugins_dir);
    let mut settings = Settings::new(args.database_url, plugins_dir, admin_token);
    settings.listen = args.listen;
    settings.public_url = args.public_url;
    settings.plugin_timeout = Duration::from_millis(args.plugin_timeout_ms);
    settings.plugin_memory_bytes = args.plugin_memory_mib << 20;
    settings.max_webhook_bytes = args.max_webhook_bytes;
    settings.region_id = args.region_id;
    settings.jobs = WorkerSettings {
        workers: args.workers.max(1),
        lease: Duration::from_secs_f64(args.job_lease_secs.max(0.1)),
        poll: Duration::from_millis(args.job_poll_ms.max(1)),
        retry: RetryPolicy {
            schedule: args.retry_schedule.0,
            max_retry_after: Duration::from_secs(args.max_retry_after_secs),
        },
        retention: Duration::from_secs(args.job_retention_hours * 3600),
    };
    let server = Server::start(settings).await?;
    println!("trackbridge listening on http://{}", server.local_addr());
    tokio::signal::ctrl_c().await?;
    server.shutdown().await;
    Ok(())
}
