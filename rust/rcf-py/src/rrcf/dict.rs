//! `to_dict` / `load_dict` in rrcf's nested-dict format (JSON-compatible both ways).
//!
//! Branch: `{"type": "Branch", "q", "p", "n", "b": [mins, maxes], "l", "r"}`;
//! leaf: `{"type": "Leaf", "i", "x", "d", "n", "ixs"}` where `ixs` lists every index merged
//! into the leaf in `leaves` order. Like rrcf, `numpy.int64` indices become Python ints. Both
//! directions walk the tree with explicit stacks, so depth is not limited by recursion.
use std::collections::{HashMap, HashSet};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyTuple, PyType};
use rcf_core::rrcf::{NodeRecord, RecordKind, RrcfTree};

use super::PyRrcfTree;

static NP_INT64: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// rrcf converts `numpy.int64` indices (and only those) to `int` in `to_dict`.
fn plain_index<'py>(py: Python<'py>, k: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let int64 = NP_INT64.import(py, "numpy", "int64")?;
    if k.is_instance(int64)? {
        Ok(k.call_method0("__int__")?)
    } else {
        Ok(k.clone())
    }
}

/// Builds the nested dict of the tree.
pub fn to_dict<'py>(py: Python<'py>, t: &PyRrcfTree) -> PyResult<Bound<'py, PyDict>> {
    let top = PyDict::new(py);
    let Some(root) = t.tree.root() else {
        return Ok(top);
    };
    let mut ixs: HashMap<u32, Bound<'py, PyList>> = HashMap::new();
    for (k, slot) in t.index.bind(py).iter() {
        let slot: u32 = slot.extract()?;
        let list = ixs.entry(slot).or_insert_with(|| PyList::empty(py));
        list.append(plain_index(py, &k)?)?;
    }
    let tree = &t.tree;
    let mut target: HashMap<u32, Bound<'py, PyDict>> = HashMap::new();
    target.insert(root, top.clone());
    for (slot, depth) in tree.preorder(root) {
        let obj = target.remove(&slot).expect("parent made the child's dict");
        if tree.is_leaf(slot) {
            let i = t.labels[slot as usize]
                .as_ref()
                .map_or_else(|| py.None().into_bound(py), |o| o.bind(py).clone());
            obj.set_item("type", "Leaf")?;
            obj.set_item("i", plain_index(py, &i)?)?;
            obj.set_item("x", values(py, tree.lo(slot), tree.is_int(slot))?)?;
            obj.set_item("d", depth)?;
            obj.set_item("n", tree.mass(slot))?;
            obj.set_item(
                "ixs",
                ixs.remove(&slot).unwrap_or_else(|| PyList::empty(py)),
            )?;
        } else {
            let (q, p) = tree.cut(slot);
            obj.set_item("type", "Branch")?;
            obj.set_item("q", q)?;
            obj.set_item("p", p)?;
            obj.set_item("n", tree.mass(slot))?;
            let b = PyList::new(
                py,
                [
                    values(py, tree.lo(slot), tree.is_int(slot))?,
                    values(py, tree.hi(slot), tree.is_int(slot))?,
                ],
            )?;
            obj.set_item("b", b)?;
            let (l, r) = tree.children(slot);
            let (ld, rd) = (PyDict::new(py), PyDict::new(py));
            obj.set_item("l", &ld)?;
            obj.set_item("r", &rd)?;
            target.insert(l, ld);
            target.insert(r, rd);
        }
    }
    Ok(top)
}

fn field<'py>(obj: &Bound<'py, PyDict>, key: &str) -> PyResult<Bound<'py, PyAny>> {
    obj.get_item(key)?.ok_or_else(|| {
        PyValueError::new_err(format!(
            "tree dict node {obj_type} is missing key '{key}'",
            obj_type = node_kind(obj)
        ))
    })
}

fn node_kind(obj: &Bound<'_, PyDict>) -> String {
    obj.get_item("type")
        .ok()
        .flatten()
        .map_or_else(|| "(no 'type')".to_string(), |t| t.to_string())
}

/// Values as a Python list: ints for a node that is an integer array in rrcf 0.4.4.
fn values<'py>(py: Python<'py>, v: &[f64], int: bool) -> PyResult<Bound<'py, PyList>> {
    if int {
        PyList::new(py, v.iter().map(|&x| x as i64))
    } else {
        PyList::new(py, v)
    }
}

/// Whether every element of a list is an int (numpy would make an integer array of it).
fn all_ints(v: &Bound<'_, PyAny>) -> PyResult<bool> {
    for item in v.try_iter()? {
        if !item?.is_instance_of::<pyo3::types::PyInt>() {
            return Ok(false);
        }
    }
    Ok(true)
}

fn floats(v: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<f64>> {
    let out: Vec<f64> = v.extract().map_err(|_| {
        PyTypeError::new_err(format!(
            "'{what}' must be a list of numbers, got {}",
            v.get_type()
                .name()
                .map_or_else(|_| "?".into(), |n| n.to_string())
        ))
    })?;
    if out.iter().any(|x| !x.is_finite()) {
        return Err(PyValueError::new_err(format!(
            "'{what}' contains NaN or infinity; rrcf trees need finite values"
        )));
    }
    Ok(out)
}

/// A leaf read from a dict: its record position, `i` and `ixs`.
pub struct LoadedLeaf<'py> {
    pub record: usize,
    pub i: Bound<'py, PyAny>,
    pub ixs: Bound<'py, PyAny>,
}

