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
use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::exceptions::{PyKeyError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple, PyType};
use pyo3::{PyTraverseError, PyVisit};
use rcf_core::rrcf::{
    build, insert_point_cut, Behaviour, Inserted, Mt19937, RrcfError, RrcfTree, UniformSource,
};

use rng::{Lease, SharedGen, TreeRng};
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

/// Runs a method body; a panic (an internal invariant failure; none is known to be reachable)
/// becomes a `RuntimeError` instead of pyo3's `PanicException`, which `except Exception` misses.
pub(crate) fn guarded<T>(f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        Err(PyRuntimeError::new_err(format!(
            "internal error in rcf_fast.rrcf ({what}); please report it"
        )))
    })
}

/// Borrows the tree for reading; a call re-entering the tree while it is being changed (from an
/// index's `__eq__` or `__hash__`) gets a `RuntimeError` instead of a panic.
pub(crate) fn read<'py>(t: &Bound<'py, PyRrcfTree>) -> PyResult<PyRef<'py, PyRrcfTree>> {
    t.try_borrow().map_err(|_| busy())
}

/// Borrows the tree for changing it (see [`read`]).
pub(crate) fn write<'py>(t: &Bound<'py, PyRrcfTree>) -> PyResult<PyRefMut<'py, PyRrcfTree>> {
    t.try_borrow_mut().map_err(|_| busy())
}

fn busy() -> PyErr {
    PyRuntimeError::new_err(
        "this rrcf tree is in the middle of another operation (re-entered from an index's \
         __eq__/__hash__ or from another thread); retry after it returns",
    )
}

fn not_a_leaf(slot: u32) -> PyErr {
    PyValueError::new_err(format!(
        "index refers to slot {slot}, which is not a leaf of this tree (inconsistent tree state)"
    ))
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

/// Reads a point (any array-like of numbers; raveled, converted to float64) into `out`; returns
/// whether it was an integer array. Runs Python code: call it without a borrow of the tree.
fn read_point(py: Python<'_>, obj: &Bound<'_, PyAny>, out: &mut Vec<f64>) -> PyResult<bool> {
    out.clear();
    if let Ok(arr) = obj.cast::<PyArrayDyn<f64>>() {
        // SAFETY: the values are copied right away while attached to the interpreter, and no
        // Rust code holds a mutable borrow of a user's array; skipping numpy's borrow registry
        // saves a hash-map round trip per call. `as_slice` fails (and we take the checked path)
        // for a non-contiguous array.
        if let Ok(s) = unsafe { arr.as_slice() } {
            out.extend_from_slice(s);
            return Ok(false);
        }
        out.extend(arr.try_readonly()?.as_array().iter());
        return Ok(false);
    }
    let np = NUMPY
        .get_or_try_init(py, || py.import("numpy").map(Bound::unbind))?
        .bind(py);
    let expected = || {
        format!(
            "point must be an array-like of numbers (a list, tuple or numpy array of int or \
             float), got {}",
            obj.repr().map_or_else(
                |_| "?".to_string(),
                |r| r.to_string().chars().take(80).collect::<String>()
            )
        )
    };
    // rrcf 0.4.4 keeps the point's own dtype: integer points make integer boxes (compat).
    let raw = np
        .call_method1("asarray", (obj,))
        .map_err(|e| PyTypeError::new_err(format!("{} ({e})", expected())))?;
    let kind: String = raw.getattr("dtype")?.getattr("kind")?.extract()?;
    if !matches!(kind.as_str(), "b" | "i" | "u" | "f") {
        // None, strings, ragged lists and objects would become NaN or fail in arithmetic.
        return Err(PyTypeError::new_err(expected()));
    }
    let kwargs = PyDict::new(py);
    kwargs.set_item("dtype", np.getattr("float64")?)?;
    let arr = np
        .call_method("asarray", (raw,), Some(&kwargs))
        .map_err(|e| PyTypeError::new_err(format!("{} ({e})", expected())))?;
    let arr = arr.cast_into::<PyArrayDyn<f64>>()?;
    out.extend(arr.try_readonly()?.as_array().iter());
    Ok(kind == "i" || kind == "u")
}

/// A node of some rrcf tree named by a view: its tree and slot (checked to be live).
struct Located<'py> {
    tree: Bound<'py, PyRrcfTree>,
    slot: u32,
}

