//! One module per figure of issue #7; each returns its rows.

pub mod applied;
pub mod ingress;
pub mod memory;
pub mod sandbox;
pub mod start;
pub mod swap;
pub mod sync;
