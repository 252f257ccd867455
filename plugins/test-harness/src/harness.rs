//! [`Harness`]: one built plugin loaded into the host's own runtime, and a
//! method per export of the contract.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use trackbridge_host::metrics::Metrics;
use trackbridge_host::plugins::contract::notifier::notifier_types::{
    Delivered, GroupEvent, GroupSummary,
};
use trackbridge_host::plugins::contract::provider_types::{
    ExternalIssue, InboundEvent, IncomingRequest, IntegrationData, ProviderInfo, Rejection,
    StatusMapping, SyncOutcome, UserRef, VerifiedWebhook,
};
use trackbridge_host::plugins::registry::RouteParams;
use trackbridge_host::plugins::{
    NotifierPlugin, Plugin, ProviderPlugin, Registry, Runtime, loader,
};
use trackbridge_host::server::build_runtime;
use trackbridge_host::settings::Settings;
use trackbridge_host::store::{Integration, Store};

use crate::error::HarnessError;
use crate::request::WebhookRequest;

/// How a [`Harness`] is set up. The defaults are the host's own
/// (`Settings::new`): a 10 s budget and 64 MiB of memory per call.
#[derive(Clone, Debug)]
pub struct HarnessBuilder {
    timeout: Duration,
    memory_bytes: usize,
    public_url: String,
    cache_dir: Option<PathBuf>,
}

impl Default for HarnessBuilder {
    fn default() -> Self {
        let defaults = Settings::new("", PathBuf::new(), "");
        HarnessBuilder {
            timeout: defaults.plugin_timeout,
            memory_bytes: defaults.plugin_memory_bytes,
            public_url: "http://localhost".into(),
            cache_dir: defaults.plugin_cache_dir,
        }
    }
}

impl HarnessBuilder {
    /// The time budget of every call (`--plugin-timeout`): the CPU deadline
    /// and the wall-clock limit, outbound HTTP included.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The linear-memory cap of every instance (`--plugin-memory`).
    pub fn memory_bytes(mut self, bytes: usize) -> Self {
        self.memory_bytes = bytes;
        self
    }

    /// What the `public-url` import answers (`--public-url`), without a
    /// trailing `/`; `http://localhost` by default.
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = url.into().trim_end_matches('/').to_owned();
        self
    }

    /// Cache compiled modules in `dir` (`--plugin-cache-dir`), so that many
    /// tests of the same file compile it once. The host loads a cached
    /// artifact only from a directory no other user can write to.
    pub fn artifact_cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Load the plugin file at `path`.
    pub async fn load(self, path: impl AsRef<Path>) -> Result<Harness, HarnessError> {
        let path = path.as_ref();
        let setup = self.setup().await?;
        let plugin = loader::load_file(&setup.runtime, path).await?;
        setup.finish(plugin)
    }

    /// Load a plugin from its bytes; `origin` names it in errors.
    pub async fn load_bytes(self, bytes: &[u8], origin: &str) -> Result<Harness, HarnessError> {
        let setup = self.setup().await?;
        let plugin = loader::load(&setup.runtime, bytes, origin).await?;
        setup.finish(plugin)
    }

    /// The runtime exactly as the server builds it ([`build_runtime`]), over
    /// a database of the harness's own.
    async fn setup(self) -> Result<Setup, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("trackbridge-plugin-test-")
            .tempdir()
            .map_err(HarnessError::TempDir)?;
        let database = dir.path().join("harness.db");
        let mut settings = Settings::new(
            format!("sqlite://{}?mode=rwc", database.display()),
            dir.path(),
            "",
        );
        settings.plugin_timeout = self.timeout;
        settings.plugin_memory_bytes = self.memory_bytes;
        settings.plugin_cache_dir = self.cache_dir;
        settings.outbound_allow_networks = vec![loopback()];
        let store = Store::connect(&settings.database_url).await?;
        let organization = store
            .create_organization("Plugin tests", "plugin-tests")
            .await?
            .id;
        let runtime = build_runtime(
            &settings,
            store.clone(),
            self.public_url.clone(),
            Arc::new(Metrics::default()),
        )?;
        tracing::debug!(
            timeout_ms = self.timeout.as_millis() as u64,
            memory_bytes = self.memory_bytes,
            "harness runtime ready"
        );
        Ok(Setup {
            dir,
            store,
            organization,
            runtime,
            public_url: self.public_url,
        })
    }
}

/// The only address range the harness adds to production's outbound policy:
/// `127.0.0.1/32`, the address [`FakeTracker`](crate::FakeTracker) listens on.
fn loopback() -> ipnet::IpNet {
    ipnet::IpNet::from(std::net::IpAddr::from(crate::tracker::LOOPBACK))
}

struct Setup {
    dir: tempfile::TempDir,
    store: Store,
    organization: i64,
    runtime: Arc<Runtime>,
    public_url: String,
}

