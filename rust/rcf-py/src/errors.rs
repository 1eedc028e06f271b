//! The one mapping from core errors to Python exceptions: [`Error`] takes core errors, Python
//! errors and caught panics with `?` (`From`), and becomes the right exception at the boundary
//! (the shape of polars' `PyPolarsErr`).
use pyo3::create_exception;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::PyErr;
use rcf_core::RcfError;

create_exception!(
    rcf_fast._rcf,
    StateError,
    PyValueError,
    "Saved forest bytes that are damaged, truncated, or not from rcf_fast."
);

/// Everything a binding method can fail with.
#[derive(Debug)]
pub enum Error {
    /// From the core: parameters, shapes, values, damaged state, broken invariants.
    Core(RcfError),
    /// Already a Python exception (argument conversion, numpy).
    Py(PyErr),
    /// A panic caught at the boundary (a bug): its message.
    Panic(String),
    /// The object was in use by another thread when this process was forked from its parent.
    Forked(&'static str),
    /// An earlier internal failure left the object in an unknown state.
    Broken(&'static str),
}

/// Result of a binding method.
pub type Result<T> = std::result::Result<T, Error>;

impl From<RcfError> for Error {
    fn from(e: RcfError) -> Self {
        Error::Core(e)
    }
}

impl From<PyErr> for Error {
    fn from(e: PyErr) -> Self {
        Error::Py(e)
    }
}

impl Error {
    /// The error of a caught panic payload.
    pub fn panic(payload: &(dyn std::any::Any + Send)) -> Self {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Error::Panic(msg)
    }

    /// True for failures that may have left a half-done change behind.
    pub fn is_internal(&self) -> bool {
        matches!(self, Error::Panic(_) | Error::Core(RcfError::Internal(_)))
    }
}

/// Core error → Python exception: parameters, shapes and values → `ValueError`, damaged state →
/// `StateError` (a `ValueError`), a broken invariant or a caught panic → `RuntimeError`.
impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        match e {
            Error::Core(e @ RcfError::Corrupt(_)) => StateError::new_err(e.to_string()),
            Error::Core(e @ RcfError::Internal(_)) => PyRuntimeError::new_err(e.to_string()),
            Error::Core(e) => PyValueError::new_err(e.to_string()),
            Error::Py(e) => e,
            Error::Panic(m) => {
                PyRuntimeError::new_err(format!("internal error (please report): {m}"))
            }
            Error::Forked(what) => PyRuntimeError::new_err(format!(
                "this {what} was in use by another thread when the process was forked, so its \
                 state here is unknown; rebuild it in the child (for example from to_bytes() \
                 taken before the fork)"
            )),
            Error::Broken(what) => PyRuntimeError::new_err(format!(
                "this {what} was left in an unknown state by an earlier internal error; \
                 restore it from saved bytes"
            )),
        }
    }
}
