//! `AnomalyDetector` and its `DetectorResult`: a forest plus an online thresholder.
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyDict, PyString, PyTuple};
use rcf_core::detector::{
    AnomalyDetector, Decision, DetectorConfig, Scale, Thresholder, ThresholderConfig, Transform,
    DEFAULT_SCALES, MAX_BLOCK, MAX_SCALES,
};

use crate::arrays;
use crate::errors::Result;

/// Which input dimension made an alert, and in which direction.
///
/// Attributes
/// ----------
/// high, low : numpy.ndarray
///     Per input dimension, the part of the score due to the value being above / below what the
///     forest expects.
/// total : float
///     The sum of all parts: the anomaly score.
#[pyclass(frozen, module = "rcf_fast._rcf", name = "AlertAttribution")]
pub struct PyAlertAttribution {
    #[pyo3(get)]
    high: Py<PyArray1<f64>>,
    #[pyo3(get)]
    low: Py<PyArray1<f64>>,
    #[pyo3(get)]
    total: f64,
}

/// The outcome of ``AnomalyDetector.process`` for one observation.
///
/// Attributes
/// ----------
/// score : float
///     The forest's RCF score of the observation (before learning it).
/// grade : float
///     0 unless the observation raises an alert (the start of an anomaly episode); then in
///     (0, 1], 0.5 at the threshold, 1 far above it.
/// is_anomaly : bool
///     ``grade > 0``.
/// threshold : float
///     The score threshold in force (``inf`` during warm-up).
/// confidence : float
///     How settled the thresholder's statistics are, in [0, 1].
/// in_episode : bool
///     Whether the observation lies in an anomaly episode (its alert or a later point of it),
///     of the forest's thresholder or of a coarse scale's.
/// start_of_anomaly : bool
///     Whether an alert is raised here (same as ``is_anomaly``: episodes are reported once).
/// relative_index : int
///     For an alert, how many observations back (<= 0) the scores began to rise.
/// attribution : AlertAttribution or None
///     For an alert, the attribution per input dimension.
/// expected : numpy.ndarray or None
///     For an alert, the value the forest expected per input dimension (NaN for dimensions that
///     did not cause it). For a coarse scale's alert: the block mean that scale's forest
///     expected, in the units the forest sees (the raw values with ``transform="none"``).
/// scale : int
///     1 for the fine forest's alerts and for observations without an alert, else the block
///     size of the coarse scale that raised the alert (its attribution, expected value and
///     relative index are then that scale's: see ``AnomalyDetector``).
/// timestamp : float or None
///     The timestamp given with the observation.
#[pyclass(frozen, module = "rcf_fast._rcf", name = "DetectorResult")]
pub struct PyDetectorResult {
    #[pyo3(get)]
    score: f64,
    #[pyo3(get)]
    grade: f64,
    #[pyo3(get)]
    is_anomaly: bool,
    #[pyo3(get)]
    threshold: f64,
    #[pyo3(get)]
    confidence: f64,
    #[pyo3(get)]
    in_episode: bool,
    #[pyo3(get)]
    start_of_anomaly: bool,
    #[pyo3(get)]
    relative_index: i64,
    #[pyo3(get)]
    attribution: Option<Py<PyAlertAttribution>>,
    #[pyo3(get)]
    expected: Option<Py<PyArray1<f64>>>,
    #[pyo3(get)]
    scale: usize,
    #[pyo3(get)]
    timestamp: Option<f64>,
}

#[pymethods]
impl PyDetectorResult {
    fn __repr__(&self) -> String {
        format!(
            "DetectorResult(score={:.6}, grade={:.6}, is_anomaly={}, threshold={:.6}, \
             in_episode={}, relative_index={}, scale={})",
            self.score,
            self.grade,
            if self.is_anomaly { "True" } else { "False" },
            self.threshold,
            if self.in_episode { "True" } else { "False" },
            self.relative_index,
            self.scale
        )
    }
}

