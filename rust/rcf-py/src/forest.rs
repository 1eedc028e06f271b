//! `RandomCutForest` and `Attribution`: argument checks, one core call, result conversion.
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use numpy::{IntoPyArray, PyArray1, PyArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use rcf_core::{Forest, ForestConfig, SamplerKind, ScoringKind};

use crate::arrays;
use crate::errors::to_py;

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
///     λ of the time-decayed sampler; ``None`` means ``0.1 / sample_size``, 0 a uniform sample.
/// sampler : {"decay", "window"}
///     Time-decayed reservoir, or a sliding window of the last ``sample_size`` points.
/// scoring : {"rcf", "codisp"}
///     AWS Random Cut Forest score (normal below about 1), or rrcf's CoDisp.
/// output_after : int or None
///     Scores are 0.0 until this many points were learned; ``None`` means ``sample_size // 4``.
/// seed : int or None
///     Seed of all trees' generators; same seed and input give bit-identical scores.
/// threads : int or None
///     Threads a call may use (batch calls and one-point calls); ``None`` uses all cores, 1 is
///     serial. Results never depend on it.
#[pyclass(frozen, module = "rcf_fast._rcf", name = "RandomCutForest")]
pub struct PyForest {
    inner: RwLock<Forest>,
}

fn nonneg(name: &str, v: i64) -> PyResult<usize> {
    usize::try_from(v).map_err(|_| {
        PyValueError::new_err(format!("invalid parameter `{name}`: must be >= 0, got {v}"))
    })
}

impl PyForest {
    fn read(&self) -> RwLockReadGuard<'_, Forest> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Forest> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn dims(&self) -> usize {
        self.read().config().dimensions
    }
}

