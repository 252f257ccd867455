//! The command line of the `trackbridge` binary (not part of the library).

pub mod options;
pub mod plugin;
