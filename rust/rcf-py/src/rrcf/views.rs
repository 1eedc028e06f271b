//! Leaf and branch views and the `leaves` mapping of a tree.
//!
//! rrcf exposes its nodes as Python objects. We create view objects only when Python asks for a
//! node (never per node on insert). A live view names (tree, slot, generation); reading it after
//! its node was removed raises. `forget_point` returns a detached leaf holding a snapshot.
use numpy::{PyArray1, PyArray2, PyArrayMethods};
use pyo3::exceptions::{PyKeyError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::PyRrcfTree;

/// A node of a tree: the tree, its slot and the slot's generation when the view was made.
pub struct NodeRef {
    pub tree: Py<PyRrcfTree>,
    pub slot: u32,
    pub generation: u64,
}

impl NodeRef {
    /// Borrows the tree and checks the node is still there.
    fn get<'py>(&self, py: Python<'py>) -> PyResult<PyRef<'py, PyRrcfTree>> {
        let t = super::read(self.tree.bind(py))?;
        if !t.tree.is_valid(self.slot, self.generation) {
            return Err(PyValueError::new_err(
                "this node was removed from its tree (views of removed nodes cannot be read)",
            ));
        }
        Ok(t)
    }

    fn same(&self, other: &NodeRef) -> bool {
        self.tree.as_ptr() == other.tree.as_ptr()
            && self.slot == other.slot
            && self.generation == other.generation
    }

    fn key(&self) -> (usize, u32, u64) {
        (self.tree.as_ptr() as usize, self.slot, self.generation)
    }
}

/// Makes the view (Leaf or Branch) of `slot`, or None for NIL.
pub fn view<'py>(
    py: Python<'py>,
    tree: &Py<PyRrcfTree>,
    t: &PyRrcfTree,
    slot: Option<u32>,
) -> PyResult<Bound<'py, PyAny>> {
    let Some(slot) = slot else {
        return Ok(py.None().into_bound(py));
    };
    let node = NodeRef {
        tree: tree.clone_ref(py),
        slot,
        generation: t.tree.generation(slot),
    };
    if t.tree.is_leaf(slot) {
        Ok(Bound::new(
            py,
            PyLeaf {
                state: LeafState::Live(node),
            },
        )?
        .into_any())
    } else {
        Ok(Bound::new(py, PyBranch { node })?.into_any())
    }
}

fn point_array<'py>(py: Python<'py>, x: &[f64]) -> Bound<'py, PyArray1<f64>> {
    PyArray1::from_slice(py, x)
}

fn box_array<'py>(py: Python<'py>, lo: &[f64], hi: &[f64]) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let mut v = lo.to_vec();
    v.extend_from_slice(hi);
    PyArray1::from_vec(py, v).reshape([2, lo.len()])
}

/// What a leaf view refers to.
pub enum LeafState {
    /// A leaf in a tree.
    Live(NodeRef),
    /// A leaf removed by `forget_point`: its index, point, depth and mass at removal.
    Detached {
        i: Py<PyAny>,
        x: Vec<f64>,
        d: usize,
        n: u64,
    },
}

/// A leaf of an rrcf tree: index `i`, depth `d`, mass `n`, point `x`, parent `u`, box `b`.
#[pyclass(frozen, module = "rcf_fast._rcf", name = "Leaf")]
pub struct PyLeaf {
    pub state: LeafState,
}

impl PyLeaf {
    /// The node this view names, if it is live.
    pub fn node(&self) -> Option<&NodeRef> {
        match &self.state {
            LeafState::Live(n) => Some(n),
            LeafState::Detached { .. } => None,
        }
    }
}

#[pymethods]
impl PyLeaf {
    /// Index of the leaf (the position in `X` for leaves made by batch construction).
    #[getter]
    fn i(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        match &self.state {
            LeafState::Live(n) => {
                let t = n.get(py)?;
                Ok(t.labels[n.slot as usize]
                    .as_ref()
                    .map_or_else(|| py.None(), |o| o.clone_ref(py)))
            }
            LeafState::Detached { i, .. } => Ok(i.clone_ref(py)),
        }
    }
    /// Depth (number of branches above the leaf).
    #[getter]
    fn d(&self, py: Python<'_>) -> PyResult<usize> {
        match &self.state {
            LeafState::Live(n) => Ok(n.get(py)?.tree.depth(n.slot)),
            LeafState::Detached { d, .. } => Ok(*d),
        }
    }
    /// Number of points in the leaf (duplicates merge into one leaf).
    #[getter]
    fn n(&self, py: Python<'_>) -> PyResult<u64> {
        match &self.state {
            LeafState::Live(n) => Ok(n.get(py)?.tree.mass(n.slot)),
            LeafState::Detached { n, .. } => Ok(*n),
        }
    }
    /// The point (a new float64 array on each access).
    #[getter]
    fn x<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<f64>>> {
        match &self.state {
            LeafState::Live(n) => Ok(point_array(py, n.get(py)?.tree.lo(n.slot))),
            LeafState::Detached { x, .. } => Ok(point_array(py, x)),
        }
    }
    /// The leaf's box, its point as a `(1, d)` array.
    #[getter]
    fn b<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let x = self.x(py)?;
        let d = x.len()?;
        x.reshape([1, d])
    }
    /// Parent branch, or None at the root (and for a removed leaf).
    #[getter]
    fn u<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match &self.state {
            LeafState::Live(n) => {
                let t = n.get(py)?;
                view(py, &n.tree, &t, t.tree.parent(n.slot))
            }
            LeafState::Detached { .. } => Ok(py.None().into_bound(py)),
        }
    }
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("Leaf({})", self.i(py)?.bind(py).str()?))
    }
    fn __eq__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> bool {
        let other_key = other
            .cast::<PyLeaf>()
            .ok()
            .and_then(|o| o.get().node().map(NodeRef::key));
        match (slf.get().node(), other_key) {
            (Some(a), Some(b)) => a.key() == b,
            _ => slf.is(other),
        }
    }
    fn __hash__(slf: &Bound<'_, Self>) -> u64 {
        match slf.get().node() {
            Some(n) => {
                let (a, b, c) = n.key();
                (a as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (u64::from(b) << 40) ^ c
            }
            None => slf.as_ptr() as u64,
        }
    }
}

