//! Turning Python inputs (numbers, lists, tuples, numpy arrays of any numeric dtype, byte order
//! and strides, pandas objects) into f64 rows. C-contiguous native float64 arrays are read in
//! place, without a copy. Wrong types give `TypeError`, missing or out-of-range values
//! `ValueError` (as NaN and infinities do in the core), each naming the row and column.
use numpy::{PyArray1, PyArray2, PyUntypedArray};
use numpy::{PyArrayDescrMethods, PyArrayMethods, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyFloat, PyInt, PyList, PyMemoryView, PyString, PyTuple};

fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .name()
        .map_or_else(|_| "?".to_string(), |n| n.to_string())
}

/// Text and bytes are not numbers, although numpy reads a bytearray or memoryview as uint8.
fn refuse_text(obj: &Bound<'_, PyAny>) -> PyResult<()> {
    if obj.is_instance_of::<PyString>()
        || obj.is_instance_of::<PyBytes>()
        || obj.is_instance_of::<PyByteArray>()
        || obj.is_instance_of::<PyMemoryView>()
    {
        return Err(PyTypeError::new_err(format!(
            "expected a number, a sequence or an array of numbers, got {}",
            type_name(obj)
        )));
    }
    Ok(())
}

/// One value as f64: floats and ints (any size), and objects with `__float__`. pandas' `NA`
/// and `NaT` are missing values (`ValueError`, like the NaN that pandas puts in float columns,
/// so a DataFrame and a Series agree); `None` is not a number (`TypeError`); an int beyond
/// float64's range is a value out of range (`ValueError`).
fn number(v: &Bound<'_, PyAny>, row: usize, column: usize) -> PyResult<f64> {
    if let Ok(f) = v.cast::<PyFloat>() {
        return Ok(f.value());
    }
    let missing = !v.is_none() && matches!(type_name(v).as_str(), "NAType" | "NaTType");
    if missing {
        return Err(PyValueError::new_err(format!(
            "missing value ({}) at row {row}, column {column}: expected a finite number",
            v.repr().map_or_else(|_| "?".into(), |r| r.to_string())
        )));
    }
    let text = v.is_instance_of::<PyString>()
        || v.is_instance_of::<PyBytes>()
        || v.is_instance_of::<PyByteArray>();
    let converted = if v.is_instance_of::<PyInt>() {
        v.extract::<f64>()
    } else if text {
        Err(PyTypeError::new_err(""))
    } else {
        v.call_method0("__float__").and_then(|f| f.extract::<f64>())
    };
    converted.map_err(|e| {
        if e.is_instance_of::<PyOverflowError>(v.py()) {
            PyValueError::new_err(format!(
                "value out of range at row {row}, column {column}: {} does not fit in float32 \
                 (|x| <= 3.4e38 expected)",
                short_repr(v)
            ))
        } else {
            PyTypeError::new_err(format!(
                "expected numbers, got {} at row {row}, column {column}",
                type_name(v)
            ))
        }
    })
}

fn short_repr(v: &Bound<'_, PyAny>) -> String {
    let r = v.str().map_or_else(|_| "?".into(), |r| r.to_string());
    if r.len() > 24 {
        format!("{}...({} digits)", &r[..12], r.len())
    } else {
        r
    }
}

/// One point: `dims` finite numbers (finiteness is checked by the core).
pub fn point(obj: &Bound<'_, PyAny>, dims: usize) -> PyResult<Vec<f64>> {
    // Fast paths for the common per-record calls.
    if obj.is_instance_of::<PyFloat>() || obj.is_instance_of::<PyInt>() {
        if dims != 1 {
            return Err(PyValueError::new_err(format!(
                "expected a sequence of {dims} numbers (dimensions={dims}), got a single number"
            )));
        }
        return Ok(vec![number(obj, 0, 0)?]);
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
    items.enumerate().map(|(j, v)| number(&v, 0, j)).collect()
}

/// `numpy.asarray(obj)` as a C-contiguous native-endian float64 array: numeric dtypes are
/// cast, object arrays (pandas with missing values, huge Python ints) are read value by value,
/// anything else is a `TypeError`.
fn as_float_array<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyUntypedArray>> {
    refuse_text(obj)?;
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
    let dtype = arr.dtype();
    let kind = dtype.kind();
    if kind == b'O' {
        return object_array(&arr);
    }
    if !matches!(kind, b'f' | b'i' | b'u' | b'b') {
        return Err(PyTypeError::new_err(format!(
            "expected a numeric array (float or int dtype), got dtype {dtype}"
        )));
    }
    let native = dtype.is_native_byteorder().unwrap_or(true);
    if kind == b'f' && dtype.itemsize() == 8 && native && arr.is_c_contiguous() {
        return Ok(arr);
    }
    let converted = np.call_method(
        "ascontiguousarray",
        (arr,),
        Some(&[("dtype", np.getattr("float64")?)].into_py_dict_compat(py)?),
    )?;
    Ok(converted.cast_into::<PyUntypedArray>()?)
}

/// An object array converted value by value with [`number`] (row and column named on error).
fn object_array<'py>(arr: &Bound<'py, PyUntypedArray>) -> PyResult<Bound<'py, PyUntypedArray>> {
    let py = arr.py();
    let shape = arr.shape().to_vec();
    let cols = match shape.as_slice() {
        [_, c] => (*c).max(1),
        _ => 1,
    };
    let flat = arr.call_method0("ravel")?;
    let mut values = Vec::with_capacity(arr.len());
    for (i, v) in flat.try_iter()?.enumerate() {
        let v = v?;
        let (row, column) = if shape.len() == 2 {
            (i / cols, i % cols)
        } else if shape.len() == 1 && cols == 1 {
            (i, 0)
        } else {
            (0, i)
        };
        values.push(number(&v, row, column)?);
    }
    let out = PyArray1::from_vec(py, values);
    Ok(out
        .call_method1("reshape", (pyo3::types::PyTuple::new(py, &shape)?,))?
        .cast_into::<PyUntypedArray>()?)
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

/// Bytes of a saved state from `bytes`, `bytearray` or `memoryview` (any buffer of bytes).
pub fn state_bytes(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(b.to_vec());
    }
    if obj.is_instance_of::<PyMemoryView>() {
        let b = obj.call_method0("tobytes")?;
        return Ok(b.cast::<PyBytes>()?.as_bytes().to_vec());
    }
    Err(PyTypeError::new_err(format!(
        "expected bytes, bytearray or memoryview (from to_bytes()), got {}",
        type_name(obj)
    )))
}
