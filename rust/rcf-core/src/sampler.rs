//! A tree with its sampler and generator: decides which points the tree keeps.
//! Decay sampler: weighted reservoir (Efraimidis–Spirakis as in AWS RCF), a max-heap of
//! `ln(-ln u) - t·λ` keyed weights; the largest weight is evicted first. Window sampler: FIFO.
//! Heap entries refer to leaf slots; duplicates share a leaf, one entry per copy.
//!
//! Once the reservoir is full, a point is kept exactly when its weight falls below the heap's
//! largest, which changes only when a point is kept. So instead of one draw and two logarithms
//! per point and tree, the sampler draws *when* it next keeps a point (exponential jumps,
//! Efraimidis–Spirakis A-ExpJ with the decay's closed-form weight sums) and, at that point, the
//! kept weight conditioned on being below the largest: the same distribution with about a
//! tenth of the work, and the forest knows in advance which trees change.
use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::point_store::PointStore;
use crate::rng::Rng;
use crate::scratch::Scratch;
use crate::tree::Tree;

/// Per-tree sample bookkeeping.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum Sampler {
    /// Time-decayed reservoir: parallel vectors forming a max-heap on `weights`.
    Decay {
        /// Heap-ordered weights.
        weights: Vec<f32>,
        /// Leaf slot of each weight.
        leaves: Vec<u16>,
        /// Stream index of the next point this reservoir keeps (meaningful once it is full).
        next: u64,
        /// Weights are stored as `ln(-ln u) - (t - epoch)·λ`: relative to a recent point, so
        /// that f32 keeps its precision however long the stream runs (`t·λ` alone reaches
        /// 4·10^5 after 10^9 points, where f32 steps are 0.03).
        epoch: u64,
    },
    /// Sliding window of leaf slots, oldest first.
    Window {
        /// Leaf slots in arrival order.
        fifo: VecDeque<u16>,
    },
}

/// What one update did to point references: the new point gained a leaf, an old one lost one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// The new point now has a leaf of its own in this tree.
    pub added: bool,
    /// Point whose last copy left this tree.
    pub removed: Option<u32>,
}

/// One tree of a forest: the tree, its sampler, its generator.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Component {
    /// The random cut tree.
    pub tree: Tree,
    /// Which points it keeps.
    pub sampler: Sampler,
    /// Its own generator (cuts and sampling).
    pub rng: Rng,
}

impl Component {
    /// An empty component.
    pub fn new(dim: usize, capacity: usize, window: bool, seed: u64) -> Self {
        let sampler = if window {
            Sampler::Window {
                fifo: VecDeque::new(),
            }
        } else {
            Sampler::Decay {
                weights: Vec::new(),
                leaves: Vec::new(),
                next: 0,
                epoch: 0,
            }
        };
        Component {
            tree: Tree::new(dim, capacity),
            sampler,
            rng: Rng::from_seed(seed),
        }
    }

