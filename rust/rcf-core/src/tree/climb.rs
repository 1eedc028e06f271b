//! The walk of a point through a tree: its descent to a leaf and the climb back up that the
//! RCF score and the insertion share (the insertion draws its cut from the climb's levels).
use super::{is_leaf, Tree, NIL};
use crate::kernels::{dims, duplicate_score, norm_of, separation_d, simd};
use crate::point_store::PointStore;
use crate::scratch::box_pair;

impl Tree {
    /// Follows the cuts from the root to the leaf `q` would reach; internal nodes go to
    /// `path`. Returns the leaf reference.
    #[inline]
    pub(crate) fn descend(&self, q: &[f32], path: &mut Vec<u16>) -> u16 {
        path.clear();
        let mut node = self.root();
        while !is_leaf(node) {
            path.push(node);
            node = self.step(node, q);
        }
        node
    }

    /// Depth of the leaf that `q` would reach (0 for an empty tree or a single leaf).
    pub fn leaf_depth(&self, q: &[f32]) -> usize {
        if self.root() == NIL {
            return 0;
        }
        let mut depth = 0;
        let mut node = self.root();
        while !is_leaf(node) {
            node = self.step(node, q);
            depth += 1;
        }
        depth
    }

    /// The RCF score from the leaf `q` reaches and the internal nodes above it (root first).
    #[inline(always)]
    pub(crate) fn rcf_climb_d<const D: usize>(
        &self,
        store: &PointStore,
        q: &[f32],
        leaf: u16,
        path: &[u16],
        boxes: &mut Vec<f32>,
    ) -> f64 {
        let norm = norm_of(f64::from(self.mass()));
        if store.point(self.leaf_point(leaf)) == q {
            return duplicate_score(path.len(), self.mass_of(leaf), self.mass());
        }
        self.climb_levels::<D, false>(store, q, leaf, path, boxes, &mut Vec::new()) * norm
    }

    /// The climb of the RCF score from `leaf` (whose point is not `q`) with the
    /// internal nodes `path` above it (root first): the score before its scale `log2(M + 1)`.
    /// Each level's box is the child's box widened by the sibling (or the node's cached box);
    /// the climb stops at the first box holding `q`. With `RECORD`, each level climbed past
    /// (out-of-box distance, total span) goes to `seps`, bottom level first: the insertion
    /// draws its cut from these, which makes its score and the read-only one the same.
    #[inline(always)]
    pub(crate) fn climb_levels<const D: usize, const RECORD: bool>(
        &self,
        store: &PointStore,
        q: &[f32],
        leaf: u16,
        path: &[u16],
        boxes: &mut Vec<f32>,
        seps: &mut Vec<f64>,
    ) -> f64 {
        let id = self.leaf_point(leaf);
        // Point sizes that are multiples of four take the vector kernels (every caller goes
        // through here, so a given size always gets the same arithmetic).
        match D {
            4 => return self.climb_x4::<1, RECORD>(store, q, leaf, path, seps),
            8 => return self.climb_x4::<2, RECORD>(store, q, leaf, path, seps),
            16 => return self.climb_x4::<4, RECORD>(store, q, leaf, path, seps),
            _ => {}
        }
        let d = dims::<D>(q.len());
        let q = &q[..d];
        let p = store.point_d::<D>(id);
        // The running box of the subtree climbed so far: on the stack for up to 16 values.
        let mut lo_a = [0f32; 16];
        let mut hi_a = [0f32; 16];
        let (lo, hi) = if d <= 16 {
            (&mut lo_a[..d], &mut hi_a[..d])
        } else {
            box_pair(boxes, d)
        };
        lo.copy_from_slice(p);
        hi.copy_from_slice(p);
        let mut score = 1.0 / (path.len() as f64 + 1.0);
        let mut child = leaf;
        for k in (0..path.len()).rev() {
            let n = path[k];
            let (out, total) = if let Some(b) = self.box_slot(n) {
                // Cached boxes start at some node and go on up to the root.
                let (blo, bhi) = self.cached_box_d::<D>(b);
                separation_d::<D>(blo, bhi, q)
            } else {
                let node = self.node(n);
                let sibling = node.other(child);
                self.extend_box_d::<D>(store, sibling, lo, hi);
                separation_d::<D>(lo, hi, q)
            };
            if out == 0.0 {
                break; // q lies in this box, hence in every box above: converged.
            }
            if RECORD {
                seps.push(out);
                seps.push(total);
            }
            let prob = out / total;
            score = (1.0 - prob) * score + prob / (k as f64 + 1.0);
            child = n;
        }
        score
    }

    /// [`Tree::climb_levels`] for points of `4·N` values, with boxes held in vectors.
    #[inline(always)]
    fn climb_x4<const N: usize, const RECORD: bool>(
        &self,
        store: &PointStore,
        q: &[f32],
        leaf: u16,
        path: &[u16],
        seps: &mut Vec<f64>,
    ) -> f64 {
        let qv = simd::load::<N>(q);
        let mut lo = store.point_x4::<N>(self.leaf_point(leaf));
        let mut hi = lo;
        let mut score = 1.0 / (path.len() as f64 + 1.0);
        let mut child = leaf;
        for k in (0..path.len()).rev() {
            let n = path[k];
            let (out, total) = if let Some(b) = self.box_slot(n) {
                let (blo, bhi) = self.cached_box_x4::<N>(b);
                simd::separation(&blo, &bhi, &qv)
            } else {
                let node = self.node(n);
                let sibling = node.other(child);
                self.extend_box_x4::<N>(store, sibling, &mut lo, &mut hi);
                simd::separation(&lo, &hi, &qv)
            };
            if out == 0.0 {
                break; // q lies in this box, hence in every box above: converged.
            }
            if RECORD {
                seps.push(out);
                seps.push(total);
            }
            let prob = out / total;
            score = (1.0 - prob) * score + prob / (k as f64 + 1.0);
            child = n;
        }
        score
    }
}
