//! The one mapping from core errors to Python exceptions.
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

/// Core error → Python exception: parameters, shapes and values → `ValueError`, damaged state →
/// `StateError` (a `ValueError`), a broken invariant → `RuntimeError`.
#[allow(clippy::needless_pass_by_value)] // used as `map_err(to_py)`
pub fn to_py(e: RcfError) -> PyErr {
    match e {
        RcfError::Corrupt(_) => StateError::new_err(e.to_string()),
        RcfError::Internal(_) => PyRuntimeError::new_err(e.to_string()),
        _ => PyValueError::new_err(e.to_string()),
    }
}
