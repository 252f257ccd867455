//! Start and stop the host: database, plugins, HTTP.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::api::{self, AppState};
use crate::domain::Domain;
use crate::plugins::{CallLimits, Registry, Runtime, Services, TtlCache, engine};
use crate::settings::Settings;
use crate::store::Store;

/// A running host.
pub struct Server {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Server {
    /// Connect the database (running migrations), load every plugin of the
    /// plugins directory, and start serving HTTP.
    pub async fn start(settings: Settings) -> anyhow::Result<Server> {
        if settings.region_id >= 1 << 12 {
            anyhow::bail!("the region id must be below 4096 (12 bits)");
        }
        let store = Store::connect(&settings.database_url)
            .await?
            .with_region(settings.region_id);
        // Bind first: the public URL defaults to the address actually bound.
        let listener = TcpListener::bind(settings.listen).await?;
        let addr = listener.local_addr()?;
        let public_url = settings
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"))
            .trim_end_matches('/')
            .to_owned();
        let engine = engine::build(settings.plugin_memory_bytes)
            .map_err(|e| anyhow::anyhow!("wasmtime engine: {e}"))?;
        let services = Arc::new(Services {
            store: store.clone(),
            cache: TtlCache::default(),
            public_url,
        });
        let limits = CallLimits {
            timeout: settings.plugin_timeout,
            memory_bytes: settings.plugin_memory_bytes,
        };
        let runtime = Arc::new(Runtime {
            engine,
            services,
            limits,
        });
        let registry = Arc::new(Registry::load_dir(&runtime, &settings.plugins_dir).await?);
        let state = AppState {
            domain: Domain::new(store.clone(), registry.clone()),
            store,
            registry,
            settings: Arc::new(settings),
        };
        let app = api::router(state);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(err) = serve.await {
                tracing::error!(error = %err, "HTTP server failed");
            }
        });
        tracing::info!(%addr, "listening");
        Ok(Server { addr, stop, task })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop accepting connections and wait for requests in flight.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}
