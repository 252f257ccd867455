//! Errors of plugin calls: always naming the plugin, its version and the export.

use std::fmt;

use super::contract::types::{PluginError, UpstreamError};

/// Why a call failed.
#[derive(Debug)]
pub enum CallFailure {
    /// The plugin answered with an error of the contract.
    Plugin(PluginError),
    /// The guest trapped (a panic, an out-of-bounds access, the memory cap).
    /// `guest_output` carries what it wrote to stderr, e.g. a panic message.
    Trap { cause: String, guest_output: String },
    /// The CPU deadline or the call's wall-clock budget ran out.
    Timeout,
    /// The host could not set up the call.
    Host(String),
}

/// A failed plugin call.
#[derive(Debug)]
pub struct PluginCallError {
    pub plugin: String,
    pub version: String,
    pub export: &'static str,
    pub failure: CallFailure,
}

impl CallFailure {
    /// What kind of failure, in a few words that reveal nothing of the
    /// plugin's internals (for callers who may not see the detail).
    pub fn kind(&self) -> &'static str {
        match self {
            CallFailure::Plugin(_) => "it answered with an error",
            CallFailure::Trap { .. } => "it crashed",
            CallFailure::Timeout => "it ran out of time",
            CallFailure::Host(_) => "the host could not run it",
        }
    }
}

impl PluginCallError {
    /// The plugin's own error, when it answered with one.
    pub fn plugin_error(&self) -> Option<&PluginError> {
        match &self.failure {
            CallFailure::Plugin(e) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for PluginCallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "plugin {} {} `{}`: ",
            self.plugin, self.version, self.export
        )?;
        match &self.failure {
            CallFailure::Plugin(e) => write!(f, "{}", describe_plugin_error(e)),
            CallFailure::Trap {
                cause,
                guest_output,
            } if guest_output.trim().is_empty() => {
                write!(f, "trapped: {cause}")
            }
            // The guest's own words (a panic message) first: they say what
            // went wrong; the backtrace after them says where.
            CallFailure::Trap {
                cause,
                guest_output,
            } => {
                write!(f, "trapped; guest said: {}; {cause}", guest_output.trim())
            }
            CallFailure::Timeout => write!(f, "timed out"),
            CallFailure::Host(msg) => write!(f, "host error: {msg}"),
        }
    }
}

impl std::error::Error for PluginCallError {}

pub fn describe_plugin_error(e: &PluginError) -> String {
    match e {
        PluginError::InvalidInput(m) => format!("invalid input: {m}"),
        PluginError::Unauthorized(m) => format!("unauthorized: {m}"),
        PluginError::Upstream(UpstreamError {
            status, message, ..
        }) => match status {
            Some(s) => format!("tracker answered {s}: {message}"),
            None => format!("tracker unreachable: {message}"),
        },
        PluginError::Rejected(m) => format!("rejected: {m}"),
        PluginError::Internal(m) => format!("internal error: {m}"),
    }
}