    /// Offers point `id`, the `t`-th point of the stream, to this tree. When the tree keeps
    /// it and `score` is given, `score` gets the point's RCF score in the tree as it was before
    /// (the insertion computes it on its way; see [`Tree::insert_scored`]). `walked` is the
    /// leaf the point reaches when the caller descended the tree with it and left the path in
    /// `sc.path`.
    ///
    /// The new point goes in before the point it replaces leaves, so that the insertion walks
    /// the tree that was scored. Either order gives trees of the same distribution (a random
    /// cut tree of the kept points, Guha et al. 2016).
    #[allow(clippy::too_many_arguments)]
    pub fn update(
        &mut self,
        store: &PointStore,
        id: u32,
        t: u64,
        lambda: f64,
        capacity: usize,
        sc: &mut Scratch,
        score: Option<&mut f64>,
        walked: Option<u16>,
    ) -> Result<Change, String> {
        let mut change = Change::default();
        match &mut self.sampler {
            Sampler::Window { fifo } => {
                let (slot, added, s) =
                    self.tree
                        .insert_scored(store, id, &mut self.rng, sc, walked);
                change.added = added;
                if let Some(out) = score {
                    *out = s;
                }
                if fifo.len() >= capacity {
                    let old = fifo.pop_front().expect("non-empty window");
                    change.removed = self.tree.delete(store, old, sc)?;
                }
                fifo.push_back(slot);
            }
            Sampler::Decay {
                weights,
                leaves,
                next,
                epoch,
            } => {
                if (t - (*epoch).min(t)) as f64 * lambda > REBASE {
                    rebase(weights, *epoch, t, lambda);
                    *epoch = t;
                }
                let age = t.saturating_sub(*epoch);
                if weights.len() < capacity {
                    let u = self.rng.next_open01();
                    let w = ((-u.ln()).ln() - age as f64 * lambda) as f32;
                    let (slot, added, s) =
                        self.tree
                            .insert_scored(store, id, &mut self.rng, sc, walked);
                    change.added = added;
                    if let Some(out) = score {
                        *out = s;
                    }
                    weights.push(w);
                    leaves.push(slot);
                    let last = weights.len() - 1;
                    sift_up(weights, leaves, last);
                    if weights.len() == capacity {
                        *next = t + jump(weights[0], age, lambda, &mut self.rng);
                    }
                } else if t >= *next {
                    let w = kept_weight(weights[0], age, lambda, &mut self.rng);
                    let (slot, added, s) =
                        self.tree
                            .insert_scored(store, id, &mut self.rng, sc, walked);
                    change.added = added;
                    if let Some(out) = score {
                        *out = s;
                    }
                    change.removed = self.tree.delete(store, leaves[0], sc)?;
                    weights[0] = w;
                    leaves[0] = slot;
                    sift_down(weights, leaves, 0);
                    *next = t + jump(weights[0], age, lambda, &mut self.rng);
                }
            }
        }
        Ok(change)
    }

    /// The decay sampler of a state saved in format 1 (absolute weights, no planned next keep):
    /// plans the next keep after the `seen` points offered so far, with this tree's generator.
    pub(crate) fn resume_decay(
        weights: Vec<f32>,
        leaves: Vec<u16>,
        rng: &mut Rng,
        capacity: usize,
        lambda: f64,
        seen: u64,
    ) -> Sampler {
        let next = match (weights.first(), seen.checked_sub(1)) {
            (Some(&wmax), Some(last)) if weights.len() >= capacity => {
                last.saturating_add(jump(wmax, last, lambda, rng))
            }
            _ => 0,
        };
        Sampler::Decay {
            weights,
            leaves,
            next,
            epoch: 0,
        }
    }

    /// True when offering the `t`-th point changes this tree (the sampler keeps it).
    #[inline]
    pub fn keeps(&self, t: u64, capacity: usize) -> bool {
        match &self.sampler {
            Sampler::Window { .. } => true,
            Sampler::Decay { weights, next, .. } => weights.len() < capacity || t >= *next,
        }
    }

    /// Leaf slots held by the sampler, one per copy.
    pub fn sampled_leaves(&self) -> Vec<u16> {
        match &self.sampler {
            Sampler::Window { fifo } => fifo.iter().copied().collect(),
            Sampler::Decay { leaves, .. } => leaves.clone(),
        }
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.tree.heap_bytes()
            + match &self.sampler {
                Sampler::Window { fifo } => fifo.capacity() * 2,
                Sampler::Decay {
                    weights, leaves, ..
                } => weights.capacity() * 4 + leaves.capacity() * 2,
            }
    }

