//! A real, headless Chromium driven over WebDriver (`fantoccini`), for the console's browser
//! suite.
//!
//! Chromium and its driver come from the distribution's packages (`chromium`,
//! `chromium-driver`); [`ensure_installed`] installs them with `apt-get` when they are missing,
//! once per process. Each [`Browser`] starts its own `chromedriver` on a free loopback port
//! (killed, with the Chromium it started, when the `Browser` is dropped) and opens one session.
//! [`Browser::screenshot`] saves PNGs under `target/console-screenshots/`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

/// The distribution's Chromium.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// The distribution's driver for it.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The longest any browser wait lasts.
pub const BROWSER_WAIT: Duration = Duration::from_secs(15);

static INSTALL: Mutex<bool> = Mutex::new(false);

/// Install `chromium` and `chromium-driver` from the distribution's packages unless both are
/// there. One attempt at a time in this process; a success is remembered.
pub fn ensure_installed() -> anyhow::Result<()> {
    let mut installed = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if *installed {
        return Ok(());
    }
    let present =
        || std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(CHROMEDRIVER).exists();
    if !present() {
        let apt = |args: &[&str]| -> anyhow::Result<()> {
            let out = Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdin(Stdio::null())
                .output()
                .with_context(|| format!("apt-get {args:?}"))?;
            ensure!(
                out.status.success(),
                "apt-get {args:?}: {}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            Ok(())
        };
        apt(&["update", "-qq"])?;
        apt(&[
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "chromium",
            "chromium-driver",
        ])?;
        ensure!(present(), "{CHROMIUM} or {CHROMEDRIVER} still missing");
    }
    *installed = true;
    Ok(())
}

/// Where screenshots go: `target/console-screenshots/` of the workspace.
pub fn screenshot_dir() -> PathBuf {
    crate::plugins::workspace_root()
        .join("target")
        .join("console-screenshots")
}

/// A free loopback port (free when asked; the driver binds it right after).
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// `chromedriver` as a child process, killed with everything it started on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start() -> anyhow::Result<Driver> {
        use std::os::unix::process::CommandExt as _;
        let port = free_port()?;
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, so that the Chromium it starts dies with it.
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {CHROMEDRIVER}"))?;
        let mut driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()?;
        let deadline = tokio::time::Instant::now() + BROWSER_WAIT;
        loop {
            if let Ok(answer) = http.get(format!("{}/status", driver.url)).send().await
                && answer.status().is_success()
            {
                return Ok(driver);
            }
            if let Some(status) = driver.child.try_wait()? {
                bail!("{CHROMEDRIVER} exited: {status}");
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "{CHROMEDRIVER} not answering on {} after {BROWSER_WAIT:?}",
                    driver.url
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: the driver and any Chromium left by a session never closed. Through
        // the syscall, not `/bin/kill`: procps-ng 4.0.2's `kill -SIG -PGID` signals every
        // process (-1).
        if let Some(group) = i32::try_from(self.child.id())
            .ok()
            .filter(|g| *g > 1)
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless Chromium session against one host.
pub struct Browser {
    client: Client,
    base: String,
    // Dropped after the client: the driver outlives the session.
    _driver: Driver,
}

impl Browser {
    /// Start a driver and a headless Chromium session; relative paths go to `base`.
    pub async fn start(base: &str) -> anyhow::Result<Browser> {
        tokio::task::spawn_blocking(ensure_installed).await??;
        let driver = Driver::start().await?;
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,900",
                ],
            }),
        );
        let client = tokio::time::timeout(
            Duration::from_secs(30),
            ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities)
                .connect(&driver.url),
        )
        .await
        .context("no WebDriver session after 30 s")?
        .context("opening a WebDriver session")?;
        Ok(Browser {
            client,
            base: base.trim_end_matches('/').to_owned(),
            _driver: driver,
        })
    }

    /// The WebDriver client, for anything the helpers below don't cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Open `path` (relative to the host) and wait for the page's `<h1>`.
    pub async fn goto(&self, path: &str) -> anyhow::Result<()> {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .with_context(|| format!("opening {path}"))?;
        self.wait_for("h1").await?;
        Ok(())
    }

    /// The current URL's path and query.
    pub async fn path(&self) -> anyhow::Result<String> {
        let url = self.client.current_url().await?;
        Ok(match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        })
    }

    /// The first element matching `css`, waiting for it at most [`BROWSER_WAIT`].
    pub async fn wait_for(&self, css: &str) -> anyhow::Result<Element> {
        self.client
            .wait()
            .at_most(BROWSER_WAIT)
            .every(Duration::from_millis(50))
            .for_element(Locator::Css(css))
            .await
            .with_context(|| format!("no `{css}` after {BROWSER_WAIT:?}"))
    }

    /// Wait (at most [`BROWSER_WAIT`]) until the current path and query satisfy `pred`.
    pub async fn wait_for_path(&self, pred: impl Fn(&str) -> bool) -> anyhow::Result<String> {
        let deadline = tokio::time::Instant::now() + BROWSER_WAIT;
        loop {
            let path = self.path().await?;
            if pred(&path) {
                return Ok(path);
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("still at {path} after {BROWSER_WAIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every element matching `css`, now.
    pub async fn find_all(&self, css: &str) -> anyhow::Result<Vec<Element>> {
        Ok(self.client.find_all(Locator::Css(css)).await?)
    }

    /// The trimmed text of every element matching `css`, now.
    pub async fn texts(&self, css: &str) -> anyhow::Result<Vec<String>> {
        let mut texts = Vec::new();
        for element in self.find_all(css).await? {
            texts.push(element.text().await?.trim().to_owned());
        }
        Ok(texts)
    }

    /// `attr` of every element matching `css` that has it, now.
    pub async fn attrs(&self, css: &str, attr: &str) -> anyhow::Result<Vec<String>> {
        let mut values = Vec::new();
        for element in self.find_all(css).await? {
            if let Some(value) = element.attr(attr).await? {
                values.push(value);
            }
        }
        Ok(values)
    }

    /// Click the element matching `css` (waiting for it).
    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        self.wait_for(css)
            .await?
            .click()
            .await
            .with_context(|| format!("clicking `{css}`"))?;
        Ok(())
    }

    /// Type `text` into the element matching `css` (for a file input: a file path).
    pub async fn type_into(&self, css: &str, text: &str) -> anyhow::Result<()> {
        self.wait_for(css)
            .await?
            .send_keys(text)
            .await
            .with_context(|| format!("typing into `{css}`"))?;
        Ok(())
    }

    /// Reload the page and wait for its `<h1>`.
    pub async fn reload(&self) -> anyhow::Result<()> {
        self.client.refresh().await?;
        self.wait_for("h1").await?;
        Ok(())
    }

    /// Run `script` in the page.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> anyhow::Result<Value> {
        Ok(self.client.execute(script, args).await?)
    }

    /// Save the visible page as `target/console-screenshots/{name}.png`; the file's path.
    pub async fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        let png = self.client.screenshot().await.context("screenshot")?;
        ensure!(png.starts_with(b"\x89PNG"), "the screenshot is no PNG");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// End the session (Chromium quits); the driver stops when this is dropped.
    pub async fn close(self) -> anyhow::Result<()> {
        let Browser {
            client, _driver, ..
        } = self;
        client.close().await.context("closing the session")?;
        drop(_driver);
        Ok(())
    }
}
