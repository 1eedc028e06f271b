//! The samplers: which points a tree keeps. The tree, its sampler and its generator together
//! form a [`Component`] (in `component.rs`).
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

use crate::rng::Rng;

mod component;
pub use component::{Change, Component};

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