/// A Random Cut Forest plus an online thresholder: graded alerts instead of raw scores.
///
/// Parameters
/// ----------
/// dimensions, shingle_size, num_trees, sample_size, time_decay, sampler, scoring,
/// output_after, seed, threads
///     As for ``RandomCutForest``; the detector's defaults are shingle size 8 and one thread
///     (one observation at a time is fastest on one thread).
/// z_factor : float
///     A score is anomalous at ``mean + z_factor * deviation`` of the recent scores (default 4).
/// score_floor : float
///     The threshold never goes below this RCF score (default 1.0).
/// horizon : float
///     Horizon in observations of the time-decayed score statistics (default 2000).
/// warmup : int
///     Scores observed before the first alert (default 100).
/// episode_gap : int
///     Consecutive observations below the threshold that end an anomaly episode (default 20);
///     an episode raises one alert, at its start.
/// transform : {"none", "normalize", "difference", "normalize_difference"}
///     Input transform before the forest (default "none").
/// transform_horizon : float
///     Horizon of the normalisation statistics (default 1000).
/// alert_spacing : int
///     Observations after an alert during which no new alert is raised (default 256, about one
///     forest sample); an anomalous score then joins an episode without an alert.
/// scales : sequence of (block, shingle_size) pairs of ints
///     Coarse scales (default ``((16, 4), (32, 8))``; ``()``: the forest's scores alone). A
///     scale averages the transformed input over blocks of ``block`` observations (2 to 1e6)
///     and watches the block means with a forest of its own (this forest's parameters and
///     seed, half its trees, shingle size ``shingle_size``, 1 to the forest's maximum) and a
///     thresholder of its own (this one's z-factor and floor; horizon, warm-up, episode gap
///     and spacing in blocks). At most 8 scales, no duplicate. Per observation the detector emits at most
///     one alert, more than ``alert_spacing`` observations after the last one it emitted: the
///     highest grade among the streams that raised one there (ties: the finer scale).
#[pyclass(frozen, module = "rcf_fast._rcf", name = "AnomalyDetector")]
pub struct PyAnomalyDetector {
    inner: RwLock<AnomalyDetector>,
}

fn nonneg(name: &str, v: i64) -> PyResult<usize> {
    usize::try_from(v).map_err(|_| {
        PyValueError::new_err(format!(
            "invalid parameter `{name}`: must be a non-negative integer, got {v}"
        ))
    })
}

fn scales_error(message: &str) -> PyErr {
    PyTypeError::new_err(format!("invalid parameter `scales`: {message}"))
}

fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .name()
        .map_or_else(|_| "?".into(), |n| n.to_string())
}

fn is_text(v: &Bound<'_, PyAny>) -> bool {
    v.is_instance_of::<PyString>()
        || v.is_instance_of::<PyBytes>()
        || v.is_instance_of::<PyByteArray>()
}

/// One value of a scale: an int (not a bool), as usize (`ValueError` if out of range).
fn scale_value(v: &Bound<'_, PyAny>, what: &str, i: usize) -> PyResult<usize> {
    let not_int = || {
        scales_error(&format!(
            "{what} of scale {i} must be an int, got {}",
            type_name(v)
        ))
    };
    if v.is_instance_of::<PyBool>() {
        return Err(not_int());
    }
    let int = v.call_method0("__index__").map_err(|_| not_int())?;
    let n: Option<usize> = int.extract().ok();
    n.ok_or_else(|| {
        let range = if what == "block" {
            format!("between 2 and {MAX_BLOCK}")
        } else {
            "between 1 and 65535 / dimensions".to_string()
        };
        let shown = int
            .repr()
            .map_or_else(|_| "?".to_string(), |r| r.to_string());
        PyValueError::new_err(format!(
            "invalid parameter `scales`: {what} of scale {i} must be {range}, got {shown}"
        ))
    })
}

/// `scales` as given: a sequence of at most `MAX_SCALES` (block, shingle_size) pairs of ints.
/// Ranges and duplicates are checked by the core.
fn scales_of(obj: &Bound<'_, PyAny>) -> PyResult<Vec<Scale>> {
    let expected = "expected a sequence of (block, shingle_size) pairs of ints, e.g. ((16, 4), (32, 8)), or () for none";
    if is_text(obj) || obj.is_instance_of::<PyDict>() {
        return Err(scales_error(&format!("{expected}, got {}", type_name(obj))));
    }
    let n = obj
        .len()
        .map_err(|_| scales_error(&format!("{expected}, got {}", type_name(obj))))?;
    if n > MAX_SCALES {
        return Err(PyValueError::new_err(format!(
            "invalid parameter `scales`: expected at most {MAX_SCALES} (block, shingle_size) pairs, got {n}"
        )));
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let item = obj
            .get_item(i)
            .map_err(|_| scales_error(&format!("{expected}, got {}", type_name(obj))))?;
        let pair_len = if is_text(&item) || item.is_instance_of::<PyDict>() {
            None
        } else {
            item.len().ok()
        };
        if pair_len != Some(2) {
            return Err(scales_error(&format!(
                "scale {i} must be a (block, shingle_size) pair of ints, got {}",
                item.repr()
                    .map_or_else(|_| type_name(&item), |r| r.to_string())
            )));
        }
        out.push(Scale {
            block: scale_value(&item.get_item(0)?, "block", i)?,
            shingle_size: scale_value(&item.get_item(1)?, "shingle_size", i)?,
        });
    }
    Ok(out)
}

