//! Trees (or points) walked in lockstep groups of [`GROUP`]: the descents of a group overlap
//! their chains of dependent loads, then each lane climbs on its own. The lanes' paths and
//! leaves stay in the thread's [`Lanes`] for the insertions that follow (see [`walked`]).
use crate::lanes::GROUP;
use crate::point_store::PointStore;
use crate::scratch::Scratch;
use crate::tree::{Node, Tree, LEAF, NIL};

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
/// (their loads overlap): for the last group of [`GROUP`] trees, [`walked`] gives lane `j`'s
/// leaf and path, for the insertion.
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
    let nodes: [&[Node]; GROUP] = std::array::from_fn(|j| group[j].nodes());
    let roots: [u16; GROUP] = std::array::from_fn(|j| group[j].root());
    // A path has fewer internal nodes than the tree has nodes.
    let bound = nodes.iter().map(|n| n.len()).max().unwrap_or(0) + 1;
    sc.lanes.descend(GROUP, bound, roots, stops, |j, n| {
        nodes[j][n as usize].child(q)
    });
    climb_lanes::<D>(GROUP, |j| (group[j], q), skipped, store, sc, out);
}

/// True for the references a descent stops at: a leaf, or `NIL` (an empty tree; it has the
/// leaf bit).
#[inline(always)]
fn stops(r: u16) -> bool {
    r & LEAF != 0
}

/// The climbs after a lockstep descent: lane `j` (tree and point from `lane(j)`) gets its
/// RCF score in `out[j]` unless `skipped` has bit `j`.
#[inline(always)]
fn climb_lanes<'a, const D: usize>(
    n: usize,
    lane: impl Fn(usize) -> (&'a Tree, &'a [f32]),
    skipped: u32,
    store: &PointStore,
    sc: &mut Scratch,
    out: &mut [f64],
) {
    for (j, o) in out[..n].iter_mut().enumerate() {
        if skipped & (1 << j) != 0 {
            continue;
        }
        let leaf = sc.lanes.leaf(j);
        *o = if leaf == NIL {
            0.0
        } else {
            let (t, q) = lane(j);
            t.rcf_climb_d::<D>(store, q, leaf, sc.lanes.path(j), &mut sc.boxes)
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
    let bound = nodes.len() + 1;
    for (points, out) in qs.chunks(GROUP).zip(out.chunks_mut(GROUP)) {
        if let Ok(points) = <&[&[f32]; GROUP]>::try_from(points) {
            // A full group: one tree's nodes, GROUP points.
            sc.lanes
                .descend(GROUP, bound, [tree.root(); GROUP], stops, |j, n| {
                    nodes[n as usize].child(points[j])
                });
            climb_lanes::<D>(GROUP, |j| (tree, points[j]), 0, store, sc, out);
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
    let mut start = [NIL; GROUP];
    let mut bound = 1;
    for (j, (t, _)) in lanes.iter().enumerate() {
        start[j] = t.root();
        bound = bound.max(t.nodes().len() + 1);
    }
    sc.lanes.descend(lanes.len(), bound, start, stops, |j, n| {
        lanes[j].0.step(n, lanes[j].1)
    });
    climb_lanes::<D>(lanes.len(), |j| lanes[j], skipped, store, sc, out);
}

/// After [`rcf_scores_except`]: the leaf that lane `j` of the last group reached, its path
/// (root first) copied to `sc.path`, for an insertion that resumes from that walk; `None` for
/// an empty tree.
pub(crate) fn walked(sc: &mut Scratch, j: usize) -> Option<u16> {
    let leaf = sc.lanes.leaf(j);
    if leaf == NIL {
        return None;
    }
    let Scratch { path, lanes, .. } = sc;
    path.clear();
    path.extend_from_slice(lanes.path(j));
    Some(leaf)
}
