//! The host, started in-process on loopback with a fresh SQLite database.

use std::net::SocketAddr;

use anyhow::Context as _;
use trackbridge_host::{Server, Settings};

use crate::api::ApiClient;

/// The compiled-artifact cache test hosts share (tests of the cache itself
/// give theirs a directory of its own).
pub fn shared_artifact_cache() -> std::path::PathBuf {
    crate::plugins::workspace_root()
        .join("target")
        .join("test-plugin-cache")
}

/// The retry schedule of test hosts, in milliseconds.
pub const TEST_RETRY_SCHEDULE_MS: &[u64] = &[50, 100, 200, 400, 800];

/// The network test hosts let plugins reach: the simulators'.
pub const LOOPBACK: &str = "127.0.0.0/8";

/// The admin token every [`TestHost`] is started with.
pub const ADMIN_TOKEN: &str = "e2e-admin-token";

/// An answer to a raw request (webhooks).
#[derive(Clone, Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    /// Read a whole response.
    pub async fn read(response: reqwest::Response) -> anyhow::Result<RawResponse> {
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response.bytes().await?.to_vec();
        Ok(RawResponse {
            status,
            headers,
            body,
        })
    }

    /// The value of header `name`, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON, when it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// A running host with its own temporary directory and database.
pub struct TestHost {
    server: Option<Server>,
    addr: SocketAddr,
    api: ApiClient,
    http: reqwest::Client,
    // Dropped last.
    database: TestDatabase,
}

/// A database of its own for one test: a SQLite file in a temporary
/// directory, or (with [`POSTGRES_ENV`] set) a fresh PostgreSQL database,
/// dropped with this value.
pub struct TestDatabase {
    url: String,
    postgres: Option<PostgresDatabase>,
    dir: tempfile::TempDir,
}

/// The PostgreSQL server the tests use when they need one whatever the run's
/// database: `$TRACKBRIDGE_TEST_POSTGRES`, else the machine's local server.
pub fn postgres_admin_url() -> String {
    std::env::var(POSTGRES_ENV)
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

impl TestDatabase {
    /// The run's kind of database.
    pub async fn new() -> anyhow::Result<TestDatabase> {
        match std::env::var(POSTGRES_ENV).ok().filter(|u| !u.is_empty()) {
            Some(admin_url) => TestDatabase::postgres_at(admin_url).await,
            None => TestDatabase::sqlite(),
        }
    }

    pub fn sqlite() -> anyhow::Result<TestDatabase> {
        let dir = tempfile::tempdir()?;
        Ok(TestDatabase {
            url: format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("trackbridge.db").display()
            ),
            postgres: None,
            dir,
        })
    }

    /// PostgreSQL whatever the run's database (tests of several processes).
    pub async fn postgres() -> anyhow::Result<TestDatabase> {
        TestDatabase::postgres_at(postgres_admin_url()).await
    }

    async fn postgres_at(admin_url: String) -> anyhow::Result<TestDatabase> {
        let database = fresh_postgres_database(&admin_url, "tb_test").await?;
        Ok(TestDatabase {
            url: database.url().to_owned(),
            postgres: Some(database),
            dir: tempfile::tempdir()?,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }

    /// The SQLite file, when it is one.
    pub fn sqlite_path(&self) -> Option<std::path::PathBuf> {
        (!self.is_postgres()).then(|| self.dir.path().join("trackbridge.db"))
    }
}

/// A PostgreSQL database made for one test or benchmark, dropped with this
/// value: a suite that leaves its databases behind fills the disk.
pub struct PostgresDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PostgresDatabase {
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop may run inside a runtime, which cannot block on another future:
        // a thread with a runtime of its own can.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                use sqlx::Connection as _;
                if let Ok(mut admin) = sqlx::AnyConnection::connect(&admin_url).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut admin)
                        .await;
                }
            });
        })
        .join();
    }
}

/// When set (to an admin URL such as `postgres://postgres@127.0.0.1/postgres`),
/// every [`TestHost`] gets a fresh PostgreSQL database instead of a SQLite file.
pub const POSTGRES_ENV: &str = "TRACKBRIDGE_TEST_POSTGRES";

