//! The command line of the `trackbridge` binary (not part of the library).

pub mod options;
pub mod plugin;
pub mod plugins_dir;
pub mod scaffold;
pub mod secrets;
pub mod summary;