/// The tree and slot of a live Leaf or Branch view (of any tree, as rrcf's helpers accept).
fn locate<'py>(py: Python<'py>, node: &Bound<'py, PyAny>) -> PyResult<Option<Located<'py>>> {
    let r = if let Ok(l) = node.cast::<PyLeaf>() {
        match l.get().node() {
            Some(n) => (n.tree.bind(py).clone(), n.slot, n.generation),
            None => return Ok(None),
        }
    } else if let Ok(b) = node.cast::<PyBranch>() {
        let n = &b.get().node;
        (n.tree.bind(py).clone(), n.slot, n.generation)
    } else {
        return Err(PyTypeError::new_err(format!(
            "node must be a Leaf or Branch of an rrcf tree (or None for the root), got {}",
            node.get_type()
                .name()
                .map_or_else(|_| "?".into(), |n| n.to_string())
        )));
    };
    if !read(&r.0)?.tree.is_valid(r.1, r.2) {
        return Err(PyValueError::new_err(
            "node was removed from its tree (views of removed nodes cannot be used)",
        ));
    }
    Ok(Some(Located {
        tree: r.0,
        slot: r.1,
    }))
}

impl PyRrcfTree {
    /// The leaf slot named by a Leaf view of this tree or by an index.
    fn resolve_leaf(slf: &Bound<'_, Self>, x: &Bound<'_, PyAny>) -> PyResult<u32> {
        let py = slf.py();
        if let Ok(leaf) = x.cast::<PyLeaf>() {
            let Some(node) = leaf.get().node() else {
                return Err(PyValueError::new_err(
                    "this leaf was removed from the tree by forget_point",
                ));
            };
            let me = read(slf)?;
            if node.tree.as_ptr() != slf.as_ptr() || !me.tree.is_valid(node.slot, node.generation) {
                return Err(PyValueError::new_err(
                    "this leaf is not in this tree (removed, or from another tree)",
                ));
            }
            return Ok(node.slot);
        }
        // The lookup may run the key's __eq__, which may use the tree: no borrow is held.
        let index = read(slf)?.index.clone_ref(py);
        let found = index.bind(py).get_item(x)?;
        let slot: u32 = match found {
            Some(slot) => slot.extract()?,
            None => {
                return Err(PyKeyError::new_err(format!(
                    "{} is not an index of a point in this tree (expected a key of tree.leaves or a Leaf of this tree)",
                    x.repr()?
                )))
            }
        };
        if !read(slf)?.tree.is_live_leaf(slot) {
            return Err(not_a_leaf(slot));
        }
        Ok(slot)
    }