/// Create an empty database named `<prefix>_<pid>_<n>` on the server of
/// `admin_url` (a URL of an existing database there); it is dropped with the
/// value returned.
pub async fn fresh_postgres_database(
    admin_url: &str,
    prefix: &str,
) -> anyhow::Result<PostgresDatabase> {
    use sqlx::Connection as _;
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    sqlx::any::install_default_drivers();
    let name = format!(
        "{prefix}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut admin = sqlx::AnyConnection::connect(admin_url)
        .await
        .with_context(|| format!("connecting to {admin_url}"))?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    let base = admin_url
        .rsplit_once('/')
        .map(|(base, _)| base)
        .unwrap_or(admin_url);
    Ok(PostgresDatabase {
        admin_url: admin_url.to_owned(),
        url: format!("{base}/{name}"),
        name,
    })
}

fn init_logging() {
    crate::logs::init();
}

impl TestHost {
    /// Start a host with default settings and the built plugins.
    pub async fn start() -> anyhow::Result<TestHost> {
        TestHost::start_with(|_| {}).await
    }

    /// Start a host, letting `adjust` change the settings first.
    pub async fn start_with(adjust: impl FnOnce(&mut Settings)) -> anyhow::Result<TestHost> {
        TestHost::start_on(TestDatabase::new().await?, adjust).await
    }

    /// Start a host on `database`. Failed jobs are retried after 50, 100,
    /// 200, 400 and 800 ms (five retries, then the dead letter) unless
    /// `adjust` says otherwise.
    pub async fn start_on(
        database: TestDatabase,
        adjust: impl FnOnce(&mut Settings),
    ) -> anyhow::Result<TestHost> {
        init_logging();
        let plugins_dir = tokio::task::spawn_blocking(crate::plugins::plugins_dir)
            .await
            .context("building the plugins panicked")?;
        let mut settings = Settings::new(database.url(), plugins_dir, ADMIN_TOKEN);
        settings.jobs.retry.schedule = TEST_RETRY_SCHEDULE_MS
            .iter()
            .map(|ms| std::time::Duration::from_millis(*ms))
            .collect();
        settings.jobs.poll = std::time::Duration::from_millis(200);
        // The simulated trackers listen on loopback, which plugins may not
        // reach unless the operator says so.
        settings.outbound_allow_networks = vec![LOOPBACK.parse().expect("a network")];
        // One artifact cache for every test host of the run: a host compiles a
        // plugin only the first time any test loads it.
        settings.plugin_cache_dir = Some(shared_artifact_cache());
        adjust(&mut settings);
        let server = Server::start(settings).await.context("starting the host")?;
        let addr = server.local_addr();
        let api = ApiClient::new(format!("http://{addr}"), Some(ADMIN_TOKEN.to_string()));
        Ok(TestHost {
            server: Some(server),
            addr,
            api,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(std::time::Duration::from_secs(30))
                .build()?,
            database,
        })
    }

    pub fn database(&self) -> &TestDatabase {
        &self.database
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The API client with the admin token.
    pub fn api(&self) -> &ApiClient {
        &self.api
    }

    /// POST `body` to `path` with exactly these extra headers (no admin token).
    pub async fn post_raw(
        &self,
        path: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> anyhow::Result<RawResponse> {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base_url()))
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        RawResponse::read(response).await
    }

    /// Stop the server and hand back its database, for a host started on it
    /// again.
    pub async fn stop(self) -> TestDatabase {
        let TestHost {
            server, database, ..
        } = self;
        if let Some(server) = server {
            server.shutdown().await;
        }
        database
    }

    /// Stop the server and wait for it.
    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

/// Every stored byte of the test's database, as text: the SQLite file and its
/// write-ahead log, or on PostgreSQL every row of every table.
pub async fn everything_stored(database: &TestDatabase) -> anyhow::Result<String> {
    if let Some(path) = database.sqlite_path() {
        let mut all = Vec::new();
        for file in [path.clone(), path.with_extension("db-wal")] {
            if let Ok(bytes) = std::fs::read(&file) {
                all.extend(bytes);
            }
        }
        return Ok(String::from_utf8_lossy(&all).into_owned());
    }
    let store = trackbridge_host::store::Store::connect(database.url()).await?;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_all(store.pool())
    .await?;
    let mut all = String::new();
    for table in tables {
        let rows: Vec<String> =
            sqlx::query_scalar(&format!("SELECT CAST(t AS TEXT) FROM \"{table}\" t"))
                .fetch_all(store.pool())
                .await?;
        all.push_str(&rows.join("\n"));
    }
    Ok(all)
}
