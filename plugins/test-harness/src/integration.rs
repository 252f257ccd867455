//! Integrations for plugin calls: built by hand ([`IntegrationBuilder`]) or
//! installed the way the host's install endpoint installs them
//! ([`Harness::install`]).

use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::{Map, Value};
use trackbridge_host::plugins::config_schema::{self, InputError};
use trackbridge_host::plugins::contract::provider_types::IntegrationData;
use trackbridge_host::plugins::http_gate::{host_matches_pattern, url_field_hosts};
use trackbridge_host::store::{Integration, NewIntegration};

use crate::error::HarnessError;
use crate::harness::Harness;

/// Ids of integrations that are built but not stored: far from the store's
/// own (which count from 1), so that the per-integration cache of one never
/// serves another.
static NEXT_UNSTORED_ID: AtomicI64 = AtomicI64::new(1_000_000_000);

/// An integration as the host stores it, for the calls that act for one
/// (`handle-webhook`, `sync-status`, `sync-assignee`, `uninstall`, `notify`).
///
/// [`build`](IntegrationBuilder::build) only makes the value;
/// [`install`](IntegrationBuilder::install) stores it too, so that
/// `verify-webhook` can select it (`select-integration`) and
/// `build-integration` can find it (`lookup-integration`).
#[must_use = "an integration builder does nothing until built or installed"]
pub struct IntegrationBuilder<'h> {
    harness: &'h Harness,
    id: Option<i64>,
    external_id: String,
    name: String,
    metadata: Value,
    secrets: Value,
    allowed_hosts: Vec<String>,
}

impl<'h> IntegrationBuilder<'h> {
    fn new(harness: &'h Harness) -> Self {
        IntegrationBuilder {
            harness,
            id: None,
            external_id: "test-installation".into(),
            name: "Test installation".into(),
            metadata: Value::Object(Map::new()),
            secrets: Value::Object(Map::new()),
            allowed_hosts: Vec::new(),
        }
    }

    /// The host's id of the integration (only for [`build`](Self::build):
    /// an installed integration gets the store's id).
    pub fn id(mut self, id: i64) -> Self {
        self.id = Some(id);
        self
    }

    /// The provider's identifier of the installation.
    pub fn external_id(mut self, external_id: impl Into<String>) -> Self {
        self.external_id = external_id.into();
        self
    }

    /// The display name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The non-secret metadata (a JSON object).
    pub fn metadata(mut self, metadata: Value) -> Self {
        self.metadata = metadata;
        self
    }

    /// The secrets (a JSON object).
    pub fn secrets(mut self, secrets: Value) -> Self {
        self.secrets = secrets;
        self
    }

    /// A host (`host:port`) calls acting for this integration may reach,
    /// e.g. [`FakeTracker::authority`](crate::FakeTracker::authority).
    pub fn allowed_host(mut self, host: impl Into<String>) -> Self {
        self.allowed_hosts.push(host.into());
        self
    }

    /// Several allowed hosts at once.
    pub fn allowed_hosts<S: Into<String>>(mut self, hosts: impl IntoIterator<Item = S>) -> Self {
        self.allowed_hosts.extend(hosts.into_iter().map(Into::into));
        self
    }

    /// The integration, not stored: `verify-webhook` will not find it.
    pub fn build(self) -> Integration {
        Integration {
            id: self
                .id
                .unwrap_or_else(|| NEXT_UNSTORED_ID.fetch_add(1, Ordering::Relaxed)),
            provider: self.harness.name().to_owned(),
            external_id: self.external_id,
            name: self.name,
            metadata: self.metadata.to_string(),
            secrets: self.secrets.to_string(),
            allowed_hosts: self.allowed_hosts,
        }
    }

