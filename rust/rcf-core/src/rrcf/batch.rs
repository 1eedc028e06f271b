//! rrcf's batch builder, `RCTree(X)`.
//!
//! rrcf rounds `X` to `precision` decimals, merges duplicate rows (`np.unique(axis=0)`: when any
//! row repeats, the tree is built on the sorted unique rows), then cuts top-down: at each branch
//! the dimension is drawn with `RandomState.choice(d, p=span/sum(span))` and the value with
//! `uniform(min, max)`, and the left subtree is built completely before the right one. We do the
//! same draws in the same order, partitioning an index array instead of masking all rows.
use super::error::{RrcfError, RrcfResult};
use super::mt19937::UniformSource;
use super::numeric::{pairwise_sum, Rounder};
use super::tree::{RrcfTree, NIL};
use super::Behaviour;

/// A leaf made by [`build`], in the order rrcf adds it to its `leaves` dict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchLeaf {
    /// The leaf's slot in the tree.
    pub slot: u32,
    /// rrcf's `leaf.i`: the row of the (deduplicated) data the leaf holds.
    pub position: usize,
    /// Rows of the original `X` merged into this leaf, ascending (they index `index_labels`):
    /// `rows[start..end]` of the [`build`] output.
    pub rows: std::ops::Range<usize>,
}

enum Task {
    /// Rows `perm[start..end]`.
    Split {
        start: usize,
        end: usize,
        parent: u32,
        is_left: bool,
    },
    Leaf {
        row: usize,
        parent: u32,
        is_left: bool,
    },
}

/// Whether two rows might be equal (as numpy compares them: `-0.0 == 0.0`). A cheap hash
/// test; only when it fires do we pay for numpy's lexicographic sort.
fn maybe_duplicates(x: &[f64], d: usize) -> bool {
    let mut hashes: Vec<u64> = x
        .chunks_exact(d)
        .map(|row| {
            row.iter().fold(0x9E37_79B9_7F4A_7C15u64, |h, &v| {
                let bits = if v == 0.0 { 0 } else { v.to_bits() };
                (h ^ bits).wrapping_mul(0x100_0000_01B3).rotate_left(29)
            })
        })
        .collect();
    hashes.sort_unstable();
    hashes.windows(2).any(|w| w[0] == w[1])
}

/// `np.unique(X, axis=0, return_inverse=True, return_counts=True)` when rows repeat: the sorted
/// unique rows, the original rows grouped by unique row (`rows[starts[g]..starts[g + 1]]`,
/// ascending within a group), and the group starts.
fn unique_rows(x: &[f64], d: usize) -> (Vec<f64>, Vec<usize>, Vec<usize>) {
    let n = x.len() / d;
    let row = |i: usize| &x[i * d..(i + 1) * d];
    let mut order: Vec<usize> = (0..n).collect();
    // Equal rows are interchangeable, so an unstable sort is enough (groups are re-sorted below).
    order.sort_unstable_by(|&a, &b| {
        let (ra, rb) = (row(a), row(b));
        for j in 0..d {
            if ra[j] < rb[j] {
                return std::cmp::Ordering::Less;
            }
            if ra[j] > rb[j] {
                return std::cmp::Ordering::Greater;
            }
        }
        std::cmp::Ordering::Equal
    });
    let mut starts: Vec<usize> = Vec::with_capacity(n + 1);
    for k in 0..n {
        if k == 0 || row(order[k - 1]) != row(order[k]) {
            starts.push(k);
        }
    }
    starts.push(n);
    if starts.len() - 1 == n {
        // A hash collision, no repeated row: numpy keeps the original order then.
        return (x.to_vec(), (0..n).collect(), (0..=n).collect());
    }
    let mut data = Vec::with_capacity((starts.len() - 1) * d);
    for g in 0..starts.len() - 1 {
        order[starts[g]..starts[g + 1]].sort_unstable();
        data.extend_from_slice(row(order[starts[g]]));
    }
    (data, order, starts)
}

