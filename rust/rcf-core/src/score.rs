//! Scores of one tree: the AWS RCF anomaly score, its attribution (DiVector), and rrcf's CoDisp
//! as the expectation over the random insertion of the query point.
use crate::point_store::PointStore;
use crate::scratch::{box_pair, zeroed_pair, Scratch};
use crate::simd;
use crate::tree::{dims, is_leaf, Tree, LEAF, NIL};

/// Out-of-box distance and total span of `lo/hi ∪ q` (their ratio is the probability that a
/// random cut separates q). f32 is exact enough for a ratio of a few sums, and `out == 0`
/// exactly when q lies in the box.
#[inline(always)]
fn separation(lo: &[f32], hi: &[f32], q: &[f32]) -> (f64, f64) {
    separation_d::<0>(lo, hi, q)
}

/// [`separation`] for `D` dimensions (0: any).
#[inline(always)]
fn separation_d<const D: usize>(lo: &[f32], hi: &[f32], q: &[f32]) -> (f64, f64) {
    let n = dims::<D>(q.len());
    let (lo, hi, q) = (&lo[..n], &hi[..n], &q[..n]);
    let mut out = 0.0f32;
    let mut span = 0.0f32;
    for i in 0..n {
        let (a, b, x) = (lo[i], hi[i], q[i]);
        // Branch-free distance outside [a, b] (no NaN can occur: all values are finite).
        let below = a - x;
        let above = x - b;
        out += if below > 0.0 { below } else { 0.0 } + if above > 0.0 { above } else { 0.0 };
        span += b - a;
    }
    (f64::from(out), f64::from(out) + f64::from(span))
}

/// [`separation_d`], through the vector kernel for point sizes 4, 8 and 16.
#[inline(always)]
pub(crate) fn separation_any<const D: usize>(lo: &[f32], hi: &[f32], q: &[f32]) -> (f64, f64) {
    match D {
        4 => simd::separation::<1>(&simd::load(lo), &simd::load(hi), &simd::load(q)),
        8 => simd::separation::<2>(&simd::load(lo), &simd::load(hi), &simd::load(q)),
        16 => simd::separation::<4>(&simd::load(lo), &simd::load(hi), &simd::load(q)),
        _ => separation_d::<D>(lo, hi, q),
    }
}