    /// Views of the nodes `collect` finds below `node` (default: this tree's root), in its order.
    /// A node of another tree is walked in its own tree, as rrcf's `map_leaves` does.
    fn views_under<'py>(
        slf: &Bound<'py, Self>,
        node: Option<&Bound<'py, PyAny>>,
        collect: fn(&RrcfTree, u32) -> Vec<u32>,
        leaves: bool,
    ) -> PyResult<Bound<'py, PyList>> {
        let py = slf.py();
        let (tree, start) = match node.filter(|n| !n.is_none()) {
            Some(n) => {
                let Some(l) = locate(py, n)? else {
                    // A detached (forgotten) leaf: rrcf calls op on it, a leaf is its own subtree.
                    let out = PyList::empty(py);
                    if leaves {
                        out.append(n)?;
                    }
                    return Ok(out);
                };
                (l.tree, Some(l.slot))
            }
            None => (slf.clone(), None),
        };
        let me = read(&tree)?;
        let out = PyList::empty(py);
        if let Some(s) = start.or(me.tree.root()) {
            let tree_ref = tree.clone().unbind();
            for n in collect(&me.tree, s) {
                out.append(view(py, &tree_ref, &me, Some(n))?)?;
            }
        }
        Ok(out)
    }

    fn sync_labels(&mut self) {
        let cap = self.tree.capacity();
        if self.labels.len() < cap {
            self.labels.resize_with(cap, || None);
        }
    }

    /// Runs `f` on the tree with its random source: the shared generator is leased first (Python
    /// code, no borrow held), then the tree is borrowed for `f`, which runs no Python code.
    fn with_rng<T>(
        slf: &Bound<'_, Self>,
        f: impl FnOnce(&mut PyRrcfTree, &mut dyn UniformSource) -> T,
    ) -> PyResult<T> {
        let py = slf.py();
        let shared = read(slf)?.rng.shared_owner(py);
        let mut lease: Option<Lease<'_>> = match &shared {
            Some(s) => Some(s.lease(py)?),
            None => None,
        };
        let mut guard = write(slf)?;
        let me = &mut *guard;
        let mut rng = std::mem::replace(&mut me.rng, TreeRng::Owned(Mt19937::new(0)));
        let out = match rng.source(lease.as_mut()) {
            Some(src) => Ok(f(me, src)),
            None => Err(PyRuntimeError::new_err(
                "the tree's random generator changed during the call; retry",
            )),
        };
        me.rng = rng;
        drop(guard);
        drop(lease);
        out
    }

    /// Checks a rebuilt index: every slot is a live leaf named by no more indices than its mass
    /// (so forgetting every index can never remove a leaf another index still names).
    fn check_index(tree: &RrcfTree, index: &Bound<'_, PyDict>) -> PyResult<()> {
        let mut count = vec![0u64; tree.capacity()];
        for (_, v) in index.iter() {
            let slot: u32 = v
                .extract()
                .map_err(|_| PyValueError::new_err("index slots must be ints"))?;
            if !tree.is_live_leaf(slot) {
                return Err(not_a_leaf(slot));
            }
            count[slot as usize] += 1;
            if count[slot as usize] > tree.mass(slot) {
                return Err(PyValueError::new_err(format!(
                    "leaf in slot {slot} is named by more indices than its mass {}",
                    tree.mass(slot)
                )));
            }
        }
        Ok(())
    }
}

/// Reads the precision argument: an int in C `int` range (numpy's limit), else `ValueError`.
fn precision_arg(p: Option<&Bound<'_, PyAny>>) -> PyResult<Option<i32>> {
    let Some(p) = p.filter(|p| !p.is_none()) else {
        return Ok(None);
    };
    let v: i128 = p.extract().map_err(|_| {
        PyTypeError::new_err(format!(
            "precision must be an int, got {}",
            p.repr().map_or_else(|_| "?".into(), |r| r.to_string())
        ))
    })?;
    i32::try_from(v).map(Some).map_err(|_| {
        PyValueError::new_err(format!(
            "precision={v} is out of range; expected an int between -2**31 and 2**31 - 1 \
             (decimals to round X to, rrcf's default is 9)"
        ))
    })
}

