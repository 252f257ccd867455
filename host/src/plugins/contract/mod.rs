//! The plugin contract, one module per version (the layout of Zed's
//! extension host): [`latest`] is 0.2.0 and its types are the ones the host
//! works in; [`since_v0_1_0`] holds the frozen 0.1.0 bindings and adapts them
//! to the newest. A component is served through the bindings of the version
//! it was built against; the dispatch below is the only place that knows
//! there is more than one.

pub mod latest;
pub mod since_v0_1_0;

pub use latest::{notifier, provider_exports, provider_types, secrets, types};

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{AsContextMut, Store};

use super::call::CallState;
use provider_types::{
    ExternalIssue, InboundEvent, IncomingRequest, IntegrationData, ProviderInfo, Rejection,
    StatusMapping, SyncOutcome, UserRef, VerifiedWebhook,
};
use types::PluginError;

/// The contract versions this host implements, oldest first.
pub const CONTRACT_VERSIONS: &[&str] = &["0.1.0", "0.2.0"];

/// One version of the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V0_1_0,
    V0_2_0,
}

impl Version {
    pub fn parse(version: &str) -> Option<Version> {
        match version {
            "0.1.0" => Some(Version::V0_1_0),
            "0.2.0" => Some(Version::V0_2_0),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Version::V0_1_0 => "0.1.0",
            Version::V0_2_0 => "0.2.0",
        }
    }
}

/// The two worlds of the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum World {
    Provider,
    Notifier,
}

impl World {
    pub fn name(self) -> &'static str {
        match self {
            World::Provider => "provider-plugin",
            World::Notifier => "notifier-plugin",
        }
    }

    /// The interface the world exports.
    pub fn export(self) -> &'static str {
        match self {
            World::Provider => "trackbridge:plugin/provider",
            World::Notifier => "trackbridge:plugin/notifier",
        }
    }

    /// The functions of that interface in `version` of the contract.
    pub fn functions(self, version: Version) -> &'static [&'static str] {
        const PROVIDER: &[&str] = &[
            "describe",
            "build-integration",
            "uninstall",
            "verify-webhook",
            "handle-webhook",
            "sync-status",
            "sync-assignee",
            "maintain",
        ];
        match (self, version) {
            // 0.2.0 added `maintain`.
            (World::Provider, Version::V0_1_0) => &PROVIDER[..7],
            (World::Provider, Version::V0_2_0) => PROVIDER,
            (World::Notifier, _) => &["describe", "build-integration", "notify"],
        }
    }
}

/// A linker for `world` at `version`: WASI, wasi:http, and the host's side
/// of that version's interfaces.
pub fn linker(
    engine: &wasmtime::Engine,
    world: World,
    version: Version,
) -> wasmtime::Result<Linker<CallState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    let l = &mut linker;
    match (world, version) {
        (World::Provider, Version::V0_2_0) => {
            latest::ProviderPlugin::add_to_linker::<_, HasSelf<_>>(l, |s| s)?
        }
        (World::Notifier, Version::V0_2_0) => {
            latest::notifier::NotifierPlugin::add_to_linker::<_, HasSelf<_>>(l, |s| s)?
        }
        (World::Provider, Version::V0_1_0) => {
            since_v0_1_0::ProviderPlugin::add_to_linker::<_, HasSelf<_>>(l, |s| s)?
        }
        (World::Notifier, Version::V0_1_0) => {
            since_v0_1_0::notifier::NotifierPlugin::add_to_linker::<_, HasSelf<_>>(l, |s| s)?
        }
    }
    Ok(linker)
}

/// A provider component, linked and pre-instantiated, of either version.
#[derive(Clone)]
pub enum ProviderPre {
    V0_1_0(since_v0_1_0::ProviderPluginPre<CallState>),
    V0_2_0(latest::ProviderPluginPre<CallState>),
}

impl ProviderPre {
    pub fn new(
        engine: &wasmtime::Engine,
        component: &Component,
        version: Version,
    ) -> wasmtime::Result<ProviderPre> {
        let pre = linker(engine, World::Provider, version)?.instantiate_pre(component)?;
        Ok(match version {
            Version::V0_1_0 => ProviderPre::V0_1_0(since_v0_1_0::ProviderPluginPre::new(pre)?),
            Version::V0_2_0 => ProviderPre::V0_2_0(latest::ProviderPluginPre::new(pre)?),
        })
    }

