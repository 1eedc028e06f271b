//! `RandomCutForest` and `Attribution`: argument checks, one core call, result conversion.
//!
//! Every call that touches the forest goes through [`PyForest::read`] or [`PyForest::write`]:
//! the GIL is released before waiting for the forest's lock (a long batch on one thread never
//! stalls the others' Python code), a panic is caught and raised as `RuntimeError`, a failed
//! update marks the forest as unusable instead of leaving it half-updated unnoticed, and a
//! forest that another thread was inside when the process forked raises in the child instead
//! of waiting forever for a lock whose holder does not exist there.
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};

use numpy::{IntoPyArray, PyArray1, PyArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyFloat, PyInt, PyTuple};
use rcf_core::{Forest, ForestConfig, RcfError, MAX_SAMPLE_SIZE};
use rcf_core::{MAX_POINT_DIMENSIONS, MAX_THREADS, MAX_TREES};

use crate::arrays;
use crate::errors::{Error, Result};

/// Per-dimension explanation of an anomaly score.
///
/// Attributes
/// ----------
/// high : numpy.ndarray
///     Per input dimension, the part of the score due to the value being above what the forest
///     expects.
/// low : numpy.ndarray
///     Per input dimension, the part due to the value being below.
/// total : float
///     Sum of all parts: the anomaly score.
#[pyclass(frozen, module = "rcf_fast._rcf", name = "Attribution")]
pub struct PyAttribution {
    #[pyo3(get)]
    high: Py<PyArray1<f64>>,
    #[pyo3(get)]
    low: Py<PyArray1<f64>>,
    #[pyo3(get)]
    total: f64,
}

#[pymethods]
impl PyAttribution {
    fn __repr__(&self, py: Python<'_>) -> String {
        let h = self.high.bind(py).readonly().as_array().to_vec();
        let l = self.low.bind(py).readonly().as_array().to_vec();
        format!(
            "Attribution(total={:.6}, high={h:?}, low={l:?})",
            self.total
        )
    }
}

/// Robust Random Cut Forest anomaly detector for streams.
///
/// Parameters
/// ----------
/// dimensions : int
///     Values per observation.
/// shingle_size : int
///     Consecutive observations per point (the forest keeps the last ``shingle_size - 1``).
/// num_trees : int
///     Number of trees.
/// sample_size : int
///     Points kept per tree (2 to 32766).
/// time_decay : float or None
///     λ of the time-decayed sampler, 0 to 100; ``None`` means ``0.1 / sample_size``, 0 a
///     uniform sample.
/// sampler : {"decay", "window"}
///     Time-decayed reservoir, or a sliding window of the last ``sample_size`` points.
/// scoring : {"rcf", "codisp"}
///     AWS Random Cut Forest score (normal below about 1), or rrcf's CoDisp.
/// output_after : int or None
///     Scores are 0.0 until this many points were learned; ``None`` means ``sample_size // 4``.
/// seed : int or None
///     Seed of all trees' generators; same seed and input give bit-identical scores.
/// threads : int or None
///     Most threads one call works on at once, the caller included (one-point and batch calls
///     alike); ``None`` means one per core, 1 is serial. The threads come from pools shared by
///     every forest of the process (one thread per core for batches, at most 3 helpers for
///     one-point calls), so values above the number of cores act as the number of cores and
///     many forests do not mean many threads. Results never depend on it.
#[pyclass(frozen, module = "rcf_fast._rcf", name = "RandomCutForest")]
pub struct PyForest {
    /// Values per observation (never changes; read without the lock).
    dims: usize,
    inner: RwLock<Forest>,
    /// Threads inside a call (waiting or holding the lock) in the low 32 bits, the fork
    /// generation they belong to in the high 32 bits (see [`PyForest::enter`]).
    users: AtomicU64,
    /// Set when an update failed inside (a bug): the forest may be half-updated.
    broken: AtomicBool,
}

/// A thread inside a call of a forest; leaving drops the count.
struct Inside<'a>(&'a AtomicU64);

impl Drop for Inside<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl PyForest {
    fn wrap(forest: Forest) -> Self {
        rcf_core::watch_forks();
        PyForest {
            dims: forest.config().dimensions,
            inner: RwLock::new(forest),
            users: AtomicU64::new(u64::from(rcf_core::fork_generation()) << 32),
            broken: AtomicBool::new(false),
        }
    }

