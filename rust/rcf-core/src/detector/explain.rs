//! Explanations of an alert, on any forest (the detector's own or a coarse scale's): the
//! attribution per value of the shingled point and the values the forest expected for the
//! dimensions that caused it.
use crate::error::Result;
use crate::forest::{DiVector, Forest};
use crate::input::row_to_f32;
use crate::scratch::with_scratch;

/// An alert's explanation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Explained {
    /// Points back (<= 0) to where the anomaly began.
    pub relative_index: i64,
    /// Attribution per input dimension.
    pub attribution: DiVector,
    /// Per input dimension the value expected (NaN for dimensions that did not cause it).
    pub expected: Vec<f64>,
}

/// Attribution per value of the shingled point `q` on `forest`, and the trees it comes from.
/// After a combined pass (`learned`), the trees that kept `q` (it is one of their leaves) are
/// left out, unless fewer than half would remain; the attribution is scaled to sum to `score`
/// (the score of all trees before they learned `q`).
pub(crate) fn explain(
    forest: &Forest,
    q: &[f64],
    score: f64,
    learned: bool,
) -> Result<(DiVector, Vec<bool>)> {
    let pd = q.len();
    let mut v = vec![0f32; pd];
    row_to_f32(q, pd, 0, forest.value_limit(), &mut v)?;
    let store = forest.store();
    let trees = forest.components();
    let mut high = vec![0.0; pd];
    let mut low = vec![0.0; pd];
    let usable = with_scratch(|sc| {
        let mut usable: Vec<bool> = trees
            .iter()
            .map(|c| {
                !learned
                    || c.tree.mass() == 0
                    || store.point(c.tree.leaf_point(c.tree.descend(&v, &mut sc.path))) != v
            })
            .collect();
        if usable.iter().filter(|u| **u).count() * 2 < usable.len() {
            usable.fill(true);
        }
        for (c, u) in trees.iter().zip(&usable) {
            if *u {
                c.tree.add_attribution(store, &v, sc, &mut high, &mut low);
            }
        }
        usable
    });
    let total: f64 = high.iter().chain(&low).sum();
    let scale = if total > 0.0 { score / total } else { 0.0 };
    high.iter_mut()
        .chain(low.iter_mut())
        .for_each(|x| *x *= scale);
    Ok((DiVector { high, low }, usable))
}

/// The attribution per value `per_value` of a shingled point of `size` positions summed per
/// input dimension (`d` of them), and the position (0 = oldest) that carries the most.
pub(crate) fn per_dimension(per_value: &DiVector, d: usize, size: usize) -> (DiVector, usize) {
    let mut a = DiVector {
        high: vec![0.0; d],
        low: vec![0.0; d],
    };
    let mut by_position = vec![0.0; size];
    for (i, (h, l)) in per_value.high.iter().zip(&per_value.low).enumerate() {
        a.high[i % d] += h;
        a.low[i % d] += l;
        by_position[i / d] += h + l;
    }
    let mut top = size - 1;
    for (p, v) in by_position.iter().enumerate() {
        if *v > by_position[top] {
            top = p;
        }
    }
    (a, top)
}

/// For the dimensions carrying at least half of the largest attribution `a`, the value
/// `forest` expected there, in the units of its input (NaN for the other dimensions): a
/// conditional query on the trees in the spirit of AWS's imputation. In every tree (of those
/// `usable`), the leaf nearest to the shingled point `q` on all its *other* values (the earlier
/// observations of the shingle and the other dimensions; L1 distance with each value scaled by
/// its spread in the forest's sample) gives its value for the missing one; the expected value
/// is the median over trees.
pub(crate) fn impute(forest: &Forest, a: &DiVector, q: &[f64], usable: &[bool]) -> Vec<f64> {
    let d = a.high.len();
    let per_dim: Vec<f64> = a.high.iter().zip(&a.low).map(|(h, l)| h + l).collect();
    let top = per_dim.iter().copied().fold(0.0, f64::max);
    let mut out = vec![f64::NAN; d];
    if top <= 0.0 || !forest.is_ready() || q.len() < d {
        return out;
    }
    let last = q.len() - d;
    let missing: Vec<usize> = (0..d).filter(|&j| per_dim[j] >= 0.5 * top).collect();
    let store = forest.store();
    let leaves: Vec<Vec<u32>> = forest
        .components()
        .iter()
        .zip(usable)
        .filter(|(_, u)| **u)
        .map(|(c, _)| c.tree.leaves().into_iter().map(|(id, _)| id).collect())
        .collect();
    let pd = q.len();
    // Spread of each value over the forest's sample (scale of the distance).
    let mut lo = vec![f64::INFINITY; pd];
    let mut hi = vec![f64::NEG_INFINITY; pd];
    for &id in leaves.iter().flatten() {
        for (k, v) in store.point(id).iter().enumerate().take(pd) {
            lo[k] = lo[k].min(f64::from(*v));
            hi[k] = hi[k].max(f64::from(*v));
        }
    }
    let mut free = vec![false; pd];
    for &j in &missing {
        free[last + j] = true;
    }
    let weight: Vec<f64> = (0..pd)
        .map(|k| {
            let spread = hi[k] - lo[k];
            if free[k] || !(spread.is_finite() && spread > 0.0) {
                0.0
            } else {
                1.0 / spread
            }
        })
        .collect();
    let mut answers: Vec<Vec<f64>> = vec![Vec::with_capacity(leaves.len()); missing.len()];
    for tree in &leaves {
        let mut best: Option<(f64, u32)> = None;
        for &id in tree {
            let p = store.point(id);
            let dist: f64 = p
                .iter()
                .zip(q)
                .zip(&weight)
                .map(|((v, t), w)| w * (f64::from(*v) - t).abs())
                .sum();
            if best.is_none_or(|(b, _)| dist < b) {
                best = Some((dist, id));
            }
        }
        if let Some((_, id)) = best {
            let p = store.point(id);
            for (m, &j) in missing.iter().enumerate() {
                if let Some(v) = p.get(last + j) {
                    answers[m].push(f64::from(*v));
                }
            }
        }
    }
    for (m, &j) in missing.iter().enumerate() {
        let vals = &mut answers[m];
        if vals.is_empty() {
            continue;
        }
        vals.sort_by(f64::total_cmp);
        let n = vals.len();
        out[j] = if n % 2 == 1 {
            vals[n / 2]
        } else {
            0.5 * (vals[n / 2 - 1] + vals[n / 2])
        };
    }
    out
}
