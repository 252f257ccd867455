//! The checks every plugin must pass, run on a built `.wasm` in the host's own
//! runtime (same engine, limits and outbound gate as in production):
//! `trackbridge plugin check --conformance FILE`.
//!
//! Each check feeds the plugin what a careless sender or operator would, and
//! asks only what any correct plugin does with it: refuse cleanly, never
//! trap, never call out before it knows which integration it acts for.

use std::sync::Arc;

use serde::Serialize;

use super::contract::provider_types::{IncomingRequest, ProviderInfo, Rejection, VerifiedWebhook};
use super::contract::types::PluginError;
use super::error::{CallFailure, PluginCallError, describe_plugin_error};
use super::loader::load;
use super::registry::Plugin;
use super::runtime::Runtime;
use crate::metrics::PluginLabels;
use crate::store::Integration;

/// One row of the table.
#[derive(Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    /// Why it failed, or what was seen when it passed.
    pub detail: String,
}

/// The checks of one plugin file, in order. A file that does not load fails
/// the first check and the rest are not run.
pub async fn run(runtime: &Arc<Runtime>, bytes: &[u8], origin: &str) -> Vec<Check> {
    let plugin = match load(runtime, bytes, origin).await {
        Ok(plugin) => plugin,
        Err(e) => {
            return vec![Check {
                name: "loads, implements a contract world, describe is valid",
                passed: false,
                detail: e.to_string(),
            }];
        }
    };
    let mut checks = Checks {
        runtime: runtime.clone(),
        plugin: plugin.info().name.clone(),
        rows: Vec::new(),
        over_limits: Vec::new(),
    };
    checks.describe_is_valid(plugin.info());
    checks.describe_calls_nowhere(&plugin).await;
    if let Plugin::Provider(provider) = &plugin {
        for (case, request) in suspicious_requests(plugin.info()) {
            let before = checks.refused();
            let result = provider.verify_webhook(&request).await;
            let calls = checks.refused() - before;
            checks.verify_rejects(case, result.map(|r| r.value), calls);
        }
        let garbage = garbage_request(plugin.info());
        let result = provider
            .handle_webhook(placeholder_integration(plugin.info()), &garbage)
            .await;
        checks.handle_survives(result.map(drop));
    }
    let result = plugin.build_integration("{}".into(), Vec::new()).await;
    checks.build_refuses_empty_input(plugin.info(), result.map(drop));
    checks.within_limits();
    checks.rows
}

struct Checks {
    runtime: Arc<Runtime>,
    plugin: String,
    rows: Vec<Check>,
    /// Calls stopped by the time or memory limit, by export.
    over_limits: Vec<String>,
}

impl Checks {
    fn push(&mut self, name: &'static str, outcome: Result<String, String>) {
        let (passed, detail) = match outcome {
            Ok(detail) => (true, detail),
            Err(detail) => (false, detail),
        };
        self.rows.push(Check {
            name,
            passed,
            detail,
        });
    }

    /// Outbound requests of this plugin the gate refused so far. Every call
    /// here acts for no integration, so any request at all is refused.
    fn refused(&self) -> u64 {
        self.runtime
            .services
            .metrics
            .plugin_outbound_refused
            .get_or_create(&PluginLabels {
                plugin: self.plugin.clone(),
            })
            .get()
    }

    /// Notes a call stopped by a limit; its own check fails on it too.
    fn note_limits(&mut self, e: &PluginCallError) {
        let hit = match &e.failure {
            CallFailure::Timeout => Some("ran out of time"),
            CallFailure::Trap { cause, .. } if cause.contains("memory") => {
                Some("hit the memory cap")
            }
            _ => None,
        };
        if let Some(hit) = hit {
            self.over_limits.push(format!("`{}` {hit}", e.export));
        }
    }

    fn describe_is_valid(&mut self, info: &ProviderInfo) {
        // Loading already applied the host's checks (name, version, routes,
        // schema, host patterns); what remains is that every URL field the
        // host reads from the input is one the schema declares.
        let fields = schema_fields(info);
        let undeclared: Vec<&str> = info
            .url_fields
            .iter()
            .filter(|field| !fields.contains(field))
            .map(String::as_str)
            .collect();
        let outcome = if undeclared.is_empty() {
            Ok(format!(
                "{} {}: name, version, {} route(s), config-schema, {} url-field(s)",
                info.name,
                info.version,
                info.routes.len(),
                info.url_fields.len()
            ))
        } else {
            Err(format!(
                "url-fields {undeclared:?} are not properties of config-schema"
            ))
        };
        self.push("describe is valid", outcome);
    }

    async fn describe_calls_nowhere(&mut self, plugin: &Plugin) {
        let before = self.refused();
        let result = match plugin {
            Plugin::Provider(p) => p.describe().await.map(drop),
            Plugin::Notifier(n) => n.describe().await.map(drop),
        };
        let calls = self.refused() - before;
        let outcome = match result {
            Err(e) => {
                self.note_limits(&e);
                Err(e.to_string())
            }
            Ok(()) if calls > 0 => Err(format!("it tried {calls} outbound request(s)")),
            Ok(()) => Ok("no outbound request".into()),
        };
        self.push("describe makes no outbound call", outcome);
    }

