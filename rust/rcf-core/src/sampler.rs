//! A tree with its sampler and generator: decides which points the tree keeps.
//! Decay sampler: weighted reservoir (Efraimidis–Spirakis as in AWS RCF), a max-heap of
//! `ln(-ln u) - t·λ` keyed weights; the largest weight is evicted first. Window sampler: FIFO.
//! Heap entries refer to leaf slots; duplicates share a leaf, one entry per copy.
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
                fifo: VecDeque::with_capacity(capacity),
            }
        } else {
            Sampler::Decay {
                weights: Vec::with_capacity(capacity),
                leaves: Vec::with_capacity(capacity),
            }
        };
        Component {
            tree: Tree::new(dim, capacity),
            sampler,
            rng: Rng::from_seed(seed),
        }
    }

    /// Offers point `id`, the `t`-th point of the stream, to this tree.
    pub fn update(
        &mut self,
        store: &PointStore,
        id: u32,
        t: u64,
        lambda: f64,
        capacity: usize,
        sc: &mut Scratch,
    ) -> Result<Change, String> {
        let mut change = Change::default();
        match &mut self.sampler {
            Sampler::Window { fifo } => {
                if fifo.len() >= capacity {
                    let old = fifo.pop_front().expect("non-empty window");
                    change.removed = self.tree.delete(store, old, sc)?;
                }
                let (slot, added) = self.tree.insert(store, id, &mut self.rng, sc);
                change.added = added;
                fifo.push_back(slot);
            }
            Sampler::Decay { weights, leaves } => {
                let u = self.rng.next_open01();
                let w = ((-u.ln()).ln() - t as f64 * lambda) as f32;
                if weights.len() < capacity {
                    let (slot, added) = self.tree.insert(store, id, &mut self.rng, sc);
                    change.added = added;
                    weights.push(w);
                    leaves.push(slot);
                    let last = weights.len() - 1;
                    sift_up(weights, leaves, last);
                } else if w < weights[0] {
                    change.removed = self.tree.delete(store, leaves[0], sc)?;
                    let (slot, added) = self.tree.insert(store, id, &mut self.rng, sc);
                    change.added = added;
                    weights[0] = w;
                    leaves[0] = slot;
                    sift_down(weights, leaves, 0);
                }
            }
        }
        Ok(change)
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
                Sampler::Decay { weights, leaves } => {
                    weights.capacity() * 4 + leaves.capacity() * 2
                }
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
        if let Sampler::Decay { weights, leaves } = &self.sampler {
            if weights.len() != leaves.len() {
                return Err("sampler vectors differ in length".into());
            }
            for i in 1..weights.len() {
                if weights[(i - 1) / 2] < weights[i] || weights[i].is_nan() {
                    return Err("sampler heap is out of order".into());
                }
            }
        }
        Ok(())
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
