//! The trackbridge host: keeps issue trackers and issue groups in sync, with every
//! tracker integration running as a sandboxed WebAssembly component.
//!
//! - [`plugins`] loads components, runs each call in a fresh sandboxed instance and
//!   implements the host side of the WIT contract (`wit/v0.1.0`).
//! - [`domain`] holds the flows: assignment, status changes, inbound sync and the
//!   outbound fan-out to linked trackers. It knows nothing about any tracker.
//! - [`store`] is the SQL state (sqlx; SQLite by default), the job table included.
//! - [`queue`] runs the jobs: stored webhooks and outbound calls, with leases,
//!   retries and dead letters.
//! - [`api`] is the HTTP surface: the admin API and the plugins' webhook routes.

pub mod api;
pub mod console;
pub mod domain;
pub mod listener;
pub mod metrics;
pub mod monitor;
pub mod plugins;
pub mod queue;
pub mod server;
pub mod settings;
pub mod signals;
pub mod store;
pub mod time;

pub use server::Server;
pub use settings::Settings;
