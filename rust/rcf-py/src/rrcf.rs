//! `rcf_fast._rcf.RrcfTree`: the rrcf-compatible tree (base class of `rcf_fast.rrcf.RCTree`).
//!
//! Argument checks and conversions only; the tree algorithms live in `rcf_core::rrcf`. The
//! Python layer (`rcf_fast/rrcf.py`) resolves `random_state` into `seed` / `seed_key` / `shared`
//! and subclasses this class, so per-call methods (insert, forget, codisp) are called directly.
mod dict;
mod rng;
mod views;

use numpy::{
    PyArray1, PyArray2, PyArrayDyn, PyArrayMethods, PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyKeyError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple, PyType};
use pyo3::{PyTraverseError, PyVisit};
use rcf_core::rrcf::{build, Behaviour, Inserted, Mt19937, RrcfError, RrcfTree};

use rng::{SharedGen, TreeRng};
use views::{view, LeafState, NodeRef, PyBranch, PyLeaf, PyLeaves};

static DUPLICATE_INDEX_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DIMENSION_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static NUMPY: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// Exception classes that also subclass `AssertionError`, which rrcf 0.4.4 raised for these
/// cases, so that old `except AssertionError` code keeps working.
fn error_class<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyType>>,
    name: &str,
    base: &str,
    doc: &str,
) -> PyResult<Bound<'py, PyType>> {
    let ty = cell.get_or_try_init(py, || -> PyResult<Py<PyType>> {
        let builtins = py.import("builtins")?;
        let bases = PyTuple::new(
            py,
            [builtins.getattr(base)?, builtins.getattr("AssertionError")?],
        )?;
        let ns = PyDict::new(py);
        ns.set_item("__module__", "rcf_fast.rrcf")?;
        ns.set_item("__doc__", doc)?;
        Ok(builtins
            .getattr("type")?
            .call1((name, bases, ns))?
            .cast_into::<PyType>()?
            .unbind())
    })?;
    Ok(ty.bind(py).clone())
}