    /// Counts this thread in. Threads counted in an older fork generation than this process's
    /// were inside a call when the process forked: they do not exist here and the lock they
    /// hold would never be released, so the forest is unusable in this process.
    fn enter(&self) -> Result<Inside<'_>> {
        let generation = u64::from(rcf_core::fork_generation());
        let mut seen = self.users.load(Ordering::Acquire);
        loop {
            let next = if seen >> 32 == generation {
                seen + 1
            } else if seen & 0xFFFF_FFFF != 0 {
                return Err(Error::Forked("forest"));
            } else {
                (generation << 32) | 1
            };
            match self
                .users
                .compare_exchange_weak(seen, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(Inside(&self.users)),
                Err(now) => seen = now,
            }
        }
    }

    /// `f` on the forest, read-only: the GIL released, then the lock taken, panics caught.
    fn read<R: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&Forest) -> std::result::Result<R, RcfError> + Send,
    ) -> Result<R> {
        py.detach(|| {
            let _inside = self.enter()?;
            if self.broken.load(Ordering::Acquire) {
                return Err(Error::Broken("forest"));
            }
            let g = self.inner.read().unwrap_or_else(PoisonError::into_inner);
            match catch_unwind(AssertUnwindSafe(|| f(&g))) {
                Ok(r) => Ok(r?),
                Err(p) => Err(Error::panic(p.as_ref())),
            }
        })
    }

    /// `f` on the forest, to change it: as [`PyForest::read`]; a failure inside (a panic or a
    /// broken invariant, never bad input, which the core rejects before changing anything)
    /// marks the forest as unusable rather than leaving a half-done update unnoticed.
    fn write<R: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Forest) -> std::result::Result<R, RcfError> + Send,
    ) -> Result<R> {
        py.detach(|| {
            let _inside = self.enter()?;
            let mut g = self.inner.write().unwrap_or_else(PoisonError::into_inner);
            if self.broken.load(Ordering::Acquire) {
                return Err(Error::Broken("forest"));
            }
            let out = match catch_unwind(AssertUnwindSafe(|| f(&mut g))) {
                Ok(r) => r.map_err(Error::from),
                Err(p) => Err(Error::panic(p.as_ref())),
            };
            if out.as_ref().is_err_and(Error::is_internal) {
                self.broken.store(true, Ordering::Release);
            }
            out
        })
    }
}

/// Largest `output_after` accepted (a count of points; 2**63-1 in effect means never ready).
const MAX_OUTPUT_AFTER: usize = i64::MAX as usize;

/// How a bound reads in messages.
fn bound_text(v: u64) -> String {
    match v {
        u64::MAX => "2**64-1".into(),
        0x7FFF_FFFF_FFFF_FFFF => "2**63-1".into(),
        v => v.to_string(),
    }
}

/// An int parameter in `min..=max` (any Python int, or an object with `__index__`):
/// `TypeError` for other types, `ValueError` naming the range otherwise.
fn int_param(name: &str, v: &Bound<'_, PyAny>, min: u64, max: u64) -> PyResult<u64> {
    let index = if v.is_instance_of::<PyInt>() {
        v.clone()
    } else if v.is_instance_of::<PyFloat>() {
        return Err(PyTypeError::new_err(format!(
            "invalid parameter `{name}`: expected an int, got float {v}"
        )));
    } else {
        v.call_method0("__index__").map_err(|_| {
            PyTypeError::new_err(format!(
                "invalid parameter `{name}`: expected an int, got {}",
                v.get_type()
                    .name()
                    .map_or_else(|_| "?".into(), |n| n.to_string())
            ))
        })?
    };
    match index.extract::<u64>() {
        Ok(x) if (min..=max).contains(&x) => Ok(x),
        _ => {
            let text = index.str().map_or_else(|_| "?".into(), |s| s.to_string());
            let text = if text.len() > 30 {
                format!("an int of {} digits", text.trim_start_matches('-').len())
            } else {
                text
            };
            Err(PyValueError::new_err(format!(
                "invalid parameter `{name}`: must be between {} and {}, got {text}",
                bound_text(min),
                bound_text(max)
            )))
        }
    }
}

