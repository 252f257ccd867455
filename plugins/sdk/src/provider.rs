//! The provider world: the [`Provider`] trait and the contract's record types.

use std::marker::PhantomData;

use serde_json::Value;

use crate::bindings::exports::trackbridge::plugin::provider::Guest;
use crate::bindings::trackbridge::plugin::types::PluginError;
use crate::error::{Error, Result};
use crate::http::find_header;

pub use crate::bindings::trackbridge::plugin::provider_types::{
    Change, ExternalIssue, InboundEvent, IncomingRequest, IntegrationData, ProviderInfo, Rejection,
    Route, StatusAction, StatusChange, StatusMapping, StatusModel, SyncOutcome, UserRef,
    VerifiedWebhook,
};
pub use crate::bindings::trackbridge::plugin::types::Identity;

/// A tracker integration. Implement this and call
/// [`export_provider!`](crate::export_provider) once in the crate root.
///
/// Every call runs in a fresh instance, so methods are associated functions:
/// anything worth keeping goes through [`crate::cache`].
pub trait Provider {
    /// Describe the provider. Must not make outbound calls.
    fn describe() -> ProviderInfo;

    /// Turn the operator's installation input (already parsed as JSON) into
    /// integration data. Outbound calls may reach only the hosts of the
    /// input's URL fields.
    fn build_integration(input: Value) -> Result<IntegrationData> {
        let _ = input;
        Err(Error::not_implemented("build-integration"))
    }

    /// Authenticate an incoming webhook: find the integration with
    /// [`crate::integration::select`] and check its signature. Must be fast
    /// and must not call the tracker.
    fn verify_webhook(request: &IncomingRequest) -> Result<VerifiedWebhook, Rejection> {
        let _ = request;
        // 404, not 5xx: senders retry 5xx answers, and retrying cannot help.
        Err(Rejection::new(404, "this provider accepts no webhooks"))
    }

    /// Turn a verified request into normalized events; the integration is current.
    fn handle_webhook(request: &IncomingRequest) -> Result<Vec<InboundEvent>> {
        let _ = request;
        Err(Error::not_implemented("handle-webhook"))
    }

    /// Close (`resolve`) or reopen `issue`. With the `workflow` status model,
    /// move it to the status the mappings give; with `open-closed`, `mappings`
    /// is empty. Already being there is success.
    fn sync_status(
        issue: ExternalIssue,
        resolve: bool,
        mappings: Vec<StatusMapping>,
    ) -> Result<SyncOutcome> {
        let _ = (issue, resolve, mappings);
        Err(Error::not_implemented("sync-status"))
    }

    /// Assign `issue` to the tracker user who is `user` (by one of the
    /// identities operators mapped, else by a verified email), or unassign it
    /// when `user` is `None`.
    fn sync_assignee(issue: ExternalIssue, user: Option<UserRef>) -> Result<SyncOutcome> {
        let _ = (issue, user);
        Err(Error::not_implemented("sync-assignee"))
    }

    /// Periodic upkeep of the current integration, every
    /// `maintenance_interval_secs` of [`ProviderInfo`]. Providers that ask for
    /// none keep this default.
    fn maintain() -> Result<()> {
        Ok(())
    }

    /// Remove what `build_integration` created at the tracker for the current
    /// integration. Providers that create nothing keep this default.
    fn uninstall() -> Result<()> {
        Ok(())
    }
}

/// Bridges a [`Provider`] to the generated export trait.
#[doc(hidden)]
pub struct Adapter<P>(PhantomData<P>);

impl<P: Provider> Guest for Adapter<P> {
    fn describe() -> ProviderInfo {
        P::describe()
    }

    fn build_integration(input: String) -> Result<IntegrationData, PluginError> {
        let input: Value = serde_json::from_str(&input).map_err(|e| {
            Error::invalid_input(format!("the installation input is not JSON: {e}"))
        })?;
        Ok(P::build_integration(input)?)
    }

    fn uninstall() -> Result<(), PluginError> {
        Ok(P::uninstall()?)
    }

    fn verify_webhook(request: IncomingRequest) -> Result<VerifiedWebhook, Rejection> {
        P::verify_webhook(&request)
    }

