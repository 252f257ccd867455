//! Contract 0.1.0, frozen: its own generated bindings, and the adaptation of
//! its types to the newest version's, so the rest of the host knows only one
//! contract. What 0.1.0 lacks gets the value that keeps its components
//! behaving exactly as they always did:
//! - a person is an email address: it becomes an identity whose id is that
//!   address and whose email counts as verified (0.1.0 providers took it from
//!   the tracker's account, and the host matched it against verified emails);
//! - a component receives its integration's secrets, as it always did;
//! - the status model is a workflow (mappings, as before).

use super::latest::{notifier as latest_notifier, provider_types as new, types as new_types};
use crate::plugins::call::CallState;
use crate::store::Integration;

wasmtime::component::bindgen!({
    path: "wit/v0.1.0",
    world: "provider-plugin",
    imports: {
        "trackbridge:plugin/host.select-integration": async | trappable,
        "trackbridge:plugin/host.lookup-integration": async | trappable,
        default: async,
    },
    exports: { default: async },
});

use super::latest::trackbridge::plugin::host::Host as New;
use trackbridge::plugin::host::{Host, Level};
pub use trackbridge::plugin::provider_types as old;
use trackbridge::plugin::types as old_types;

pub mod notifier {
    wasmtime::component::bindgen!({
        path: "wit/v0.1.0",
        world: "notifier-plugin",
        imports: { default: async },
        exports: { default: async },
        with: {
            "trackbridge:plugin/types": super::trackbridge::plugin::types,
            "trackbridge:plugin/host": super::trackbridge::plugin::host,
            "trackbridge:plugin/provider-types": super::trackbridge::plugin::provider_types,
        },
    });

    pub use self::trackbridge::plugin::notifier_types;
}

use notifier::notifier_types as old_notifier;

/// The integration as 0.1.0 shows it: with its secrets.
fn integration(i: &Integration) -> old_types::Integration {
    old_types::Integration {
        id: i.id,
        external_id: i.external_id.clone(),
        name: i.name.clone(),
        metadata: i.metadata.clone(),
        secrets: i.secrets.clone(),
    }
}

impl old_types::Host for CallState {}
impl old::Host for CallState {}
impl old_notifier::Host for CallState {}

impl Host for CallState {
    async fn log(&mut self, level: Level, message: String) {
        use super::latest::trackbridge::plugin::host::Level as L;
        let level = match level {
            Level::Trace => L::Trace,
            Level::Debug => L::Debug,
            Level::Info => L::Info,
            Level::Warn => L::Warn,
            Level::Error => L::Error,
        };
        New::log(self, level, message).await
    }

    async fn now_ms(&mut self) -> u64 {
        New::now_ms(self).await
    }

    async fn current_integration(&mut self) -> Option<old_types::Integration> {
        self.integration().map(integration)
    }

    async fn select_integration(
        &mut self,
        external_id: String,
    ) -> wasmtime::Result<Option<old_types::Integration>> {
        self.select_shown(&external_id, integration).await
    }

    async fn lookup_integration(
        &mut self,
        external_id: String,
    ) -> wasmtime::Result<Option<old_types::Integration>> {
        self.lookup_shown(&external_id, integration).await
    }

    async fn public_url(&mut self) -> String {
        New::public_url(self).await
    }

    async fn cache_get(&mut self, key: String) -> Option<Vec<u8>> {
        self.cache_get_value(&key)
    }

    async fn cache_set(&mut self, key: String, value: Vec<u8>, ttl_secs: u32) {
        self.cache_set_value(&key, value, ttl_secs)
    }
}

// Conversions, old to new for what a component answers and new to old for
// what the host passes in.

pub fn plugin_error(e: old_types::PluginError) -> new_types::PluginError {
    use new_types::PluginError as N;
    use old_types::PluginError as O;
    match e {
        O::InvalidInput(m) => N::InvalidInput(m),
        O::Unauthorized(m) => N::Unauthorized(m),
        O::Upstream(u) => N::Upstream(new_types::UpstreamError {
            status: u.status,
            message: u.message,
            retry_after_secs: u.retry_after_secs,
        }),
        O::Rejected(m) => N::Rejected(m),
        O::Internal(m) => N::Internal(m),
    }
}

pub fn result<T, U>(
    r: Result<T, old_types::PluginError>,
    f: impl FnOnce(T) -> U,
) -> Result<U, new_types::PluginError> {
    r.map(f).map_err(plugin_error)
}