/// The `scales` argument (extracted by [`scales_of`]).
struct ScalesArg(Vec<Scale>);

impl<'a, 'py> FromPyObject<'a, 'py> for ScalesArg {
    type Error = PyErr;

    fn extract(obj: pyo3::Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        scales_of(&obj.to_owned()).map(ScalesArg)
    }
}

fn seed_of(seed: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u64>> {
    match seed {
        None => Ok(None),
        Some(s) if s.is_none() => Ok(None),
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
            Ok(Some(u64::try_from(v).map_err(|_| {
                PyValueError::new_err(format!(
                    "invalid parameter `seed`: must be between 0 and 2**64-1, got {v}"
                ))
            })?))
        }
    }
}

impl PyAnomalyDetector {
    fn read(&self) -> RwLockReadGuard<'_, AnomalyDetector> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, AnomalyDetector> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn dims(&self) -> usize {
        self.read().forest().config().dimensions
    }
}

#[pymethods]
impl PyAnomalyDetector {
    #[new]
    #[pyo3(signature = (dimensions=1, shingle_size=8, num_trees=100, sample_size=256,
        time_decay=None, sampler="decay", scoring="rcf", output_after=None, seed=None,
        threads=1, z_factor=4.0, score_floor=1.0, horizon=2000.0, warmup=100,
        episode_gap=20, transform="none", transform_horizon=1000.0, alert_spacing=256,
        scales=ScalesArg(DEFAULT_SCALES.to_vec())),
        text_signature = "(dimensions=1, shingle_size=8, num_trees=100, sample_size=256, \
        time_decay=None, sampler='decay', scoring='rcf', output_after=None, seed=None, \
        threads=1, z_factor=4.0, score_floor=1.0, horizon=2000.0, warmup=100, episode_gap=20, \
        transform='none', transform_horizon=1000.0, alert_spacing=256, \
        scales=((16, 4), (32, 8)))")]
    #[allow(clippy::too_many_arguments)]
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
        z_factor: f64,
        score_floor: f64,
        horizon: f64,
        warmup: i64,
        episode_gap: i64,
        transform: &str,
        transform_horizon: f64,
        alert_spacing: i64,
        scales: ScalesArg,
    ) -> Result<Self> {
        let mut c = DetectorConfig::new(nonneg("dimensions", dimensions)?);
        c.scales = scales.0;
        c.forest.shingle_size = nonneg("shingle_size", shingle_size)?;
        c.forest.num_trees = nonneg("num_trees", num_trees)?;
        c.forest.sample_size = nonneg("sample_size", sample_size)?;
        c.forest.time_decay = time_decay;
        c.forest.sampler = sampler.parse()?;
        c.forest.scoring = scoring.parse()?;
        c.forest.output_after = output_after
            .map(|v| nonneg("output_after", v))
            .transpose()?;
        c.forest.seed = seed_of(seed)?;
        c.forest.threads = threads.map(|v| nonneg("threads", v)).transpose()?;
        c.thresholder = ThresholderConfig {
            z_factor,
            score_floor,
            horizon,
            warmup: nonneg("warmup", warmup)?,
            episode_gap: nonneg("episode_gap", episode_gap)?,
            alert_spacing: nonneg("alert_spacing", alert_spacing)?,
        };
        c.transform = Transform::parse(transform)?;
        c.transform_horizon = transform_horizon;
        let det = AnomalyDetector::new(c)?;
        Ok(PyAnomalyDetector {
            inner: RwLock::new(det),
        })
    }

    /// Processes one observation ``x`` (``dimensions`` numbers): scores it, grades the score,
    /// explains an alert, then learns it. ``timestamp`` (a finite number) is echoed back.
    #[pyo3(signature = (x, timestamp=None))]
    fn process(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        timestamp: Option<f64>,
    ) -> Result<PyDetectorResult> {
        let x = arrays::point(x, self.dims())?;
        let r = py.detach(|| self.write().process(&x, timestamp))?;
        let attribution = match r.attribution {
            Some(a) => {
                let total = a.total();
                Some(Py::new(
                    py,
                    PyAlertAttribution {
                        high: a.high.into_pyarray(py).unbind(),
                        low: a.low.into_pyarray(py).unbind(),
                        total,
                    },
                )?)
            }
            None => None,
        };
        let is_anomaly = r.grade > 0.0;
        Ok(PyDetectorResult {
            score: r.score,
            grade: r.grade,
            is_anomaly,
            threshold: r.threshold,
            confidence: r.confidence,
            in_episode: r.in_episode,
            start_of_anomaly: is_anomaly,
            relative_index: r.relative_index,
            attribution,
            expected: r.expected.map(|e| e.into_pyarray(py).unbind()),
            scale: r.scale,
            timestamp,
        })
    }

    /// Processes each row of ``X`` (shape ``(n, dimensions)``) in turn, exactly as ``process``
    /// would; returns a dict of numpy arrays: ``score``, ``grade``, ``is_anomaly``,
    /// ``threshold``, ``confidence``, ``in_episode``, ``start_of_anomaly``, ``relative_index``,
    /// ``scale`` (length n) and ``expected``, ``attribution_high``, ``attribution_low`` (n x dimensions;
    /// NaN / 0 where no alert). Every row is checked before any is learned. Releases the GIL.
    #[pyo3(signature = (x, timestamps=None))]
    fn process_many<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        timestamps: Option<&Bound<'py, PyAny>>,
    ) -> Result<Bound<'py, PyDict>> {
        let d = self.dims();
        let rows = arrays::rows(x, d)?;
        let ts: Option<Vec<f64>> = match timestamps {
            None => None,
            Some(t) if t.is_none() => None,
            Some(t) => {
                let r = arrays::rows(t, 1).map_err(|_| {
                    PyValueError::new_err(
                        "invalid parameter `timestamps`: expected a 1-D sequence of numbers, \
                         one per row",
                    )
                })?;
                Some(arrays::with_slice(&r, <[f64]>::to_vec))
            }
        };
        let n = rows.as_array().nrows();
        let mut score = Vec::with_capacity(n);
        let mut grade = Vec::with_capacity(n);
        let mut threshold = Vec::with_capacity(n);
        let mut confidence = Vec::with_capacity(n);
        let mut in_episode = Vec::with_capacity(n);
        let mut rel = Vec::with_capacity(n);
        let mut scale = Vec::with_capacity(n);
        let mut expected = vec![f64::NAN; n * d];
        let mut high = vec![0.0; n * d];
        let mut low = vec![0.0; n * d];
        arrays::with_slice(&rows, |s| {
            py.detach(|| {
                self.write().process_many(s, ts.as_deref(), |i, r| {
                    score.push(r.score);
                    grade.push(r.grade);
                    threshold.push(r.threshold);
                    confidence.push(r.confidence);
                    in_episode.push(r.in_episode);
                    rel.push(r.relative_index);
                    scale.push(r.scale as i64);
                    if let Some(e) = &r.expected {
                        if let Some(slot) = expected.get_mut(i * d..(i + 1) * d) {
                            slot.copy_from_slice(e);
                        }
                    }
                    if let Some(a) = &r.attribution {
                        if let Some(slot) = high.get_mut(i * d..(i + 1) * d) {
                            slot.copy_from_slice(&a.high);
                        }
                        if let Some(slot) = low.get_mut(i * d..(i + 1) * d) {
                            slot.copy_from_slice(&a.low);
                        }
                    }
                })
            })
        })?;
        let m = score.len();
        let is_anomaly: Vec<bool> = grade.iter().map(|g| *g > 0.0).collect();
        let out = PyDict::new(py);
        out.set_item("score", score.into_pyarray(py))?;
        out.set_item("grade", grade.into_pyarray(py))?;
        out.set_item("is_anomaly", is_anomaly.clone().into_pyarray(py))?;
        out.set_item("start_of_anomaly", is_anomaly.into_pyarray(py))?;
        out.set_item("threshold", threshold.into_pyarray(py))?;
        out.set_item("confidence", confidence.into_pyarray(py))?;
        out.set_item("in_episode", in_episode.into_pyarray(py))?;
        out.set_item("relative_index", rel.into_pyarray(py))?;
        out.set_item("scale", scale.into_pyarray(py))?;
        let shape = |v: Vec<f64>| -> PyResult<Bound<'py, PyArray2<f64>>> {
            let a = v.into_pyarray(py);
            a.reshape([m, d])
        };
        expected.truncate(m * d);
        high.truncate(m * d);
        low.truncate(m * d);
        out.set_item("expected", shape(expected)?)?;
        out.set_item("attribution_high", shape(high)?)?;
        out.set_item("attribution_low", shape(low)?)?;
        Ok(out)
    }

    /// Observations given so far.
    #[getter]
    fn entries_seen(&self) -> u64 {
        self.read().forest().entries_seen()
    }

    /// Values per observation.
    #[getter]
    fn dimensions(&self) -> usize {
        self.dims()
    }

    /// Consecutive observations per forest point.
    #[getter]
    fn shingle_size(&self) -> usize {
        self.read().forest().config().shingle_size
    }

    /// The z-factor of the threshold.
    #[getter]
    fn z_factor(&self) -> f64 {
        self.read().thresholder().config().z_factor
    }

    /// The absolute floor of the threshold.
    #[getter]
    fn score_floor(&self) -> f64 {
        self.read().thresholder().config().score_floor
    }

    /// Horizon of the score statistics.
    #[getter]
    fn horizon(&self) -> f64 {
        self.read().thresholder().config().horizon
    }

    /// Scores observed before the first alert.
    #[getter]
    fn warmup(&self) -> usize {
        self.read().thresholder().config().warmup
    }

    /// Observations below the threshold that end an episode.
    #[getter]
    fn episode_gap(&self) -> usize {
        self.read().thresholder().config().episode_gap
    }

    /// Observations after an alert without a new alert.
    #[getter]
    fn alert_spacing(&self) -> usize {
        self.read().thresholder().config().alert_spacing
    }

    /// The input transform.
    #[getter]
    fn transform(&self) -> &'static str {
        self.read().transform().name()
    }

    /// The coarse scales: a tuple of (block, shingle_size) pairs (``()``: none).
    #[getter]
    fn scales<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let pairs: Vec<(usize, usize)> = self
            .read()
            .scales()
            .iter()
            .map(|s| (s.block, s.shingle_size))
            .collect();
        PyTuple::new(py, pairs)
    }

    /// The full state as versioned bytes.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Result<Bound<'py, PyBytes>> {
        let b = py.detach(|| self.read().to_bytes())?;
        Ok(PyBytes::new(py, &b))
    }

    /// Restores a detector from ``to_bytes()`` output; raises ``StateError`` for bad bytes.
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &[u8]) -> Result<Self> {
        let d = py.detach(|| AnomalyDetector::from_bytes(data))?;
        Ok(PyAnomalyDetector {
            inner: RwLock::new(d),
        })
    }

    #[staticmethod]
    fn _from_bytes(py: Python<'_>, data: &[u8]) -> Result<Self> {
        Self::from_bytes(py, data)
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let ctor = slf.get_type().getattr("_from_bytes")?;
        let state = slf.get().to_bytes(py)?;
        PyTuple::new(py, [ctor.into_any(), PyTuple::new(py, [state])?.into_any()])
    }

    fn __repr__(&self) -> String {
        let d = self.read();
        let c = d.thresholder().config();
        format!(
            "AnomalyDetector(dimensions={}, shingle_size={}, z_factor={}, score_floor={}, \
             transform={:?}, scales={:?}, entries_seen={})",
            d.forest().config().dimensions,
            d.forest().config().shingle_size,
            c.z_factor,
            c.score_floor,
            d.transform().name(),
            d.scales()
                .iter()
                .map(|s| (s.block, s.shingle_size))
                .collect::<Vec<_>>(),
            d.forest().entries_seen()
        )
    }
}