    pub async fn instantiate_async(
        &self,
        store: impl AsContextMut<Data = CallState>,
    ) -> wasmtime::Result<ProviderInstance> {
        Ok(match self {
            ProviderPre::V0_1_0(pre) => {
                ProviderInstance::V0_1_0(pre.instantiate_async(store).await?)
            }
            ProviderPre::V0_2_0(pre) => {
                ProviderInstance::V0_2_0(pre.instantiate_async(store).await?)
            }
        })
    }
}

/// A provider instance; its calls take and give the newest version's types.
pub enum ProviderInstance {
    V0_1_0(since_v0_1_0::ProviderPlugin),
    V0_2_0(latest::ProviderPlugin),
}

type S<'a> = &'a mut Store<CallState>;
type Answer<T> = wasmtime::Result<Result<T, PluginError>>;

impl ProviderInstance {
    pub async fn describe(&self, s: S<'_>) -> wasmtime::Result<ProviderInfo> {
        match self {
            Self::V0_2_0(b) => b.trackbridge_plugin_provider().call_describe(s).await,
            Self::V0_1_0(b) => Ok(since_v0_1_0::provider_info(
                b.trackbridge_plugin_provider().call_describe(s).await?,
            )),
        }
    }

    pub async fn build_integration(&self, s: S<'_>, input: &str) -> Answer<IntegrationData> {
        match self {
            Self::V0_2_0(b) => {
                b.trackbridge_plugin_provider()
                    .call_build_integration(s, input)
                    .await
            }
            Self::V0_1_0(b) => Ok(since_v0_1_0::result(
                b.trackbridge_plugin_provider()
                    .call_build_integration(s, input)
                    .await?,
                since_v0_1_0::integration_data,
            )),
        }
    }

    pub async fn uninstall(&self, s: S<'_>) -> Answer<()> {
        match self {
            Self::V0_2_0(b) => b.trackbridge_plugin_provider().call_uninstall(s).await,
            Self::V0_1_0(b) => Ok(since_v0_1_0::result(
                b.trackbridge_plugin_provider().call_uninstall(s).await?,
                |()| (),
            )),
        }
    }

    pub async fn verify_webhook(
        &self,
        s: S<'_>,
        request: &IncomingRequest,
    ) -> wasmtime::Result<Result<VerifiedWebhook, Rejection>> {
        match self {
            Self::V0_2_0(b) => {
                b.trackbridge_plugin_provider()
                    .call_verify_webhook(s, request)
                    .await
            }
            Self::V0_1_0(b) => {
                let request = since_v0_1_0::incoming_request(request);
                Ok(since_v0_1_0::verified(
                    b.trackbridge_plugin_provider()
                        .call_verify_webhook(s, &request)
                        .await?,
                ))
            }
        }
    }

    pub async fn handle_webhook(
        &self,
        s: S<'_>,
        request: &IncomingRequest,
    ) -> Answer<Vec<InboundEvent>> {
        match self {
            Self::V0_2_0(b) => {
                b.trackbridge_plugin_provider()
                    .call_handle_webhook(s, request)
                    .await
            }
            Self::V0_1_0(b) => {
                let request = since_v0_1_0::incoming_request(request);
                Ok(since_v0_1_0::result(
                    b.trackbridge_plugin_provider()
                        .call_handle_webhook(s, &request)
                        .await?,
                    |events| {
                        events
                            .into_iter()
                            .map(since_v0_1_0::inbound_event)
                            .collect()
                    },
                ))
            }
        }
    }

    pub async fn sync_status(
        &self,
        s: S<'_>,
        issue: &ExternalIssue,
        resolve: bool,
        mappings: &[StatusMapping],
    ) -> Answer<SyncOutcome> {
        match self {
            Self::V0_2_0(b) => {
                b.trackbridge_plugin_provider()
                    .call_sync_status(s, issue, resolve, mappings)
                    .await
            }
            Self::V0_1_0(b) => {
                let issue = since_v0_1_0::external_issue(issue);
                let mappings = since_v0_1_0::status_mappings(mappings);
                Ok(since_v0_1_0::result(
                    b.trackbridge_plugin_provider()
                        .call_sync_status(s, &issue, resolve, &mappings)
                        .await?,
                    since_v0_1_0::sync_outcome,
                ))
            }
        }
    }