#[pymethods]
impl PyRrcfTree {
    #[new]
    #[pyo3(signature = (*, data=None, labels=None, precision=None, seed=None, seed_key=None, shared=None, compat=false))]
    fn new(
        py: Python<'_>,
        data: Option<PyReadonlyArray2<'_, f64>>,
        labels: Option<&Bound<'_, PyList>>,
        precision: Option<&Bound<'_, PyAny>>,
        seed: Option<u32>,
        seed_key: Option<Vec<u32>>,
        shared: Option<Bound<'_, PyAny>>,
        compat: bool,
    ) -> PyResult<Self> {
        guarded(|| {
            let precision = precision_arg(precision)?;
            let behaviour = if compat {
                Behaviour::Compat044
            } else {
                Behaviour::Master
            };
            let mut rng = match (shared, seed, seed_key) {
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
                rng: TreeRng::Owned(Mt19937::new(0)),
                index: PyDict::new(py).unbind(),
                labels: Vec::new(),
                point: Vec::new(),
                leaves_view: None,
            };
            if let Some(data) = data {
                let shape = data.shape();
                let (n, d) = (shape[0], shape[1]);
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
                let flat: Vec<f64> = match data.as_slice() {
                    Ok(s) => s.to_vec(),
                    Err(_) => data.as_array().iter().copied().collect(),
                };
                if let Some(p) = flat.iter().position(|v| !v.is_finite()) {
                    return Err(PyValueError::new_err(format!(
                        "X contains NaN or infinity at row {}, column {}; rrcf trees need finite values",
                        p / d,
                        p % d
                    )));
                }
                let shared_owner = rng.shared_owner(py);
                let mut lease = match &shared_owner {
                    Some(s) => Some(s.lease(py)?),
                    None => None,
                };
                let src = rng
                    .source(lease.as_mut())
                    .ok_or_else(|| PyRuntimeError::new_err("random generator unavailable"))?;
                let built = build(behaviour, &flat, d, precision, src);
                drop(lease);
                let (tree, leaves, rows) = built.map_err(to_pyerr)?;
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
            me.rng = rng;
            Ok(me)
        })
    }

    /// Inserts `point` under `index`; returns its leaf (an existing leaf for a duplicate point).
    ///
    /// All or nothing: if storing the index fails (its `__hash__` raises the second time), the
    /// insertion is undone before the error propagates.
    #[pyo3(signature = (point, index, tolerance=None))]
    fn insert_point<'py>(
        slf: &Bound<'py, Self>,
        point: &Bound<'py, PyAny>,
        index: &Bound<'py, PyAny>,
        tolerance: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        guarded(|| {
            let py = slf.py();
            let mut buf = std::mem::take(&mut write(slf)?.point);
            let int_point = read_point(py, point, &mut buf);
            let int_point = match int_point {
                Ok(b) => b,
                Err(e) => {
                    write(slf)?.point = buf;
                    return Err(e);
                }
            };
            let dict = read(slf)?.index.clone_ref(py);
            let dict = dict.bind(py);
            let checked = (|| -> PyResult<()> {
                read(slf)?.tree.check_point(&buf).map_err(to_pyerr)?;
                // May run the key's __hash__/__eq__ (which may use the tree): no borrow held.
                if dict.contains(index)? {
                    let msg = format!(
                        "index {} is already in the tree; forget_point it first or use a new index",
                        index.repr()?
                    );
                    return Err(PyErr::from_type(duplicate_index_error(py)?, msg));
                }
                Ok(())
            })();
            if let Err(e) = checked {
                write(slf)?.point = buf;
                return Err(e);
            }
            let inserted = Self::with_rng(slf, |me, src| {
                let r = me.tree.insert_typed(&buf, int_point, tolerance, src);
                me.point = std::mem::take(&mut buf);
                r
            })?
            .map_err(to_pyerr)?;
            let slot = match inserted {
                Inserted::New(s) | Inserted::Duplicate(s) => s,
            };
            // Storing the key hashes it once more. If that fails, undo the insertion. (A key
            // added meanwhile by a re-entrant insert from its __eq__ is overwritten: that leaf
            // keeps its mass with one index less, which forget_point handles.)
            if let Err(e) = dict.set_item(index, slot) {
                let mut me = write(slf)?;
                let _ = me.tree.try_forget(slot);
                if me.tree.root().is_none() {
                    me.labels.clear();
                }
                return Err(e);
            }
            let mut me = write(slf)?;
            if let Inserted::New(s) = inserted {
                me.sync_labels();
                me.labels[s as usize] = Some(index.clone().unbind());
            }
            let node = NodeRef {
                tree: slf.clone().unbind(),
                slot,
                generation: me.tree.generation(slot),
            };
            drop(me);
            Ok(Bound::new(
                py,
                PyLeaf {
                    state: LeafState::Live(node),
                },
            )?
            .into_any())
        })
    }