pub fn provider_info(i: old::ProviderInfo) -> new::ProviderInfo {
    new::ProviderInfo {
        name: i.name,
        version: i.version,
        display_name: i.display_name,
        routes: i
            .routes
            .into_iter()
            .map(|r| new::Route {
                method: r.method,
                path: r.path,
            })
            .collect(),
        config_schema: i.config_schema,
        url_fields: i.url_fields,
        allowed_host_patterns: i.allowed_host_patterns,
        status_model: new::StatusModel::Workflow,
        maintenance_interval_secs: None,
    }
}

pub fn integration_data(d: old::IntegrationData) -> new::IntegrationData {
    new::IntegrationData {
        external_id: d.external_id,
        name: d.name,
        metadata: d.metadata,
        secrets: d.secrets,
        extra_hosts: d.extra_hosts,
    }
}

pub fn incoming_request(r: &new::IncomingRequest) -> old::IncomingRequest {
    old::IncomingRequest {
        method: r.method.clone(),
        path: r.path.clone(),
        query: r.query.clone(),
        headers: r.headers.clone(),
        route_params: r.route_params.clone(),
        body: r.body.clone(),
    }
}

pub fn verified(
    r: Result<old::VerifiedWebhook, old::Rejection>,
) -> Result<new::VerifiedWebhook, new::Rejection> {
    match r {
        Ok(v) => Ok(new::VerifiedWebhook {
            integration: v.integration,
            delivery_id: v.delivery_id,
            event_time: v.event_time,
            ignore: v.ignore,
        }),
        Err(r) => Err(new::Rejection {
            status: r.status,
            message: r.message,
        }),
    }
}

/// A 0.1.0 assignee is an email address the provider took from the tracker.
fn person(email: String) -> new_types::Identity {
    new_types::Identity {
        id: email.clone(),
        login: None,
        display_name: None,
        email: Some(email),
        email_verified: true,
        bot: false,
    }
}

pub fn inbound_event(e: old::InboundEvent) -> new::InboundEvent {
    let change = match e.change {
        old::Change::Assignee(email) => new::Change::Assignee(email.map(person)),
        old::Change::Status(s) => new::Change::Status(new::StatusChange {
            from: s.from,
            to: s.to,
            action: match s.action {
                old::StatusAction::Resolve => new::StatusAction::Resolve,
                old::StatusAction::Unresolve => new::StatusAction::Unresolve,
                old::StatusAction::None => new::StatusAction::None,
            },
        }),
    };
    new::InboundEvent {
        external_issue: e.external_issue,
        change,
        event_time: e.event_time,
        delivery_id: e.delivery_id,
    }
}

pub fn external_issue(i: &new::ExternalIssue) -> old::ExternalIssue {
    old::ExternalIssue {
        key: i.key.clone(),
        metadata: i.metadata.clone(),
    }
}

pub fn status_mappings(m: &[new::StatusMapping]) -> Vec<old::StatusMapping> {
    m.iter()
        .map(|m| old::StatusMapping {
            external_project: m.external_project.clone(),
            on_resolve: m.on_resolve.clone(),
            on_unresolve: m.on_unresolve.clone(),
        })
        .collect()
}

/// 0.1.0 assigns by verified email only.
pub fn emails(user: Option<&new::UserRef>) -> Option<Vec<String>> {
    user.map(|u| u.emails.clone())
}

pub fn sync_outcome(o: old::SyncOutcome) -> new::SyncOutcome {
    new::SyncOutcome {
        changed: o.changed,
        note: o.note,
    }
}

pub fn group_summary(
    g: &latest_notifier::notifier_types::GroupSummary,
) -> old_notifier::GroupSummary {
    old_notifier::GroupSummary {
        id: g.id,
        title: g.title.clone(),
        status: g.status.clone(),
        project: g.project.clone(),
        assignee: g.assignee.clone(),
        links: g.links.clone(),
    }
}

pub fn group_event(e: latest_notifier::notifier_types::GroupEvent) -> old_notifier::GroupEvent {
    use latest_notifier::notifier_types::GroupEvent as N;
    use old_notifier::GroupEvent as O;
    match e {
        N::Assigned => O::Assigned,
        N::Unassigned => O::Unassigned,
        N::Resolved => O::Resolved,
        N::Unresolved => O::Unresolved,
    }
}

pub fn delivered(d: old_notifier::Delivered) -> latest_notifier::notifier_types::Delivered {
    latest_notifier::notifier_types::Delivered {
        message_id: d.message_id,
    }
}