impl Setup {
    fn finish(self, plugin: Plugin) -> Result<Harness, HarnessError> {
        let registry = Registry::default();
        registry
            .put(plugin.clone())
            .map_err(|e| HarnessError::Builder(e.to_string()))?;
        tracing::info!(
            plugin = %plugin.info().name,
            version = %plugin.info().version,
            world = plugin.world(),
            "plugin loaded into the harness"
        );
        Ok(Harness {
            plugin,
            registry,
            runtime: self.runtime,
            store: self.store,
            organization: self.organization,
            public_url: self.public_url,
            _dir: self.dir,
        })
    }
}

/// What became of a webhook delivered with [`Harness::deliver`], as the
/// host's webhook endpoint would treat it.
#[derive(Debug)]
pub enum Delivery {
    /// `verify-webhook` refused it; the tracker is answered with this.
    Rejected(Rejection),
    /// Authentic, but nothing to do (the host answers 200 and stores nothing).
    Ignored(VerifiedWebhook),
    /// Verified and handled for the integration `verify-webhook` selected.
    Handled {
        verified: VerifiedWebhook,
        integration: Integration,
        events: Vec<InboundEvent>,
    },
}

/// A built plugin loaded into the host's real runtime: the production engine
/// settings, call limits, host imports and outbound-host gate, over a
/// database of its own. The one difference from production is the address
/// policy, which lets outbound requests reach `127.0.0.1`, where
/// [`FakeTracker`](crate::FakeTracker) listens.
///
/// Every call runs as the host runs it: in a fresh instance, with the memory
/// cap and time budget, reaching only the hosts of the integration it acts
/// for (during `build-integration`, the hosts given to it and the plugin's
/// `allowed-host-patterns`).
pub struct Harness {
    plugin: Plugin,
    registry: Registry,
    runtime: Arc<Runtime>,
    store: Store,
    organization: i64,
    public_url: String,
    _dir: tempfile::TempDir,
}

impl Harness {
    /// Load the plugin file at `path` with the default settings.
    pub async fn load(path: impl AsRef<Path>) -> Result<Harness, HarnessError> {
        HarnessBuilder::default().load(path).await
    }

    /// Settings other than the defaults (time budget, memory, public URL).
    pub fn builder() -> HarnessBuilder {
        HarnessBuilder::default()
    }

    /// The loaded plugin, as the host holds it.
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// What the plugin's `describe` said when it was loaded.
    pub fn info(&self) -> &ProviderInfo {
        self.plugin.info()
    }

    /// The plugin's provider key (`describe`'s `name`).
    pub fn name(&self) -> &str {
        &self.plugin.info().name
    }

    /// The runtime the plugin runs in.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// The harness's database: integrations installed through the harness
    /// are there, and `select-integration` / `lookup-integration` read it.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The organization integrations are installed for.
    pub fn organization(&self) -> i64 {
        self.organization
    }