/// A size parameter, or its default when absent or None; the range is the configuration's.
fn size_param(
    name: &str,
    v: Option<&Bound<'_, PyAny>>,
    min: usize,
    max: usize,
) -> PyResult<Option<usize>> {
    v.filter(|v| !v.is_none())
        .map(|v| int_param(name, v, min as u64, max as u64).map(|x| x as usize))
        .transpose()
}

/// A forest configuration from the Python arguments every forest-holding class takes (the
/// `RandomCutForest` parameters): absent or `None` sizes take `defaults`' values; every value is
/// range-checked here with a message naming the parameter.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forest_config(
    defaults: &ForestConfig,
    dimensions: Option<&Bound<'_, PyAny>>,
    shingle_size: Option<&Bound<'_, PyAny>>,
    num_trees: Option<&Bound<'_, PyAny>>,
    sample_size: Option<&Bound<'_, PyAny>>,
    time_decay: Option<&Bound<'_, PyAny>>,
    sampler: &str,
    scoring: &str,
    output_after: Option<&Bound<'_, PyAny>>,
    seed: Option<&Bound<'_, PyAny>>,
    threads: Option<&Bound<'_, PyAny>>,
) -> Result<ForestConfig> {
    let seed = match seed.filter(|s| !s.is_none()) {
        None => None,
        Some(s) => Some(int_param("seed", s, 0, u64::MAX)?),
    };
    let time_decay = match time_decay.filter(|t| !t.is_none()) {
        None => None,
        Some(t) => Some(float_param("time_decay", t)?),
    };
    let dims = MAX_POINT_DIMENSIONS;
    Ok(ForestConfig {
        dimensions: size_param("dimensions", dimensions, 1, dims)?.unwrap_or(defaults.dimensions),
        shingle_size: size_param("shingle_size", shingle_size, 1, dims)?
            .unwrap_or(defaults.shingle_size),
        num_trees: size_param("num_trees", num_trees, 1, MAX_TREES)?.unwrap_or(defaults.num_trees),
        sample_size: size_param("sample_size", sample_size, 2, MAX_SAMPLE_SIZE)?
            .unwrap_or(defaults.sample_size),
        time_decay,
        sampler: sampler.parse()?,
        scoring: scoring.parse()?,
        output_after: size_param("output_after", output_after, 0, MAX_OUTPUT_AFTER)?,
        seed,
        threads: size_param("threads", threads, 1, MAX_THREADS)?,
    })
}