/// A branch of an rrcf tree: cut dimension `q`, cut value `p`, mass `n`, box `b`, children `l`
/// and `r`, parent `u`.
#[pyclass(frozen, module = "rcf_fast._rcf", name = "Branch")]
pub struct PyBranch {
    pub node: NodeRef,
}

#[pymethods]
impl PyBranch {
    /// Cut dimension.
    #[getter]
    fn q(&self, py: Python<'_>) -> PyResult<u32> {
        Ok(self.node.get(py)?.tree.cut(self.node.slot).0)
    }
    /// Cut value (points with `x[q] <= p` are on the left).
    #[getter]
    fn p(&self, py: Python<'_>) -> PyResult<f64> {
        Ok(self.node.get(py)?.tree.cut(self.node.slot).1)
    }
    /// Number of points below the branch.
    #[getter]
    fn n(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.node.get(py)?.tree.mass(self.node.slot))
    }
    /// Box of the points below, a `(2, d)` array `[mins, maxes]`.
    #[getter]
    fn b<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let t = self.node.get(py)?;
        box_array(py, t.tree.lo(self.node.slot), t.tree.hi(self.node.slot))
    }
    /// Left child.
    #[getter]
    fn l<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let t = self.node.get(py)?;
        view(
            py,
            &self.node.tree,
            &t,
            Some(t.tree.children(self.node.slot).0),
        )
    }
    /// Right child.
    #[getter]
    fn r<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let t = self.node.get(py)?;
        view(
            py,
            &self.node.tree,
            &t,
            Some(t.tree.children(self.node.slot).1),
        )
    }
    /// Parent branch, or None at the root.
    #[getter]
    fn u<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let t = self.node.get(py)?;
        view(py, &self.node.tree, &t, t.tree.parent(self.node.slot))
    }
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let (q, p) = self.node.get(py)?.tree.cut(self.node.slot);
        Ok(format!("Branch(q={q}, p={p:.2})"))
    }
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyBranch>()
            .is_ok_and(|o| self.node.same(&o.get().node))
    }
    fn __hash__(&self) -> u64 {
        let (a, b, c) = self.node.key();
        (a as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (u64::from(b) << 40) ^ c ^ 1
    }
}

/// `tree.leaves`: a read-only mapping from point index to leaf view, in rrcf's dict order.
#[pyclass(frozen, mapping, module = "rcf_fast._rcf", name = "RrcfLeaves")]
pub struct PyLeaves {
    pub tree: Py<PyRrcfTree>,
}

impl PyLeaves {
    fn index<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        Ok(super::read(self.tree.bind(py))?.index.bind(py).clone())
    }

    /// The view of the leaf in `slot`, checked to be live.
    fn leaf_view<'py>(
        &self,
        py: Python<'py>,
        slot: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let slot: u32 = slot.extract()?;
        let t = super::read(self.tree.bind(py))?;
        if !t.tree.is_live_leaf(slot) {
            return Err(super::not_a_leaf(slot));
        }
        view(py, &self.tree, &t, Some(slot))
    }
}

#[pymethods]
impl PyLeaves {
    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        visit.call(&self.tree)
    }
    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.index(py)?.len())
    }
    fn __contains__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.index(py)?.contains(key)
    }
    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        // The lookup may run the key's __eq__: no borrow of the tree is held during it.
        match self.index(py)?.get_item(key)? {
            Some(slot) => self.leaf_view(py, &slot),
            None => Err(PyKeyError::new_err(key.clone().unbind())),
        }
    }
    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(self.index(py)?.try_iter()?.into_any())
    }
    /// The leaf of `key`, or `default`.
    #[pyo3(signature = (key, default=None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match self.index(py)?.get_item(key)? {
            Some(slot) => self.leaf_view(py, &slot),
            None => Ok(default.unwrap_or_else(|| py.None().into_bound(py))),
        }
    }
    /// The point indices (a live dict view).
    fn keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.index(py)?.call_method0("keys")
    }
    /// The leaves, one per index (a list).
    fn values<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for item in self.index(py)?.items().iter() {
            let slot = item.get_item(1)?;
            out.append(self.leaf_view(py, &slot)?)?;
        }
        Ok(out)
    }
    /// `(index, leaf)` pairs (a list).
    fn items<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for item in self.index(py)?.items().iter() {
            let (k, slot) = (item.get_item(0)?, item.get_item(1)?);
            out.append((k, self.leaf_view(py, &slot)?))?;
        }
        Ok(out)
    }
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("RrcfLeaves({} points)", self.__len__(py)?))
    }
}