    fn handle_webhook(request: IncomingRequest) -> Result<Vec<InboundEvent>, PluginError> {
        Ok(P::handle_webhook(&request)?)
    }

    fn sync_status(
        issue: ExternalIssue,
        resolve: bool,
        mappings: Vec<StatusMapping>,
    ) -> Result<SyncOutcome, PluginError> {
        Ok(P::sync_status(issue, resolve, mappings)?)
    }

    fn sync_assignee(
        issue: ExternalIssue,
        user: Option<UserRef>,
    ) -> Result<SyncOutcome, PluginError> {
        Ok(P::sync_assignee(issue, user)?)
    }

    fn maintain() -> Result<(), PluginError> {
        Ok(P::maintain()?)
    }
}

impl ProviderInfo {
    /// A provider with no routes, no URL fields and no extra hosts, an
    /// any-object config schema, workflow statuses and no upkeep: fill in the
    /// rest with `..ProviderInfo::new(..)`.
    pub fn new(
        name: impl Into<String>,
        version: impl Into<String>,
        display_name: impl Into<String>,
    ) -> Self {
        ProviderInfo {
            name: name.into(),
            version: version.into(),
            display_name: display_name.into(),
            routes: Vec::new(),
            config_schema: r#"{"type":"object"}"#.into(),
            url_fields: Vec::new(),
            allowed_host_patterns: Vec::new(),
            status_model: StatusModel::Workflow,
            maintenance_interval_secs: None,
        }
    }
}

impl Identity {
    /// A person known by the tracker's id alone.
    pub fn new(id: impl Into<String>) -> Self {
        Identity {
            id: id.into(),
            login: None,
            display_name: None,
            email: None,
            email_verified: false,
            bot: false,
        }
    }

    /// With an email address the tracker vouches for (`verified`) or merely
    /// shows. Only verified addresses are matched to users.
    pub fn with_email(mut self, email: impl Into<String>, verified: bool) -> Self {
        self.email = Some(email.into());
        self.email_verified = verified;
        self
    }

    pub fn with_login(mut self, login: impl Into<String>) -> Self {
        self.login = Some(login.into());
        self
    }

    pub fn with_display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }
}

impl UserRef {
    /// The mapped identity's tracker id, when operators mapped one.
    pub fn identity_id(&self) -> Option<&str> {
        self.identities.first().map(|i| i.id.as_str())
    }
}

impl Route {
    pub fn new(method: &str, path: &str) -> Self {
        Route {
            method: method.to_string(),
            path: path.to_string(),
        }
    }
}

impl IntegrationData {
    /// Integration data with metadata and secrets given as JSON values.
    pub fn new(
        external_id: impl Into<String>,
        name: impl Into<String>,
        metadata: &Value,
        secrets: &Value,
    ) -> Self {
        IntegrationData {
            external_id: external_id.into(),
            name: name.into(),
            metadata: metadata.to_string(),
            secrets: secrets.to_string(),
            extra_hosts: Vec::new(),
        }
    }
}

impl IncomingRequest {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The query string parsed into decoded pairs, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        crate::url::parse_query(&self.query)
    }

    /// The first value of a query parameter.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// The value of a `{name}` route segment.
    pub fn route_param(&self, name: &str) -> Option<&str> {
        self.route_params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON.
    pub fn body_json(&self) -> serde_json::Result<Value> {
        serde_json::from_slice(&self.body)
    }
}

impl Rejection {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Rejection {
            status,
            message: message.into(),
        }
    }
}

impl SyncOutcome {
    /// The tracker was changed.
    pub fn changed() -> Self {
        SyncOutcome {
            changed: true,
            note: None,
        }
    }

    /// Nothing was changed, and why.
    pub fn unchanged(note: impl Into<String>) -> Self {
        SyncOutcome {
            changed: false,
            note: Some(note.into()),
        }
    }
}

impl VerifiedWebhook {
    /// An authentic webhook for `integration` with nothing else known yet.
    pub fn new(integration: impl Into<String>) -> Self {
        VerifiedWebhook {
            integration: integration.into(),
            delivery_id: None,
            event_time: None,
            ignore: false,
        }
    }
}
