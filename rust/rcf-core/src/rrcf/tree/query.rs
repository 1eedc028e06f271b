//! Read-only walks of an rrcf tree: `CoDisp`, displacement, query, duplicates, boxes, traversals.
use super::{RrcfTree, NIL};
use crate::rrcf::error::{RrcfError, RrcfResult};
use crate::rrcf::numeric::isclose;

impl RrcfTree {
    fn sibling(&self, slot: u32) -> u32 {
        let p = self.nodes[slot as usize].parent;
        let (l, r) = self.children(p);
        if l == slot {
            r
        } else {
            l
        }
    }

    /// rrcf's `disp`: mass of the sibling (0 at the root).
    pub fn disp(&self, slot: u32) -> u64 {
        if self.nodes[slot as usize].parent == NIL {
            0
        } else {
            self.nodes[self.sibling(slot) as usize].mass
        }
    }

    /// rrcf's `codisp_with_cut_dimension`: the largest sibling/node mass ratio on the path to the
    /// root, and the cut dimension of the parent where it was first reached.
    pub fn codisp_with_cut_dimension(&self, slot: u32) -> (f64, u32) {
        let mut best = 0.0;
        let mut dim = 0;
        let mut node = slot;
        while self.nodes[node as usize].parent != NIL {
            let p = self.nodes[node as usize].parent;
            let ratio = self.nodes[self.sibling(node) as usize].mass as f64
                / self.nodes[node as usize].mass as f64;
            if ratio > best {
                best = ratio;
                dim = self.nodes[p as usize].cut_dim;
            }
            node = p;
        }
        (best, dim)
    }

    /// rrcf's `codisp` (0 at the root).
    pub fn codisp(&self, slot: u32) -> f64 {
        self.codisp_with_cut_dimension(slot).0
    }

    /// rrcf's `query`: the leaf reached by following the cuts from `start` (the root by default).
    pub fn query(&self, point: &[f64], start: Option<u32>) -> RrcfResult<u32> {
        if self.root == NIL {
            return Err(RrcfError::Empty("the tree is empty; insert a point first"));
        }
        self.check_point(point)?;
        let mut node = start.unwrap_or(self.root);
        while !self.is_leaf(node) {
            let (q, p) = self.cut(node);
            node = if point[q as usize] <= p {
                self.nodes[node as usize].left
            } else {
                self.nodes[node as usize].right
            };
        }
        Ok(node)
    }

    /// rrcf's `find_duplicate`: the queried leaf if its point equals `point` (or is `np.isclose`
    /// to it with `rtol=tolerance`).
    pub fn find_duplicate(&self, point: &[f64], tolerance: Option<f64>) -> RrcfResult<Option<u32>> {
        let leaf = self.query(point, None)?;
        let x = self.lo(leaf);
        let same = match tolerance {
            None => x.iter().zip(point).all(|(a, b)| a == b),
            Some(rtol) => x.iter().zip(point).all(|(&a, &b)| isclose(a, b, rtol)),
        };
        Ok(same.then_some(leaf))
    }

    /// rrcf's `get_bbox`: the box of the points of the leaves below `node` (root by default).
    pub fn get_bbox(&self, node: Option<u32>) -> (Vec<f64>, Vec<f64>) {
        let mut mins = vec![f64::INFINITY; self.ndim];
        let mut maxes = vec![f64::NEG_INFINITY; self.ndim];
        if let Some(start) = node.or(self.root()) {
            for leaf in self.leaves_under(start) {
                for (j, &v) in self.lo(leaf).iter().enumerate() {
                    if v < mins[j] {
                        mins[j] = v;
                    }
                    if v > maxes[j] {
                        maxes[j] = v;
                    }
                }
            }
        }
        (mins, maxes)
    }

    /// Leaves below `node`, left to right (rrcf's `map_leaves` order).
    pub fn leaves_under(&self, node: u32) -> Vec<u32> {
        let mut out = Vec::new();
        let mut stack = vec![node];
        while let Some(s) = stack.pop() {
            if self.is_leaf(s) {
                out.push(s);
            } else {
                stack.push(self.nodes[s as usize].right);
                stack.push(self.nodes[s as usize].left);
            }
        }
        out
    }

    /// Branches below `node` in post-order (rrcf's `map_branches` order).
    pub fn branches_under(&self, node: u32) -> Vec<u32> {
        let mut out = Vec::new();
        let mut stack = vec![(node, false)];
        while let Some((s, expanded)) = stack.pop() {
            if self.is_leaf(s) {
                continue;
            }
            if expanded {
                out.push(s);
            } else {
                stack.push((s, true));
                stack.push((self.nodes[s as usize].right, false));
                stack.push((self.nodes[s as usize].left, false));
            }
        }
        out
    }

    /// All nodes below `node` in pre-order, with their depths (for `to_dict` and printing).
    pub fn preorder(&self, node: u32) -> Vec<(u32, usize)> {
        let mut out = Vec::new();
        let mut stack = vec![(node, self.depth(node))];
        while let Some((s, d)) = stack.pop() {
            out.push((s, d));
            if !self.is_leaf(s) {
                stack.push((self.nodes[s as usize].right, d + 1));
                stack.push((self.nodes[s as usize].left, d + 1));
            }
        }
        out
    }
}