    fn verify_rejects(
        &mut self,
        case: &'static str,
        result: Result<Result<VerifiedWebhook, Rejection>, PluginCallError>,
        calls: u64,
    ) {
        let outcome = match result {
            Err(e) => {
                self.note_limits(&e);
                Err(e.to_string())
            }
            Ok(Ok(verified)) => Err(format!(
                "accepted it (integration `{}`, ignore: {})",
                verified.integration, verified.ignore
            )),
            Ok(Err(rejection)) if !(400..500).contains(&rejection.status) => Err(format!(
                "rejected it with {}, not a 4xx: {}",
                rejection.status, rejection.message
            )),
            Ok(Err(_)) if calls > 0 => Err(format!(
                "rejected it, but tried {calls} outbound request(s) first"
            )),
            Ok(Err(rejection)) => Ok(format!("{} {}", rejection.status, rejection.message)),
        };
        self.push(case, outcome);
    }

    fn handle_survives(&mut self, result: Result<(), PluginCallError>) {
        let outcome = match result {
            Ok(()) => Ok("answered with events".into()),
            Err(e) => match &e.failure {
                CallFailure::Plugin(error) => Ok(describe_plugin_error(error)),
                _ => {
                    self.note_limits(&e);
                    Err(e.to_string())
                }
            },
        };
        self.push("handle-webhook on garbage does not trap", outcome);
    }

    fn build_refuses_empty_input(
        &mut self,
        info: &ProviderInfo,
        result: Result<(), PluginCallError>,
    ) {
        let fields = schema_fields(info);
        let outcome = match result {
            Ok(()) => Err("it accepted `{}`".into()),
            Err(e) => match &e.failure {
                CallFailure::Plugin(PluginError::InvalidInput(message)) => {
                    match fields.iter().find(|f| message.contains(f.as_str())) {
                        Some(_) => Ok(format!("invalid input: {message}")),
                        None if fields.is_empty() => Err(format!(
                            "invalid input, but config-schema declares no properties to name: {message}"
                        )),
                        None => Err(format!(
                            "invalid input naming none of the schema's fields {fields:?}: {message}"
                        )),
                    }
                }
                CallFailure::Plugin(other) => Err(format!(
                    "answered {}, not invalid-input",
                    describe_plugin_error(other)
                )),
                _ => {
                    self.note_limits(&e);
                    Err(e.to_string())
                }
            },
        };
        self.push(
            "build-integration on {} answers invalid-input naming a field",
            outcome,
        );
    }

    fn within_limits(&mut self) {
        let outcome = if self.over_limits.is_empty() {
            let limits = &self.runtime.limits;
            Ok(format!(
                "every call within {} ms and {} MiB",
                limits.timeout.as_millis(),
                limits.memory_bytes >> 20
            ))
        } else {
            Err(self.over_limits.join(", "))
        };
        self.push(
            "every call stays within the time and memory limits",
            outcome,
        );
    }
}

/// The property names the plugin's config-schema declares.
fn schema_fields(info: &ProviderInfo) -> Vec<String> {
    serde_json::from_str(&info.config_schema)
        .map(|schema| super::config_schema::declared_fields(&schema))
        .unwrap_or_default()
}

/// The plugin's first route (or a path under its name), its `{params}`
/// filled in: where a tracker would deliver.
fn delivery_target(info: &ProviderInfo) -> (String, String, Vec<(String, String)>) {
    let Some(route) = info.routes.first() else {
        return (
            "POST".into(),
            format!("/extensions/{}/webhook", info.name),
            Vec::new(),
        );
    };
    let mut params = Vec::new();
    let path = route
        .path
        .split('/')
        .map(
            |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => {
                    params.push((name.to_owned(), "conformance".to_owned()));
                    "conformance".to_owned()
                }
                None => segment.to_owned(),
            },
        )
        .collect::<Vec<_>>()
        .join("/");
    (route.method.clone(), path, params)
}

fn request(info: &ProviderInfo, headers: &[(&str, &str)], body: &[u8]) -> IncomingRequest {
    let (method, path, route_params) = delivery_target(info);
    IncomingRequest {
        method,
        path,
        query: String::new(),
        headers: headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        route_params,
        body: body.to_vec(),
    }
}

/// Bytes that are no format at all, with credentials that are no credentials.
fn garbage_request(info: &ProviderInfo) -> IncomingRequest {
    let body: Vec<u8> = (0u8..=255)
        .cycle()
        .take(1024)
        .map(|b| b.wrapping_mul(151))
        .collect();
    request(
        info,
        &[
            ("content-type", "application/json"),
            ("authorization", "JWT not.a.token"),
            ("x-hub-signature", "sha256=zz"),
            ("x-hub-signature-256", "sha256=zz"),
        ],
        &body,
    )
}

/// What `verify-webhook` must refuse: a plausible delivery without any
/// signature, an empty request, and garbage.
fn suspicious_requests(info: &ProviderInfo) -> [(&'static str, IncomingRequest); 3] {
    let unsigned = br#"{"webhookEvent":"jira:issue_updated","eventType":"workitem.updated","issue":{"id":"1","key":"X-1"},"timestamp":1}"#;
    [
        (
            "verify-webhook rejects an unsigned request (4xx, no trap, no outbound call)",
            request(info, &[("content-type", "application/json")], unsigned),
        ),
        (
            "verify-webhook rejects an empty request (4xx, no trap, no outbound call)",
            request(info, &[], b""),
        ),
        (
            "verify-webhook rejects garbage (4xx, no trap, no outbound call)",
            garbage_request(info),
        ),
    ]
}

/// An integration that reaches nowhere, for calls that need one.
fn placeholder_integration(info: &ProviderInfo) -> Integration {
    Integration {
        id: 0,
        provider: info.name.clone(),
        external_id: "conformance".into(),
        name: "conformance".into(),
        metadata: "{}".into(),
        secrets: "{}".into(),
        allowed_hosts: Vec::new(),
    }
}