#[pymethods]
impl PyForest {
    #[new]
    #[pyo3(signature = (dimensions=None, shingle_size=None, num_trees=None, sample_size=None,
        time_decay=None, sampler="decay", scoring="rcf", output_after=None, seed=None,
        threads=None),
        text_signature = "(dimensions=1, shingle_size=1, num_trees=100, sample_size=256, \
            time_decay=None, sampler='decay', scoring='rcf', output_after=None, seed=None, \
            threads=None)")]
    fn new(
        py: Python<'_>,
        dimensions: Option<&Bound<'_, PyAny>>,
        shingle_size: Option<&Bound<'_, PyAny>>,
        num_trees: Option<&Bound<'_, PyAny>>,
        sample_size: Option<&Bound<'_, PyAny>>,
        time_decay: Option<&Bound<'_, PyAny>>,
        sampler: &str,
        scoring: &str,
        output_after: Option<&Bound<'_, PyAny>>,
        seed: Option<&Bound<'_, PyAny>>,
        threads: Option<&Bound<'_, PyAny>>,
    ) -> Result<Self> {
        let config = forest_config(
            &ForestConfig::default(),
            dimensions,
            shingle_size,
            num_trees,
            sample_size,
            time_decay,
            sampler,
            scoring,
            output_after,
            seed,
            threads,
        )?;
        let forest = py.detach(|| Forest::new(config))?;
        Ok(PyForest::wrap(forest))
    }

    /// Anomaly score of observation ``x`` without changing the forest (0.0 until ready).
    fn score(&self, py: Python<'_>, x: &Bound<'_, PyAny>) -> Result<f64> {
        let x = arrays::point(x, self.dims)?;
        self.read(py, |f| f.score(&x))
    }

    /// Learns observation ``x``.
    fn update(&self, py: Python<'_>, x: &Bound<'_, PyAny>) -> Result<()> {
        let x = arrays::point(x, self.dims)?;
        self.write(py, |f| f.update(&x))
    }

    /// Scores observation ``x``, then learns it: the streaming call.
    fn score_update(&self, py: Python<'_>, x: &Bound<'_, PyAny>) -> Result<f64> {
        let x = arrays::point(x, self.dims)?;
        self.write(py, |f| f.score_update(&x))
    }

    /// Scores each row of ``X`` (shape ``(n, dimensions)``) without learning; rows are
    /// consecutive observations. Releases the GIL.
    fn score_many<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> Result<Bound<'py, PyArray1<f64>>> {
        let rows = arrays::rows(x, self.dims)?;
        let out = arrays::with_slice(&rows, |s| self.read(py, |f| f.score_many(s)))?;
        Ok(out.into_pyarray(py))
    }

    /// Scores then learns each row of ``X`` in turn: the same scores as ``score_update`` on each
    /// row, with all trees working in parallel. Releases the GIL.
    fn score_update_many<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> Result<Bound<'py, PyArray1<f64>>> {
        let rows = arrays::rows(x, self.dims)?;
        let out = arrays::with_slice(&rows, |s| self.write(py, |f| f.score_update_many(s)))?;
        Ok(out.into_pyarray(py))
    }

    /// Learns each row of ``X`` in turn. Releases the GIL.
    fn update_many(&self, py: Python<'_>, x: &Bound<'_, PyAny>) -> Result<()> {
        let rows = arrays::rows(x, self.dims)?;
        arrays::with_slice(&rows, |s| self.write(py, |f| f.update_many(s)))
    }

    /// Which input dimension made ``x`` anomalous, and in which direction.
    fn attribution(&self, py: Python<'_>, x: &Bound<'_, PyAny>) -> Result<PyAttribution> {
        let x = arrays::point(x, self.dims)?;
        let a = self.read(py, |f| f.attribution(&x))?;
        let total = a.total();
        Ok(PyAttribution {
            high: a.high.into_pyarray(py).unbind(),
            low: a.low.into_pyarray(py).unbind(),
            total,
        })
    }

    /// True once ``output_after`` points were learned.
    #[getter]
    fn is_ready(&self, py: Python<'_>) -> Result<bool> {
        self.read(py, |f| Ok(f.is_ready()))
    }

    /// Observations given to the forest so far.
    #[getter]
    fn entries_seen(&self, py: Python<'_>) -> Result<u64> {
        self.read(py, |f| Ok(f.entries_seen()))
    }

    #[getter]
    fn dimensions(&self) -> usize {
        self.dims
    }

    #[getter]
    fn shingle_size(&self, py: Python<'_>) -> Result<usize> {
        self.read(py, |f| Ok(f.config().shingle_size))
    }

    #[getter]
    fn num_trees(&self, py: Python<'_>) -> Result<usize> {
        self.read(py, |f| Ok(f.config().num_trees))
    }

    #[getter]
    fn sample_size(&self, py: Python<'_>) -> Result<usize> {
        self.read(py, |f| Ok(f.config().sample_size))
    }

    /// λ in force (the default resolved).
    #[getter]
    fn time_decay(&self, py: Python<'_>) -> Result<f64> {
        self.read(py, |f| Ok(f.config().effective_time_decay()))
    }

    #[getter]
    fn sampler(&self, py: Python<'_>) -> Result<&'static str> {
        self.read(py, |f| Ok(f.config().sampler.name()))
    }

    #[getter]
    fn scoring(&self, py: Python<'_>) -> Result<&'static str> {
        self.read(py, |f| Ok(f.config().scoring.name()))
    }

    /// Points learned before scores are reported (the default resolved).
    #[getter]
    fn output_after(&self, py: Python<'_>) -> Result<usize> {
        self.read(py, |f| Ok(f.config().effective_output_after()))
    }

    #[getter]
    fn seed(&self, py: Python<'_>) -> Result<Option<u64>> {
        self.read(py, |f| Ok(f.config().seed))
    }

    /// Most threads one call works on (None: one per core). Settable; results do not depend
    /// on it.
    #[getter]
    fn get_threads(&self, py: Python<'_>) -> Result<Option<usize>> {
        self.read(py, |f| Ok(f.config().threads))
    }

    #[setter]
    fn set_threads(&self, py: Python<'_>, threads: Option<&Bound<'_, PyAny>>) -> Result<()> {
        let t = size_param("threads", threads, 1, MAX_THREADS)?;
        self.write(py, |f| f.set_threads(t))
    }

    /// Approximate bytes of memory held by the forest.
    fn memory_usage(&self, py: Python<'_>) -> Result<usize> {
        self.read(py, |f| Ok(f.heap_bytes()))
    }

    /// The full state (generators included) as versioned bytes.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Result<Bound<'py, PyBytes>> {
        let b = self.read(py, |f| Ok(f.to_bytes()))?;
        Ok(PyBytes::new(py, &b))
    }

    /// Restores a forest from ``to_bytes()`` output (bytes, bytearray or memoryview); raises
    /// ``StateError`` for bad bytes.
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &Bound<'_, PyAny>) -> Result<Self> {
        let owned;
        let bytes: &[u8] = if let Ok(b) = data.cast::<PyBytes>() {
            b.as_bytes()
        } else {
            owned = arrays::state_bytes(data)?;
            &owned
        };
        let f = py.detach(|| match catch_unwind(|| Forest::from_bytes(bytes)) {
            Ok(r) => r.map_err(Error::from),
            Err(p) => Err(Error::panic(p.as_ref())),
        })?;
        Ok(PyForest::wrap(f))
    }

    #[staticmethod]
    fn _from_bytes(py: Python<'_>, data: &Bound<'_, PyAny>) -> Result<Self> {
        Self::from_bytes(py, data)
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> Result<Bound<'py, PyTuple>> {
        let py = slf.py();
        let ctor = slf.get_type().getattr("_from_bytes")?;
        let state = slf.get().to_bytes(py)?;
        Ok(PyTuple::new(
            py,
            [ctor.into_any(), PyTuple::new(py, [state])?.into_any()],
        )?)
    }

    fn __copy__(&self, py: Python<'_>) -> Result<Self> {
        let f = self.read(py, |f| Ok(f.clone()))?;
        Ok(PyForest::wrap(f))
    }

    fn __deepcopy__(&self, py: Python<'_>, _memo: &Bound<'_, PyAny>) -> Result<Self> {
        self.__copy__(py)
    }

    fn __repr__(&self, py: Python<'_>) -> Result<String> {
        self.read(py, |f| {
            let c = f.config();
            Ok(format!(
                "RandomCutForest(dimensions={}, shingle_size={}, num_trees={}, sample_size={}, \
                 sampler={:?}, scoring={:?}, entries_seen={}, is_ready={})",
                c.dimensions,
                c.shingle_size,
                c.num_trees,
                c.sample_size,
                c.sampler.name(),
                c.scoring.name(),
                f.entries_seen(),
                f.is_ready()
            ))
        })
    }
}