fn duplicate_index_error(py: Python<'_>) -> PyResult<Bound<'_, PyType>> {
    error_class(
        py,
        &DUPLICATE_INDEX_ERROR,
        "DuplicateIndexError",
        "KeyError",
        "insert_point with an index that is already in the tree.",
    )
}

fn dimension_error(py: Python<'_>) -> PyResult<Bound<'_, PyType>> {
    error_class(
        py,
        &DIMENSION_ERROR,
        "DimensionError",
        "ValueError",
        "A point whose length differs from the tree's dimension.",
    )
}

/// Maps core errors: wrong dimension to `DimensionError` (a `ValueError`), the rest to `ValueError`.
#[allow(clippy::needless_pass_by_value)] // used as `.map_err(to_pyerr)`
pub(crate) fn to_pyerr(e: RrcfError) -> PyErr {
    if let RrcfError::Dimension { .. } = e {
        return Python::attach(|py| match dimension_error(py) {
            Ok(ty) => PyErr::from_type(ty, e.to_string()),
            Err(err) => err,
        });
    }
    PyValueError::new_err(e.to_string())
}

/// The rrcf tree with Python indices.
#[pyclass(subclass, module = "rcf_fast._rcf", name = "RrcfTree")]
pub struct PyRrcfTree {
    pub(crate) tree: RrcfTree,
    rng: TreeRng,
    /// index -> leaf slot, in rrcf's `leaves` dict order.
    pub(crate) index: Py<PyDict>,
    /// rrcf's `leaf.i` per slot (None for branches and free slots).
    pub(crate) labels: Vec<Option<Py<PyAny>>>,
    point: Vec<f64>,
    /// The `leaves` mapping, made on first use (the streaming loop reads it per point).
    leaves_view: Option<Py<PyLeaves>>,
}

impl PyRrcfTree {
    /// Reads a point (any array-like; raveled, converted to float64) into `self.point`.
    fn read_point(&mut self, py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.point.clear();
        if let Ok(arr) = obj.cast::<PyArrayDyn<f64>>() {
            // SAFETY: we copy the values right away while attached to the interpreter, and no
            // Rust code holds a mutable borrow of a user's array; skipping numpy's borrow
            // registry saves a hash-map round trip per call.
            if let Ok(s) = unsafe { arr.as_slice() } {
                self.point.extend_from_slice(s);
                return Ok(false);
            }
            self.point.extend(arr.try_readonly()?.as_array().iter());
            return Ok(false);
        }
        let np = NUMPY
            .get_or_try_init(py, || py.import("numpy").map(Bound::unbind))?
            .bind(py);
        // rrcf 0.4.4 keeps the point's own dtype: integer points make integer boxes (compat).
        let raw = np.call_method1("asarray", (obj,))?;
        let kind: String = raw.getattr("dtype")?.getattr("kind")?.extract()?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("dtype", np.getattr("float64")?)?;
        let arr = np
            .call_method("asarray", (raw,), Some(&kwargs))
            .map_err(|e| {
                PyTypeError::new_err(format!(
                    "point must be a sequence of numbers convertible to float64 ({e})"
                ))
            })?;
        let arr = arr.cast_into::<PyArrayDyn<f64>>()?;
        self.point.extend(arr.try_readonly()?.as_array().iter());
        Ok(kind == "i" || kind == "u")
    }

    /// The slot named by a Leaf view of this tree or by an index.
    fn resolve_leaf(slf: &Bound<'_, Self>, x: &Bound<'_, PyAny>) -> PyResult<u32> {
        let py = slf.py();
        if let Ok(leaf) = x.cast::<PyLeaf>() {
            let Some(node) = leaf.get().node() else {
                return Err(PyValueError::new_err(
                    "this leaf was removed from the tree by forget_point",
                ));
            };
            let me = slf.borrow();
            if node.tree.as_ptr() != slf.as_ptr() || !me.tree.is_valid(node.slot, node.generation) {
                return Err(PyValueError::new_err(
                    "this leaf is not in this tree (removed, or from another tree)",
                ));
            }
            return Ok(node.slot);
        }
        let me = slf.borrow();
        match me.index.bind(py).get_item(x)? {
            Some(slot) => slot.extract(),
            None => Err(PyKeyError::new_err(format!(
                "{} is not an index of a point in this tree (expected a key of tree.leaves or a Leaf of this tree)",
                x.repr()?
            ))),
        }
    }

    /// Views of the nodes `collect` finds below `node` (default: the root), in its order.
    fn views_under<'py>(
        slf: &Bound<'py, Self>,
        node: Option<&Bound<'py, PyAny>>,
        collect: fn(&RrcfTree, u32) -> Vec<u32>,
    ) -> PyResult<Bound<'py, PyList>> {
        let start = Self::resolve_node(slf, node)?;
        let me = slf.borrow();
        let out = PyList::empty(slf.py());
        if let Some(s) = start.or(me.tree.root()) {
            let tree_ref = slf.clone().unbind();
            for n in collect(&me.tree, s) {
                out.append(view(slf.py(), &tree_ref, &me, Some(n))?)?;
            }
        }
        Ok(out)
    }

    fn resolve_node(
        slf: &Bound<'_, Self>,
        node: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<u32>> {
        let Some(node) = node.filter(|n| !n.is_none()) else {
            return Ok(None);
        };
        let r: Option<(u32, u64, usize)> = if let Ok(l) = node.cast::<PyLeaf>() {
            l.get()
                .node()
                .map(|n| (n.slot, n.generation, n.tree.as_ptr() as usize))
        } else if let Ok(b) = node.cast::<PyBranch>() {
            let n = &b.get().node;
            Some((n.slot, n.generation, n.tree.as_ptr() as usize))
        } else {
            return Err(PyTypeError::new_err(
                "node must be a Leaf or Branch of this tree (or None for the root)",
            ));
        };
        match r {
            Some((slot, generation, tree))
                if tree == slf.as_ptr() as usize
                    && slf.borrow().tree.is_valid(slot, generation) =>
            {
                Ok(Some(slot))
            }
            _ => Err(PyValueError::new_err(
                "node is not in this tree (removed, or from another tree)",
            )),
        }
    }

    fn sync_labels(&mut self) {
        let cap = self.tree.capacity();
        if self.labels.len() < cap {
            self.labels.resize_with(cap, || None);
        }
    }
}

#[pymethods]
impl PyRrcfTree {
    #[new]
    #[pyo3(signature = (*, data=None, labels=None, precision=Some(9), seed=None, seed_key=None, shared=None, compat=false))]
    fn new(
        py: Python<'_>,
        data: Option<PyReadonlyArray2<'_, f64>>,
        labels: Option<&Bound<'_, PyList>>,
        precision: Option<i32>,
        seed: Option<u32>,
        seed_key: Option<Vec<u32>>,
        shared: Option<Bound<'_, PyAny>>,
        compat: bool,
    ) -> PyResult<Self> {
        let behaviour = if compat {
            Behaviour::Compat044
        } else {
            Behaviour::Master
        };
        let rng = match (shared, seed, seed_key) {
            (Some(s), _, _) => TreeRng::Shared(SharedGen::new(&s)?),
            (None, Some(s), _) => TreeRng::Owned(Mt19937::new(s)),
            (None, None, Some(k)) => TreeRng::Owned(Mt19937::from_key(&k)),
            (None, None, None) => {
                return Err(PyValueError::new_err(
                    "a seed, seed_key or shared generator is required",
                ))
            }
        };
        let mut me = PyRrcfTree {
            tree: RrcfTree::new(behaviour),
            rng,
            index: PyDict::new(py).unbind(),
            labels: Vec::new(),
            point: Vec::new(),
            leaves_view: None,
        };
        if let Some(data) = data {
            let shape = data.shape();
            let (n, d) = (shape[0], shape[1]);
            let flat: Vec<f64> = match data.as_slice() {
                Ok(s) => s.to_vec(),
                Err(_) => data.as_array().iter().copied().collect(),
            };
            if let Some(labels) = labels {
                if labels.len() != n {
                    return Err(PyValueError::new_err(format!(
                        "index_labels has {} entries, expected one per row of X ({n})",
                        labels.len()
                    )));
                }
            }
            if n == 0 || d == 0 {
                return Err(PyValueError::new_err(format!(
                    "X has shape ({n}, {d}); expected at least one row and one column"
                )));
            }
            if let Some(p) = flat.iter().position(|v| !v.is_finite()) {
                return Err(PyValueError::new_err(format!(
                    "X contains NaN or infinity at row {}, column {}; rrcf trees need finite values",
                    p / d,
                    p % d
                )));
            }
            let (tree, leaves, rows) = me
                .rng
                .with(py, |r| build(behaviour, &flat, d, precision, r))?
                .map_err(to_pyerr)?;
            me.tree = tree;
            me.sync_labels();
            let index = me.index.bind(py);
            for leaf in leaves {
                me.labels[leaf.slot as usize] =
                    Some(leaf.position.into_pyobject(py)?.into_any().unbind());
                for &row in &rows[leaf.rows] {
                    match labels {
                        Some(labels) => index.set_item(labels.get_item(row)?, leaf.slot)?,
                        None => index.set_item(row, leaf.slot)?,
                    }
                }
            }
        }
        Ok(me)
    }

    /// Inserts `point` under `index`; returns its leaf (an existing leaf for a duplicate point).
    #[pyo3(signature = (point, index, tolerance=None))]
    fn insert_point<'py>(
        slf: &Bound<'py, Self>,
        point: &Bound<'py, PyAny>,
        index: &Bound<'py, PyAny>,
        tolerance: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let mut guard = slf.borrow_mut();
        let me = &mut *guard;
        let int_point = me.read_point(py, point)?;
        if me.tree.root().is_some() {
            me.tree.check_point(&me.point).map_err(to_pyerr)?;
            if me.index.bind(py).contains(index)? {
                let msg = format!(
                    "index {} is already in the tree; forget_point it first or use a new index",
                    index.repr()?
                );
                return Err(PyErr::from_type(duplicate_index_error(py)?, msg));
            }
        }
        let PyRrcfTree {
            tree, rng, point, ..
        } = me;
        let inserted = rng
            .with(py, |r| tree.insert_typed(point, int_point, tolerance, r))?
            .map_err(to_pyerr)?;
        let slot = match inserted {
            Inserted::New(s) => {
                me.sync_labels();
                me.labels[s as usize] = Some(index.clone().unbind());
                s
            }
            Inserted::Duplicate(s) => s,
        };
        me.index.bind(py).set_item(index, slot)?;
        let node = NodeRef {
            tree: slf.clone().unbind(),
            slot,
            generation: me.tree.generation(slot),
        };
        drop(guard);
        Ok(Bound::new(
            py,
            PyLeaf {
                state: LeafState::Live(node),
            },
        )?
        .into_any())
    }

    /// Removes the point of `index`; returns its leaf (detached if the leaf itself was removed).
    fn forget_point<'py>(
        slf: &Bound<'py, Self>,
        index: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let slot: u32 = match slf.borrow().index.bind(py).get_item(index)? {
            Some(s) => s.extract()?,
            None => {
                return Err(PyKeyError::new_err(format!(
                    "{} is not an index of a point in this tree (expected a key of tree.leaves)",
                    index.repr()?
                )))
            }
        };
        let mut guard = slf.borrow_mut();
        let me = &mut *guard;
        let leaf = if me.tree.mass(slot) > 1 {
            me.tree.forget(slot);
            LeafState::Live(NodeRef {
                tree: slf.clone().unbind(),
                slot,
                generation: me.tree.generation(slot),
            })
        } else {
            let detached = LeafState::Detached {
                i: me.labels[slot as usize].take().unwrap_or_else(|| py.None()),
                x: me.tree.lo(slot).to_vec(),
                d: me.tree.depth(slot),
                n: me.tree.mass(slot),
            };
            me.tree.forget(slot);
            detached
        };
        me.index.bind(py).del_item(index)?;
        if me.tree.root().is_none() {
            me.labels.clear();
        }
        drop(guard);
        Ok(Bound::new(py, PyLeaf { state: leaf })?.into_any())
    }

    /// Collusive displacement (`CoDisp`) of a leaf given by index or Leaf.
    fn codisp(slf: &Bound<'_, Self>, leaf: &Bound<'_, PyAny>) -> PyResult<f64> {
        let slot = Self::resolve_leaf(slf, leaf)?;
        Ok(slf.borrow().tree.codisp(slot))
    }

    /// `CoDisp` and the cut dimension of the branch where it peaks (rrcf master).
    fn codisp_with_cut_dimension(
        slf: &Bound<'_, Self>,
        leaf: &Bound<'_, PyAny>,
    ) -> PyResult<(f64, u32)> {
        let slot = Self::resolve_leaf(slf, leaf)?;
        Ok(slf.borrow().tree.codisp_with_cut_dimension(slot))
    }

    /// Displacement: the mass of the leaf's sibling (0 at the root).
    fn disp(slf: &Bound<'_, Self>, leaf: &Bound<'_, PyAny>) -> PyResult<u64> {
        let slot = Self::resolve_leaf(slf, leaf)?;
        Ok(slf.borrow().tree.disp(slot))
    }

    /// The leaf reached by following the cuts for `point` from `node` (default: the root).
    #[pyo3(signature = (point, node=None))]
    fn query<'py>(
        slf: &Bound<'py, Self>,
        point: &Bound<'py, PyAny>,
        node: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let start = Self::resolve_node(slf, node)?;
        let mut guard = slf.borrow_mut();
        guard.read_point(py, point)?;
        let slot = guard.tree.query(&guard.point, start).map_err(to_pyerr)?;
        view(py, &slf.clone().unbind(), &guard, Some(slot))
    }

    /// The leaf holding `point` (exactly, or `np.isclose` with `rtol=tolerance`), else None.
    #[pyo3(signature = (point, tolerance=None))]
    fn find_duplicate<'py>(
        slf: &Bound<'py, Self>,
        point: &Bound<'py, PyAny>,
        tolerance: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let mut guard = slf.borrow_mut();
        guard.read_point(py, point)?;
        let found = guard
            .tree
            .find_duplicate(&guard.point, tolerance)
            .map_err(to_pyerr)?;
        view(py, &slf.clone().unbind(), &guard, found)
    }

    /// Box `[mins, maxes]` of the points below `branch` (default: the root), a (2, d) array.
    #[pyo3(signature = (branch=None))]
    fn get_bbox<'py>(
        slf: &Bound<'py, Self>,
        branch: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let py = slf.py();
        let start = Self::resolve_node(slf, branch)?;
        let me = slf.borrow();
        if me.tree.root().is_none() {
            return Err(PyValueError::new_err(
                "the tree is empty; it has no bounding box",
            ));
        }
        let (mut lo, hi) = me.tree.get_bbox(start);
        let d = lo.len();
        lo.extend_from_slice(&hi);
        PyArray1::from_vec(py, lo).reshape([2, d])
    }

    /// `leaves`: mapping index -> Leaf.
    #[getter]
    fn leaves<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyLeaves>> {
        let py = slf.py();
        if let Some(v) = &slf.borrow().leaves_view {
            return Ok(v.bind(py).clone());
        }
        let v = Bound::new(
            py,
            PyLeaves {
                tree: slf.clone().unbind(),
            },
        )?;
        slf.borrow_mut().leaves_view = Some(v.clone().unbind());
        Ok(v)
    }

    /// Root node (Leaf or Branch), or None for an empty tree.
    #[getter]
    fn root<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let me = slf.borrow();
        view(slf.py(), &slf.clone().unbind(), &me, me.tree.root())
    }

    /// Dimension of the points, or None for an empty tree.
    #[getter]
    fn ndim(&self) -> Option<usize> {
        self.tree.ndim()
    }

    /// "0.4.4" for a bit-exact rrcf 0.4.4 tree, None for rrcf master behaviour.
    #[getter]
    fn compat(&self) -> Option<&'static str> {
        (self.tree.behaviour() == Behaviour::Compat044).then_some("0.4.4")
    }

    /// Leaves below `node` (default: root), left to right.
    #[pyo3(signature = (node=None))]
    fn _leaves_under<'py>(
        slf: &Bound<'py, Self>,
        node: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        Self::views_under(slf, node, RrcfTree::leaves_under)
    }

    /// Branches below `node` (default: root) in post-order.
    #[pyo3(signature = (node=None))]
    fn _branches_under<'py>(
        slf: &Bound<'py, Self>,
        node: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        Self::views_under(slf, node, RrcfTree::branches_under)
    }

    /// The tree as rrcf's nested dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        dict::to_dict(py, self)
    }

    /// Replaces the tree with the content of a `to_dict` dict (also rrcf's own output).
    fn load_dict(&mut self, py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<()> {
        dict::load_dict(py, self, obj)
    }

    /// Pickle state: (version, tree bytes, rng state or shared generator, labels, index items).
    fn _getstate<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let tree = PyBytes::new(py, &self.tree.to_bytes());
        let rng = match &self.rng {
            TreeRng::Owned(mt) => {
                let (key, pos) = mt.state();
                (
                    PyList::new(py, key)?.into_any(),
                    pos.into_pyobject(py)?.into_any(),
                )
            }
            TreeRng::Shared(s) => (s.owner.bind(py).clone(), py.None().into_bound(py)),
        };
        let labels = PyList::new(
            py,
            self.labels
                .iter()
                .map(|l| l.as_ref().map(|o| o.clone_ref(py))),
        )?;
        let items = self.index.bind(py).items();
        PyTuple::new(
            py,
            [
                1u32.into_pyobject(py)?.into_any(),
                tree.into_any(),
                rng.0,
                rng.1,
                labels.into_any(),
                items.into_any(),
            ],
        )
    }

    /// Restores `_getstate` output into this tree.
    fn _setstate(&mut self, py: Python<'_>, state: &Bound<'_, PyTuple>) -> PyResult<()> {
        let bad = || PyValueError::new_err("not a pickled rcf_fast.rrcf tree state (version 1)");
        if state.len() != 6 || state.get_item(0)?.extract::<u32>().ok() != Some(1) {
            return Err(bad());
        }
        let bytes = state.get_item(1)?;
        let tree = RrcfTree::from_bytes(bytes.cast::<PyBytes>()?.as_bytes()).ok_or_else(bad)?;
        let rng_a = state.get_item(2)?;
        let rng = if let Ok(key) = rng_a.extract::<Vec<u32>>() {
            let pos: usize = state.get_item(3)?.extract()?;
            TreeRng::Owned(Mt19937::from_state(key, pos).ok_or_else(bad)?)
        } else {
            TreeRng::Shared(SharedGen::new(&rng_a)?)
        };
        let labels: Vec<Option<Py<PyAny>>> = state.get_item(4)?.extract()?;
        let index = PyDict::new(py);
        for item in state.get_item(5)?.try_iter()? {
            let (k, v): (Bound<'_, PyAny>, u32) = item?.extract()?;
            index.set_item(k, v)?;
        }
        self.tree = tree;
        self.rng = rng;
        self.labels = labels;
        self.index = index.unbind();
        self.sync_labels();
        Ok(())
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.index)?;
        for l in self.labels.iter().flatten() {
            visit.call(l)?;
        }
        if let TreeRng::Shared(s) = &self.rng {
            visit.call(&s.owner)?;
        }
        if let Some(v) = &self.leaves_view {
            visit.call(v)?;
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        self.labels.clear();
        self.leaves_view = None;
    }
}

/// Adds the rrcf classes and exceptions to the extension module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<PyRrcfTree>()?;
    m.add_class::<PyLeaf>()?;
    m.add_class::<PyBranch>()?;
    m.add_class::<PyLeaves>()?;
    m.add("DuplicateIndexError", duplicate_index_error(py)?)?;
    m.add("DimensionError", dimension_error(py)?)?;
    Ok(())
}