impl Tree {
    /// Follows the cuts from the root to the leaf `q` would reach; internal nodes go to
    /// `path`. Returns the leaf reference.
    #[inline]
    fn descend(&self, q: &[f32], path: &mut Vec<u16>) -> u16 {
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

    /// AWS RCF anomaly score of `q` (normal points below about 1). 0 for an empty tree.
    pub fn rcf_score(&self, store: &PointStore, q: &[f32], sc: &mut Scratch) -> f64 {
        // Common point sizes get kernels with fixed loop lengths.
        by_point_size!(q.len(), D => self.rcf_score_d::<D>(store, q, sc))
    }

    fn rcf_score_d<const D: usize>(&self, store: &PointStore, q: &[f32], sc: &mut Scratch) -> f64 {
        if self.root() == NIL {
            return 0.0;
        }
        let leaf = self.descend(q, &mut sc.path);
        self.rcf_climb_d::<D>(store, q, leaf, &sc.path, &mut sc.boxes)
    }

    /// The RCF score from the leaf `q` reaches and the internal nodes above it (root first).
    #[inline(always)]
    fn rcf_climb_d<const D: usize>(
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

    /// Adds this tree's attribution of the RCF score of `q` to `high`/`low` (per point
    /// dimension); their sum over dimensions equals [`Tree::rcf_score`].
    pub fn add_attribution(
        &self,
        store: &PointStore,
        q: &[f32],
        sc: &mut Scratch,
        high: &mut [f64],
        low: &mut [f64],
    ) {
        if self.root() == NIL {
            return;
        }
        let d = self.dim();
        let big_m = f64::from(self.mass());
        let norm = (big_m + 1.0).log2();
        let leaf = self.descend(q, &mut sc.path);
        let depth = sc.path.len() as f64;
        let p = store.point(self.leaf_point(leaf));
        if p == q {
            // A duplicate has no direction; spread its (small) score evenly.
            let s = duplicate_score(sc.path.len(), self.mass_of(leaf), self.mass());
            for i in 0..d {
                high[i] += s / (2 * d) as f64;
                low[i] += s / (2 * d) as f64;
            }
            return;
        }
        let (h, l) = zeroed_pair(&mut sc.work, &mut sc.work2, d);
        let leaf_score = 1.0 / (depth + 1.0);
        let total: f64 = (0..d)
            .map(|i| (f64::from(q[i]) - f64::from(p[i])).abs())
            .sum();
        for i in 0..d {
            let diff = f64::from(q[i]) - f64::from(p[i]);
            if diff > 0.0 {
                h[i] = diff / total * leaf_score;
            } else {
                l[i] = -diff / total * leaf_score;
            }
        }
        let (lo, hi) = box_pair(&mut sc.boxes, d);
        lo.copy_from_slice(p);
        hi.copy_from_slice(p);
        let mut child = leaf;
        for k in (0..sc.path.len()).rev() {
            let n = sc.path[k];
            let (blo, bhi): (&[f32], &[f32]) = if let Some(b) = self.box_if_cached(n) {
                b
            } else {
                let node = self.node(n);
                let sibling = node.other(child);
                self.extend_box(store, sibling, lo, hi);
                (&*lo, &*hi)
            };
            let (out, total) = separation(blo, bhi, q);
            if out == 0.0 {
                break;
            }
            let prob = out / total;
            let w = 1.0 / ((k as f64 + 1.0) * total);
            for i in 0..d {
                let (a, b, x) = (f64::from(blo[i]), f64::from(bhi[i]), f64::from(q[i]));
                h[i] *= 1.0 - prob;
                l[i] *= 1.0 - prob;
                if x > b {
                    h[i] += (x - b) * w;
                } else if x < a {
                    l[i] += (a - x) * w;
                }
            }
            child = n;
        }
        for i in 0..d {
            high[i] += h[i] * norm;
            low[i] += l[i] * norm;
        }
    }

    /// Expected CoDisp of `q`: the mean, over the random cut that inserting `q` would draw, of
    /// rrcf's collusive displacement of `q`'s new leaf. The tree is not changed.
    #[allow(clippy::needless_range_loop)] // k indexes the path and the probabilities together
    pub fn codisp_expected(&self, store: &PointStore, q: &[f32], sc: &mut Scratch) -> f64 {
        if self.root() == NIL {
            return 0.0;
        }
        let leaf = self.descend(q, &mut sc.path);
        let k_leaf = sc.path.len();
        let p = store.point(self.leaf_point(leaf));
        let duplicate = p == q;
        // probs[k]: probability that the insertion separates q at level k (leaf = k_leaf).
        let probs = &mut sc.work;
        probs.clear();
        probs.resize(k_leaf + 1, 0.0);
        probs[k_leaf] = if duplicate { 0.0 } else { 1.0 };
        let (lo, hi) = box_pair(&mut sc.boxes, self.dim());
        lo.copy_from_slice(p);
        hi.copy_from_slice(p);
        let mut child = leaf;
        for k in (0..k_leaf).rev() {
            let n = sc.path[k];
            let (out, total) = if let Some((blo, bhi)) = self.box_if_cached(n) {
                separation(blo, bhi, q)
            } else {
                let node = self.node(n);
                let sibling = node.other(child);
                self.extend_box(store, sibling, lo, hi);
                separation(lo, hi, q)
            };
            if out == 0.0 {
                break; // inside this box and all above: probability 0 from here up
            }
            probs[k] = out / total;
            child = n;
        }
        let mut expected = 0.0;
        let mut remain = 1.0;
        let mut prefix = 0.0f64; // max over the path so far of m(sibling) / (m(node) + 1)
        for k in 0..=k_leaf {
            let v = if k == k_leaf { leaf } else { sc.path[k] };
            let mv = f64::from(self.mass_of(v));
            if k >= 1 {
                let parent = self.node(sc.path[k - 1]);
                let s = if parent.left == v {
                    parent.right
                } else {
                    parent.left
                };
                prefix = prefix.max(f64::from(self.mass_of(s)) / (mv + 1.0));
            }
            if k == k_leaf && duplicate {
                expected += remain * prefix;
                break;
            }
            let pk = probs[k];
            if pk > 0.0 {
                expected += remain * pk * mv.max(prefix);
                remain *= 1.0 - pk;
            }
        }
        expected
    }
}

/// `log2(mass + 1)`, the scale of a tree's RCF score, from a table for trees of up to 1024
/// points (a logarithm per tree and point was 4% of a score's instructions).
#[inline(always)]
pub(crate) fn norm_of(mass: f64) -> f64 {
    static TABLE: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| (0..=1024).map(|m| (f64::from(m) + 1.0).log2()).collect());
    table
        .get(mass as usize)
        .copied()
        .unwrap_or_else(|| (mass + 1.0).log2())
}

/// The RCF score in a tree of mass `tree_mass` of a point equal to the leaf of mass `mass` at
/// `depth`: the one formula for the read-only score, the insertion's and the attribution.
#[inline]
pub(crate) fn duplicate_score(depth: usize, mass: u32, tree_mass: u32) -> f64 {
    let (m, big_m) = (f64::from(mass), f64::from(tree_mass));
    (1.0 - m / (2.0 * big_m)) / (depth as f64 + (m + 1.0).log2()) * norm_of(big_m)
}

/// Trees descended in lockstep: their chains of dependent loads overlap.
pub(crate) const GROUP: usize = 8;

/// RCF scores of `q` in each tree of `trees` (written to `out`), the same values as
/// [`Tree::rcf_score`]. Descents run in lockstep groups of eight, which hides most of the load
/// latency of walking one tree at a time; then each tree climbs on its own.
pub fn rcf_scores<T>(
    trees: &[T],
    tree_of: impl Fn(&T) -> &Tree + Copy,
    store: &PointStore,
    q: &[f32],
    sc: &mut Scratch,
    out: &mut [f64],
) {
    rcf_scores_except(trees, tree_of, |_| false, store, q, sc, out);
}

/// [`rcf_scores`] for the trees that `skip` (by index in `trees`) does not name; the others'
/// entries of `out` are left alone (a tree about to keep `q` gets its score from the
/// insertion, [`Tree::insert_scored`]). Skipped trees are still descended with the others
/// (their loads overlap): for the last group of [`GROUP`] trees, lane `j` leaves its leaf in
/// `sc.lane_leaf[j]` and its path in `sc.paths[j][..sc.lane_depth[j]]`, for the insertion.
pub fn rcf_scores_except<T>(
    trees: &[T],
    tree_of: impl Fn(&T) -> &Tree + Copy,
    skip: impl Fn(usize) -> bool + Copy,
    store: &PointStore,
    q: &[f32],
    sc: &mut Scratch,
    out: &mut [f64],
) {
    by_point_size!(q.len(), D => rcf_scores_d::<T, D>(trees, tree_of, skip, store, q, sc, out));
}

fn rcf_scores_d<T, const D: usize>(
    trees: &[T],
    tree_of: impl Fn(&T) -> &Tree + Copy,
    skip: impl Fn(usize) -> bool + Copy,
    store: &PointStore,
    q: &[f32],
    sc: &mut Scratch,
    out: &mut [f64],
) {
    for (g, (items, out)) in trees.chunks(GROUP).zip(out.chunks_mut(GROUP)).enumerate() {
        let mut skipped = 0u32;
        for j in 0..items.len() {
            if skip(g * GROUP + j) {
                skipped |= 1 << j;
            }
        }
        if let (Ok(items), Ok(out)) = (
            <&[T; GROUP]>::try_from(items),
            <&mut [f64; GROUP]>::try_from(&mut *out),
        ) {
            let group: [&Tree; GROUP] = std::array::from_fn(|j| tree_of(&items[j]));
            descend_group_d::<D>(&group, skipped, q, store, sc, out);
            continue;
        }
        let mut lanes = [(tree_of(&items[0]), q); GROUP];
        for (lane, item) in lanes.iter_mut().zip(items) {
            lane.0 = tree_of(item);
        }
        lockstep_d::<D>(&lanes[..items.len()], skipped, store, sc, out);
    }
}

/// [`lockstep_d`] for a full group of trees and one point: fixed lane count, node arrays taken
/// out of the trees once, the point shared.
#[inline(always)]
fn descend_group_d<const D: usize>(
    group: &[&Tree; GROUP],
    skipped: u32,
    q: &[f32],
    store: &PointStore,
    sc: &mut Scratch,
    out: &mut [f64; GROUP],
) {
    let nodes: [&[crate::tree::Node]; GROUP] = std::array::from_fn(|j| group[j].nodes());
    let mut node: [u16; GROUP] = std::array::from_fn(|j| group[j].root());
    // A path has fewer internal nodes than the tree has nodes: size the buffers once.
    let bound = nodes.iter().map(|n| n.len()).max().unwrap_or(0) + 1;
    for p in &mut sc.paths {
        if p.len() < bound {
            p.resize(bound, NIL);
        }
    }
    let mut depth = [0usize; GROUP];
    loop {
        let mut moving = false;
        for j in 0..GROUP {
            let n = node[j];
            if n & LEAF == 0 {
                sc.paths[j][depth[j]] = n;
                depth[j] += 1;
                node[j] = nodes[j][n as usize].child(q);
                moving = true;
            }
        }
        if !moving {
            break;
        }
    }
    sc.lane_leaf = node;
    sc.lane_depth = depth;
    for j in 0..GROUP {
        if skipped & (1 << j) != 0 {
            continue;
        }
        out[j] = if node[j] == NIL {
            0.0
        } else {
            let path = &sc.paths[j][..depth[j]];
            group[j].rcf_climb_d::<D>(store, q, node[j], path, &mut sc.boxes)
        };
    }
}

/// RCF scores of each point of `qs` in `tree` (written to `out`), the same values as
/// [`Tree::rcf_score`], walked in lockstep groups of [`GROUP`] points (a batch between two changes
/// of the tree).
pub fn rcf_scores_of_points(
    tree: &Tree,
    store: &PointStore,
    qs: &[&[f32]],
    sc: &mut Scratch,
    out: &mut [f64],
) {
    let Some(first) = qs.first() else { return };
    by_point_size!(first.len(), D => rcf_points_d::<D>(tree, store, qs, sc, out));
}

fn rcf_points_d<const D: usize>(
    tree: &Tree,
    store: &PointStore,
    qs: &[&[f32]],
    sc: &mut Scratch,
    out: &mut [f64],
) {
    let nodes = tree.nodes();
    for (points, out) in qs.chunks(GROUP).zip(out.chunks_mut(GROUP)) {
        if let (Ok(points), Ok(out)) = (
            <&[&[f32]; GROUP]>::try_from(points),
            <&mut [f64; GROUP]>::try_from(&mut *out),
        ) {
            // A full group: one tree's nodes, GROUP points.
            let mut node = [tree.root(); GROUP];
            for p in &mut sc.paths {
                p.clear();
            }
            loop {
                let mut moving = false;
                for j in 0..GROUP {
                    let n = node[j];
                    if n & LEAF == 0 {
                        sc.paths[j].push(n);
                        node[j] = nodes[n as usize].child(points[j]);
                        moving = true;
                    }
                }
                if !moving {
                    break;
                }
            }
            for j in 0..GROUP {
                out[j] = if node[j] == NIL {
                    0.0
                } else {
                    tree.rcf_climb_d::<D>(store, points[j], node[j], &sc.paths[j], &mut sc.boxes)
                };
            }
            continue;
        }
        let mut lanes = [(tree, points[0]); GROUP];
        for (lane, &q) in lanes.iter_mut().zip(points) {
            lane.1 = q;
        }
        lockstep_d::<D>(&lanes[..points.len()], 0, store, sc, out);
    }
}

/// Scores of up to [`GROUP`] (tree, point) lanes: descents in lockstep, then one climb each.
#[inline(always)]
fn lockstep_d<const D: usize>(
    lanes: &[(&Tree, &[f32])],
    skipped: u32,
    store: &PointStore,
    sc: &mut Scratch,
    out: &mut [f64],
) {
    let mut node = [NIL; GROUP];
    for (j, (t, _)) in lanes.iter().enumerate() {
        sc.paths[j].clear();
        node[j] = t.root();
    }
    // Lockstep descent; a lane at a leaf (or an empty tree: NIL has the leaf bit) waits.
    loop {
        let mut moving = false;
        for (j, (t, q)) in lanes.iter().enumerate() {
            let n = node[j];
            if n & LEAF == 0 {
                sc.paths[j].push(n);
                node[j] = t.step(n, q);
                moving = true;
            }
        }
        if !moving {
            break;
        }
    }
    sc.lane_leaf = node;
    for (j, p) in sc.paths.iter().enumerate() {
        sc.lane_depth[j] = p.len();
    }
    for (j, (t, q)) in lanes.iter().enumerate() {
        if skipped & (1 << j) != 0 {
            continue;
        }
        out[j] = if node[j] == NIL {
            0.0
        } else {
            t.rcf_climb_d::<D>(store, q, node[j], &sc.paths[j], &mut sc.boxes)
        };
    }
}
