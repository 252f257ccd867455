//! The SDK error type, mirroring the contract's `plugin-error`.

use std::fmt;

use crate::bindings::trackbridge::plugin::types::{PluginError, UpstreamError};

/// How a plugin call failed. Converted to the contract's `plugin-error` at the
/// export boundary, so the host decides about retries from the variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The operator's input (installation form, configuration) is wrong.
    InvalidInput(String),
    /// The tracker refused our credentials (HTTP 401/403).
    Unauthorized(String),
    /// The tracker answered with an error (`status`) or could not be reached
    /// (`status: None`, including hosts outside the integration's allow-list).
    Upstream {
        status: Option<u16>,
        message: String,
        retry_after_secs: Option<u32>,
    },
    /// Well-formed, but the tracker cannot do it (no such issue, no transition).
    Rejected(String),
    /// A bug or an unexpected state inside the plugin.
    Internal(String),
}

/// `Result` with the SDK [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Error::InvalidInput(message.into())
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Error::Unauthorized(message.into())
    }

    pub fn rejected(message: impl Into<String>) -> Self {
        Error::Rejected(message.into())
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal(message.into())
    }

    /// An upstream failure without an HTTP status: the tracker could not be reached.
    pub fn unreachable(message: impl Into<String>) -> Self {
        Error::Upstream {
            status: None,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    pub fn upstream(status: u16, message: impl Into<String>) -> Self {
        Error::Upstream {
            status: Some(status),
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// The error for an export the provider does not implement.
    pub fn not_implemented(what: &str) -> Self {
        Error::Internal(format!("{what} is not implemented by this plugin"))
    }

    /// The HTTP status of an upstream error, if any.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Upstream { status, .. } => *status,
            _ => None,
        }
    }

    /// The human-readable message, whatever the variant.
    pub fn message(&self) -> &str {
        match self {
            Error::InvalidInput(m)
            | Error::Unauthorized(m)
            | Error::Rejected(m)
            | Error::Internal(m)
            | Error::Upstream { message: m, .. } => m,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidInput(m) => write!(f, "invalid input: {m}"),
            Error::Unauthorized(m) => write!(f, "unauthorized: {m}"),
            Error::Upstream {
                status: Some(s),
                message,
                ..
            } => write!(f, "upstream error (HTTP {s}): {message}"),
            Error::Upstream {
                status: None,
                message,
                ..
            } => write!(f, "upstream unreachable: {message}"),
            Error::Rejected(m) => write!(f, "rejected: {m}"),
            Error::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Internal(format!("JSON error: {e}"))
    }
}

impl From<Error> for PluginError {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidInput(m) => PluginError::InvalidInput(m),
            Error::Unauthorized(m) => PluginError::Unauthorized(m),
            Error::Upstream {
                status,
                message,
                retry_after_secs,
            } => PluginError::Upstream(UpstreamError {
                status,
                message,
                retry_after_secs,
            }),
            Error::Rejected(m) => PluginError::Rejected(m),
            Error::Internal(m) => PluginError::Internal(m),
        }
    }
}

impl From<PluginError> for Error {
    fn from(e: PluginError) -> Self {
        match e {
            PluginError::InvalidInput(m) => Error::InvalidInput(m),
            PluginError::Unauthorized(m) => Error::Unauthorized(m),
            PluginError::Upstream(u) => Error::Upstream {
                status: u.status,
                message: u.message,
                retry_after_secs: u.retry_after_secs,
            },
            PluginError::Rejected(m) => Error::Rejected(m),
            PluginError::Internal(m) => Error::Internal(m),
        }
    }
}
