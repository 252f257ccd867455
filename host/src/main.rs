//! The `trackbridge` binary: `serve`, `migrate`, `plugin …` and `secrets …`.

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
    /// Keys for sealing integration secrets at rest, and rotating them.
    #[command(subcommand)]
    Secrets(SecretsCommand),
}

#[derive(Subcommand)]
enum SecretsCommand {
    /// Print a new random key, a line for `--secret-key-file`.
    NewKey,
    /// How the stored secrets stand: plain, or sealed under which key.
    Status(Box<ServeArgs>),
    /// Re-seal every integration's secrets under the first key of
    /// `--secret-key-file`. Put the new key on the first line, keep the old
    /// ones below it and restart the hosts first; drop the old lines after.
    Rotate(Box<ServeArgs>),
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

/// `--plugins-dir`, else the first place of [`cli::plugins_dir::candidates`]
/// holding plugins; none is an error saying where it looked.
fn plugins_dir(options: &ServeOptions) -> anyhow::Result<PathBuf> {
    if let Some(dir) = &options.plugins_dir {
        return Ok(dir.clone());
    }
    let exe = std::env::current_exe().context("finding this executable")?;
    Ok(cli::plugins_dir::find(&exe)?)
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
    use std::io::IsTerminal as _;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,wasmtime=warn,cranelift=warn".into()),
        )
        // Colour codes only for a person at a terminal, never into a file or journal.
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let options = match Cli::parse().command {
        Command::Serve(args) => args.options()?,
        Command::Migrate(args) => {
            trackbridge_host::store::Store::connect(&args.options()?.database_url()).await?;
            println!("database schema is up to date");
            return Ok(());
        }
        Command::Plugin(command) => return cli::plugin::run(command).await,
        Command::Secrets(command) => {
            return match command {
                SecretsCommand::NewKey => cli::secrets::new_key(),
                SecretsCommand::Status(args) => {
                    let options = args.options()?;
                    cli::secrets::status(&options.database_url(), options.secret_keys()?).await
                }
                SecretsCommand::Rotate(args) => {
                    let options = args.options()?;
                    cli::secrets::rotate(&options.database_url(), options.secret_keys()?).await
                }
            };
        }
    };
    let plugins_dir = plugins_dir(&options)?;
    let (admin_token, token_origin) = match &options.admin_token {
        Some(token) if !token.is_empty() => (
            token.clone(),
            "given by --admin-token / TRACKBRIDGE_ADMIN_TOKEN".to_owned(),
        ),
        _ => {
            let file = options.admin_token_file();
            let token = generated_token(&file)?;
            (
                token,
                format!("generated, in {}", cli::summary::absolute(&file).display()),
            )
        }
    };
    let settings = options.settings(admin_token, plugins_dir)?;
    let database_url = settings.database_url.clone();
    let secrets = match settings.secret_keys.sealing_key_id() {
        Some(key) => format!("sealed at rest (AES-256-GCM, key {key})"),
        None => "PLAIN TEXT at rest: no --secret-key-file (development only)".to_owned(),
    };
    let plugins_dir = settings.plugins_dir.clone();
    let server = Server::start(settings).await?;
    print!(
        "{}",
        cli::summary::Summary {
            version: env!("CARGO_PKG_VERSION"),
            addr: server.local_addr(),
            database_url: &database_url,
            admin_token: &token_origin,
            secrets: &secrets,
            plugins_dir: &plugins_dir,
            plugins: &server.serving(),
        }
    );
    trackbridge_host::signals::stopped().await?;
    println!("stopping: finishing the requests and jobs in flight");
    server.shutdown().await;
    Ok(())
}