    /// Removes the point of `index`; returns its leaf (detached if the leaf itself was removed).
    fn forget_point<'py>(
        slf: &Bound<'py, Self>,
        index: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        guarded(|| {
            let py = slf.py();
            let dict = read(slf)?.index.clone_ref(py);
            let dict = dict.bind(py);
            // One lookup that also removes the key: nothing changes if hashing fails.
            let missing = PyTuple::empty(py);
            let popped = dict.call_method1("pop", (index, &missing))?;
            if popped.is(&missing) {
                return Err(PyKeyError::new_err(format!(
                    "{} is not an index of a point in this tree (expected a key of tree.leaves)",
                    index.repr()?
                )));
            }
            let slot: u32 = popped.extract()?;
            let mut guard = write(slf)?;
            let me = &mut *guard;
            if !me.tree.is_live_leaf(slot) {
                drop(guard);
                return Err(not_a_leaf(slot));
            }
            let leaf = if me.tree.mass(slot) > 1 {
                me.tree.try_forget(slot).map_err(to_pyerr)?;
                LeafState::Live(NodeRef {
                    tree: slf.clone().unbind(),
                    slot,
                    generation: me.tree.generation(slot),
                })
            } else {
                let detached = LeafState::Detached {
                    i: me
                        .labels
                        .get_mut(slot as usize)
                        .and_then(Option::take)
                        .unwrap_or_else(|| py.None()),
                    x: me.tree.lo(slot).to_vec(),
                    d: me.tree.depth(slot),
                    n: me.tree.mass(slot),
                };
                me.tree.try_forget(slot).map_err(to_pyerr)?;
                detached
            };
            if me.tree.root().is_none() {
                me.labels.clear();
            }
            drop(guard);
            Ok(Bound::new(py, PyLeaf { state: leaf })?.into_any())
        })
    }

    /// Collusive displacement (`CoDisp`) of a leaf given by index or Leaf.
    fn codisp(slf: &Bound<'_, Self>, leaf: &Bound<'_, PyAny>) -> PyResult<f64> {
        guarded(|| {
            let slot = Self::resolve_leaf(slf, leaf)?;
            Ok(read(slf)?.tree.codisp(slot))
        })
    }

    /// `CoDisp` and the cut dimension of the branch where it peaks (rrcf master).
    fn codisp_with_cut_dimension(
        slf: &Bound<'_, Self>,
        leaf: &Bound<'_, PyAny>,
    ) -> PyResult<(f64, u32)> {
        guarded(|| {
            let slot = Self::resolve_leaf(slf, leaf)?;
            Ok(read(slf)?.tree.codisp_with_cut_dimension(slot))
        })
    }

    /// Displacement: the mass of the leaf's sibling (0 at the root).
    fn disp(slf: &Bound<'_, Self>, leaf: &Bound<'_, PyAny>) -> PyResult<u64> {
        guarded(|| {
            let slot = Self::resolve_leaf(slf, leaf)?;
            Ok(read(slf)?.tree.disp(slot))
        })
    }

    /// The leaf reached by following the cuts for `point` from `node` (default: the root).
    #[pyo3(signature = (point, node=None))]
    fn query<'py>(
        slf: &Bound<'py, Self>,
        point: &Bound<'py, PyAny>,
        node: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        guarded(|| {
            let py = slf.py();
            let (tree, start) = match node.filter(|n| !n.is_none()) {
                Some(n) => match locate(py, n)? {
                    Some(l) => (l.tree, Some(l.slot)),
                    None => return Ok(n.clone()), // a detached leaf is its own query result
                },
                None => (slf.clone(), None),
            };
            let mut p = Vec::new();
            read_point(py, point, &mut p)?;
            let me = read(&tree)?;
            let slot = me.tree.query(&p, start).map_err(to_pyerr)?;
            view(py, &tree.clone().unbind(), &me, Some(slot))
        })
    }

    /// The leaf holding `point` (exactly, or `np.isclose` with `rtol=tolerance`), else None.
    #[pyo3(signature = (point, tolerance=None))]
    fn find_duplicate<'py>(
        slf: &Bound<'py, Self>,
        point: &Bound<'py, PyAny>,
        tolerance: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        guarded(|| {
            let py = slf.py();
            let mut p = Vec::new();
            read_point(py, point, &mut p)?;
            let me = read(slf)?;
            let found = me.tree.find_duplicate(&p, tolerance).map_err(to_pyerr)?;
            view(py, &slf.clone().unbind(), &me, found)
        })
    }

    /// Box `[mins, maxes]` of the points below `branch` (default: the root), a (2, d) array.
    #[pyo3(signature = (branch=None))]
    fn get_bbox<'py>(
        slf: &Bound<'py, Self>,
        branch: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        guarded(|| {
            let py = slf.py();
            let (tree, start) = match branch.filter(|n| !n.is_none()) {
                Some(n) => {
                    let Some(l) = locate(py, n)? else {
                        // A detached leaf: the box of its point.
                        let x: Vec<f64> = n.getattr("x")?.extract()?;
                        let mut v = x.clone();
                        v.extend_from_slice(&x);
                        return PyArray1::from_vec(py, v).reshape([2, x.len()]);
                    };
                    (l.tree, Some(l.slot))
                }
                None => (slf.clone(), None),
            };
            let me = read(&tree)?;
            if me.tree.root().is_none() {
                return Err(PyValueError::new_err(
                    "the tree is empty; it has no bounding box",
                ));
            }
            let (mut lo, hi) = me.tree.get_bbox(start);
            let d = lo.len();
            lo.extend_from_slice(&hi);
            PyArray1::from_vec(py, lo).reshape([2, d])
        })
    }

    /// rrcf's `_count_leaves(node)`: the number of points (leaf masses) below `node`, counted
    /// over the leaves (not read from the node's stored mass).
    fn _count_leaves(slf: &Bound<'_, Self>, node: &Bound<'_, PyAny>) -> PyResult<u64> {
        guarded(|| {
            let py = slf.py();
            match locate(py, node)? {
                Some(l) => {
                    let me = read(&l.tree)?;
                    Ok(me
                        .tree
                        .leaves_under(l.slot)
                        .into_iter()
                        .map(|s| me.tree.mass(s))
                        .sum())
                }
                None => node.getattr("n")?.extract(),
            }
        })
    }

    /// rrcf's `_insert_point_cut(point, bbox)`: draws a cut (dimension, value) over `bbox`
    /// (`[mins, maxes]`; a one-row box is a leaf's) extended by `point`, from the tree's stream.
    fn _insert_point_cut(
        slf: &Bound<'_, Self>,
        point: &Bound<'_, PyAny>,
        bbox: &Bound<'_, PyAny>,
    ) -> PyResult<(usize, f64)> {
        guarded(|| {
            let py = slf.py();
            let mut p = Vec::new();
            read_point(py, point, &mut p)?;
            let rows: Vec<Vec<f64>> = bbox
                .extract()
                .or_else(|_| bbox.call_method0("tolist")?.extract())
                .map_err(|_| PyTypeError::new_err("bbox must be a (k, d) array of numbers"))?;
            let (Some(lo), Some(hi)) = (rows.first(), rows.last()) else {
                return Err(PyValueError::new_err("bbox must have at least one row"));
            };
            if lo.len() != p.len() || hi.len() != p.len() || p.is_empty() {
                return Err(PyValueError::new_err(format!(
                    "bbox rows have {} values and the point {}; expected the same length >= 1",
                    lo.len(),
                    p.len()
                )));
            }
            if p.iter().chain(lo).chain(hi).any(|v| !v.is_finite()) {
                return Err(PyValueError::new_err(
                    "point or bbox contains NaN or infinity; rrcf trees need finite values",
                ));
            }
            let compat = read(slf)?.tree.behaviour() == Behaviour::Compat044;
            let leaf_bug = compat && rows.len() == 1;
            let mut span = vec![0.0; p.len()];
            Self::with_rng(slf, |_, src| {
                insert_point_cut(lo, hi, &p, leaf_bug, &mut span, src)
            })?
            .map_err(to_pyerr)
        })
    }

    /// One draw from the tree's random stream (`random_sample()` of its RandomState).
    fn _random_sample(slf: &Bound<'_, Self>) -> PyResult<f64> {
        guarded(|| Self::with_rng(slf, |_, src| src.next_f64()))
    }

    /// rrcf's `_count_all_top_down` / `_get_bbox_top_down`: recomputes masses and boxes of the
    /// branches below `node` from their children.
    fn _refresh_under(slf: &Bound<'_, Self>, node: &Bound<'_, PyAny>) -> PyResult<()> {
        guarded(|| {
            let Some(l) = locate(slf.py(), node)? else {
                return Ok(());
            };
            write(&l.tree)?.tree.refresh_under(l.slot);
            Ok(())
        })
    }

    /// rrcf's `_tighten_bbox_upwards(node)`.
    fn _tighten_bbox_upwards(slf: &Bound<'_, Self>, node: &Bound<'_, PyAny>) -> PyResult<()> {
        guarded(|| {
            let Some(l) = locate(slf.py(), node)? else {
                return Ok(());
            };
            write(&l.tree)?.tree.tighten_upwards(l.slot);
            Ok(())
        })
    }

    /// rrcf's `_relax_bbox_upwards(node, point)`.
    fn _relax_bbox_upwards(
        slf: &Bound<'_, Self>,
        node: &Bound<'_, PyAny>,
        point: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        guarded(|| {
            let py = slf.py();
            let mut p = Vec::new();
            read_point(py, point, &mut p)?;
            let Some(l) = locate(py, node)? else {
                return Ok(());
            };
            write(&l.tree)?.tree.relax_upwards(l.slot, &p);
            Ok(())
        })
    }

    /// `leaves`: mapping index -> Leaf.
    #[getter]
    fn leaves<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyLeaves>> {
        let py = slf.py();
        if let Some(v) = &read(slf)?.leaves_view {
            return Ok(v.bind(py).clone());
        }
        let v = Bound::new(
            py,
            PyLeaves {
                tree: slf.clone().unbind(),
            },
        )?;
        write(slf)?.leaves_view = Some(v.clone().unbind());
        Ok(v)
    }

    /// Root node (Leaf or Branch), or None for an empty tree.
    #[getter]
    fn root<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let me = read(slf)?;
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
        guarded(|| Self::views_under(slf, node, RrcfTree::leaves_under, true))
    }

    /// Branches below `node` (default: root) in post-order.
    #[pyo3(signature = (node=None))]
    fn _branches_under<'py>(
        slf: &Bound<'py, Self>,
        node: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        guarded(|| Self::views_under(slf, node, RrcfTree::branches_under, false))
    }

    /// The tree as rrcf's nested dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        guarded(|| dict::to_dict(py, self))
    }

    /// Replaces the tree with the content of a `to_dict` dict (also rrcf's own output).
    fn load_dict(slf: &Bound<'_, Self>, obj: &Bound<'_, PyAny>) -> PyResult<()> {
        guarded(|| dict::load_dict(slf, obj))
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

    /// Restores `_getstate` output into this tree, after checking all of it.
    fn _setstate(slf: &Bound<'_, Self>, state: &Bound<'_, PyTuple>) -> PyResult<()> {
        guarded(|| {
            let py = slf.py();
            let bad = |why: String| {
                PyValueError::new_err(format!(
                    "not a valid pickled rcf_fast.rrcf tree state (version 1): {why}"
                ))
            };
            if state.len() != 6 || state.get_item(0)?.extract::<u32>().ok() != Some(1) {
                return Err(bad("expected a 6-tuple starting with 1".into()));
            }
            let bytes = state.get_item(1)?;
            let bytes = bytes
                .cast::<PyBytes>()
                .map_err(|_| bad("tree state must be bytes".into()))?;
            let tree =
                RrcfTree::try_from_bytes(bytes.as_bytes()).map_err(|e| bad(e.to_string()))?;
            let rng_a = state.get_item(2)?;
            let rng = if let Ok(key) = rng_a.extract::<Vec<u32>>() {
                let pos: usize = state
                    .get_item(3)?
                    .extract()
                    .map_err(|_| bad("generator position must be an int".into()))?;
                TreeRng::Owned(
                    Mt19937::from_state(key, pos)
                        .ok_or_else(|| bad("invalid generator state".into()))?,
                )
            } else {
                TreeRng::Shared(SharedGen::new(&rng_a)?)
            };
            let labels_obj = state.get_item(4)?;
            let labels_list = labels_obj
                .cast::<PyList>()
                .map_err(|_| bad("labels must be a list".into()))?;
            if labels_list.len() > tree.capacity() {
                return Err(bad("more labels than tree slots".into()));
            }
            let mut labels: Vec<Option<Py<PyAny>>> = Vec::with_capacity(tree.capacity());
            for (slot, l) in labels_list.iter().enumerate() {
                let live = tree.is_live_leaf(slot as u32);
                labels.push((live && !l.is_none()).then(|| l.unbind()));
            }
            let index = PyDict::new(py);
            let items = state.get_item(5)?;
            let items = items
                .cast::<PyList>()
                .map_err(|_| bad("index items must be a list".into()))?;
            for item in items.iter() {
                let (k, v): (Bound<'_, PyAny>, u32) = item
                    .extract()
                    .map_err(|_| bad("index items must be (index, slot) pairs".into()))?;
                if index.contains(&k)? {
                    return Err(bad(format!("index {} listed twice", k.repr()?)));
                }
                index.set_item(k, v)?;
            }
            Self::check_index(&tree, &index).map_err(|e| bad(e.value(py).to_string()))?;
            let mut me = write(slf)?;
            me.tree = tree;
            me.rng = rng;
            me.labels = labels;
            me.index = index.unbind();
            me.sync_labels();
            Ok(())
        })
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
