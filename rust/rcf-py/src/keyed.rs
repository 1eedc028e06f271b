//! `KeyedForests`: argument checks, one core call with the GIL released, and the store. A
//! directory store is plain file I/O (no GIL); a mapping store is called with the GIL taken
//! back only for that call. The collection's lock is only ever taken with the GIL released,
//! so a thread waiting for it never holds the GIL that the lock's holder may need.
use std::sync::{Mutex, MutexGuard};

use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray2};
use pyo3::exceptions::{PyKeyError, PyOSError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyIterator, PyList, PyString, PyTuple};
use rcf_core::keyed::{DirStore, KeyedError, Mode, Store};
use rcf_core::{ForestConfig, KeyedConfig, KeyedForests, SamplerKind, ScoringKind};

use crate::arrays;
use crate::errors::Error;
use crate::forest::forest_config;
use crate::forest::{PyAttribution, PyForest};

/// Where evicted keys go.
enum StoreKind {
    None,
    Dir(DirStore),
    Mapping(Py<PyAny>),
}

/// The store as the core sees it.
struct Io<'a>(&'a StoreKind);

impl Store for Io<'_> {
    type Error = PyErr;

    fn get(&mut self, key: &str) -> PyResult<Option<Vec<u8>>> {
        match self.0 {
            StoreKind::None => Ok(None),
            StoreKind::Dir(d) => d.clone().get(key).map_err(|e| {
                PyOSError::new_err(format!("store directory {}: {e}", d.dir().display()))
            }),
            StoreKind::Mapping(m) => Python::attach(|py| {
                let v = match m.bind(py).get_item(key) {
                    Ok(v) => v,
                    Err(e) if e.is_instance_of::<PyKeyError>(py) => return Ok(None),
                    Err(e) => return Err(e),
                };
                if let Ok(b) = v.cast::<PyBytes>() {
                    return Ok(Some(b.as_bytes().to_vec()));
                }
                v.extract::<Vec<u8>>().map(Some).map_err(|_| {
                    PyTypeError::new_err(format!(
                        "the store returned {} for key {key:?}, expected bytes",
                        type_name(&v)
                    ))
                })
            }),
        }
    }

    fn put(&mut self, key: &str, bytes: &[u8]) -> PyResult<()> {
        match self.0 {
            StoreKind::None => Ok(()),
            StoreKind::Dir(d) => d.clone().put(key, bytes).map_err(|e| {
                PyOSError::new_err(format!("store directory {}: {e}", d.dir().display()))
            }),
            StoreKind::Mapping(m) => {
                Python::attach(|py| m.bind(py).set_item(key, PyBytes::new(py, bytes)))
            }
        }
    }
}

fn keyed_err(e: KeyedError<PyErr>) -> PyErr {
    match e {
        KeyedError::Forest(e) => Error::Core(e).into(),
        KeyedError::Store(e) => e,
    }
}

fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .name()
        .map_or_else(|_| "?".into(), |n| n.to_string())
}

fn nonneg(name: &str, v: i64) -> PyResult<usize> {
    usize::try_from(v).map_err(|_| {
        PyValueError::new_err(format!("invalid parameter `{name}`: must be >= 0, got {v}"))
    })
}

fn key_str(key: &Bound<'_, PyAny>, at: Option<usize>) -> PyResult<String> {
    match key.cast::<PyString>() {
        Ok(s) => Ok(s.to_cow()?.into_owned()),
        Err(_) => Err(PyTypeError::new_err(match at {
            Some(i) => format!("keys must be str, got {} at position {i}", type_name(key)),
            None => format!("key must be str, got {}", type_name(key)),
        })),
    }
}

/// `x` as rows of `dims` values, one per key of `keys`.
fn rows_for<'py>(
    x: &Bound<'py, PyAny>,
    dims: usize,
    keys: &[String],
) -> PyResult<PyReadonlyArray2<'py, f64>> {
    let rows = arrays::rows(x, dims)?;
    let n = rows.as_array().nrows();
    if n != keys.len() {
        return Err(PyValueError::new_err(format!(
            "expected one key per row: got {} keys and {n} rows",
            keys.len()
        )));
    }
    Ok(rows)
}