/// The online thresholder of ``AnomalyDetector`` on its own: RCF scores in, graded alerts out.
///
/// For scores computed elsewhere (e.g. one ``Thresholder`` per key next to each key's forest
/// in ``KeyedForests``). Given the scores an ``AnomalyDetector`` with no input transform
/// computes, it decides exactly as that detector does (same ``grade``, ``is_anomaly``,
/// ``threshold``, ``confidence``, ``in_episode``, ``start_of_anomaly``); ``relative_index``
/// comes from the scores alone (the detector may point further back using the attribution).
///
/// Parameters
/// ----------
/// z_factor : float
///     A score is anomalous at ``mean + z_factor * deviation`` of the recent scores (default 4).
/// score_floor : float
///     The threshold never goes below this RCF score (default 1.0).
/// horizon : float
///     Horizon in scores of the time-decayed score statistics (default 2000).
/// warmup : int
///     Scores observed before the first alert (default 100).
/// episode_gap : int
///     Consecutive scores below the threshold that end an anomaly episode (default 20); an
///     episode raises one alert, at its start.
/// alert_spacing : int
///     Scores after an alert during which no new alert is raised (default 256); an anomalous
///     score then joins an episode without an alert.
///
/// A score of 0 means "the forest is not ready yet": it is neither graded nor learned.
/// Scores must be finite and >= 0 (``ValueError`` otherwise, before anything is learned).
#[pyclass(frozen, module = "rcf_fast._rcf", name = "Thresholder")]
pub struct PyThresholder {
    inner: RwLock<Thresholder>,
}

