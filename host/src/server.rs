//! Start and stop the host: database, plugins, HTTP, workers.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{self, AppState};
use crate::domain::Domain;
use crate::listener::{self, HttpLimits};
use crate::metrics::Metrics;
use crate::monitor::Monitor;
use crate::plugins::artifacts::ArtifactCache;
use crate::plugins::guest::GuestRuntime;
use crate::plugins::outbound::AddressPolicy;
use crate::plugins::{
    CallLimits, LogLimiter, PluginManager, Registry, Runtime, Services, SwapError, TtlCache,
    engine, swap::Serving,
};
use crate::queue::{self, Workers};
use crate::settings::Settings;
use crate::store::{Backend, Store, StoreError};

/// Why the host could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the region id must be below 4096 (12 bits)")]
    Region,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("listening on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("wasmtime engine: {0}")]
    Engine(String),
    #[error("loading plugins: {0}")]
    Plugins(#[from] SwapError),
}

/// The plugin runtime: the engine and the host services every call reaches.
pub fn build_runtime(
    settings: &Settings,
    store: Store,
    public_url: String,
    metrics: Arc<Metrics>,
) -> Result<Arc<Runtime>, StartError> {
    let engine = engine::build(settings.plugin_memory_bytes)
        .map_err(|e| StartError::Engine(e.to_string()))?;
    let artifacts = ArtifactCache::new(&engine, settings.plugin_cache_dir.clone());
    Ok(Arc::new(Runtime {
        engine,
        services: Arc::new(Services {
            store,
            cache: TtlCache::default(),
            public_url,
            metrics,
            log_limiter: LogLimiter::new(settings.plugin_log_lines_per_sec),
            addresses: Arc::new(AddressPolicy {
                allowed: settings.outbound_allow_networks.clone(),
            }),
        }),
        limits: CallLimits {
            timeout: settings.plugin_timeout,
            memory_bytes: settings.plugin_memory_bytes,
        },
        artifacts,
        slots: tokio::sync::Semaphore::new(engine::MAX_INSTANCES as usize),
        guest: GuestRuntime::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
            .map_err(|e| StartError::Engine(format!("the plugin runtime's threads: {e}")))?,
        scratch: None,
    }))
}

/// A runtime for looking at plugin files without a host (`plugin check`,
/// `plugin inspect`, `plugin check --conformance`): the host's engine
/// settings, a scratch database of its own (empty: no integrations), no
/// artifact cache.
pub async fn offline_runtime() -> Result<Arc<Runtime>, StartError> {
    // A file, not `sqlite::memory:`: every pooled connection to an in-memory
    // database is a database of its own, without the schema, so a call that
    // looks an integration up (`select-integration`) would fail on a
    // connection the migrations never saw.
    let scratch = tempfile::Builder::new()
        .prefix("trackbridge-offline-")
        .tempdir()
        .map_err(|e| StartError::Engine(format!("a scratch directory: {e}")))?;
    let url = format!(
        "sqlite://{}?mode=rwc",
        scratch.path().join("offline.db").display()
    );
    let settings = Settings::new(&url, std::path::PathBuf::new(), "");
    let store = Store::connect(&settings.database_url).await?;
    let mut runtime = build_runtime(
        &settings,
        store,
        "http://localhost".into(),
        Arc::new(Metrics::default()),
    )?;
    match Arc::get_mut(&mut runtime) {
        Some(r) => r.scratch = Some(scratch),
        None => drop(scratch.keep()),
    }
    Ok(runtime)
}

/// Refuse keys that cannot open every stored secret; with keys, seal what is
/// stored plain; without, say loudly that secrets are plain text.
async fn secure_secrets(store: &Store) -> Result<(), StartError> {
    let at_rest = store.check_secret_keys().await?;
    if store.secret_keys().is_empty() {
        tracing::warn!(
            integrations = at_rest.plain,
            "integration secrets are stored in PLAIN TEXT: give a key with --secret-key-file \
             (trackbridge secrets new-key makes one) to seal them"
        );
        return Ok(());
    }
    let sealed = store.seal_secrets(false).await?;
    if sealed > 0 {
        tracing::info!(
            integrations = sealed,
            "sealed the secrets that were stored in plain text"
        );
    }
    Ok(())
}

/// A running host.
pub struct Server {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    grace: std::time::Duration,
    workers: Workers,
    stop_background: watch::Sender<bool>,
    background: Vec<JoinHandle<()>>,
    plugins: Arc<PluginManager>,
}

impl Server {
    /// Connect the database (running migrations), load every plugin of the
    /// plugins directory, and start serving HTTP.
    pub async fn start(settings: Settings) -> Result<Server, StartError> {
        if settings.region_id >= 1 << 12 {
            return Err(StartError::Region);
        }
        let store = Store::connect_with_timeout(&settings.database_url, settings.database_timeout)
            .await?
            .with_region(settings.region_id)
            .with_secret_keys(settings.secret_keys.clone());
        secure_secrets(&store).await?;
        // Bind first: the public URL defaults to the address actually bound.
        let bind = |source| StartError::Bind {
            addr: settings.listen,
            source,
        };
        let listener = TcpListener::bind(settings.listen).await.map_err(bind)?;
        let addr = listener.local_addr().map_err(bind)?;
        let public_url = settings
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"))
            .trim_end_matches('/')
            .to_owned();
        let metrics = Arc::new(Metrics::default());
        let runtime = build_runtime(&settings, store.clone(), public_url, metrics.clone())?;
        let registry = Arc::new(Registry::default());
        let plugins = PluginManager::start(
            runtime,
            registry.clone(),
            store.clone(),
            settings.swap.clone(),
            &settings.plugins_dir,
        )
        .await?;
        let (stop_background, background_stopped) = watch::channel(false);
        let mut background = plugins.spawn(background_stopped.clone());
        let monitor = Arc::new(Monitor::default());
        monitor.measure(&store, &metrics).await;
        background.push(tokio::spawn({
            let (monitor, store, metrics) = (monitor.clone(), store.clone(), metrics.clone());
            async move { monitor.run(store, &metrics, background_stopped).await }
        }));
        if store.backend() == Backend::Sqlite {
            // SQLite belongs to this one process: a running job is a dead one's.
            let released = store.release_all_leases().await?;
            if released > 0 {
                tracing::info!(
                    jobs = released,
                    "took back the jobs the last process left running"
                );
            }
        }
        let domain = Domain::new(store.clone(), registry.clone());
        background.push(tokio::spawn(
            domain
                .clone()
                .maintain_periodically(stop_background.subscribe()),
        ));
        let workers = queue::start(
            store.clone(),
            Arc::new(domain.clone()),
            domain.job_signal(),
            settings.jobs.clone(),
        );
        let (settings_http, grace) = (settings.http, settings.shutdown_grace);
        let metrics_for_http = metrics.clone();
        let (stop, stopping) = watch::channel(false);
        let state = AppState {
            intake: queue::Intake::start(store.clone(), monitor.clone()),
            domain,
            store,
            registry,
            plugins: plugins.clone(),
            metrics,
            monitor,
            settings: Arc::new(settings),
            stopping: stopping.clone(),
        };
        let limits = HttpLimits {
            max_connections: listener::effective_max_connections(settings_http.max_connections),
            ..settings_http
        };
        let app = api::router(state);
        let task = tokio::spawn(listener::serve(
            listener,
            app,
            limits,
            metrics_for_http,
            stopping,
            grace,
        ));
        tracing::info!(%addr, "listening");
        Ok(Server {
            addr,
            stop,
            task,
            grace,
            workers,
            stop_background,
            background,
            plugins,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The plugins serving now.
    pub fn serving(&self) -> Vec<Serving> {
        self.plugins.serving()
    }

    /// Stop: no new connections, requests and jobs in flight finish, idle
    /// connections close — all within the shutdown grace. What is still
    /// running then is cut: connections closed, jobs handed back to the
    /// queue. Queued jobs stay queued for the next start.
    pub async fn shutdown(self) {
        let deadline = tokio::time::Instant::now() + self.grace;
        let _ = self.stop.send(true);
        let http = async {
            let _ = self.task.await;
        };
        tokio::join!(http, self.workers.shutdown(deadline));
        let _ = self.stop_background.send(true);
        for task in self.background {
            let _ = task.await;
        }
    }
}