/// Every key of a sequence (list, tuple, numpy array of str, any iterable), checked first.
fn key_list(keys: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if keys.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(
            "keys must be a sequence of str (one per row), got a single str",
        ));
    }
    let it = keys.try_iter().map_err(|_| {
        PyTypeError::new_err(format!(
            "keys must be a sequence of str (one per row), got {}",
            type_name(keys)
        ))
    })?;
    it.enumerate().map(|(i, k)| key_str(&k?, Some(i))).collect()
}

/// The store argument: None, a directory (str or os.PathLike), or a mapping of str to bytes.
fn store_arg(store: Option<&Bound<'_, PyAny>>) -> PyResult<(StoreKind, Option<Py<PyAny>>)> {
    let Some(s) = store.filter(|s| !s.is_none()) else {
        return Ok((StoreKind::None, None));
    };
    let py = s.py();
    let os = py.import("os")?;
    if s.is_instance_of::<PyString>() || s.is_instance(&os.getattr("PathLike")?)? {
        let path: String = os.call_method1("fspath", (s,))?.extract().map_err(|_| {
            PyTypeError::new_err("invalid parameter `store`: a bytes path is not supported")
        })?;
        let d = DirStore::new(&path).map_err(|e| {
            PyOSError::new_err(format!(
                "invalid parameter `store`: cannot use directory {path:?}: {e}"
            ))
        })?;
        return Ok((StoreKind::Dir(d), Some(s.clone().unbind())));
    }
    if s.hasattr("__getitem__")? && s.hasattr("__setitem__")? {
        return Ok((
            StoreKind::Mapping(s.clone().unbind()),
            Some(s.clone().unbind()),
        ));
    }
    Err(PyTypeError::new_err(format!(
        "invalid parameter `store`: expected a directory path or a MutableMapping[str, bytes], \
         got {}",
        type_name(s)
    )))
}

/// Many streams, one forest per key, at full speed.
///
/// Every key's forest has the parameters of :class:`RandomCutForest` (same names, same
/// defaults) and its own seed, ``KeyedForests.derive_seed(seed, key)`` =
/// ``splitmix64(seed ^ fnv1a64(key.encode("utf-8")))``, so a key gets the same forest in any
/// process: ``RandomCutForest(..., seed=KeyedForests.derive_seed(seed, key))`` fed the key's
/// rows gives the same scores bit for bit. With ``seed=None`` a seed is drawn once and kept in
/// the state.
///
/// Batch calls take one key per row; a key's rows are applied in order, each forest is visited
/// once per batch, and different keys run in parallel (the GIL is released). Each forest is
/// single-threaded; ``threads`` is the number of keys processed at once (None: all cores).
///
/// Parameters
/// ----------
/// dimensions, shingle_size, num_trees, sample_size, time_decay, sampler, scoring, output_after, seed, threads
///     As for :class:`RandomCutForest`.
/// memory_limit : int or None
///     Bytes of resident forests to stay under; least recently used keys are saved to
///     ``store`` and dropped, and loaded back (continuing exactly) when touched.
/// max_keys : int or None
///     Resident keys to stay under (same mechanism).
/// store : str, os.PathLike, MutableMapping[str, bytes] or None
///     Where evicted keys go: a directory (one file per key) or a mapping. A key's record is
///     its forest's ``to_bytes()``. Keys already in the store are found when touched.
/// idle_ttl : float or None
///     Seconds after which an untouched key is saved (with a store) and dropped; without a
///     store it is forgotten.
#[pyclass(frozen, module = "rcf_fast._rcf", name = "KeyedForests")]
pub struct PyKeyed {
    inner: Mutex<KeyedForests>,
    store: StoreKind,
    store_obj: Option<Py<PyAny>>,
}

