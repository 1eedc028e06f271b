//! Insertion: descend, climb while the boxes do not hold the point (the score's climb, which
//! also yields the point's RCF score), then draw the cut from the highest such level down.
use super::{is_leaf, Node, Tree, BOX_MIN_MASS, LEAF, NIL, NO_BOX};
use crate::kernels::{dims, duplicate_score, norm_of, separation_any, widen_d};
use crate::point_store::PointStore;
use crate::rng::Rng;
use crate::scratch::{BoxRoom, Scratch};

impl Tree {
    /// Inserts point `id`. Returns the leaf slot now holding it and whether that leaf is new
    /// (false when the point merged into an equal leaf).
    pub fn insert(
        &mut self,
        store: &PointStore,
        id: u32,
        rng: &mut Rng,
        sc: &mut Scratch,
    ) -> (u16, bool) {
        let (slot, added, _) = self.insert_scored(store, id, rng, sc, None);
        (slot, added)
    }

    /// [`Tree::insert`], also returning the RCF score the point had in the tree before it went
    /// in: the insertion walks the same path and boxes as [`Tree::rcf_score`], so the score
    /// costs a few operations per level instead of a walk of its own. The score is bit for bit
    /// the one [`Tree::rcf_score`] gives (same boxes, same operations in the same order).
    /// `walked`: the leaf the point reaches when the caller already descended this tree with
    /// it and left the path (root first) in `sc.path`.
    pub fn insert_scored(
        &mut self,
        store: &PointStore,
        id: u32,
        rng: &mut Rng,
        sc: &mut Scratch,
        walked: Option<u16>,
    ) -> (u16, bool, f64) {
        by_point_size!(self.dim, D => self.insert_d::<D>(store, id, rng, sc, walked))
    }

    /// Insertion as a walk down and back up: descend to the leaf `q` reaches, climb while
    /// collecting the tight boxes of the nodes whose box does not contain `q` (the box of a
    /// node is its child's box widened by the sibling, or the cached one), then draw cuts from
    /// the highest such node down. A node whose box contains `q` can never be separated from
    /// `q` (its cut would fall inside the box), so no draw is spent there; the tree has the
    /// distribution of the top-down insertion of Guha et al.
    pub(super) fn insert_d<const D: usize>(
        &mut self,
        store: &PointStore,
        id: u32,
        rng: &mut Rng,
        sc: &mut Scratch,
        walked: Option<u16>,
    ) -> (u16, bool, f64) {
        if self.root == NIL {
            let slot = self.alloc_leaf(id);
            self.root = LEAF | slot;
            return (slot, true, 0.0);
        }
        let d = dims::<D>(self.dim);
        let q = &store.point(id)[..d];
        let path = &mut sc.path;
        let leaf = if let Some(leaf) = walked {
            leaf
        } else {
            path.clear();
            let mut node = self.root;
            while !is_leaf(node) {
                path.push(node);
                node = self.step(node, q);
            }
            node
        };
        debug_assert_eq!(path.first().copied().unwrap_or(leaf), self.root);
        let len = path.len();
        let p = &store.point(self.leaf_point(leaf))[..d];
        if p == q {
            let slot = leaf & !LEAF;
            let m = self.slot_mass(slot);
            let score = duplicate_score(len, m, self.mass());
            for &n in path.iter() {
                self.add_mass_d::<D>(store, n, q, false);
            }
            self.set_slot_mass(slot, m + 1);
            return (slot, false, score);
        }
        // seps[2i], seps[2i+1]: out-of-box distance of q and total span of the box of level i
        // widened by q (level 0: the leaf's point; level i: the node at depth `len - i`), for
        // the levels whose box does not hold q. The score's climb computes them.
        let mut seps = std::mem::take(&mut sc.work);
        seps.clear();
        let (o, t) = separation_any::<D>(p, p, q);
        seps.push(o);
        seps.push(t);
        let climbed = self.climb_levels::<D, true>(store, q, leaf, path, &mut sc.boxes, &mut seps);
        let score = climbed * norm_of(f64::from(self.mass()));
        let top = len + 1 - seps.len() / 2;
        let result = self.place_d::<D>(store, id, q, leaf, top, &seps, rng, sc);
        sc.work = seps;
        (result.0, result.1, score)
    }