    /// What the `public-url` import answers.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    fn provider(&self, export: &'static str) -> Result<&Arc<ProviderPlugin>, HarnessError> {
        match &self.plugin {
            Plugin::Provider(p) => Ok(p),
            Plugin::Notifier(_) => Err(self.wrong_world(export)),
        }
    }

    fn notifier(&self, export: &'static str) -> Result<&Arc<NotifierPlugin>, HarnessError> {
        match &self.plugin {
            Plugin::Notifier(n) => Ok(n),
            Plugin::Provider(_) => Err(self.wrong_world(export)),
        }
    }

    fn wrong_world(&self, export: &'static str) -> HarnessError {
        HarnessError::WrongWorld {
            plugin: self.name().to_owned(),
            world: self.plugin.world(),
            export,
        }
    }

    /// Call `describe` again.
    pub async fn describe(&self) -> Result<ProviderInfo, HarnessError> {
        Ok(match &self.plugin {
            Plugin::Provider(p) => p.describe().await?,
            Plugin::Notifier(n) => n.describe().await?,
        })
    }

    /// Call `build-integration` with `input`; outbound calls may reach
    /// `hosts` (`host:port`, e.g. [`FakeTracker::authority`](crate::FakeTracker::authority))
    /// and the plugin's `allowed-host-patterns`. Nothing is stored; see
    /// [`Harness::install`] for the host's whole installation.
    pub async fn build_integration<S: AsRef<str>>(
        &self,
        input: Value,
        hosts: &[S],
    ) -> Result<IntegrationData, HarnessError> {
        let hosts = hosts.iter().map(|h| h.as_ref().to_owned()).collect();
        Ok(self
            .plugin
            .build_integration(input.to_string(), hosts)
            .await?)
    }

    /// Call `verify-webhook`: the verified webhook, or the rejection the
    /// tracker would be answered with.
    pub async fn verify_webhook(
        &self,
        request: &IncomingRequest,
    ) -> Result<Result<VerifiedWebhook, Rejection>, HarnessError> {
        Ok(self.verify_webhook_selecting(request).await?.0)
    }

    /// [`Harness::verify_webhook`], with the integration the plugin selected
    /// (`select-integration`) during the call.
    pub async fn verify_webhook_selecting(
        &self,
        request: &IncomingRequest,
    ) -> Result<(Result<VerifiedWebhook, Rejection>, Option<Integration>), HarnessError> {
        let r = self
            .provider("verify-webhook")?
            .verify_webhook(request)
            .await?;
        Ok((r.value, r.integration))
    }

    /// Call `handle-webhook` for `integration`.
    pub async fn handle_webhook(
        &self,
        integration: &Integration,
        request: &IncomingRequest,
    ) -> Result<Vec<InboundEvent>, HarnessError> {
        Ok(self
            .provider("handle-webhook")?
            .handle_webhook(integration.clone(), request)
            .await?)
    }

    /// What the host's webhook endpoint does with a request: verify it, and
    /// unless it is rejected or ignored, handle it for the integration the
    /// plugin selected. A plugin that verifies a delivery without selecting
    /// the integration it names is an error, as in the host.
    pub async fn deliver(&self, request: &IncomingRequest) -> Result<Delivery, HarnessError> {
        let (outcome, selected) = self.verify_webhook_selecting(request).await?;
        let verified = match outcome {
            Err(rejection) => return Ok(Delivery::Rejected(rejection)),
            Ok(verified) if verified.ignore => return Ok(Delivery::Ignored(verified)),
            Ok(verified) => verified,
        };
        let Some(integration) = selected.filter(|i| i.external_id == verified.integration) else {
            return Err(HarnessError::UnselectedIntegration {
                plugin: self.name().to_owned(),
                claimed: verified.integration,
            });
        };
        let events = self.handle_webhook(&integration, request).await?;
        Ok(Delivery::Handled {
            verified,
            integration,
            events,
        })
    }

    /// Call `sync-status`: move `issue` to the status `mappings` give for
    /// resolving (`resolve`) or unresolving.
    pub async fn sync_status(
        &self,
        integration: &Integration,
        issue: &ExternalIssue,
        resolve: bool,
        mappings: &[StatusMapping],
    ) -> Result<SyncOutcome, HarnessError> {
        Ok(self
            .provider("sync-status")?
            .sync_status(integration.clone(), issue, resolve, mappings)
            .await?)
    }

    /// Call `sync-assignee`: assign `issue` to the user with one of `emails`
    /// (and no mapped identity), or unassign it (`None`).
    pub async fn sync_assignee(
        &self,
        integration: &Integration,
        issue: &ExternalIssue,
        emails: Option<&[String]>,
    ) -> Result<SyncOutcome, HarnessError> {
        let user = emails.map(|emails| UserRef {
            emails: emails.to_vec(),
            identities: Vec::new(),
        });
        self.sync_assignee_to(integration, issue, user.as_ref())
            .await
    }

    /// Call `sync-assignee` with a user as the host describes them: verified
    /// emails and the identities mapped at this integration (contract 0.2.0;
    /// a 0.1.0 plugin receives the emails only).
    pub async fn sync_assignee_to(
        &self,
        integration: &Integration,
        issue: &ExternalIssue,
        user: Option<&UserRef>,
    ) -> Result<SyncOutcome, HarnessError> {
        Ok(self
            .provider("sync-assignee")?
            .sync_assignee(integration.clone(), issue, user)
            .await?)
    }

    /// Call `uninstall` for `integration`. A notifier has no such export; as
    /// in the host, uninstalling one succeeds without a call.
    pub async fn uninstall(&self, integration: &Integration) -> Result<(), HarnessError> {
        Ok(self.plugin.uninstall(integration.clone()).await?)
    }

    /// Call `maintain` for `integration`: the periodic upkeep the host runs
    /// every `maintenance-interval-secs` (contract 0.2.0; a 0.1.0 provider
    /// has none, and the call succeeds without reaching it).
    pub async fn maintain(&self, integration: &Integration) -> Result<(), HarnessError> {
        Ok(self
            .provider("maintain")?
            .maintain(integration.clone())
            .await?)
    }

    /// Call a notifier's `notify`: post a message about `group`, or edit
    /// `previous` (a message id an earlier call returned).
    pub async fn notify(
        &self,
        integration: &Integration,
        group: &GroupSummary,
        event: GroupEvent,
        previous: Option<&str>,
    ) -> Result<Delivered, HarnessError> {
        Ok(self
            .notifier("notify")?
            .notify(integration.clone(), group, event, previous)
            .await?)
    }

    /// The route parameters of `method path` when the plugin serves it, by
    /// the host's own router; `None` when the host would answer 404.
    pub fn route(&self, method: &str, path: &str) -> Option<RouteParams> {
        self.registry.route(method, path).map(|(_, params)| params)
    }

    /// Build `request` as the host's router hands it to the plugin: with the
    /// route parameters of the route it matches (percent-decoded). Fails when
    /// the plugin serves no route for it.
    pub fn routed(&self, request: WebhookRequest) -> Result<IncomingRequest, HarnessError> {
        let mut request = request.build();
        let params =
            self.route(&request.method, &request.path)
                .ok_or_else(|| HarnessError::NoRoute {
                    plugin: self.name().to_owned(),
                    method: request.method.clone(),
                    path: request.path.clone(),
                })?;
        request.route_params = params;
        Ok(request)
    }
}