impl PyKeyed {
    fn lock(&self) -> MutexGuard<'_, KeyedForests> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` on the collection and the store with the GIL released.
    fn with<R: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut KeyedForests, &mut Io<'_>) -> Result<R, KeyedError<PyErr>> + Send,
    ) -> PyResult<R> {
        py.detach(|| {
            let mut k = self.lock();
            f(&mut k, &mut Io(&self.store))
        })
        .map_err(keyed_err)
    }

    fn dims(&self, py: Python<'_>) -> usize {
        py.detach(|| self.lock().config().forest.dimensions)
    }

    fn many<'py>(
        &self,
        py: Python<'py>,
        keys: &Bound<'py, PyAny>,
        x: &Bound<'py, PyAny>,
        mode: Mode,
    ) -> PyResult<Vec<f64>> {
        let keys = key_list(keys)?;
        let rows = rows_for(x, self.dims(py), &keys)?;
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        arrays::with_slice(&rows, |s| {
            self.with(py, |k, io| k.run_many(io, &refs, s, mode))
        })
    }

    fn one(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        x: &Bound<'_, PyAny>,
        mode: Mode,
    ) -> PyResult<f64> {
        let key = key_str(key, None)?;
        let x = arrays::point(x, self.dims(py))?;
        Ok(self.with(py, |k, io| k.run_many(io, &[key.as_str()], &x, mode))?[0])
    }
}