    /// Checks that the sampler and the tree agree (one entry per copy of every leaf) and that
    /// the heap is ordered.
    pub(crate) fn check(
        &self,
        store: &PointStore,
        refs: &mut [u32],
        capacity: usize,
    ) -> Result<(), String> {
        if !self.rng.is_valid() {
            return Err("generator state is all zeros".into());
        }
        self.tree.check(store, refs)?;
        let entries = self.sampled_leaves();
        if entries.len() > capacity {
            return Err("sampler holds more than sample_size points".into());
        }
        if entries.len() as u32 != self.tree.mass() {
            return Err("sampler and tree disagree on the number of points".into());
        }
        let mut counts = std::collections::HashMap::<u16, u32>::new();
        for e in entries {
            *counts.entry(e).or_default() += 1;
        }
        for (slot, mass) in self.tree.leaf_slots_with_mass() {
            if counts.get(&slot).copied().unwrap_or(0) != mass {
                return Err(format!("leaf {slot}: sampler copies differ from its mass"));
            }
        }
        if let Sampler::Decay {
            weights, leaves, ..
        } = &self.sampler
        {
            if weights.len() != leaves.len() {
                return Err("sampler vectors differ in length".into());
            }
            if weights.iter().any(|w| !w.is_finite()) {
                return Err("sampler weight is not finite".into());
            }
            for i in 1..weights.len() {
                if weights[(i - 1) / 2] < weights[i] {
                    return Err("sampler heap is out of order".into());
                }
            }
        }
        Ok(())
    }
}

/// Weights are rebased once `(t - epoch)·λ` passes this (every 32/λ points).
const REBASE: f64 = 32.0;

/// Moves weights stored relative to `from` to be relative to `to` (same order: rounding is
/// monotone).
fn rebase(weights: &mut [f32], from: u64, to: u64, lambda: f64) {
    let shift = (to - from) as f64 * lambda;
    for w in weights {
        *w = (f64::from(*w) + shift) as f32;
    }
}

/// Points to wait, counted from point `t`, until the reservoir with largest weight `wmax` next keeps
/// one (at least 1). Point `s` is kept when `Exp(1)/e^(sλ) < e^wmax`, independently per point,
/// so no point in `t+1..=t+k` is kept with probability `exp(-b·(e^(kλ)-1)/(e^λ-1))`,
/// `b = e^(wmax+(t+1)λ)`; invert at one exponential draw.
fn jump(wmax: f32, t: u64, lambda: f64, rng: &mut Rng) -> u64 {
    let v = -rng.next_open01().ln();
    let b = (f64::from(wmax) + (t + 1) as f64 * lambda).exp();
    let k = if lambda > 0.0 {
        (v * lambda.exp_m1() / b).ln_1p() / lambda
    } else {
        v / b
    };
    if k < 1e18 {
        (k.ceil() as u64).max(1)
    } else {
        1 << 60
    }
}

/// Weight of the `t`-th point given that it is kept, i.e. `ln(Exp(1)) - tλ` conditioned on being
/// below `wmax` (inverse transform of the truncated exponential).
fn kept_weight(wmax: f32, t: u64, lambda: f64, rng: &mut Rng) -> f32 {
    let u = rng.next_open01();
    let tl = t as f64 * lambda;
    let a = (f64::from(wmax) + tl).exp();
    let e = -(u * (-a).exp_m1()).ln_1p();
    let w = ((e.ln() - tl) as f32).max(f32::MIN);
    // f32 rounding must not undo "below the largest".
    if w < wmax {
        w
    } else {
        wmax.next_down()
    }
}

fn sift_up(w: &mut [f32], l: &mut [u16], mut i: usize) {
    while i > 0 {
        let p = (i - 1) / 2;
        if w[p] >= w[i] {
            break;
        }
        w.swap(p, i);
        l.swap(p, i);
        i = p;
    }
}

