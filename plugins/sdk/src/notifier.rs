//! The notifier world: the [`Notifier`] trait and the contract's record types.
//!
//! A notifier posts one message per group and channel and edits it on every
//! later change of the group. The host stores the message id a call returns
//! and passes it back as `previous_message` on the next event of that group.
//!
//! ```
//! use trackbridge_plugin_sdk::notifier::*;
//! use trackbridge_plugin_sdk::{Notifier, Result};
//!
//! struct Example;
//!
//! impl Notifier for Example {
//!     fn describe() -> ProviderInfo {
//!         ProviderInfo::new("example-chat", env!("CARGO_PKG_VERSION"), "Example chat")
//!     }
//!
//!     fn notify(group: GroupSummary, event: GroupEvent, previous: Option<String>) -> Result<Delivered> {
//!         let text = format!("{} {}", group.title, event.describe());
//!         // ... post `text`, or edit `previous` ...
//!         Ok(Delivered::new(previous.unwrap_or_else(|| "1".into())))
//!     }
//! }
//!
//! trackbridge_plugin_sdk::export_notifier!(Example);
//! ```

use std::fmt;
use std::marker::PhantomData;

use serde_json::Value;

use crate::bindings::notifier_world::exports::trackbridge::plugin::notifier::Guest;
use crate::bindings::trackbridge::plugin::types::PluginError;
use crate::error::{Error, Result};

pub use crate::bindings::notifier_world::trackbridge::plugin::notifier_types::{
    Delivered, GroupEvent, GroupSummary,
};
pub use crate::bindings::trackbridge::plugin::provider_types::{IntegrationData, ProviderInfo};

/// A chat notifier. Implement this and call
/// [`export_notifier!`](crate::export_notifier) once in the crate root.
///
/// Every call runs in a fresh instance, so methods are associated functions.
pub trait Notifier {
    /// Describe the notifier (routes are usually empty). Must not make
    /// outbound calls.
    fn describe() -> ProviderInfo;

    /// Validate the operator's installation input (already parsed as JSON)
    /// and turn it into integration data. Outbound calls may reach only the
    /// hosts of the input's URL fields.
    fn build_integration(input: Value) -> Result<IntegrationData> {
        let _ = input;
        Err(Error::not_implemented("build-integration"))
    }

    /// Post a message about `group`, or edit `previous_message` when the host
    /// already stored one for this group and channel. Returns the id of the
    /// message posted or edited.
    ///
    /// Errors decide what the host does next: [`Error::Unauthorized`] or an
    /// upstream 401/403/404 marks the installation broken (nothing more is
    /// sent until it is installed again); an upstream 429 is retried after
    /// `retry_after_secs`; 5xx and unreachable are retried with backoff.
    fn notify(
        group: GroupSummary,
        event: GroupEvent,
        previous_message: Option<String>,
    ) -> Result<Delivered>;
}

/// Bridges a [`Notifier`] to the generated export trait.
#[doc(hidden)]
pub struct NotifierAdapter<N>(PhantomData<N>);

impl<N: Notifier> Guest for NotifierAdapter<N> {
    fn describe() -> ProviderInfo {
        N::describe()
    }

    fn build_integration(input: String) -> Result<IntegrationData, PluginError> {
        let input: Value = serde_json::from_str(&input).map_err(|e| {
            Error::invalid_input(format!("the installation input is not JSON: {e}"))
        })?;
        Ok(N::build_integration(input)?)
    }

    fn notify(
        group: GroupSummary,
        event: GroupEvent,
        previous_message: Option<String>,
    ) -> Result<Delivered, PluginError> {
        Ok(N::notify(group, event, previous_message)?)
    }
}

impl Delivered {
    pub fn new(message_id: impl Into<String>) -> Self {
        Delivered {
            message_id: message_id.into(),
        }
    }
}

impl GroupEvent {
    /// The event as a past participle: `assigned`, `unassigned`, `resolved`, `unresolved`.
    pub fn describe(self) -> &'static str {
        match self {
            GroupEvent::Assigned => "assigned",
            GroupEvent::Unassigned => "unassigned",
            GroupEvent::Resolved => "resolved",
            GroupEvent::Unresolved => "unresolved",
        }
    }
}

impl fmt::Display for GroupEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;

    impl Notifier for Echo {
        fn describe() -> ProviderInfo {
            ProviderInfo::new("echo", "0.0.0", "Echo")
        }

        fn notify(
            group: GroupSummary,
            event: GroupEvent,
            previous: Option<String>,
        ) -> Result<Delivered> {
            if group.title.is_empty() {
                return Err(Error::unauthorized("no title"));
            }
            Ok(Delivered::new(format!(
                "{}:{event}:{}",
                group.id,
                previous.unwrap_or_default()
            )))
        }
    }

    crate::export_notifier!(Echo);

    fn group(title: &str) -> GroupSummary {
        GroupSummary {
            id: 7,
            title: title.into(),
            status: "unresolved".into(),
            project: "web".into(),
            assignee: None,
            links: vec![],
        }
    }

    #[test]
    fn adapter_bridges_calls_and_errors() {
        type A = NotifierAdapter<Echo>;
        assert_eq!(<A as Guest>::describe().name, "echo");
        let d = <A as Guest>::notify(group("x"), GroupEvent::Resolved, Some("9".into())).unwrap();
        assert_eq!(d.message_id, "7:resolved:9");
        assert!(matches!(
            <A as Guest>::notify(group(""), GroupEvent::Assigned, None),
            Err(PluginError::Unauthorized(_))
        ));
        assert!(matches!(
            <A as Guest>::build_integration("not json".into()),
            Err(PluginError::InvalidInput(_))
        ));
        assert!(matches!(
            <A as Guest>::build_integration("{}".into()),
            Err(PluginError::Internal(_))
        ));
    }
}
