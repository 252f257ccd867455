//! Logging through the host's `log` import. The host tags each line with the
//! plugin and the request being handled, so messages need not repeat that.
//!
//! Never log secrets: the host's log is not a secret store.

use crate::sys::{self, Level};

pub fn trace(message: &str) {
    sys::log(Level::Trace, message)
}

pub fn debug(message: &str) {
    sys::log(Level::Debug, message)
}

pub fn info(message: &str) {
    sys::log(Level::Info, message)
}

pub fn warn(message: &str) {
    sys::log(Level::Warn, message)
}

pub fn error(message: &str) {
    sys::log(Level::Error, message)
}

/// `trace!("fmt", args…)`: format and log at trace level.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)*) => { $crate::log::trace(&::std::format!($($arg)*)) };
}

/// `debug!("fmt", args…)`: format and log at debug level.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log::debug(&::std::format!($($arg)*)) };
}

/// `info!("fmt", args…)`: format and log at info level.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::info(&::std::format!($($arg)*)) };
}

/// `warn!("fmt", args…)`: format and log at warn level.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::warn(&::std::format!($($arg)*)) };
}

/// `error!("fmt", args…)`: format and log at error level.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log::error(&::std::format!($($arg)*)) };
}