impl PyAttribution {
    /// An attribution from the core's (for the other classes of this module).
    pub(crate) fn from_core(py: Python<'_>, a: rcf_core::DiVector) -> Self {
        let total = a.total();
        PyAttribution {
            high: a.high.into_pyarray(py).unbind(),
            low: a.low.into_pyarray(py).unbind(),
            total,
        }
    }
}

/// A float parameter: a Python float or int (any size; beyond float64 is out of range).
fn float_param(name: &str, v: &Bound<'_, PyAny>) -> PyResult<f64> {
    if v.is_instance_of::<pyo3::types::PyString>() {
        return Err(PyTypeError::new_err(format!(
            "invalid parameter `{name}`: expected a number, got str"
        )));
    }
    v.extract::<f64>().map_err(|e| {
        if e.is_instance_of::<pyo3::exceptions::PyOverflowError>(v.py()) {
            PyValueError::new_err(format!(
                "invalid parameter `{name}`: {} is beyond the range of float64",
                if v.str().map_or(0, |s| s.len().unwrap_or(0)) > 30 {
                    "an int of more than 30 digits".to_string()
                } else {
                    v.str().map_or_else(|_| "?".into(), |s| s.to_string())
                }
            ))
        } else {
            PyTypeError::new_err(format!(
                "invalid parameter `{name}`: expected a number, got {}",
                v.get_type()
                    .name()
                    .map_or_else(|_| "?".into(), |n| n.to_string())
            ))
        }
    })
}
