//! `trackbridge plugin …`: checking plugin files without a host, and
//! installing, rolling back and listing plugins of a running host through its
//! admin API (so the host's own checks apply and every process sharing its
//! database follows).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use serde_json::Value;
use trackbridge_host::plugins::{Runtime, inspect};

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Validate FILE exactly as an install would — compile it, check it
    /// implements a contract world this host supports, run its `describe` —
    /// without touching a running host. Exits non-zero with the reason when it
    /// would be refused. With `--conformance`, also run the checks every
    /// plugin must pass (what it does with unsigned, empty and garbage
    /// deliveries, with empty installation input, within the limits) and
    /// print a table; exits non-zero when any fails.
    Check {
        file: PathBuf,
        #[arg(long)]
        conformance: bool,
    },
    /// Write a new plugin crate NAME (a provider, or with `--notifier` a chat
    /// notifier) that builds on its own: every export with what the host
    /// expects of it, native unit tests, and a test running the built
    /// component in the host's runtime.
    New {
        name: String,
        #[arg(long)]
        notifier: bool,
        /// Where to write it (default: ./NAME); must not exist or be empty.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// A trackbridge checkout to take the SDK and the test harness from
        /// (default: the one this binary was built from, if still there;
        /// else the published crates).
        #[arg(long)]
        source: Option<PathBuf>,
    },
    /// Print what FILE is: world and contract version, name and version, routes,
    /// declared capabilities (URL fields, host patterns), imports and exports,
    /// size and sha256 — as JSON.
    Inspect { file: PathBuf },
    /// List the plugins a running host serves (version, sha256, probation);
    /// with `--dir`, the plugin files of a directory instead.
    List {
        /// A plugins directory to list, without a host.
        #[arg(long)]
        dir: Option<PathBuf>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Install FILE in a running host: checked there, recorded, and switched to
    /// atomically (calls in flight finish on the old version). Its first calls
    /// are watched, and the host rolls back by itself if too many fail.
    Install {
        file: PathBuf,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Switch plugin NAME back to an earlier version: `--to` a version id, a
    /// version, or a sha256 prefix; by default the version installed before
    /// the one serving.
    Rollback {
        name: String,
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Every recorded version of plugin NAME (sha256, size, contract, who
    /// installed it and when) and every switch between them.
    Versions {
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// How to reach a running host.
#[derive(Args)]
pub struct ServerArgs {
    /// The host's base URL.
    #[arg(
        long,
        env = "TRACKBRIDGE_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    server: String,
    /// The admin token; when unset, read from `--admin-token-file`.
    #[arg(long, env = "TRACKBRIDGE_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// The file `serve` wrote a generated admin token to.
    #[arg(
        long,
        env = "TRACKBRIDGE_ADMIN_TOKEN_FILE",
        default_value = "trackbridge.admin-token"
    )]
    admin_token_file: PathBuf,
}

impl ServerArgs {
    fn token(&self) -> anyhow::Result<String> {
        match &self.admin_token {
            Some(t) if !t.is_empty() => Ok(t.clone()),
            _ => Ok(std::fs::read_to_string(&self.admin_token_file)
                .with_context(|| {
                    format!(
                        "no --admin-token given and {} cannot be read",
                        self.admin_token_file.display()
                    )
                })?
                .trim()
                .to_owned()),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Body>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.server.trim_end_matches('/'));
        let mut request = reqwest::Client::new()
            .request(method, &url)
            .bearer_auth(self.token()?)
            .header("x-trackbridge-operator", operator());
        request = match body {
            Some(Body::Wasm(bytes)) => request
                .header("content-type", "application/wasm")
                .body(bytes),
            Some(Body::Json(value)) => request.json(&value),
            None => request,
        };
        let response = request
            .send()
            .await
            .with_context(|| format!("reaching the host at {url}"))?;
        let status = response.status();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let reason = value["error"].as_str().unwrap_or("no reason given");
            bail!("the host answered {status}: {reason}");
        }
        Ok(value)
    }
}

enum Body {
    Wasm(Vec<u8>),
    Json(Value),
}

/// Who the host records as doing it: the local user at this machine.
fn operator() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "someone".into());
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    match host.trim() {
        "" => user,
        host => format!("{user}@{host}"),
    }
}

