//! Checks of user input: every value finite and representable as f32, rows of the right width.
use crate::error::{RcfError, Result};

/// Converts one row to f32, rejecting NaN, infinities and values beyond f32's range.
pub fn row_to_f32(row: &[f64], expected: usize, row_index: usize, out: &mut [f32]) -> Result<()> {
    if row.len() != expected {
        return Err(RcfError::DimensionMismatch {
            expected,
            got: row.len(),
        });
    }
    for (j, (&v, o)) in row.iter().zip(out.iter_mut()).enumerate() {
        if v.is_nan() {
            return Err(RcfError::InvalidValue {
                what: "NaN value",
                row: row_index,
                column: j,
                message: "expected a finite number".into(),
            });
        }
        if v.is_infinite() {
            return Err(RcfError::InvalidValue {
                what: "infinite value",
                row: row_index,
                column: j,
                message: "expected a finite number".into(),
            });
        }
        let f = v as f32;
        if f.is_infinite() {
            return Err(RcfError::InvalidValue {
                what: "value out of range",
                row: row_index,
                column: j,
                message: format!("{v} does not fit in float32 (|x| <= 3.4e38 expected)"),
            });
        }
        *o = f;
    }
    Ok(())
}

/// Converts a row-major matrix of `cols` columns; the whole input is checked before any use.
pub fn matrix_to_f32(data: &[f64], cols: usize) -> Result<Vec<f32>> {
    if cols == 0 || data.len() % cols != 0 {
        return Err(RcfError::DimensionMismatch {
            expected: cols,
            got: data.len(),
        });
    }
    let mut out = vec![0f32; data.len()];
    for (i, (row, o)) in data.chunks(cols).zip(out.chunks_mut(cols)).enumerate() {
        row_to_f32(row, cols, i, o)?;
    }
    Ok(out)
}