#[pymethods]
impl PyKeyed {
    #[new]
    #[pyo3(signature = (dimensions=None, shingle_size=None, num_trees=None, sample_size=None,
        time_decay=None, sampler="decay", scoring="rcf", output_after=None, seed=None,
        threads=None, *, memory_limit=None, max_keys=None, store=None, idle_ttl=None),
        text_signature = "(dimensions=1, shingle_size=1, num_trees=100, sample_size=256, \
            time_decay=None, sampler='decay', scoring='rcf', output_after=None, seed=None, \
            threads=None, *, memory_limit=None, max_keys=None, store=None, idle_ttl=None)")]
    fn new(
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
        memory_limit: Option<i64>,
        max_keys: Option<i64>,
        store: Option<&Bound<'_, PyAny>>,
        idle_ttl: Option<f64>,
    ) -> crate::errors::Result<Self> {
        let config = KeyedConfig {
            forest: forest_config(
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
            )?,
            memory_limit: memory_limit
                .map(|v| nonneg("memory_limit", v))
                .transpose()?,
            max_keys: max_keys.map(|v| nonneg("max_keys", v)).transpose()?,
            idle_ttl,
        };
        let (store, store_obj) = store_arg(store)?;
        let has_store = !matches!(store, StoreKind::None);
        let inner = KeyedForests::new(config, has_store)?;
        Ok(PyKeyed {
            inner: Mutex::new(inner),
            store,
            store_obj,
        })
    }

    /// The seed of ``key``'s forest in a collection seeded with ``seed``:
    /// ``splitmix64(seed ^ fnv1a64(key.encode("utf-8")))``.
    #[staticmethod]
    fn derive_seed(seed: u64, key: &Bound<'_, PyAny>) -> PyResult<u64> {
        Ok(rcf_core::keyed::key_seed(seed, &key_str(key, None)?))
    }

    /// The seed of ``key``'s forest in this collection.
    fn seed_of(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<u64> {
        let key = key_str(key, None)?;
        Ok(py.detach(|| self.lock().key_seed(&key)))
    }

    /// Anomaly score of ``x`` for ``key`` without learning it (0.0 for a key not seen yet).
    fn score(&self, py: Python<'_>, key: &Bound<'_, PyAny>, x: &Bound<'_, PyAny>) -> PyResult<f64> {
        self.one(py, key, x, Mode::Score)
    }

    /// Learns observation ``x`` of ``key``.
    fn update(&self, py: Python<'_>, key: &Bound<'_, PyAny>, x: &Bound<'_, PyAny>) -> PyResult<()> {
        self.one(py, key, x, Mode::Update).map(|_| ())
    }

    /// Scores observation ``x`` of ``key``, then learns it: the streaming call.
    fn score_update(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        x: &Bound<'_, PyAny>,
    ) -> PyResult<f64> {
        self.one(py, key, x, Mode::ScoreUpdate)
    }

    /// Scores then learns each row of ``X`` (shape ``(n, dimensions)``) for the key of that row
    /// (``keys``: n str): bit-identical to ``score_update`` row by row. Releases the GIL.
    fn score_update_many<'py>(
        &self,
        py: Python<'py>,
        keys: &Bound<'py, PyAny>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        Ok(self.many(py, keys, x, Mode::ScoreUpdate)?.into_pyarray(py))
    }

    /// Score-then-learn like ``score_update_many`` (bit-identical scores), and the attribution
    /// of exactly the rows scoring at least ``min_score``, computed on the key's forest before
    /// that row is learned (what ``attribution(x)`` then ``score_update(x)`` give; shingle
    /// positions summed per input dimension). ``-inf`` explains every row, ``inf`` none.
    /// ``min_score`` is one number for every row, or one per row (a 1-D sequence).
    /// Returns ``(scores, rows, high, low)``: ``rows`` the explained row indices (ascending),
    /// ``high``/``low`` of shape ``(len(rows), dimensions)``. Releases the GIL.
    fn score_update_explain<'py>(
        &self,
        py: Python<'py>,
        keys: &Bound<'py, PyAny>,
        x: &Bound<'py, PyAny>,
        min_score: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let keys = key_list(keys)?;
        let bounds: Vec<f64> = match min_score.extract::<f64>() {
            Ok(m) => vec![m; keys.len()],
            Err(_) => min_score.extract::<Vec<f64>>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "min_score must be a number or a sequence of one number per row, got {}",
                    min_score
                        .get_type()
                        .name()
                        .map_or_else(|_| "?".into(), |n| n.to_string())
                ))
            })?,
        };
        let d = self.dims(py);
        let rows = rows_for(x, d, &keys)?;
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let (scores, explained) = arrays::with_slice(&rows, |s| {
            self.with(py, |k, io| {
                k.score_update_explain_rows(io, &refs, s, &bounds)
            })
        })?;
        let m = explained.len();
        let mut idx = Vec::with_capacity(m);
        let mut high = Vec::with_capacity(m * d);
        let mut low = Vec::with_capacity(m * d);
        for (i, a) in explained {
            idx.push(i as i64);
            high.extend_from_slice(&a.high);
            low.extend_from_slice(&a.low);
        }
        let shape = |v: Vec<f64>| -> PyResult<Bound<'py, PyArray2<f64>>> {
            v.into_pyarray(py).reshape([m, d])
        };
        PyTuple::new(
            py,
            [
                scores.into_pyarray(py).into_any(),
                idx.into_pyarray(py).into_any(),
                shape(high)?.into_any(),
                shape(low)?.into_any(),
            ],
        )
    }

    /// Makes ``data`` (a ``RandomCutForest.to_bytes()`` with this collection's parameters and
    /// any seed) the forest of ``key``; the key continues exactly that forest and keeps its
    /// seed (``seed_of(key)``). For states of an older release that derived seeds otherwise.
    /// Raises ``StateError`` for bytes that are not such a forest.
    fn adopt(&self, py: Python<'_>, key: &Bound<'_, PyAny>, data: &[u8]) -> PyResult<()> {
        let key = key_str(key, None)?;
        self.with(py, |k, io| k.adopt(io, &key, data))
    }

    /// Declares that the forest of ``key`` saved in the store has seed ``seed`` (one adopted
    /// earlier) instead of the derived one, so that loading it is accepted.
    fn set_key_seed(&self, py: Python<'_>, key: &Bound<'_, PyAny>, seed: u64) -> PyResult<()> {
        let key = key_str(key, None)?;
        py.detach(|| self.lock().set_key_seed(&key, seed))
            .map_err(|e| Error::Core(e).into())
    }

    /// How many distinct keys a batch call processes in one wave (None: no limit). A batch
    /// with at most that many keys saves (evicts) none of its keys before all its rows are
    /// learned.
    fn keys_at_once(&self, py: Python<'_>) -> Option<usize> {
        py.detach(|| self.lock().keys_at_once())
    }

    /// Keys whose seed is not the derived one, with their seeds (sorted by key).
    fn seed_overrides(&self, py: Python<'_>) -> Vec<(String, u64)> {
        py.detach(|| self.lock().seed_overrides())
    }

    /// Scores each row of ``X`` for its key without learning; a key's later rows are shingled
    /// with its earlier ones. Releases the GIL.
    fn score_many<'py>(
        &self,
        py: Python<'py>,
        keys: &Bound<'py, PyAny>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        Ok(self.many(py, keys, x, Mode::Score)?.into_pyarray(py))
    }

    /// Learns each row of ``X`` for its key. Releases the GIL.
    fn update_many(
        &self,
        py: Python<'_>,
        keys: &Bound<'_, PyAny>,
        x: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        self.many(py, keys, x, Mode::Update).map(|_| ())
    }

    /// Which input dimension made ``x`` anomalous for ``key``, and in which direction.
    fn attribution(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        x: &Bound<'_, PyAny>,
    ) -> PyResult<PyAttribution> {
        let key = key_str(key, None)?;
        let x = arrays::point(x, self.dims(py))?;
        let a = self.with(py, |k, io| k.attribution(io, &key, &x))?;
        Ok(PyAttribution::from_core(py, a))
    }

    /// A copy of ``key``'s forest as a :class:`RandomCutForest` (its ``threads`` set to this
    /// collection's); changing the copy does not change the collection. ``KeyError`` for a key
    /// neither in memory nor in the store.
    fn forest<'py>(&self, py: Python<'py>, key: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let k = key_str(key, None)?;
        let bytes = self.with(py, |c, io| c.forest_bytes(io, &k))?;
        let Some(bytes) = bytes else {
            return Err(PyKeyError::new_err(k));
        };
        let threads = py.detach(|| self.lock().config().forest.threads);
        let f = py
            .get_type::<PyForest>()
            .call_method1("from_bytes", (PyBytes::new(py, &bytes),))?;
        f.setattr("threads", threads)?;
        Ok(f)
    }

    /// Every known key (resident or saved by this collection), sorted.
    fn keys(&self, py: Python<'_>) -> Vec<String> {
        py.detach(|| self.lock().keys())
    }

    /// Keys whose forests are in memory, sorted.
    fn resident_keys(&self, py: Python<'_>) -> Vec<String> {
        py.detach(|| self.lock().resident_keys())
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyIterator>> {
        PyList::new(py, self.keys(py))?.try_iter()
    }

    fn __len__(&self, py: Python<'_>) -> usize {
        py.detach(|| self.lock().len())
    }

    fn __contains__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        let key = key_str(key, None)?;
        Ok(py.detach(|| self.lock().contains(&key)))
    }

    /// Approximate bytes of memory held by the resident forests.
    fn memory_usage(&self, py: Python<'_>) -> usize {
        py.detach(|| self.lock().memory_usage())
    }

    /// Saves every key changed since it was last saved; returns how many were written.
    fn flush(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |k, io| k.flush(io))
    }

    /// Every key's forest (evicted ones read from the store) and the parameters, as versioned,
    /// checksummed bytes.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let b = self.with(py, |k, io| k.to_bytes(io))?;
        Ok(PyBytes::new(py, &b))
    }

    /// Restores a collection from ``to_bytes()`` output, with ``store`` for its evicted keys
    /// (needed when it has ``memory_limit`` or ``max_keys``); raises ``StateError`` for bad
    /// bytes.
    #[staticmethod]
    #[pyo3(signature = (data, store=None))]
    fn from_bytes(
        py: Python<'_>,
        data: &[u8],
        store: Option<&Bound<'_, PyAny>>,
    ) -> crate::errors::Result<Self> {
        let (store, store_obj) = store_arg(store)?;
        let has_store = !matches!(store, StoreKind::None);
        let inner = py.detach(|| KeyedForests::from_bytes(data, has_store))?;
        let k = PyKeyed {
            inner: Mutex::new(inner),
            store,
            store_obj,
        };
        k.with(py, |c, io| c.enforce(io))?;
        Ok(k)
    }

    #[staticmethod]
    #[pyo3(signature = (data, store=None))]
    fn _from_bytes(
        py: Python<'_>,
        data: &[u8],
        store: Option<&Bound<'_, PyAny>>,
    ) -> crate::errors::Result<Self> {
        Self::from_bytes(py, data, store)
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let ctor = slf.get_type().getattr("_from_bytes")?;
        let state = slf.get().to_bytes(py)?;
        let store = match &slf.get().store_obj {
            Some(s) => s.bind(py).clone(),
            None => py.None().into_bound(py),
        };
        PyTuple::new(
            py,
            [
                ctor.into_any(),
                PyTuple::new(py, [state.into_any(), store])?.into_any(),
            ],
        )
    }

    #[getter]
    fn dimensions(&self, py: Python<'_>) -> usize {
        self.dims(py)
    }

    #[getter]
    fn shingle_size(&self, py: Python<'_>) -> usize {
        py.detach(|| self.lock().config().forest.shingle_size)
    }

    #[getter]
    fn num_trees(&self, py: Python<'_>) -> usize {
        py.detach(|| self.lock().config().forest.num_trees)
    }

    #[getter]
    fn sample_size(&self, py: Python<'_>) -> usize {
        py.detach(|| self.lock().config().forest.sample_size)
    }

    /// λ in force (the default resolved).
    #[getter]
    fn time_decay(&self, py: Python<'_>) -> f64 {
        py.detach(|| self.lock().config().forest.effective_time_decay())
    }

    #[getter]
    fn sampler(&self, py: Python<'_>) -> &'static str {
        SamplerKind::name(py.detach(|| self.lock().config().forest.sampler))
    }

    #[getter]
    fn scoring(&self, py: Python<'_>) -> &'static str {
        ScoringKind::name(py.detach(|| self.lock().config().forest.scoring))
    }

    /// Points learned before scores are reported (the default resolved).
    #[getter]
    fn output_after(&self, py: Python<'_>) -> usize {
        py.detach(|| self.lock().config().forest.effective_output_after())
    }

    /// The collection's seed (drawn at construction when none was given).
    #[getter]
    fn seed(&self, py: Python<'_>) -> u64 {
        py.detach(|| self.lock().seed())
    }

    /// Keys processed at once (None: all cores); each forest is single-threaded.
    #[getter]
    fn threads(&self, py: Python<'_>) -> Option<usize> {
        py.detach(|| self.lock().config().forest.threads)
    }

    #[getter]
    fn memory_limit(&self, py: Python<'_>) -> Option<usize> {
        py.detach(|| self.lock().config().memory_limit)
    }

    #[getter]
    fn max_keys(&self, py: Python<'_>) -> Option<usize> {
        py.detach(|| self.lock().config().max_keys)
    }

    #[getter]
    fn idle_ttl(&self, py: Python<'_>) -> Option<f64> {
        py.detach(|| self.lock().config().idle_ttl)
    }

    /// The store given at construction (None without one).
    #[getter]
    fn store(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.store_obj.as_ref().map(|s| s.clone_ref(py))
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let (c, n, r, b) = py.detach(|| {
            let k = self.lock();
            (
                k.config().clone(),
                k.len(),
                k.resident_keys().len(),
                k.memory_usage(),
            )
        });
        format!(
            "KeyedForests(dimensions={}, shingle_size={}, num_trees={}, sample_size={}, \
             keys={n}, resident={r}, memory_usage={b}, memory_limit={:?}, max_keys={:?})",
            c.forest.dimensions,
            c.forest.shingle_size,
            c.forest.num_trees,
            c.forest.sample_size,
            c.memory_limit,
            c.max_keys
        )
    }
}
