//! What can go wrong in the harness: the host's own errors, kept whole.

use trackbridge_host::plugins::contract::types::PluginError;
use trackbridge_host::plugins::{CallFailure, LoadError, PluginCallError};
use trackbridge_host::server::StartError;
use trackbridge_host::store::StoreError;

/// Why a harness operation failed.
///
/// A failed plugin call keeps the host's [`PluginCallError`], so a test can
/// tell the plugin's own error from a trap or a timeout:
///
/// ```no_run
/// # async fn f(harness: trackbridge_plugin_test::Harness, integration: trackbridge_plugin_test::Integration) {
/// use trackbridge_plugin_test::{CallFailure, HarnessError, PluginError, issue};
///
/// match harness.sync_assignee(&integration, &issue("APP-1"), None).await {
///     Err(HarnessError::Call(e)) => match e.failure {
///         CallFailure::Plugin(PluginError::Unauthorized(_)) => {}
///         CallFailure::Timeout => panic!("timed out"),
///         other => panic!("unexpected failure: {other:?}"),
///     },
///     other => panic!("expected a failed call, got {other:?}"),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The host runtime (engine, guest threads) could not be built.
    #[error("building the host runtime: {0}")]
    Runtime(#[from] StartError),
    /// The harness's database (where installed integrations live) failed.
    #[error("the harness database: {0}")]
    Store(#[from] StoreError),
    /// The harness's temporary directory could not be made.
    #[error("the harness's temporary directory: {0}")]
    TempDir(#[source] std::io::Error),
    /// The host's loader refused the module.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A plugin call failed: the plugin's error, a trap, a timeout.
    #[error(transparent)]
    Call(#[from] PluginCallError),
    /// The export called belongs to the other world of the contract.
    #[error("plugin `{plugin}` is a {world}: it has no `{export}` export")]
    WrongWorld {
        plugin: String,
        world: &'static str,
        export: &'static str,
    },
    /// The host's install endpoint would refuse this input (HTTP 400): not an
    /// object, not matching the plugin's config schema, a URL field that is
    /// no URL.
    #[error("the host refuses the installation input: {0}")]
    InvalidInput(String),
    /// The host's install endpoint would refuse what `build-integration`
    /// returned (HTTP 503): an extra host no `allowed-host-patterns` entry
    /// covers, metadata or secrets that are not JSON objects.
    #[error("the host refuses what build-integration returned: {0}")]
    BadIntegrationData(String),
    /// The plugin serves no route for this request (the host answers 404).
    #[error("plugin `{plugin}` serves no route `{method} {path}`")]
    NoRoute {
        plugin: String,
        method: String,
        path: String,
    },
    /// `verify-webhook` verified a delivery for an integration it did not
    /// select (the host answers 503).
    #[error(
        "plugin `{plugin}` verified a webhook for `{claimed}` without selecting that integration"
    )]
    UnselectedIntegration { plugin: String, claimed: String },
    /// Building the component under test failed ([`crate::build_component`]).
    #[error("building the component: {0}")]
    Build(String),
    /// An integration builder was used the wrong way.
    #[error("{0}")]
    Builder(String),
}

impl HarnessError {
    /// How the plugin call failed, when this is a failed call.
    pub fn call_failure(&self) -> Option<&CallFailure> {
        match self {
            HarnessError::Call(e) => Some(&e.failure),
            _ => None,
        }
    }

    /// The plugin's own error (`plugin-error` of the contract), when it
    /// answered with one.
    pub fn plugin_error(&self) -> Option<&PluginError> {
        match self {
            HarnessError::Call(e) => e.plugin_error(),
            _ => None,
        }
    }

    /// Whether the call ran out of its time budget.
    pub fn is_timeout(&self) -> bool {
        matches!(self.call_failure(), Some(CallFailure::Timeout))
    }

    /// Whether the guest trapped (a panic, the memory cap, …).
    pub fn is_trap(&self) -> bool {
        matches!(self.call_failure(), Some(CallFailure::Trap { .. }))
    }
}
