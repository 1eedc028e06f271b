//! One point store shared by all trees of a forest. Points are f32 rows of `dim` values addressed
//! by `u32` ids; a tree leaf holds one reference. Ids are reused after the last reference goes.
//! Invariant: `refs[i] == FREE` exactly for ids in `free`.
use serde::{Deserialize, Serialize};

/// Reference count of a free id. A point has at most one leaf per tree, so counts stay below
/// `num_trees`, which the configuration keeps under this.
const FREE: u16 = u16::MAX;
/// Point ids are 24-bit (tree leaves keep the mass in the other 8 bits).
const ID_LIMIT: usize = 1 << 24;

/// Reference-counted storage of points.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PointStore {
    dim: usize,
    data: Vec<f32>,
    refs: Vec<u16>,
    free: Vec<u32>,
}

impl PointStore {
    /// An empty store of points with `dim` values.
    pub fn new(dim: usize) -> Self {
        PointStore {
            dim,
            data: Vec::new(),
            refs: Vec::new(),
            free: Vec::new(),
        }
    }

    /// Values per point.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Adds a point with no references yet and returns its id.
    pub fn add(&mut self, point: &[f32]) -> u32 {
        debug_assert_eq!(point.len(), self.dim);
        if let Some(id) = self.free.pop() {
            let start = id as usize * self.dim;
            self.data[start..start + self.dim].copy_from_slice(point);
            self.refs[id as usize] = 0;
            id
        } else {
            // Grow by ~1/4 instead of doubling: the store is most of a forest's memory.
            if self.refs.len() == self.refs.capacity() {
                let extra = (self.refs.len() / 4).max(16);
                self.refs.reserve_exact(extra);
                self.data.reserve_exact(extra * self.dim);
            }
            self.data.extend_from_slice(point);
            self.refs.push(0);
            (self.refs.len() - 1) as u32
        }
    }

    /// The values of point `id`.
    #[inline]
    pub fn point(&self, id: u32) -> &[f32] {
        let start = id as usize * self.dim;
        &self.data[start..start + self.dim]
    }

    /// [`PointStore::point`] for `D` values per point (0: any), so that offsets are constants.
    #[inline(always)]
    pub fn point_d<const D: usize>(&self, id: u32) -> &[f32] {
        let d = crate::kernels::dims::<D>(self.dim);
        let start = id as usize * d;
        &self.data[start..start + d]
    }

    /// The values of point `id` as `N` vectors of four (points of `4·N` values).
    #[inline(always)]
    pub(crate) fn point_x4<const N: usize>(&self, id: u32) -> crate::kernels::simd::Lanes<N> {
        let start = id as usize * 4 * N;
        crate::kernels::simd::load::<N>(&self.data[start..start + 4 * N])
    }

    /// Adds one reference to `id`.
    pub fn inc(&mut self, id: u32) {
        self.refs[id as usize] += 1;
    }

    /// Drops one reference to `id`, freeing it at zero.
    pub fn dec(&mut self, id: u32) {
        let r = &mut self.refs[id as usize];
        debug_assert!(*r > 0 && *r != FREE);
        *r -= 1;
        if *r == 0 {
            self.release(id);
        }
    }

    /// Frees `id` if nobody references it (a point that no tree accepted).
    pub fn release_if_unused(&mut self, id: u32) {
        if self.refs[id as usize] == 0 {
            self.release(id);
        }
    }

    fn release(&mut self, id: u32) {
        self.refs[id as usize] = FREE;
        self.free.push(id);
    }

    /// References to `id` (0 for a free id).
    pub fn ref_count(&self, id: u32) -> u32 {
        match self.refs.get(id as usize) {
            Some(&FREE) | None => 0,
            Some(&r) => u32::from(r),
        }
    }

    /// Number of live points.
    pub fn len(&self) -> usize {
        self.refs.len() - self.free.len()
    }

    /// True when no point is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.data.capacity() * 4 + self.refs.capacity() * 2 + self.free.capacity() * 4
    }

    /// True if `id` is a live point.
    pub fn is_live(&self, id: u32) -> bool {
        self.refs.get(id as usize).is_some_and(|&r| r != FREE)
    }

    /// First structural check after deserializing: sizes agree and values are finite, so that
    /// [`PointStore::point`] is safe for every id below the number of slots.
    pub(crate) fn check_shape(&self) -> std::result::Result<(), String> {
        if self.dim == 0
            || self.refs.len().checked_mul(self.dim) != Some(self.data.len())
            || self.refs.len() > ID_LIMIT
        {
            return Err(format!(
                "point store sizes disagree: {} values for {} points of {} values",
                self.data.len(),
                self.refs.len(),
                self.dim
            ));
        }
        if self.data.iter().any(|v| !v.is_finite()) {
            return Err("point store holds a non-finite value".into());
        }
        Ok(())
    }

    /// Second structural check: `expected` gives each id's reference count (from the trees).
    pub(crate) fn check_refs(&self, expected: &[u32]) -> std::result::Result<(), String> {
        self.check_shape()?;
        if expected.len() != self.refs.len() {
            return Err("point store length disagrees with trees".into());
        }
        let mut free_seen = vec![false; self.refs.len()];
        for &f in &self.free {
            let i = f as usize;
            if i >= self.refs.len() || self.refs[i] != FREE || free_seen[i] {
                return Err("point store free list is inconsistent".into());
            }
            free_seen[i] = true;
        }
        for (i, (&r, &e)) in self.refs.iter().zip(expected).enumerate() {
            let live_ok = if r == FREE {
                free_seen[i] && e == 0
            } else {
                !free_seen[i] && u32::from(r) == e
            };
            if !live_ok {
                return Err(format!("point {i} has {r} references, trees hold {e}"));
            }
        }
        Ok(())
    }
}

impl PointStore {
    /// Ids on the free list.
    pub fn free_len(&self) -> usize {
        self.free.len()
    }

    pub(crate) fn shrink(&mut self) {
        self.data.shrink_to_fit();
        self.refs.shrink_to_fit();
        self.free.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_reused_after_release() {
        let mut s = PointStore::new(2);
        let a = s.add(&[1.0, 2.0]);
        let b = s.add(&[3.0, 4.0]);
        s.inc(a);
        s.inc(b);
        s.dec(a);
        assert_eq!(s.len(), 1);
        let c = s.add(&[5.0, 6.0]);
        assert_eq!(c, a);
        assert_eq!(s.point(c), &[5.0, 6.0]);
        assert_eq!(s.point(b), &[3.0, 4.0]);
    }
}
