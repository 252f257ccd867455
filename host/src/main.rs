//! The `trackbridge` binary: `serve`, `migrate`, and `plugin …`.

mod cli;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use cli::options::ServeOptions;
use cli::plugin::PluginCommand;
use trackbridge_host::Server;

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
    /// Run the server. Each option comes from the command line, else its
    /// environment variable, else the configuration file, else its default.
    Serve(Box<ServeArgs>),
    /// Create or update the database schema, then exit.
    Migrate(Box<ServeArgs>),
    /// Check plugin files, or install, roll back and list the plugins of a
    /// running host.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// A TOML file of options, named as the long options with `_` for `-`
    /// (`listen = "0.0.0.0:8080"`, `plugin_timeout_ms = 5000`, …).
    #[arg(long, env = "TRACKBRIDGE_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    options: ServeOptions,
}

impl ServeArgs {
    fn options(self) -> anyhow::Result<ServeOptions> {
        Ok(match &self.config {
            Some(path) => self.options.or(ServeOptions::from_file(path)?),
            None => self.options,
        })
    }
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,wasmtime=warn,cranelift=warn".into()),
        )
        .init();
    let options = match Cli::parse().command {
        Command::Serve(args) => args.options()?,
        Command::Migrate(args) => {
            trackbridge_host::store::Store::connect(&args.options()?.database_url()).await?;
            println!("database schema is up to date");
            return Ok(());
        }
        Command::Plugin(command) => return cli::plugin::run(command).await,
    };
    let admin_token = match &options.admin_token {
        Some(token) if !token.is_empty() => token.clone(),
        _ => {
            let file = options.admin_token_file();
            let token = generated_token(&file)?;
            println!("admin token written to {}", file.display());
            token
        }
    };
    let settings = options.settings(admin_token, default_plugins_dir())?;
    let server = Server::start(settings).await?;
    println!("trackbridge listening on http://{}", server.local_addr());
    tokio::signal::ctrl_c().await?;
    server.shutdown().await;
    Ok(())
}