    /// Store the integration for the harness's organization, as an
    /// installation does, and return it with the store's id. Installing the
    /// same external id again replaces its data, as in the host.
    pub async fn install(self) -> Result<Integration, HarnessError> {
        if self.id.is_some() {
            return Err(HarnessError::Builder(
                "an installed integration gets the store's id; `id` is only for `build`".into(),
            ));
        }
        for (what, value) in [("metadata", &self.metadata), ("secrets", &self.secrets)] {
            if !value.is_object() {
                return Err(HarnessError::Builder(format!(
                    "an integration's {what} must be a JSON object"
                )));
            }
        }
        let (metadata, secrets) = (self.metadata.to_string(), self.secrets.to_string());
        let integration = self
            .harness
            .store()
            .install_integration(
                self.harness.organization(),
                NewIntegration {
                    provider: self.harness.name(),
                    external_id: &self.external_id,
                    name: &self.name,
                    metadata: &metadata,
                    secrets: &secrets,
                    allowed_hosts: &self.allowed_hosts,
                },
            )
            .await?;
        tracing::debug!(
            integration = integration.id,
            external_id = %integration.external_id,
            "integration installed in the harness"
        );
        Ok(integration)
    }
}

impl Harness {
    /// Build an integration by hand.
    pub fn integration(&self) -> IntegrationBuilder<'_> {
        IntegrationBuilder::new(self)
    }

    /// An integration builder holding what `build-integration` returned,
    /// allowed to reach `hosts` and the data's `extra-hosts` (refused, as by
    /// the host, when no `allowed-host-patterns` entry covers one).
    pub fn integration_from<S: AsRef<str>>(
        &self,
        data: &IntegrationData,
        hosts: &[S],
    ) -> Result<IntegrationBuilder<'_>, HarnessError> {
        let mut allowed: Vec<String> = hosts.iter().map(|h| h.as_ref().to_owned()).collect();
        allowed.extend(self.checked_extra_hosts(data)?);
        let object = |what: &str, json: &str| match serde_json::from_str::<Value>(json) {
            Ok(value @ Value::Object(_)) => Ok(value),
            _ => Err(HarnessError::BadIntegrationData(format!(
                "plugin {} returned {what} that is not a JSON object",
                self.name()
            ))),
        };
        Ok(self
            .integration()
            .external_id(data.external_id.clone())
            .name(data.name.clone())
            .metadata(object("metadata", &data.metadata)?)
            .secrets(object("secrets", &data.secrets)?)
            .allowed_hosts(allowed))
    }

    /// Install as the host's install endpoint does: check `input` against the
    /// plugin's config schema, derive the hosts the installation may reach
    /// from its URL fields ([`Harness::install_hosts`]), run
    /// `build-integration`, add the extra hosts it asked for when its
    /// `allowed-host-patterns` cover them, and store the integration.
    pub async fn install(&self, input: Value) -> Result<Integration, HarnessError> {
        if !input.is_object() {
            return Err(HarnessError::InvalidInput(
                "`input` must be a JSON object".into(),
            ));
        }
        config_schema::check_input(&self.info().config_schema, &input).map_err(|e| match e {
            InputError::Invalid(_) => HarnessError::InvalidInput(e.to_string()),
            InputError::Schema(_) => {
                HarnessError::BadIntegrationData(format!("plugin {}: {e}", self.name()))
            }
        })?;
        let hosts = self.install_hosts(&input)?;
        let data = self.build_integration(input, &hosts).await?;
        self.integration_from(&data, &hosts)?.install().await
    }

    /// The hosts (`host:port`) an installation with `input` may reach, as the
    /// host's install endpoint derives them: those of the URLs in the
    /// plugin's `url-fields` that `input` has.
    pub fn install_hosts(&self, input: &Value) -> Result<Vec<String>, HarnessError> {
        url_field_hosts(&self.info().url_fields, input).map_err(HarnessError::InvalidInput)
    }

    fn checked_extra_hosts(&self, data: &IntegrationData) -> Result<Vec<String>, HarnessError> {
        let patterns = &self.info().allowed_host_patterns;
        data.extra_hosts
            .iter()
            .map(|extra| {
                if patterns.iter().any(|p| host_matches_pattern(extra, p)) {
                    Ok(extra.to_ascii_lowercase())
                } else {
                    Err(HarnessError::BadIntegrationData(format!(
                        "plugin {} asked for host `{extra}`, which its allowed-host-patterns {patterns:?} do not cover",
                        self.name()
                    )))
                }
            })
            .collect()
    }
}
