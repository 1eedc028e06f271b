//! Turning Python inputs (numbers, lists, tuples, numpy arrays of any numeric dtype and any
//! strides) into f64 rows. C-contiguous float64 arrays are read in place, without a copy.
use numpy::{PyArray1, PyArray2, PyUntypedArray};
use numpy::{PyArrayDescrMethods, PyArrayMethods, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyFloat, PyInt, PyList, PyTuple};

/// One point: `dims` finite numbers (finiteness is checked by the core).
pub fn point(obj: &Bound<'_, PyAny>, dims: usize) -> PyResult<Vec<f64>> {
    // Fast paths for the common per-record calls.
    if obj.is_instance_of::<PyFloat>() || obj.is_instance_of::<PyInt>() {
        if dims != 1 {
            return Err(PyValueError::new_err(format!(
                "expected a sequence of {dims} numbers (dimensions={dims}), got a single number"
            )));
        }
        return Ok(vec![obj.extract::<f64>()?]);
    }
    if let Ok(list) = obj.cast::<PyList>() {
        return seq_items(list.iter(), list.len(), dims);
    }
    if let Ok(tuple) = obj.cast::<PyTuple>() {
        return seq_items(tuple.iter(), tuple.len(), dims);
    }
    // A contiguous float64 row (a row of a 2-D array, the common case) is read directly.
    if let Ok(row) = obj.cast::<PyArray1<f64>>() {
        if let Ok(ro) = row.try_readonly() {
            if let Ok(values) = ro.as_slice() {
                if values.len() == dims {
                    return Ok(values.to_vec());
                }
            }
        }
    }
    let arr = as_float_array(obj)?;
    let shape = arr.shape().to_vec();
    let ok = match shape.as_slice() {
        [n] | [1, n] => *n == dims,
        [] => dims == 1,
        _ => false,
    };
    if !ok {
        return Err(PyValueError::new_err(format!(
            "expected one point of shape ({dims},), got an array of shape {shape:?}"
        )));
    }
    let flat = arr.call_method0("ravel")?;
    let flat = flat.cast::<PyArray1<f64>>()?;
    Ok(flat.readonly().as_array().to_vec())
}

fn seq_items<'py>(
    items: impl Iterator<Item = Bound<'py, PyAny>>,
    len: usize,
    dims: usize,
) -> PyResult<Vec<f64>> {
    if len != dims {
        return Err(PyValueError::new_err(format!(
            "expected {dims} values per point (dimensions={dims}), got {len}"
        )));
    }
    items
        .enumerate()
        .map(|(j, v)| {
            if v.is_instance_of::<PyFloat>() || v.is_instance_of::<PyInt>() {
                v.extract::<f64>()
            } else {
                let as_num = v.call_method0("__float__").ok();
                match as_num.and_then(|f| f.extract::<f64>().ok()) {
                    Some(x) if !v.is_instance_of::<pyo3::types::PyString>() => Ok(x),
                    _ => Err(PyTypeError::new_err(format!(
                        "expected numbers, got {} at position {j}",
                        v.get_type()
                            .name()
                            .map_or_else(|_| "?".to_string(), |n| n.to_string())
                    ))),
                }
            }
        })
        .collect()
}

/// `numpy.asarray(obj)`, rejecting non-numeric dtypes with `TypeError`, cast to float64.
fn as_float_array<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyUntypedArray>> {
    let py = obj.py();
    let np = py.import("numpy")?;
    let arr = match obj.cast::<PyUntypedArray>() {
        Ok(a) => a.clone(),
        Err(_) => np
            .call_method1("asarray", (obj,))
            .map_err(|e| {
                PyValueError::new_err(format!(
                    "expected a number, a sequence or an array of numbers: {}",
                    e.value(py)
                ))
            })?
            .cast_into::<PyUntypedArray>()?,
    };
    let kind = arr.dtype().kind();
    if !matches!(kind, b'f' | b'i' | b'u' | b'b') {
        return Err(PyTypeError::new_err(format!(
            "expected a numeric array (float or int dtype), got dtype {}",
            arr.dtype()
        )));
    }
    if kind == b'f' && arr.dtype().itemsize() == 8 && arr.is_c_contiguous() {
        return Ok(arr);
    }
    let converted = np.call_method(
        "ascontiguousarray",
        (arr,),
        Some(&[("dtype", np.getattr("float64")?)].into_py_dict_compat(py)?),
    )?;
    Ok(converted.cast_into::<PyUntypedArray>()?)
}

trait IntoDict<'py> {
    fn into_py_dict_compat(self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyDict>>;
}

impl<'py, const N: usize> IntoDict<'py> for [(&str, Bound<'py, PyAny>); N] {
    fn into_py_dict_compat(self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
        let d = pyo3::types::PyDict::new(py);
        for (k, v) in self {
            d.set_item(k, v)?;
        }
        Ok(d)
    }
}

/// A batch of rows as a C-contiguous float64 (n, dims) array, borrowed when the input already
/// is one. A 1-D input is n rows when `dims == 1`.
pub fn rows<'py>(obj: &Bound<'py, PyAny>, dims: usize) -> PyResult<PyReadonlyArray2<'py, f64>> {
    let arr = as_float_array(obj)?;
    let shape = arr.shape().to_vec();
    let arr = match shape.as_slice() {
        [_, d] if *d == dims => arr,
        [n] if dims == 1 => arr.call_method1("reshape", (*n, 1))?.cast_into()?,
        _ => {
            return Err(PyValueError::new_err(format!(
                "expected a 2-D array of shape (n, {dims}) (dimensions={dims}), got shape {shape:?}"
            )))
        }
    };
    Ok(arr.cast_into::<PyArray2<f64>>()?.readonly())
}

/// Runs `f` on the rows as one row-major slice: in place when the array is C-contiguous
/// (always, after [`rows`]), else on a copy.
pub fn with_slice<R>(rows: &PyReadonlyArray2<'_, f64>, f: impl FnOnce(&[f64]) -> R) -> R {
    match rows.as_slice() {
        Ok(s) => f(s),
        Err(_) => f(&rows.as_array().iter().copied().collect::<Vec<f64>>()),
    }
}
