//! End-to-end test harness for trackbridge: the host started in-process, driven only through its
//! HTTP API, against simulated tracker APIs on loopback.
//!
//! * [`host::TestHost`] — the host with a fresh SQLite file and the built plugins ([`plugins`]).
//! * [`api::ApiClient`] — the README's HTTP API.
//! * [`webhook`] — Connect JWT and `X-Hub-Signature` signing.
//! * [`sim`] — recording, fault injection and waits shared by every simulator;
//!   [`jira_sim::JiraSim`] — Jira Cloud.
//! * [`fixtures::fixture`] — the fixture files in `tests/fixtures`.

pub mod api;
pub mod browser;
pub mod discord_sim;
pub mod fixtures;
pub mod github_sim;
pub mod host;
pub mod jira_server_sim;
pub mod jira_sim;
pub mod jwt;
pub mod logs;
pub mod plugins;
pub mod process;
pub mod proxy;
pub mod scenario;
pub mod sim;
pub mod tasks_sim;
pub mod test_plugins;
pub mod vsts_sim;
pub mod webhook;

pub use api::{ApiClient, ApiResponse, OrgWithMember, id_of};
pub use fixtures::{fixture, fixture_bytes};
pub use host::{ADMIN_TOKEN, RawResponse, TestDatabase, TestHost};
pub use sim::{DEFAULT_WAIT, Fault, RecordedRequest, Recorder};
