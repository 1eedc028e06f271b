//! Shingling: a stream of observations becomes points of the last `size` observations, oldest
//! first. The forest keeps the last `size - 1` observations between calls.
use serde::{Deserialize, Serialize};

/// The last observations of a stream.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Shingle {
    dims: usize,
    size: usize,
    /// Up to `size - 1` most recent observations, oldest first, flattened.
    recent: Vec<f32>,
}

impl Shingle {
    /// Empty history for observations of `dims` values and shingles of `size` observations.
    pub fn new(dims: usize, size: usize) -> Self {
        Shingle {
            dims,
            size,
            recent: Vec::with_capacity(dims * size.saturating_sub(1)),
        }
    }

    /// Observations held (at most `size - 1`).
    pub fn held(&self) -> usize {
        self.recent.len() / self.dims
    }

    /// Writes the point `history + x` into `out`; false while fewer than `size - 1`
    /// observations precede `x`.
    pub fn point_for(&self, x: &[f32], out: &mut Vec<f32>) -> bool {
        if self.held() + 1 < self.size {
            return false;
        }
        out.clear();
        out.extend_from_slice(&self.recent);
        out.extend_from_slice(x);
        true
    }

    /// Appends `x` to the history, dropping the oldest observation when full.
    pub fn push(&mut self, x: &[f32]) {
        if self.size == 1 {
            return;
        }
        if self.held() + 1 == self.size {
            self.recent.drain(..self.dims);
        }
        self.recent.extend_from_slice(x);
    }

    pub(crate) fn is_valid(&self, dims: usize, size: usize) -> bool {
        self.dims == dims
            && self.size == size
            && self.recent.len() % dims == 0
            && self.held() < size
            && self.recent.iter().all(|v| v.is_finite())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_oldest_first_and_wait_for_history() {
        let mut s = Shingle::new(1, 3);
        let mut out = Vec::new();
        assert!(!s.point_for(&[1.0], &mut out));
        s.push(&[1.0]);
        assert!(!s.point_for(&[2.0], &mut out));
        s.push(&[2.0]);
        assert!(s.point_for(&[3.0], &mut out));
        assert_eq!(out, vec![1.0, 2.0, 3.0]);
        s.push(&[3.0]);
        assert!(s.point_for(&[4.0], &mut out));
        assert_eq!(out, vec![2.0, 3.0, 4.0]);
    }

    #[test]
    fn size_one_is_the_observation_itself() {
        let s = Shingle::new(2, 1);
        let mut out = Vec::new();
        assert!(s.point_for(&[1.0, 2.0], &mut out));
        assert_eq!(out, vec![1.0, 2.0]);
    }
}