    /// The second half of an insertion: one draw per level from the highest one whose box does
    /// not hold `q` (path index `top`) down to the leaf, against the measure of the cuts that
    /// separate `q` there; the first hit gets the new branch.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn place_d<const D: usize>(
        &mut self,
        store: &PointStore,
        id: u32,
        q: &[f32],
        leaf: u16,
        top: usize,
        seps: &[f64],
        rng: &mut Rng,
        sc: &mut Scratch,
    ) -> (u16, bool) {
        let d = q.len();
        let len = sc.path.len();
        for j in top..=len {
            let level = len - j;
            let (out, total) = (seps[2 * level], seps[2 * level + 1]);
            // The cut is uniform over the box ∪ q's spans; the part of measure `out` lying
            // between the box and q separates q (always at the leaf: its box is one point).
            let r = rng.next_f64() * total;
            if r >= out && j < len {
                continue;
            }
            let at = if j == len { leaf } else { sc.path[j] };
            // The box of the subtree the new branch goes above, then widened by q.
            let mut room = BoxRoom::new(d);
            let (blo, bhi) = room.pair();
            self.box_of_d::<D>(store, at, blo, bhi);
            let (cut_dim, cut) = separating_cut::<D>(blo, bhi, q, r);
            let q_left = q[cut_dim] <= cut;
            widen_d::<D>(blo, bhi, q, q);
            let parent = if j == 0 { NIL } else { sc.path[j - 1] };
            for k in 0..j {
                // Levels from `top` down do not hold q: their cached boxes widen.
                self.add_mass_d::<D>(store, sc.path[k], q, k >= top);
            }
            let slot = self.alloc_leaf(id);
            let new_leaf = LEAF | slot;
            let mass = self.mass_of(at) + 1;
            let (left, right) = if q_left {
                (new_leaf, at)
            } else {
                (at, new_leaf)
            };
            let bbox = if mass >= u32::from(BOX_MIN_MASS) {
                self.alloc_box(blo, bhi)
            } else {
                NO_BOX
            };
            let branch = self.alloc_node(
                Node {
                    cut,
                    left,
                    right,
                    dim: cut_dim as u16,
                    mass: mass as u16,
                },
                bbox,
            );
            self.set_child(parent, at, branch);
            return (slot, true);
        }
        unreachable!("a cut at the leaf always separates two different points")
    }

    /// One more point (`q`) below internal node `n`: its mass grows and, when `q` lies outside
    /// its box (`outside`), its cached box widens; a node reaching [`BOX_MIN_MASS`] gets a box.
    /// Runs for every node above a new leaf: the common case (a count and at most a widening)
    /// is inline, the first box of a node is not.
    #[inline(always)]
    pub(super) fn add_mass_d<const D: usize>(
        &mut self,
        store: &PointStore,
        n: u16,
        q: &[f32],
        outside: bool,
    ) {
        let nd = &mut self.nodes[n as usize];
        nd.mass += 1;
        let mass = nd.mass;
        let b = self.node_box[n as usize];
        if b != NO_BOX {
            if outside {
                let (blo, bhi) = self.cached_box_mut_d::<D>(b);
                widen_d::<D>(blo, bhi, q, q);
            }
        } else if mass >= BOX_MIN_MASS {
            self.first_box_d::<D>(store, n, q);
        }
    }

    /// Gives node `n` (which just reached [`BOX_MIN_MASS`] with `q`, not yet linked below it)
    /// its cached box.
    #[cold]
    #[inline(never)]
    pub(super) fn first_box_d<const D: usize>(&mut self, store: &PointStore, n: u16, q: &[f32]) {
        let mut room = BoxRoom::new(q.len());
        let (lo, hi) = room.pair();
        self.box_of_d::<D>(store, n, lo, hi);
        widen_d::<D>(lo, hi, q, q);
        let slot = self.alloc_box(lo, hi);
        self.node_box[n as usize] = slot;
    }
}

