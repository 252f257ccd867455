//! One module per figure (issues #7 and #13); each returns its rows.

pub mod applied;
pub mod ingress;
pub mod memory;
pub mod sandbox;
pub mod start;
pub mod sustained;
pub mod swap;
pub mod sync;
