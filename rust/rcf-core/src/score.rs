//! Scores of one tree: the AWS RCF anomaly score, its attribution (DiVector), and rrcf's CoDisp
//! as the expectation over the random insertion of the query point.
use crate::kernels::{duplicate_score, separation};
use crate::point_store::PointStore;
use crate::scratch::{box_pair, zeroed_pair, Scratch};
use crate::tree::{Tree, NIL};

impl Tree {
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