#[pymethods]
impl PyForest {
    #[new]
    #[pyo3(signature = (dimensions=1, shingle_size=1, num_trees=100, sample_size=256,
        time_decay=None, sampler="decay", scoring="rcf", output_after=None, seed=None,
        threads=None))]
    fn new(
        dimensions: i64,
        shingle_size: i64,
        num_trees: i64,
        sample_size: i64,
        time_decay: Option<f64>,
        sampler: &str,
        scoring: &str,
        output_after: Option<i64>,
        seed: Option<&Bound<'_, PyAny>>,
        threads: Option<i64>,
    ) -> PyResult<Self> {
        let sampler = match sampler {
            "decay" => SamplerKind::Decay,
            "window" => SamplerKind::Window,
            other => {
                return Err(PyValueError::new_err(format!(
                    "invalid parameter `sampler`: expected \"decay\" or \"window\", got {other:?}"
                )))
            }
        };
        let scoring = match scoring {
            "rcf" => ScoringKind::Rcf,
            "codisp" => ScoringKind::CoDisp,
            other => {
                return Err(PyValueError::new_err(format!(
                    "invalid parameter `scoring`: expected \"rcf\" or \"codisp\", got {other:?}"
                )))
            }
        };
        let seed = match seed {
            None => None,
            Some(s) if s.is_none() => None,
            Some(s) => {
                let v: i128 = s
                    .call_method0("__index__")
                    .and_then(|i| i.extract())
                    .map_err(|_| {
                        PyTypeError::new_err(format!(
                            "invalid parameter `seed`: expected an int or None, got {}",
                            s.get_type()
                                .name()
                                .map_or_else(|_| "?".into(), |n| n.to_string())
                        ))
                    })?;
                Some(u64::try_from(v).map_err(|_| {
                    PyValueError::new_err(format!(
                        "invalid parameter `seed`: must be between 0 and 2**64-1, got {v}"
                    ))
                })?)
            }
        };
        let config = ForestConfig {
            dimensions: nonneg("dimensions", dimensions)?,
            shingle_size: nonneg("shingle_size", shingle_size)?,
            num_trees: nonneg("num_trees", num_trees)?,
            sample_size: nonneg("sample_size", sample_size)?,
            time_decay,
            sampler,
            scoring,
            output_after: output_after
                .map(|v| nonneg("output_after", v))
                .transpose()?,
            seed,
            threads: threads.map(|v| nonneg("threads", v)).transpose()?,
        };
        let forest = Forest::new(config).map_err(to_py)?;
        Ok(PyForest {
            inner: RwLock::new(forest),
        })
    }

    /// Anomaly score of observation ``x`` without changing the forest (0.0 until ready).
    fn score(&self, py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<f64> {
        let x = arrays::point(x, self.dims())?;
        py.detach(|| self.read().score(&x)).map_err(to_py)
    }

    /// Learns observation ``x``.
    fn update(&self, py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<()> {
        let x = arrays::point(x, self.dims())?;
        py.detach(|| self.write().update(&x)).map_err(to_py)
    }

    /// Scores observation ``x``, then learns it: the streaming call.
    fn score_update(&self, py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<f64> {
        let x = arrays::point(x, self.dims())?;
        py.detach(|| self.write().score_update(&x)).map_err(to_py)
    }

    /// Scores each row of ``X`` (shape ``(n, dimensions)``) without learning; rows are
    /// consecutive observations. Releases the GIL.
    fn score_many<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let rows = arrays::rows(x, self.dims())?;
        let out = arrays::with_slice(&rows, |s| py.detach(|| self.read().score_many(s)))
            .map_err(to_py)?;
        Ok(out.into_pyarray(py))
    }

    /// Scores then learns each row of ``X`` in turn: the same scores as ``score_update`` on each
    /// row, with all trees working in parallel. Releases the GIL.
    fn score_update_many<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let rows = arrays::rows(x, self.dims())?;
        let out = arrays::with_slice(&rows, |s| py.detach(|| self.write().score_update_many(s)))
            .map_err(to_py)?;
        Ok(out.into_pyarray(py))
    }

    /// Learns each row of ``X`` in turn. Releases the GIL.
    fn update_many(&self, py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<()> {
        let rows = arrays::rows(x, self.dims())?;
        arrays::with_slice(&rows, |s| py.detach(|| self.write().update_many(s))).map_err(to_py)
    }

    /// Which input dimension made ``x`` anomalous, and in which direction.
    fn attribution(&self, py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<PyAttribution> {
        let x = arrays::point(x, self.dims())?;
        let a = py.detach(|| self.read().attribution(&x)).map_err(to_py)?;
        let total = a.total();
        Ok(PyAttribution {
            high: a.high.into_pyarray(py).unbind(),
            low: a.low.into_pyarray(py).unbind(),
            total,
        })
    }

    /// True once ``output_after`` points were learned.
    #[getter]
    fn is_ready(&self) -> bool {
        self.read().is_ready()
    }

    /// Observations given to the forest so far.
    #[getter]
    fn entries_seen(&self) -> u64 {
        self.read().entries_seen()
    }

    #[getter]
    fn dimensions(&self) -> usize {
        self.dims()
    }

    #[getter]
    fn shingle_size(&self) -> usize {
        self.read().config().shingle_size
    }

    #[getter]
    fn num_trees(&self) -> usize {
        self.read().config().num_trees
    }

    #[getter]
    fn sample_size(&self) -> usize {
        self.read().config().sample_size
    }

    /// λ in force (the default resolved).
    #[getter]
    fn time_decay(&self) -> f64 {
        self.read().config().effective_time_decay()
    }

    #[getter]
    fn sampler(&self) -> &'static str {
        match self.read().config().sampler {
            SamplerKind::Decay => "decay",
            SamplerKind::Window => "window",
        }
    }

    #[getter]
    fn scoring(&self) -> &'static str {
        match self.read().config().scoring {
            ScoringKind::Rcf => "rcf",
            ScoringKind::CoDisp => "codisp",
        }
    }

    /// Points learned before scores are reported (the default resolved).
    #[getter]
    fn output_after(&self) -> usize {
        self.read().config().effective_output_after()
    }

    #[getter]
    fn seed(&self) -> Option<u64> {
        self.read().config().seed
    }

    /// Threads a call may use (None: all cores). Settable; results do not depend on it.
    #[getter]
    fn get_threads(&self) -> Option<usize> {
        self.read().config().threads
    }

    #[setter]
    fn set_threads(&self, threads: Option<i64>) -> PyResult<()> {
        let t = threads.map(|v| nonneg("threads", v)).transpose()?;
        self.write().set_threads(t).map_err(to_py)
    }

    /// Approximate bytes of memory held by the forest.
    fn memory_usage(&self) -> usize {
        self.read().heap_bytes()
    }

    /// The full state (generators included) as versioned bytes.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let b = py.detach(|| self.read().to_bytes());
        PyBytes::new(py, &b)
    }

    /// Restores a forest from ``to_bytes()`` output; raises ``StateError`` for bad bytes.
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &[u8]) -> PyResult<Self> {
        let f = py.detach(|| Forest::from_bytes(data)).map_err(to_py)?;
        Ok(PyForest {
            inner: RwLock::new(f),
        })
    }

    #[staticmethod]
    fn _from_bytes(py: Python<'_>, data: &[u8]) -> PyResult<Self> {
        Self::from_bytes(py, data)
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let ctor = slf.get_type().getattr("_from_bytes")?;
        let state = slf.get().to_bytes(py);
        PyTuple::new(py, [ctor.into_any(), PyTuple::new(py, [state])?.into_any()])
    }

    fn __copy__(&self) -> Self {
        PyForest {
            inner: RwLock::new(self.read().clone()),
        }
    }

    fn __deepcopy__(&self, _memo: &Bound<'_, PyAny>) -> Self {
        self.__copy__()
    }

    fn __repr__(&self) -> String {
        let f = self.read();
        let c = f.config();
        format!(
            "RandomCutForest(dimensions={}, shingle_size={}, num_trees={}, sample_size={}, \
             sampler={:?}, scoring={:?}, entries_seen={}, is_ready={})",
            c.dimensions,
            c.shingle_size,
            c.num_trees,
            c.sample_size,
            if c.sampler == SamplerKind::Decay {
                "decay"
            } else {
                "window"
            },
            if c.scoring == ScoringKind::Rcf {
                "rcf"
            } else {
                "codisp"
            },
            f.entries_seen(),
            f.is_ready()
        )
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