/// Reads a nested dict into node records (pre-order, left first) and its leaves in rrcf's order.
///
/// The walk uses an explicit stack. Each node dict may appear once: a dict reached twice (a
/// cycle, or a subtree shared between branches) is refused, so the work is linear in the input.
pub fn read_dict<'py>(
    obj: &Bound<'py, PyAny>,
) -> PyResult<(Vec<NodeRecord>, Vec<LoadedLeaf<'py>>)> {
    let top = obj
        .cast::<PyDict>()
        .map_err(|_| PyTypeError::new_err("load_dict expects the dict made by to_dict()"))?;
    let mut records = Vec::new();
    let mut leaves = Vec::new();
    if top.is_empty() {
        return Ok((records, leaves));
    }
    // Identity of every node dict seen; the Bound references keep them alive, so an address
    // cannot be reused by another dict during the walk.
    let mut seen: HashSet<usize> = HashSet::new();
    let mut keep: Vec<Bound<'py, PyDict>> = Vec::new();
    let mut stack: Vec<(Bound<'py, PyAny>, Option<usize>, bool)> =
        vec![(top.clone().into_any(), None, true)];
    while let Some((node, parent, is_left)) = stack.pop() {
        let node = node
            .cast_into::<PyDict>()
            .map_err(|_| PyTypeError::new_err("every tree node must be a dict"))?;
        if !seen.insert(node.as_ptr() as usize) {
            return Err(PyValueError::new_err(
                "tree dict contains the same node dict twice (a cycle or a shared subtree); \
                 expected a tree as to_dict() makes it",
            ));
        }
        keep.push(node.clone());
        let kind: String = field(&node, "type")?.extract().unwrap_or_default();
        let k = records.len();
        match kind.as_str() {
            "Branch" => {
                let q: usize = field(&node, "q")?
                    .extract()
                    .map_err(|_| PyTypeError::new_err("'q' must be a non-negative int"))?;
                let p: f64 = field(&node, "p")?
                    .extract()
                    .map_err(|_| PyTypeError::new_err("'p' must be a float"))?;
                if !p.is_finite() {
                    return Err(PyValueError::new_err(
                        "'p' (a cut value) is NaN or infinite; expected a finite float",
                    ));
                }
                let n: u64 = field(&node, "n")?
                    .extract()
                    .map_err(|_| PyTypeError::new_err("'n' must be a positive int"))?;
                let b = field(&node, "b")?;
                let rows: Vec<Bound<'py, PyAny>> = b
                    .extract()
                    .map_err(|_| PyTypeError::new_err("'b' must be [mins, maxes]"))?;
                let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
                    return Err(PyValueError::new_err("'b' must be [mins, maxes]"));
                };
                let (lo, hi) = (floats(first, "b")?, floats(last, "b")?);
                let int_values = rows
                    .iter()
                    .map(all_ints)
                    .collect::<PyResult<Vec<_>>>()?
                    .iter()
                    .all(|&b| b);
                records.push(NodeRecord {
                    parent,
                    is_left,
                    kind: RecordKind::Branch { q, p, n, lo, hi },
                    int_values,
                });
                stack.push((field(&node, "r")?, Some(k), false));
                stack.push((field(&node, "l")?, Some(k), true));
            }
            "Leaf" => {
                let x_obj = field(&node, "x")?;
                let x = floats(&x_obj, "x")?;
                let int_values = all_ints(&x_obj)?;
                let n: u64 = field(&node, "n")?
                    .extract()
                    .map_err(|_| PyTypeError::new_err("'n' must be a positive int"))?;
                let ixs = field(&node, "ixs")?;
                let len = if let Ok(l) = ixs.cast::<PyList>() {
                    l.len()
                } else if let Ok(t) = ixs.cast::<PyTuple>() {
                    t.len()
                } else {
                    return Err(PyTypeError::new_err(format!(
                        "'ixs' must be a list of the leaf's indices (as to_dict() writes it), got {}",
                        ixs.get_type()
                            .name()
                            .map_or_else(|_| "?".into(), |n| n.to_string())
                    )));
                };
                if len as u64 > n {
                    return Err(PyValueError::new_err(format!(
                        "leaf 'ixs' lists {len} indices but its mass 'n' is {n}; a leaf holds at \
                         most 'n' indices"
                    )));
                }
                records.push(NodeRecord {
                    parent,
                    is_left,
                    kind: RecordKind::Leaf { x, n },
                    int_values,
                });
                leaves.push(LoadedLeaf {
                    record: k,
                    i: field(&node, "i")?,
                    ixs,
                });
            }
            _ => return Err(PyTypeError::new_err("`type` must be Branch or Leaf")),
        }
    }
    Ok((records, leaves))
}

/// Replaces the tree's content with the dict's (rrcf's `load_dict`); on any error the tree is
/// left as it was.
pub fn load_dict(slf: &Bound<'_, PyRrcfTree>, obj: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = slf.py();
    let behaviour = super::read(slf)?.tree.behaviour();
    let (records, leaves) = read_dict(obj)?;
    let (tree, slots) = RrcfTree::from_records(behaviour, &records).map_err(super::to_pyerr)?;
    let index = PyDict::new(py);
    let mut labels: Vec<Option<Py<PyAny>>> = (0..tree.capacity()).map(|_| None).collect();
    for leaf in &leaves {
        let slot = slots[leaf.record];
        labels[slot as usize] = Some(leaf.i.clone().unbind());
        // A snapshot: the list cannot grow while we read it.
        let ixs: Vec<Bound<'_, PyAny>> = leaf.ixs.extract()?;
        for k in ixs {
            if index.contains(&k)? {
                return Err(PyValueError::new_err(format!(
                    "index {} is listed in the 'ixs' of two leaves; each index names one point",
                    k.repr()?
                )));
            }
            index.set_item(k, slot)?;
        }
    }
    PyRrcfTree::check_index(&tree, &index)?;
    let mut t = super::write(slf)?;
    t.tree = tree;
    t.labels = labels;
    t.index = index.unbind();
    Ok(())
}
