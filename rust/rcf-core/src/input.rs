//! Checks of user input: every value finite and within [`value_limit`], rows of the right width.
use crate::error::{RcfError, Result};

/// Largest magnitude of an input value for points of `point_dims` values (after shingling):
/// `f32::MAX / (2 · point_dims)`. Scores sum, over a point's values, the span of a box widened
/// by the point, each up to twice the largest magnitude, in f32: within this limit the sum
/// cannot overflow (beyond it, inf / inf made NaN scores and attributions).
pub fn value_limit(point_dims: usize) -> f64 {
    f64::from(f32::MAX) / (2.0 * point_dims.max(1) as f64)
}

/// Converts one row to f32, rejecting NaN, infinities and values beyond `limit` in magnitude
/// (see [`value_limit`]).
pub fn row_to_f32(
    row: &[f64],
    expected: usize,
    row_index: usize,
    limit: f64,
    out: &mut [f32],
) -> Result<()> {
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
        if v.abs() > limit {
            return Err(RcfError::InvalidValue {
                what: "value out of range",
                row: row_index,
                column: j,
                message: format!(
                    "{v:e} does not fit in float32 with room for sums of spans (|x| <= {limit:.3e} \
                     expected: float32's largest value / (2 * dimensions * shingle_size))"
                ),
            });
        }
        *o = v as f32;
    }
    Ok(())
}

/// Converts a row-major matrix of `cols` columns, values within `limit`; the whole input is
/// checked before any use.
pub fn matrix_to_f32(data: &[f64], cols: usize, limit: f64) -> Result<Vec<f32>> {
    if cols == 0 || data.len() % cols != 0 {
        return Err(RcfError::DimensionMismatch {
            expected: cols,
            got: data.len(),
        });
    }
    let mut out = vec![0f32; data.len()];
    for (i, (row, o)) in data.chunks(cols).zip(out.chunks_mut(cols)).enumerate() {
        row_to_f32(row, cols, i, limit, o)?;
    }
    Ok(out)
}