/// The cut at offset `r` in `[0, out)` along the stretches between the box `lo/hi` and `q`
/// (dimension by dimension), which all separate `q` from the box. The value stays inside its
/// stretch `[a, b)`, so f32 rounding can never put it on the wrong side.
fn separating_cut<const D: usize>(lo: &[f32], hi: &[f32], q: &[f32], mut r: f64) -> (usize, f32) {
    let n = dims::<D>(q.len());
    let (lo, hi, q) = (&lo[..n], &hi[..n], &q[..n]);
    let mut last = None;
    for i in 0..n {
        let (a, b) = if q[i] < lo[i] {
            (q[i], lo[i])
        } else if q[i] > hi[i] {
            (hi[i], q[i])
        } else {
            continue;
        };
        let gap = f64::from(b) - f64::from(a);
        last = Some((i, a, b));
        if r < gap {
            return (i, cut_in(a, b, r));
        }
        r -= gap;
    }
    // Rounding ran past the last stretch: cut at its top.
    let (i, a, b) = last.expect("q lies outside the box");
    (i, cut_in(a, b, f64::from(b) - f64::from(a)))
}

#[inline]
fn cut_in(a: f32, b: f32, r: f64) -> f32 {
    let c = (f64::from(a) + r) as f32;
    if c >= b {
        b.next_down().max(a)
    } else {
        c.max(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inserting q = (3, 2) into the tree of {(0, 0), (1, 0)}: Guha et al. cut the root's box
    /// widened by q, [0, 3] × [0, 2] (spans 3 + 2), uniformly. The cut separates q at the root
    /// with probability (2 + 2)/5, then in dimension 0 or 1 with equal odds, uniformly in
    /// [1, 3) or [0, 2); otherwise q goes on down.
    #[test]
    fn insertion_cuts_with_the_papers_distribution() {
        let mut store = PointStore::new(2);
        let a = store.add(&[0.0, 0.0]);
        let b = store.add(&[1.0, 0.0]);
        let q = store.add(&[3.0, 2.0]);
        let mut sc = Scratch::default();
        let n = 20_000;
        let (mut at_root, mut dim0, mut sum0, mut sum1) = (0u32, 0u32, 0.0f64, 0.0f64);
        for seed in 0..n {
            let mut rng = Rng::from_seed(seed);
            let mut t = Tree::new(2, 4);
            t.insert(&store, a, &mut rng, &mut sc);
            t.insert(&store, b, &mut rng, &mut sc);
            let (slot, added) = t.insert(&store, q, &mut rng, &mut sc);
            assert!(added);
            t.check(&store, &mut [0, 0, 0]).unwrap();
            let root = *t.node(t.root());
            if root.left == LEAF | slot || root.right == LEAF | slot {
                at_root += 1;
                if root.dim == 0 {
                    dim0 += 1;
                    sum0 += f64::from(root.cut);
                } else {
                    sum1 += f64::from(root.cut);
                }
            }
        }
        let p_root = f64::from(at_root) / f64::from(n as u32);
        assert!(
            (p_root - 0.8).abs() < 0.015,
            "separated at the root in {p_root}"
        );
        let p_dim0 = f64::from(dim0) / f64::from(at_root);
        assert!((p_dim0 - 0.5).abs() < 0.02, "dimension 0 in {p_dim0}");
        let mean0 = sum0 / f64::from(dim0);
        let mean1 = sum1 / f64::from(at_root - dim0);
        assert!(
            (mean0 - 2.0).abs() < 0.03,
            "mean cut in dimension 0: {mean0}"
        );
        assert!(
            (mean1 - 1.0).abs() < 0.03,
            "mean cut in dimension 1: {mean1}"
        );
    }
}
