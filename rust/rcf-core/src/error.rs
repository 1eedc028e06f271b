//! Errors of the core crate. Nothing here panics on user input: every failure is an `RcfError`.
use thiserror::Error;

/// Everything that can go wrong when configuring, feeding or restoring a forest.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RcfError {
    /// A configuration parameter is out of range.
    #[error("invalid parameter `{name}`: {message}")]
    InvalidParameter {
        /// Parameter name as the user spells it.
        name: &'static str,
        /// What was wrong and what is expected.
        message: String,
    },
    /// An input point has the wrong number of values.
    #[error("expected {expected} values per point (dimensions), got {got}")]
    DimensionMismatch {
        /// Values per point the forest was built for.
        expected: usize,
        /// Values given.
        got: usize,
    },
    /// An input value is NaN, infinite, or outside the f32 range the forest stores.
    #[error("{what} at row {row}, column {column}: {message}")]
    InvalidValue {
        /// Short name of the problem ("NaN value", "infinite value", ...).
        what: &'static str,
        /// Row of the offending value (0 for a single point).
        row: usize,
        /// Column (input dimension) of the offending value.
        column: usize,
        /// What is expected instead.
        message: String,
    },
    /// A broken internal invariant (a bug): reported instead of panicking.
    #[error("internal error (please report): {0}")]
    Internal(String),
    /// Serialized bytes that are not a forest of this library, or are damaged.
    #[error("cannot restore forest: {0}")]
    Corrupt(String),
}

/// Result type of the core crate.
pub type Result<T> = std::result::Result<T, RcfError>;

impl RcfError {
    pub(crate) fn param(name: &'static str, message: impl Into<String>) -> Self {
        RcfError::InvalidParameter {
            name,
            message: message.into(),
        }
    }
}