async fn offline_runtime() -> anyhow::Result<Arc<Runtime>> {
    Ok(trackbridge_host::server::offline_runtime().await?)
}

fn print(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub async fn run(command: PluginCommand) -> anyhow::Result<()> {
    match command {
        PluginCommand::Check {
            file,
            conformance: true,
        } => conformance(&file).await?,
        PluginCommand::Check { file, .. } => {
            let i = inspect(&offline_runtime().await?, &file).await?;
            println!(
                "ok: {} {} implements {} of {}",
                i.name, i.version, i.world, i.contract
            );
        }
        PluginCommand::New {
            name,
            notifier,
            dir,
            source,
        } => {
            let dir = super::scaffold::generate(&super::scaffold::Scaffold {
                name,
                notifier,
                dir,
                source,
            })?;
            println!("wrote {}", dir.display());
            println!("next: cd {} && cargo test", dir.display());
        }
        PluginCommand::Inspect { file } => {
            let i = inspect(&offline_runtime().await?, &file).await?;
            println!("{}", serde_json::to_string_pretty(&i)?);
        }
        PluginCommand::List { dir: Some(dir), .. } => list_dir(&dir).await?,
        PluginCommand::List { dir: None, server } => {
            let plugins = server
                .send(reqwest::Method::GET, "/api/plugins", None)
                .await?;
            for p in plugins.as_array().into_iter().flatten() {
                let text = |key: &str| p[key].as_str().unwrap_or("").to_owned();
                let sha = text("sha256");
                println!(
                    "{:<14} {:<12} {:<16} {}  {}",
                    text("name"),
                    text("version"),
                    text("world"),
                    &sha[..sha.len().min(16)],
                    if p["on_probation"] == true {
                        "on probation"
                    } else {
                        ""
                    }
                );
            }
        }
        PluginCommand::Install { file, server } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            print(
                &server
                    .send(
                        reqwest::Method::POST,
                        "/api/plugins",
                        Some(Body::Wasm(bytes)),
                    )
                    .await?,
            )?;
        }
        PluginCommand::Rollback { name, to, server } => {
            let body = serde_json::json!({ "to": to });
            let path = format!("/api/plugins/{name}/rollback");
            print(
                &server
                    .send(reqwest::Method::POST, &path, Some(Body::Json(body)))
                    .await?,
            )?;
        }
        PluginCommand::Versions { name, server } => {
            let path = format!("/api/plugins/{name}/versions");
            print(&server.send(reqwest::Method::GET, &path, None).await?)?;
        }
    }
    Ok(())
}

/// The conformance table: one row per check, plain text (it is read in CI
/// logs as often as in a terminal).
async fn conformance(file: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let runtime = offline_runtime().await?;
    let checks =
        trackbridge_host::plugins::conformance::run(&runtime, &bytes, &file.display().to_string())
            .await;
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for check in &checks {
        let mark = if check.passed { "pass" } else { "FAIL" };
        println!(
            "{mark}  {:<width$}  {}",
            check.name,
            one_line(&check.detail)
        );
    }
    let failed = checks.iter().filter(|c| !c.passed).count();
    if failed > 0 {
        bail!("{failed} of {} conformance checks failed", checks.len());
    }
    println!("all {} conformance checks passed", checks.len());
    Ok(())
}

/// A detail on one line of the table.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

async fn list_dir(dir: &Path) -> anyhow::Result<()> {
    let runtime = offline_runtime().await?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .collect();
    files.sort();
    for file in files {
        match inspect(&runtime, &file).await {
            Ok(i) => println!(
                "{:<14} {:<12} {:<16} {}  {}",
                i.name,
                i.version,
                i.world,
                &i.sha256[..16],
                i.path
            ),
            Err(e) => println!("refused        {e}"),
        }
    }
    Ok(())
}
