//! Test harness for trackbridge plugins.
//!
//! Load a **built** plugin (a `wasm32-wasip2` component implementing
//! `trackbridge:plugin@0.2.0` or `@0.1.0`) into the host's real runtime — the production
//! engine settings, call limits, host imports and outbound-host gate — and
//! drive every export of its world against a scripted fake tracker:
//!
//! - [`Harness`] loads the component with the host's loader and calls
//!   `describe`, `build-integration`, `verify-webhook`, `handle-webhook`,
//!   `sync-status`, `sync-assignee`, `maintain`, `uninstall` and `notify`, returning the
//!   host's own types. [`Harness::install`] installs the way the host's
//!   install endpoint does; [`Harness::integration`] builds an integration by
//!   hand.
//! - [`FakeTracker`] is an HTTP/1.1 server on `127.0.0.1` that answers only
//!   what the test [`expect`](FakeTracker::expect)s, and fails the test
//!   (on [`verify`](FakeTracker::verify) or when dropped) over every
//!   unexpected request and every expectation not met.
//! - [`WebhookRequest`] builds incoming requests, with signing helpers
//!   ([`hub_signature_sha256`], [`jwt_hs256`], …).
//!
//! The one difference from production: outbound requests may reach
//! `127.0.0.1`, where the fake tracker listens (production refuses loopback
//! unless `--outbound-allow-networks` says so). Which *hosts* a call may
//! reach is decided exactly as in production: those of the integration it
//! acts for, so a request to a second fake tracker the integration does not
//! name fails, and that tracker receives nothing.
//!
//! ```no_run
//! use serde_json::json;
//! use trackbridge_plugin_test::{Expect, FakeTracker, Harness, Reply, issue, mapping};
//!
//! #[tokio::test]
//! async fn resolving_moves_the_issue_to_done() {
//!     let harness = Harness::load("target/plugins/wasm32-wasip2/release/my_plugin.wasm")
//!         .await
//!         .unwrap();
//!     let tracker = FakeTracker::start().await.unwrap();
//!     let integration = harness
//!         .integration()
//!         .external_id(tracker.authority())
//!         .metadata(json!({"base_url": tracker.url()}))
//!         .secrets(json!({"token": "t"}))
//!         .allowed_host(tracker.authority())
//!         .build();
//!
//!     tracker
//!         .expect(Expect::get("/api/issues/APP-1"))
//!         .respond(Reply::ok().json(&json!({"project": "10", "status": "open"})));
//!     tracker
//!         .expect(Expect::post("/api/issues/APP-1/status").body_json(json!({"status": "done"})))
//!         .respond(Reply::status(204));
//!
//!     let outcome = harness
//!         .sync_status(&integration, &issue("APP-1"), true, &[mapping("10", "done", "open")])
//!         .await
//!         .unwrap();
//!     assert!(outcome.changed);
//!     tracker.verify();
//! }
//! # fn main() {}
//! ```

mod build;
mod error;
mod expect;
mod harness;
mod integration;
mod request;
mod tracker;
mod values;

pub use build::build_component;
pub use error::HarnessError;
pub use expect::{Expect, RecordedRequest, Reply};
pub use harness::{Delivery, Harness, HarnessBuilder};
pub use integration::IntegrationBuilder;
pub use request::{WebhookRequest, hmac_sha256, hmac_sha256_hex, hub_signature_sha256, jwt_hs256};
pub use tracker::{Expectation, FakeTracker, PendingExpectation, UNEXPECTED_STATUS};
pub use values::{group, issue, issue_with, mapping};

/// The host crate, for what the re-exports below do not cover.
pub use trackbridge_host;

/// The contract's records and variants, as the host's bindings define them.
pub use trackbridge_host::plugins::contract::notifier::notifier_types::{
    Delivered, GroupEvent, GroupSummary,
};
pub use trackbridge_host::plugins::contract::provider_types::{
    Change, ExternalIssue, InboundEvent, IncomingRequest, IntegrationData, ProviderInfo, Rejection,
    Route, StatusAction, StatusChange, StatusMapping, StatusModel, SyncOutcome, UserRef,
    VerifiedWebhook,
};
pub use trackbridge_host::plugins::contract::types::{Identity, PluginError, UpstreamError};
/// How a plugin call failed, as the host reports it.
pub use trackbridge_host::plugins::{CallFailure, CallLimits, Plugin, PluginCallError, Runtime};
/// An integration as the host stores it.
pub use trackbridge_host::store::Integration;