fn sift_down(w: &mut [f32], l: &mut [u16], mut i: usize) {
    let n = w.len();
    loop {
        let a = 2 * i + 1;
        if a >= n {
            break;
        }
        let b = a + 1;
        let c = if b < n && w[b] > w[a] { b } else { a };
        if w[i] >= w[c] {
            break;
        }
        w.swap(i, c);
        l.swap(i, c);
        i = c;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::point_store::PointStore;

    /// The per-point rule the jumps replace: draw `ln(-ln u) - sλ` for each point `s` after `t`
    /// until one falls below `wmax`; returns the wait and the kept weight.
    fn naive(wmax: f32, t: u64, lambda: f64, rng: &mut Rng) -> (u64, f32) {
        let mut s = t;
        loop {
            s += 1;
            let u = rng.next_open01();
            let w = ((-u.ln()).ln() - s as f64 * lambda) as f32;
            if w < wmax {
                return (s - t, w);
            }
        }
    }

    fn mean_sd(v: &[f64]) -> (f64, f64) {
        let n = v.len() as f64;
        let m = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0);
        (m, var.sqrt())
    }

    #[test]
    fn jumps_and_kept_weights_match_the_per_point_rule() {
        // (wmax, t, lambda): steady-state decay, a fresh reservoir, a uniform one, late time.
        for &(wmax_rel, t, lambda) in &[
            (-2.0f64, 5_000u64, 0.1 / 256.0),
            (0.5, 300, 0.1 / 64.0),
            (-3.0, 10_000, 0.0),
            (-1.0, 2_000_000, 0.001),
        ] {
            let wmax = (wmax_rel - t as f64 * lambda) as f32;
            let mut a = Rng::from_seed(7);
            let mut b = Rng::from_seed(8);
            let n = 20_000;
            let (mut ja, mut jb, mut wa, mut wb) = (vec![], vec![], vec![], vec![]);
            for _ in 0..n {
                let (k, w) = naive(wmax, t, lambda, &mut a);
                ja.push(k as f64);
                wa.push(f64::from(w - wmax));
                let k = jump(wmax, t, lambda, &mut b);
                jb.push(k as f64);
                let w = kept_weight(wmax, t + k, lambda, &mut b);
                assert!(w < wmax);
                wb.push(f64::from(w - wmax));
            }
            for (x, y, what) in [(&ja, &jb, "wait"), (&wa, &wb, "kept weight")] {
                let (mx, sx) = mean_sd(x);
                let (my, sy) = mean_sd(y);
                let se = ((sx * sx + sy * sy) / n as f64).sqrt();
                assert!(
                    (mx - my).abs() < 4.0 * se,
                    "{what} at wmax {wmax_rel}, t {t}, λ {lambda}: per point {mx} ± {sx}, jumps {my} ± {sy}"
                );
            }
        }
    }

    #[test]
    fn rebasing_keeps_the_order_and_the_weights() {
        let lambda = 0.1 / 256.0;
        let mut w = vec![-3.5f32, -4.0, -7.25];
        rebase(&mut w, 0, 1_000_000, lambda);
        // Stored relative to t = 10^6: each weight gains 10^6·λ.
        let gain = (1_000_000.0 * lambda) as f32;
        assert_eq!(w, vec![-3.5 + gain, -4.0 + gain, -7.25 + gain]);
        assert!(w[0] > w[1] && w[1] > w[2]);
    }

    /// Points kept among the last half of `n` points offered from stream index `start` on.
    fn kept_late(start: u64, n: u64, seed: u64) -> u64 {
        let (cap, lambda) = (16, 0.1 / 16.0);
        let mut store = PointStore::new(1);
        let mut c = Component::new(1, cap, false, seed);
        let mut sc = Scratch::default();
        let mut kept = 0;
        for i in 0..n {
            let id = store.add(&[i as f32]);
            let kept_now = c.keeps(start + i, cap);
            let ch = c
                .update(&store, id, start + i, lambda, cap, &mut sc, None, None)
                .unwrap();
            assert_eq!(kept_now, ch.added || ch.removed.is_some());
            if i >= n / 2 && kept_now {
                kept += 1;
            }
        }
        kept
    }

    #[test]
    fn a_stream_a_billion_points_in_keeps_points_at_the_same_rate() {
        let (mut early, mut late) = (0, 0);
        for seed in 0..4 {
            early += kept_late(0, 20_000, seed);
            late += kept_late(1_000_000_000, 20_000, seed + 100);
        }
        // About 0.1 of 40,000 points: a difference of 150 is ~3.5 standard deviations.
        assert!(
            early.abs_diff(late) < 150,
            "kept {early} from t=0, {late} from t=10^9"
        );
    }

    #[test]
    fn jump_is_at_least_one_and_bounded() {
        let mut r = Rng::from_seed(1);
        for _ in 0..1000 {
            assert!(jump(100.0, 10, 0.01, &mut r) >= 1);
            assert!(jump(-1e30, 10, 0.01, &mut r) >= 1);
            assert!(jump(-1e30, 10, 0.0, &mut r) >= 1);
        }
    }
}