/// Builds a tree from the `n x d` row-major `x`, rounding to `precision` decimals when given.
pub fn build<R: UniformSource + ?Sized>(
    behaviour: Behaviour,
    x: &[f64],
    d: usize,
    precision: Option<i32>,
    rng: &mut R,
) -> RrcfResult<(RrcfTree, Vec<BatchLeaf>, Vec<usize>)> {
    if d == 0 || x.is_empty() {
        return Err(RrcfError::Empty(
            "X is empty; expected an (n, d) array with n >= 1 and d >= 1",
        ));
    }
    if let Some(position) = x.iter().position(|v| !v.is_finite()) {
        return Err(RrcfError::NotFinite {
            what: "X",
            position,
        });
    }
    let n = x.len() / d;
    let rounded: Vec<f64> = match precision {
        Some(p) => {
            let r = Rounder::new(p);
            let v: Vec<f64> = x.iter().map(|&v| r.round(v)).collect();
            // np.around overflows like this for large precisions (rrcf 0.4.4 then fails in
            // RandomState.choice with a ValueError).
            if v.iter().any(|v| !v.is_finite()) {
                return Err(RrcfError::Rounding { precision: p });
            }
            v
        }
        None => x.to_vec(),
    };
    let (data, rows, starts) = if maybe_duplicates(&rounded, d) {
        unique_rows(&rounded, d)
    } else {
        (rounded, (0..n).collect(), (0..=n).collect())
    };
    let group = |r: usize| starts[r]..starts[r + 1];
    let m = starts.len() - 1;
    let mut tree = RrcfTree::new(behaviour);
    tree.reset(d);
    tree.reserve(2 * m);
    let mut leaves = Vec::with_capacity(m);
    let mut created = Vec::with_capacity(2 * m);
    if m == 1 {
        // rrcf 0.4.4 fails on a single distinct point (0/0 probabilities); we make one leaf.
        let s = tree.new_leaf(&data[..d], n as u64);
        tree.link(NIL, s, true);
        leaves.push(BatchLeaf {
            slot: s,
            position: 0,
            rows: group(0),
        });
        return Ok((tree, leaves, rows));
    }
    let mut perm: Vec<usize> = (0..m).collect();
    let mut scratch: Vec<usize> = vec![0; m];
    let (mut xmin, mut xmax, mut prob) = (vec![0.0; d], vec![0.0; d], vec![0.0; d]);
    let mut stack = vec![Task::Split {
        start: 0,
        end: m,
        parent: NIL,
        is_left: true,
    }];
    while let Some(task) = stack.pop() {
        match task {
            Task::Leaf {
                row: r,
                parent,
                is_left,
            } => {
                let s = tree.new_leaf(&data[r * d..(r + 1) * d], group(r).len() as u64);
                tree.link(parent, s, is_left);
                created.push(s);
                leaves.push(BatchLeaf {
                    slot: s,
                    position: r,
                    rows: group(r),
                });
            }
            Task::Split {
                start,
                end,
                parent,
                is_left,
            } => {
                // Box of the subset, one dimension at a time so the running min and max stay in
                // registers. Values are finite, so `<`/`>` give exactly numpy's min and max.
                for j in 0..d {
                    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
                    for &r in &perm[start..end] {
                        let v = data[r * d + j];
                        lo = if v < lo { v } else { lo };
                        hi = if v > hi { v } else { hi };
                    }
                    xmin[j] = lo;
                    xmax[j] = hi;
                }
                // q = rng.choice(d, p=l / l.sum()): cdf = cumsum(p) / cdf[-1], searchsorted right.
                for j in 0..d {
                    prob[j] = xmax[j] - xmin[j];
                }
                let total = pairwise_sum(&prob);
                if !total.is_finite() {
                    // rrcf 0.4.4: NaN or zero probabilities, a ValueError before any draw.
                    return Err(RrcfError::SpanOverflow { what: "X" });
                }
                let mut cum = 0.0;
                for (j, pj) in prob.iter_mut().enumerate() {
                    let v = *pj / total;
                    cum = if j == 0 { v } else { cum + v };
                    *pj = cum;
                }
                let last = prob[d - 1];
                let u = rng.next_f64();
                let q = prob.iter().filter(|&&c| c / last <= u).count();
                let value = xmin[q] + (xmax[q] - xmin[q]) * rng.next_f64();
                let branch = tree.new_branch(q as u32, value);
                tree.link(parent, branch, is_left);
                tree.set_box(branch, &xmin, &xmax);
                created.push(branch);
                // Branch-free partition: left rows fill `scratch` from the front, right rows from
                // the back; the side of a row is a coin flip the CPU could not predict.
                let len = end - start;
                let (mut k, mut back) = (0usize, len);
                for &r in &perm[start..end] {
                    let left = data[r * d + q] <= value;
                    let pos = if left { k } else { back - 1 };
                    scratch[pos] = r;
                    k += usize::from(left);
                    back -= usize::from(!left);
                }
                perm[start..end].copy_from_slice(&scratch[..len]);
                let mid = start + k;
                if mid == end {
                    return Err(RrcfError::EmptyCut);
                }
                // Left is processed first: push right, then left.
                let right = if end - mid > 1 {
                    Task::Split {
                        start: mid,
                        end,
                        parent: branch,
                        is_left: false,
                    }
                } else {
                    Task::Leaf {
                        row: perm[mid],
                        parent: branch,
                        is_left: false,
                    }
                };
                let left = if mid - start > 1 {
                    Task::Split {
                        start,
                        end: mid,
                        parent: branch,
                        is_left: true,
                    }
                } else {
                    Task::Leaf {
                        row: perm[start],
                        parent: branch,
                        is_left: true,
                    }
                };
                stack.push(right);
                stack.push(left);
            }
        }
    }
    // Nodes were created in pre-order, so reversed creation order sees children first.
    for &s in created.iter().rev() {
        if !tree.is_leaf(s) {
            let (l, r) = tree.children(s);
            tree.set_mass(s, tree.mass(l) + tree.mass(r));
        }
    }
    Ok((tree, leaves, rows))
}
