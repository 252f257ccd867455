//! The release archive, as an operator uses it: packed as `cargo xtask dist`
//! packs it (this test's debug binary instead of a release build), unpacked
//! into an empty directory, started from there with only a database URL
//! (and a free port). It must find its plugins beside itself, be ready, serve
//! the four built-in plugins, and stop on SIGTERM.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BUILT_IN: &[&str] = &["discord", "github", "jira", "jira-server", "vsts"];

fn plugins_dir(root: &Path) -> std::path::PathBuf {
    match std::env::var_os("TRACKBRIDGE_PLUGINS_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => dir.into(),
        None => xtask::build_plugins(root).expect("building the plugins"),
    }
}

#[test]
fn the_release_archive_serves_its_plugins_from_an_empty_directory() {
    let root = xtask::workspace_root();
    let out = tempfile::tempdir().unwrap();
    let release = xtask::dist::Release {
        binary: Path::new(env!("CARGO_BIN_EXE_trackbridge")),
        plugins_dir: &plugins_dir(&root),
        packaging_dir: &root.join("packaging"),
        version: env!("CARGO_PKG_VERSION"),
        target: &xtask::host_target().unwrap(),
    };
    let archive = xtask::dist::pack(&release, out.path()).unwrap();
    assert_eq!(
        archive.file_name().unwrap().to_string_lossy(),
        format!("{}.tar.gz", release.name())
    );

    let empty = tempfile::tempdir().unwrap();
    xtask::dist::unpack(&archive, empty.path()).unwrap();
    let home = empty.path().join(release.name());
    let mut files: Vec<String> = walk(&home);
    files.sort();
    let mut expected: Vec<String> = BUILT_IN
        .iter()
        .map(|p| format!("plugins/{p}.wasm"))
        .chain(
            [
                "trackbridge",
                "trackbridge.example.toml",
                "trackbridge.service",
                "INSTALL.md",
            ]
            .map(String::from),
        )
        .collect();
    expected.sort();
    assert_eq!(files, expected, "what the archive holds");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(home.join("trackbridge"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o755,
        "the binary is executable, writable by its owner only"
    );

    // Nothing from the environment of the test run may point it at plugins.
    let child = Command::new(home.join("trackbridge"))
        .current_dir(&home)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url"])
        .arg(format!(
            "sqlite://{}?mode=rwc",
            home.join("tb.db").display()
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // A failed assertion below must not leave the server running.
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut summary = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let addr = loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no address printed; printed: {summary:#?}"));
        summary.push(line.clone());
        if let Some(addr) = line.trim().strip_prefix("listening on") {
            break addr.trim().to_owned();
        }
    };
    // The rest of the summary: database, token, plugins.
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(5)) {
        summary.push(line);
        if summary.len() >= 5 + BUILT_IN.len() {
            break;
        }
    }
    let text = summary.join("\n");
    assert!(!text.contains('\u{1b}'), "no colour codes: {text}");
    assert!(
        text.contains(&format!(
            "{} from {}",
            BUILT_IN.len(),
            home.join("plugins").display()
        )),
        "plugins found beside the binary: {text}"
    );
    assert!(
        text.contains("trackbridge:plugin@"),
        "each plugin's contract: {text}"
    );
    let token_file = home.join("trackbridge.admin-token");
    assert!(text.contains(&token_file.display().to_string()), "{text}");
    let token = std::fs::read_to_string(&token_file).unwrap();
    assert!(!text.contains(&token), "the summary never shows the token");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let http = reqwest::Client::new();
        let ready = http.get(format!("{addr}/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());
        let plugins: serde_json::Value = http
            .get(format!("{addr}/api/plugins"))
            .bearer_auth(token.trim())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut names: Vec<&str> = plugins
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, BUILT_IN, "{plugins}");
    });

    let pid = child.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let stopped = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < stopped, "still running 30 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "SIGTERM is a clean stop: {status}");
}

/// A child process killed (and reaped) when dropped, unless it has exited.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Every file under `dir`, relative to it.
fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(
                    path.strip_prefix(dir)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    out
}
