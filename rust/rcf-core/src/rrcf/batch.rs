//! rrcf's batch builder, `RCTree(X)`.
//!
//! rrcf rounds `X` to `precision` decimals, merges duplicate rows (`np.unique(axis=0)`: when any
//! row repeats, the tree is built on the sorted unique rows), then cuts top-down: at each branch
//! the dimension is drawn with `RandomState.choice(d, p=span/sum(span))` and the value with
//! `uniform(min, max)`, and the left subtree is built completely before the right one. We do the
//! same draws in the same order, partitioning an index array instead of masking all rows.
use super::error::{RrcfError, RrcfResult};
use super::mt19937::UniformSource;
use super::numeric::{around, pairwise_sum};
use super::tree::{RrcfTree, NIL};
use super::Behaviour;

/// A leaf made by [`build`], in the order rrcf adds it to its `leaves` dict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchLeaf {
    /// The leaf's slot in the tree.
    pub slot: u32,
    /// rrcf's `leaf.i`: the row of the (deduplicated) data the leaf holds.
    pub position: usize,
    /// Rows of the original `X` merged into this leaf, ascending (they index `index_labels`).
    pub rows: Vec<usize>,
}

enum Task {
    Split { start: usize, end: usize, parent: u32, is_left: bool },
    Leaf { row: usize, parent: u32, is_left: bool },
}

/// Builds a tree from the `n x d` row-major `x`, rounding to `precision` decimals when given.
pub fn build<R: UniformSource + ?Sized>(
    behaviour: Behaviour,
    x: &[f64],
    d: usize,
    precision: Option<i32>,
    rng: &mut R,
) -> RrcfResult<(RrcfTree, Vec<BatchLeaf>)> {
    if d == 0 || x.is_empty() {
        return Err(RrcfError::Empty("X is empty; expected an (n, d) array with n >= 1 and d >= 1"));
    }
    if let Some(position) = x.iter().position(|v| !v.is_finite()) {
        return Err(RrcfError::NotFinite { what: "X", position });
    }
    let n = x.len() / d;
    let rounded: Vec<f64> = match precision {
        Some(p) => x.iter().map(|&v| around(v, p)).collect(),
        None => x.to_vec(),
    };
    let row = |i: usize| &rounded[i * d..(i + 1) * d];
    // np.unique(axis=0): lexicographic order of rows.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| {
        row(a).iter().zip(row(b)).map(|(u, v)| u.partial_cmp(v).unwrap()).find(|o| o.is_ne()).unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (k, &i) in order.iter().enumerate() {
        if k > 0 && row(order[k - 1]) == row(i) {
            groups.last_mut().unwrap().push(i);
        } else {
            groups.push(vec![i]);
        }
    }
    let has_duplicates = groups.len() < n;
    let (data, groups): (Vec<f64>, Vec<Vec<usize>>) = if has_duplicates {
        let mut data = Vec::with_capacity(groups.len() * d);
        for g in &mut groups {
            g.sort_unstable();
            data.extend_from_slice(row(g[0]));
        }
        (data, groups)
    } else {
        (rounded.clone(), (0..n).map(|i| vec![i]).collect())
    };
    let m = groups.len();
    let mut tree = RrcfTree::new(behaviour);
    tree.reset(d);
    let mut leaves = Vec::with_capacity(m);
    let mut created = Vec::with_capacity(2 * m);
    if m == 1 {
        // rrcf 0.4.4 fails on a single distinct point (0/0 probabilities); we make one leaf.
        let s = tree.new_leaf(&data[..d], groups[0].len() as u64);
        tree.link(NIL, s, true);
        leaves.push(BatchLeaf { slot: s, position: 0, rows: groups[0].clone() });
        return Ok((tree, leaves));
    }
    let mut perm: Vec<usize> = (0..m).collect();
    let (mut xmin, mut xmax, mut prob) = (vec![0.0; d], vec![0.0; d], vec![0.0; d]);
    let mut stack = vec![Task::Split { start: 0, end: m, parent: NIL, is_left: true }];
    while let Some(task) = stack.pop() {
        match task {
            Task::Leaf { row: r, parent, is_left } => {
                let s = tree.new_leaf(&data[r * d..(r + 1) * d], groups[r].len() as u64);
                tree.link(parent, s, is_left);
                created.push(s);
                leaves.push(BatchLeaf { slot: s, position: r, rows: groups[r].clone() });
            }
            Task::Split { start, end, parent, is_left } => {
                xmin.fill(f64::INFINITY);
                xmax.fill(f64::NEG_INFINITY);
                for &r in &perm[start..end] {
                    for j in 0..d {
                        let v = data[r * d + j];
                        xmin[j] = xmin[j].min(v);
                        xmax[j] = xmax[j].max(v);
                    }
                }
                // q = rng.choice(d, p=l / l.sum()): cdf = cumsum(p) / cdf[-1], searchsorted right.
                for j in 0..d {
                    prob[j] = xmax[j] - xmin[j];
                }
                let total = pairwise_sum(&prob);
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
                created.push(branch);
                // Partition rows: x[q] <= value to the left.
                let slice = &mut perm[start..end];
                let mut k = 0;
                for idx in 0..slice.len() {
                    if data[slice[idx] * d + q] <= value {
                        slice.swap(k, idx);
                        k += 1;
                    }
                }
                let mid = start + k;
                if mid == end {
                    return Err(RrcfError::EmptyCut);
                }
                // Left is processed first: push right, then left.
                let right = if end - mid > 1 {
                    Task::Split { start: mid, end, parent: branch, is_left: false }
                } else {
                    Task::Leaf { row: perm[mid], parent: branch, is_left: false }
                };
                let left = if mid - start > 1 {
                    Task::Split { start, end: mid, parent: branch, is_left: true }
                } else {
                    Task::Leaf { row: perm[start], parent: branch, is_left: true }
                };
                stack.push(right);
                stack.push(left);
            }
        }
    }
    // Nodes were created in pre-order, so reversed creation order sees children first.
    for &s in created.iter().rev() {
        if !tree.is_leaf(s) {
            tree.refresh_from_children(s);
        }
    }
    Ok((tree, leaves))
}
