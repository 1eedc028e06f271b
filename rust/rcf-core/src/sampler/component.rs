//! One tree of a forest: the random cut tree, its sampler and its generator. `update` offers a
//! point and applies the sampler's decision to the tree.
use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::{jump, kept_weight, rebase, sift_down, sift_up, Sampler, REBASE};
use crate::point_store::PointStore;
use crate::rng::Rng;
use crate::scratch::Scratch;
use crate::tree::Tree;

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
                } else if fifo.len() + 1 == capacity {
                    // Full from now on: the tree's arrays need no room beyond one more leaf.
                    self.tree.fit(capacity + 1);
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
                        // Full from now on: the tree's arrays need no room beyond one more leaf.
                        self.tree.fit(capacity + 1);
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