    pub async fn sync_assignee(
        &self,
        s: S<'_>,
        issue: &ExternalIssue,
        user: Option<&UserRef>,
    ) -> Answer<SyncOutcome> {
        match self {
            Self::V0_2_0(b) => {
                b.trackbridge_plugin_provider()
                    .call_sync_assignee(s, issue, user)
                    .await
            }
            Self::V0_1_0(b) => {
                let issue = since_v0_1_0::external_issue(issue);
                let emails = since_v0_1_0::emails(user);
                Ok(since_v0_1_0::result(
                    b.trackbridge_plugin_provider()
                        .call_sync_assignee(s, &issue, emails.as_deref())
                        .await?,
                    since_v0_1_0::sync_outcome,
                ))
            }
        }
    }
}

impl ProviderInstance {
    /// 0.1.0 has no upkeep; its providers declare no interval, so this is
    /// never called on them.
    pub async fn maintain(&self, s: S<'_>) -> Answer<()> {
        match self {
            Self::V0_2_0(b) => b.trackbridge_plugin_provider().call_maintain(s).await,
            Self::V0_1_0(_) => Ok(Ok(())),
        }
    }
}

/// A notifier component, linked and pre-instantiated, of either version.
#[derive(Clone)]
pub enum NotifierPre {
    V0_1_0(since_v0_1_0::notifier::NotifierPluginPre<CallState>),
    V0_2_0(latest::notifier::NotifierPluginPre<CallState>),
}

impl NotifierPre {
    pub fn new(
        engine: &wasmtime::Engine,
        component: &Component,
        version: Version,
    ) -> wasmtime::Result<NotifierPre> {
        let pre = linker(engine, World::Notifier, version)?.instantiate_pre(component)?;
        Ok(match version {
            Version::V0_1_0 => {
                NotifierPre::V0_1_0(since_v0_1_0::notifier::NotifierPluginPre::new(pre)?)
            }
            Version::V0_2_0 => NotifierPre::V0_2_0(latest::notifier::NotifierPluginPre::new(pre)?),
        })
    }

    pub async fn instantiate_async(
        &self,
        store: impl AsContextMut<Data = CallState>,
    ) -> wasmtime::Result<NotifierInstance> {
        Ok(match self {
            NotifierPre::V0_1_0(pre) => {
                NotifierInstance::V0_1_0(pre.instantiate_async(store).await?)
            }
            NotifierPre::V0_2_0(pre) => {
                NotifierInstance::V0_2_0(pre.instantiate_async(store).await?)
            }
        })
    }
}

/// A notifier instance; its calls take and give the newest version's types.
pub enum NotifierInstance {
    V0_1_0(since_v0_1_0::notifier::NotifierPlugin),
    V0_2_0(latest::notifier::NotifierPlugin),
}

use notifier::notifier_types::{Delivered, GroupEvent, GroupSummary};

impl NotifierInstance {
    pub async fn describe(&self, s: S<'_>) -> wasmtime::Result<ProviderInfo> {
        match self {
            Self::V0_2_0(b) => b.trackbridge_plugin_notifier().call_describe(s).await,
            Self::V0_1_0(b) => Ok(since_v0_1_0::provider_info(
                b.trackbridge_plugin_notifier().call_describe(s).await?,
            )),
        }
    }

    pub async fn build_integration(&self, s: S<'_>, input: &str) -> Answer<IntegrationData> {
        match self {
            Self::V0_2_0(b) => {
                b.trackbridge_plugin_notifier()
                    .call_build_integration(s, input)
                    .await
            }
            Self::V0_1_0(b) => Ok(since_v0_1_0::result(
                b.trackbridge_plugin_notifier()
                    .call_build_integration(s, input)
                    .await?,
                since_v0_1_0::integration_data,
            )),
        }
    }

    pub async fn notify(
        &self,
        s: S<'_>,
        group: &GroupSummary,
        event: GroupEvent,
        previous: Option<&str>,
    ) -> Answer<Delivered> {
        match self {
            Self::V0_2_0(b) => {
                b.trackbridge_plugin_notifier()
                    .call_notify(s, group, event, previous)
                    .await
            }
            Self::V0_1_0(b) => {
                let group = since_v0_1_0::group_summary(group);
                let event = since_v0_1_0::group_event(event);
                Ok(since_v0_1_0::result(
                    b.trackbridge_plugin_notifier()
                        .call_notify(s, &group, event, previous)
                        .await?,
                    since_v0_1_0::delivered,
                ))
            }
        }
    }
}