impl PyThresholder {
    fn read(&self) -> RwLockReadGuard<'_, Thresholder> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Thresholder> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn scores_vec(obj: &Bound<'_, PyAny>) -> PyResult<Vec<f64>> {
    let shape: Option<Vec<usize>> = obj.getattr("shape").ok().and_then(|s| s.extract().ok());
    if let Some(shape) = shape {
        if shape.len() != 1 {
            return Err(PyValueError::new_err(format!(
                "expected a 1-D sequence of scores, got an array of shape {shape:?}"
            )));
        }
    }
    let r = arrays::rows(obj, 1)?;
    Ok(arrays::with_slice(&r, <[f64]>::to_vec))
}

#[pymethods]
impl PyThresholder {
    #[new]
    #[pyo3(signature = (z_factor=4.0, score_floor=1.0, horizon=2000.0, warmup=100,
        episode_gap=20, alert_spacing=256))]
    fn new(
        z_factor: f64,
        score_floor: f64,
        horizon: f64,
        warmup: i64,
        episode_gap: i64,
        alert_spacing: i64,
    ) -> Result<Self> {
        let t = Thresholder::new(ThresholderConfig {
            z_factor,
            score_floor,
            horizon,
            warmup: nonneg("warmup", warmup)?,
            episode_gap: nonneg("episode_gap", episode_gap)?,
            alert_spacing: nonneg("alert_spacing", alert_spacing)?,
        })?;
        Ok(PyThresholder {
            inner: RwLock::new(t),
        })
    }

    /// Grades one score, then learns it. Returns a dict: ``grade``, ``is_anomaly``,
    /// ``threshold``, ``confidence``, ``in_episode``, ``start_of_anomaly``,
    /// ``relative_index``.
    fn process<'py>(&self, py: Python<'py>, score: f64) -> Result<Bound<'py, PyDict>> {
        Thresholder::check_scores(&[score])?;
        let d = self.write().decide(score);
        let out = PyDict::new(py);
        let is_anomaly = d.grade > 0.0;
        out.set_item("grade", d.grade)?;
        out.set_item("is_anomaly", is_anomaly)?;
        out.set_item("threshold", d.threshold)?;
        out.set_item("confidence", d.confidence)?;
        out.set_item("in_episode", d.in_episode)?;
        out.set_item("start_of_anomaly", is_anomaly)?;
        out.set_item("relative_index", d.relative_index)?;
        Ok(out)
    }

    /// Grades each score of ``scores`` (a 1-D sequence) in turn, exactly as ``process``
    /// would; returns a dict of numpy arrays (same keys as ``process``). Every score is checked
    /// before any is learned.
    fn process_many<'py>(
        &self,
        py: Python<'py>,
        scores: &Bound<'py, PyAny>,
    ) -> Result<Bound<'py, PyDict>> {
        let s = scores_vec(scores)?;
        Thresholder::check_scores(&s)?;
        let decisions: Vec<Decision> = py.detach(|| {
            let mut t = self.write();
            s.iter().map(|x| t.decide(*x)).collect()
        });
        let grade: Vec<f64> = decisions.iter().map(|d| d.grade).collect();
        let is_anomaly: Vec<bool> = grade.iter().map(|g| *g > 0.0).collect();
        let out = PyDict::new(py);
        out.set_item("grade", grade.into_pyarray(py))?;
        out.set_item("is_anomaly", is_anomaly.clone().into_pyarray(py))?;
        out.set_item(
            "threshold",
            decisions
                .iter()
                .map(|d| d.threshold)
                .collect::<Vec<f64>>()
                .into_pyarray(py),
        )?;
        out.set_item(
            "confidence",
            decisions
                .iter()
                .map(|d| d.confidence)
                .collect::<Vec<f64>>()
                .into_pyarray(py),
        )?;
        out.set_item(
            "in_episode",
            decisions
                .iter()
                .map(|d| d.in_episode)
                .collect::<Vec<bool>>()
                .into_pyarray(py),
        )?;
        out.set_item("start_of_anomaly", is_anomaly.into_pyarray(py))?;
        out.set_item(
            "relative_index",
            decisions
                .iter()
                .map(|d| d.relative_index)
                .collect::<Vec<i64>>()
                .into_pyarray(py),
        )?;
        Ok(out)
    }

    /// The threshold the next score is compared with (``inf`` during warm-up).
    #[getter]
    fn threshold(&self) -> f64 {
        self.read().threshold()
    }

    /// Scores learned so far (zeros excluded).
    #[getter]
    fn scores_seen(&self) -> u64 {
        self.read().count()
    }

    /// Whether an anomaly episode is going on (no new alert until it ends).
    #[getter]
    fn in_episode(&self) -> bool {
        self.read().in_episode()
    }

    /// Whether any of the next ``m`` scores could raise an alert (False: certainly none: still
    /// warming up, too soon after the last alert, or inside an episode that cannot end before
    /// them). Lets a caller skip work, e.g. explanations, for rows that cannot be alerts.
    fn can_alert_within(&self, m: u64) -> bool {
        self.read().can_alert_within(m)
    }

    /// The z-factor of the threshold.
    #[getter]
    fn z_factor(&self) -> f64 {
        self.read().config().z_factor
    }

    /// The absolute floor of the threshold.
    #[getter]
    fn score_floor(&self) -> f64 {
        self.read().config().score_floor
    }

    /// Horizon of the score statistics.
    #[getter]
    fn horizon(&self) -> f64 {
        self.read().config().horizon
    }

    /// Scores observed before the first alert.
    #[getter]
    fn warmup(&self) -> usize {
        self.read().config().warmup
    }

    /// Scores below the threshold that end an episode.
    #[getter]
    fn episode_gap(&self) -> usize {
        self.read().config().episode_gap
    }

    /// Scores after an alert without a new alert.
    #[getter]
    fn alert_spacing(&self) -> usize {
        self.read().config().alert_spacing
    }

    /// The full state as versioned bytes.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Result<Bound<'py, PyBytes>> {
        let b = self.read().to_bytes()?;
        Ok(PyBytes::new(py, &b))
    }

    /// Restores a thresholder from ``to_bytes()`` output (bytes, bytearray or memoryview);
    /// raises ``StateError`` for bad bytes.
    #[staticmethod]
    fn from_bytes(data: &Bound<'_, PyAny>) -> Result<Self> {
        let b = arrays::state_bytes(data)?;
        let t = Thresholder::from_bytes(&b)?;
        Ok(PyThresholder {
            inner: RwLock::new(t),
        })
    }

    #[staticmethod]
    fn _from_bytes(data: &Bound<'_, PyAny>) -> Result<Self> {
        Self::from_bytes(data)
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let ctor = slf.get_type().getattr("_from_bytes")?;
        let state = slf.get().to_bytes(py)?;
        PyTuple::new(py, [ctor.into_any(), PyTuple::new(py, [state])?.into_any()])
    }

    fn __repr__(&self) -> String {
        let t = self.read();
        let c = t.config();
        format!(
            "Thresholder(z_factor={}, score_floor={}, horizon={}, warmup={}, episode_gap={}, \
             alert_spacing={}, scores_seen={})",
            c.z_factor,
            c.score_floor,
            c.horizon,
            c.warmup,
            c.episode_gap,
            c.alert_spacing,
            t.count()
        )
    }
}

/// Registers the detector's classes on the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyThresholder>()?;
    m.add_class::<PyAnomalyDetector>()?;
    m.add_class::<PyDetectorResult>()?;
    m.add_class::<PyAlertAttribution>()?;
    Ok(())
}
