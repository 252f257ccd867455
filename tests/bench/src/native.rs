//! The Jira Cloud provider compiled into this binary as an ordinary Rust
//! library: the same `verify_webhook` / `handle_webhook` the component
//! exports, with the SDK's native fake host (`trackbridge_plugin_sdk::testing`)
//! answering the host imports instead of wasmtime.
//!
//! The fake host is thread-local and synchronous, so each call installs the
//! integration it needs (the row the real host's `select-integration` import
//! reads from the database, read from the same database by the caller) and
//! runs verify and handle without an `.await` in between.

use anyhow::{Context as _, anyhow};
use trackbridge_host::plugins::contract::provider_types as host;
use trackbridge_host::store::Integration;
use trackbridge_plugin_jira::Jira;
use trackbridge_plugin_sdk::provider as sdk;
use trackbridge_plugin_sdk::{Provider, testing};

/// The request as the component would receive it (a copy, as lowering into a
/// component is one).
pub fn sdk_request(r: &host::IncomingRequest) -> sdk::IncomingRequest {
    sdk::IncomingRequest {
        method: r.method.clone(),
        path: r.path.clone(),
        query: r.query.clone(),
        headers: r.headers.clone(),
        route_params: r.route_params.clone(),
        body: r.body.clone(),
    }
}

fn host_event(e: sdk::InboundEvent) -> host::InboundEvent {
    let change = match e.change {
        // Field by field, as lifting a component's record is.
        sdk::Change::Assignee(identity) => host::Change::Assignee(identity.map(|i| {
            trackbridge_host::plugins::contract::types::Identity {
                id: i.id,
                login: i.login,
                display_name: i.display_name,
                email: i.email,
                email_verified: i.email_verified,
                bot: i.bot,
            }
        })),
        sdk::Change::Status(s) => host::Change::Status(host::StatusChange {
            from: s.from,
            to: s.to,
            action: match s.action {
                sdk::StatusAction::Resolve => host::StatusAction::Resolve,
                sdk::StatusAction::Unresolve => host::StatusAction::Unresolve,
                sdk::StatusAction::None => host::StatusAction::None,
            },
        }),
    };
    host::InboundEvent {
        external_issue: e.external_issue,
        change,
        event_time: e.event_time,
        delivery_id: e.delivery_id,
    }
}

/// Make the fake host of this thread hold exactly `integration`, with the
/// clock at now.
fn install(integration: &Integration) -> anyhow::Result<()> {
    testing::reset();
    testing::set_now_ms(trackbridge_host::time::now_ms().max(0) as u64);
    testing::add_integration(
        &integration.external_id,
        serde_json::from_str(&integration.metadata).context("integration metadata")?,
        serde_json::from_str(&integration.secrets).context("integration secrets")?,
    );
    Ok(())
}

/// What `verify-webhook` says natively.
pub struct Verified {
    pub integration: String,
    pub event_time: Option<i64>,
}

/// `verify_webhook` natively, with `integration` as the only one the fake
/// host can select.
pub fn verify(
    integration: &Integration,
    request: &host::IncomingRequest,
) -> anyhow::Result<Verified> {
    install(integration)?;
    let verified = <Jira as Provider>::verify_webhook(&sdk_request(request))
        .map_err(|r| anyhow!("rejected: {} {}", r.status, r.message))?;
    Ok(Verified {
        integration: verified.integration,
        event_time: verified.event_time.and_then(|t| i64::try_from(t).ok()),
    })
}

/// `handle_webhook` natively for `integration` (current, as the host makes it).
pub fn handle(
    integration: &Integration,
    request: &host::IncomingRequest,
) -> anyhow::Result<Vec<host::InboundEvent>> {
    install(integration)?;
    if !testing::make_current(&integration.external_id) {
        anyhow::bail!("the fake host lost the integration");
    }
    let events = <Jira as Provider>::handle_webhook(&sdk_request(request))
        .map_err(|e| anyhow!("handle-webhook failed: {e}"))?;
    Ok(events.into_iter().map(host_event).collect())
}

/// `describe` natively (the least a call can do).
pub fn describe() -> String {
    <Jira as Provider>::describe().name
}
