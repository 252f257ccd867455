//! The integration a call acts for, with its metadata parsed. Its secrets
//! are not here: [`crate::secrets`] uses them by handle.

use serde_json::Value;

use crate::bindings::trackbridge::plugin::types::Integration as RawIntegration;
use crate::error::{Error, Result};
use crate::sys;

/// An integration as the host stored it at installation.
#[derive(Clone, Debug, PartialEq)]
pub struct Integration {
    /// The host's id.
    pub id: i64,
    /// The provider's identifier of the installation.
    pub external_id: String,
    pub name: String,
    /// Non-secret metadata; `Value::Null` if the stored text was not JSON.
    pub metadata: Value,
}

impl Integration {
    fn from_raw(raw: RawIntegration) -> Self {
        Integration {
            id: raw.id,
            external_id: raw.external_id,
            name: raw.name,
            metadata: serde_json::from_str(&raw.metadata).unwrap_or(Value::Null),
        }
    }

    /// A metadata string field.
    pub fn metadata_str(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(Value::as_str)
    }
}

/// The current integration: set by the host for outbound syncs and webhook
/// handling, and by [`select`] during `verify-webhook`.
pub fn current() -> Option<Integration> {
    sys::current_integration().map(Integration::from_raw)
}

/// [`current`], or an internal error when the host set none.
pub fn require_current() -> Result<Integration> {
    current().ok_or_else(|| Error::internal("the host set no current integration"))
}

/// During `verify-webhook`: make the integration with this external id
/// current. `None` when this provider has no such integration.
pub fn select(external_id: &str) -> Option<Integration> {
    sys::select_integration(external_id).map(Integration::from_raw)
}

/// Find this provider's integration with `external_id` without making it
/// current (e.g. to reuse what an earlier installation created).
pub fn lookup(external_id: &str) -> Option<Integration> {
    sys::lookup_integration(external_id).map(Integration::from_raw)
}

/// The base URL trackers use to reach the host (no trailing `/`), for webhook
/// URLs registered at installation.
pub fn public_url() -> String {
    sys::public_url()
}
