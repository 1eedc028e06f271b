//! Bounding boxes: cached on nodes of mass >= [`BOX_MIN_MASS`], computed from the few leaves of
//! smaller subtrees, on slices (any size) or vectors (sizes 4, 8, 16).
use super::{is_leaf, Tree, BOX_MIN_MASS, NO_BOX};
use crate::kernels::{dims, simd, widen_d};
use crate::point_store::PointStore;

impl Tree {
    /// Widens `lo`/`hi` to contain the subtree `r`.
    pub(crate) fn extend_box(&self, store: &PointStore, r: u16, lo: &mut [f32], hi: &mut [f32]) {
        self.extend_box_d::<0>(store, r, lo, hi);
    }

    /// Visits the parts that together cover subtree `r`, each once: `leaf` gets the point id of
    /// every leaf, `cached` the box slot of every cached box, both with `acc`. The walk behind
    /// every box computed from leaves.
    #[inline(always)]
    pub(super) fn for_box_parts<A>(
        &self,
        r: u16,
        acc: &mut A,
        leaf: impl Fn(&mut A, u32),
        cached: impl Fn(&mut A, u16),
    ) {
        if is_leaf(r) {
            // The common case at the bottom of a tree: a single leaf.
            leaf(acc, self.leaf_point(r));
            return;
        }
        // Uncached subtrees hold fewer than BOX_MIN_MASS leaves, so a small stack suffices.
        let mut stack = [0u16; 2 * BOX_MIN_MASS as usize + 2];
        let mut top = 1;
        stack[0] = r;
        while top > 0 {
            top -= 1;
            let r = stack[top];
            if is_leaf(r) {
                leaf(acc, self.leaf_point(r));
                continue;
            }
            let b = self.node_box[r as usize];
            if b == NO_BOX {
                let n = &self.nodes[r as usize];
                stack[top] = n.left;
                stack[top + 1] = n.right;
                top += 2;
            } else {
                cached(acc, b);
            }
        }
    }

    /// [`Tree::extend_box`] for `D` dimensions (0: any).
    #[inline(always)]
    pub(crate) fn extend_box_d<const D: usize>(
        &self,
        store: &PointStore,
        r: u16,
        lo: &mut [f32],
        hi: &mut [f32],
    ) {
        self.for_box_parts(
            r,
            &mut (lo, hi),
            |(lo, hi), id| {
                let p = store.point_d::<D>(id);
                widen_d::<D>(lo, hi, p, p);
            },
            |(lo, hi), slot| {
                let (blo, bhi) = self.cached_box_d::<D>(slot);
                widen_d::<D>(lo, hi, blo, bhi);
            },
        );
    }

    /// The cached box in slot `slot` for points of `4·N` values, as vectors.
    #[inline(always)]
    pub(crate) fn cached_box_x4<const N: usize>(
        &self,
        slot: u16,
    ) -> (simd::Lanes<N>, simd::Lanes<N>) {
        let start = slot as usize * 8 * N;
        let b = &self.boxes[start..start + 8 * N];
        (simd::load::<N>(b), simd::load::<N>(&b[4 * N..]))
    }

    /// [`Tree::extend_box`] for points of `4·N` values, on vectors.
    #[inline(always)]
    pub(crate) fn extend_box_x4<const N: usize>(
        &self,
        store: &PointStore,
        r: u16,
        lo: &mut simd::Lanes<N>,
        hi: &mut simd::Lanes<N>,
    ) {
        self.for_box_parts(
            r,
            &mut (lo, hi),
            |(lo, hi), id| {
                let p = store.point_x4::<N>(id);
                simd::widen(lo, hi, &p, &p);
            },
            |(lo, hi), slot| {
                let (blo, bhi) = self.cached_box_x4::<N>(slot);
                simd::widen(lo, hi, &blo, &bhi);
            },
        );
    }

    /// Sets `lo`/`hi` to the tight box of subtree `r`, for `D` dimensions (0: any).
    #[inline]
    pub(crate) fn box_of_d<const D: usize>(
        &self,
        store: &PointStore,
        r: u16,
        lo: &mut [f32],
        hi: &mut [f32],
    ) {
        let n = dims::<D>(lo.len());
        let (lo, hi) = (&mut lo[..n], &mut hi[..n]);
        if is_leaf(r) {
            let p = &store.point(self.leaf_point(r))[..n];
            lo.copy_from_slice(p);
            hi.copy_from_slice(p);
            return;
        }
        let b = self.node_box[r as usize];
        if b == NO_BOX {
            lo.fill(f32::INFINITY);
            hi.fill(f32::NEG_INFINITY);
            self.extend_box_d::<D>(store, r, lo, hi);
        } else {
            let (blo, bhi) = self.cached_box(b);
            lo.copy_from_slice(&blo[..n]);
            hi.copy_from_slice(&bhi[..n]);
        }
    }

    /// The cached box of internal node `r`, if it has one.
    #[inline]
    pub(crate) fn box_if_cached(&self, r: u16) -> Option<(&[f32], &[f32])> {
        if is_leaf(r) {
            return None;
        }
        let b = self.node_box[r as usize];
        (b != NO_BOX).then(|| self.cached_box(b))
    }

    #[inline]
    pub(super) fn cached_box(&self, slot: u16) -> (&[f32], &[f32]) {
        self.cached_box_d::<0>(slot)
    }

    /// [`Tree::cached_box`] for `D` dimensions (0: any).
    #[inline(always)]
    pub(crate) fn cached_box_d<const D: usize>(&self, slot: u16) -> (&[f32], &[f32]) {
        let d = dims::<D>(self.dim);
        let start = slot as usize * 2 * d;
        let b = &self.boxes[start..start + 2 * d];
        b.split_at(d)
    }

    /// The cached box slot of internal node `n` (`None` for small subtrees).
    #[inline(always)]
    pub(crate) fn box_slot(&self, n: u16) -> Option<u16> {
        let b = self.node_box[n as usize];
        (b != NO_BOX).then_some(b)
    }

    pub(super) fn cached_box_mut(&mut self, slot: u16) -> (&mut [f32], &mut [f32]) {
        self.cached_box_mut_d::<0>(slot)
    }

    /// [`Tree::cached_box_mut`] for `D` dimensions (0: any).
    #[inline(always)]
    pub(super) fn cached_box_mut_d<const D: usize>(
        &mut self,
        slot: u16,
    ) -> (&mut [f32], &mut [f32]) {
        let d = dims::<D>(self.dim);
        let start = slot as usize * 2 * d;
        self.boxes[start..start + 2 * d].split_at_mut(d)
    }
}
