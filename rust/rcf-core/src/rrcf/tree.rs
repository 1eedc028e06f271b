//! The rrcf tree in an arena.
//!
//! Nodes are `u32` slots into `nodes` (links, mass, cut). A slot is a leaf when its `left` is NIL. Each
//! slot owns `2 * ndim` values in `bounds`: a branch keeps its box (`lo` then `hi`), a leaf keeps
//! its point in both halves, so a leaf's box is its point, as in rrcf. Freed slots are reused; each
//! allocation gets a fresh `generation` so that handles held by Python can detect reuse.
//! Depths are not stored: rrcf's `d` is the number of parents, computed on demand.
//! Read-only walks (scores, queries, traversals) and serialization are in `tree/query.rs`.
use serde::{Deserialize, Serialize};

use super::error::{RrcfError, RrcfResult};
use super::mt19937::UniformSource;
use super::numeric::pairwise_sum;
use super::Behaviour;

mod query;
mod validate;

/// "No node".
pub const NIL: u32 = u32::MAX;

/// Outcome of [`RrcfTree::insert`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// A new leaf was created at this slot.
    New(u32),
    /// The point duplicated the leaf at this slot, whose mass grew by one.
    Duplicate(u32),
}

/// A value stored into a numpy array: truncated toward zero if the array is an integer one.
#[inline]
fn cast(v: f64, int: bool) -> f64 {
    if int {
        v.trunc()
    } else {
        v
    }
}

/// rrcf's `_insert_point_cut(point, bbox)` on the box `lo`/`hi`: one uniform draw over the summed
/// spans of the box extended by `point`, and the cut `(dimension, value)` where it falls.
///
/// `leaf_bug`: rrcf 0.4.4 on a one-row (leaf) box, where the extended box collapses to its upper
/// row. `span` is scratch space of the points' length. Nothing is drawn when the spans sum to
/// more than the largest float64 (numpy's `uniform(0, inf)` raises before drawing).
pub fn insert_point_cut<R: UniformSource + ?Sized>(
    lo: &[f64],
    hi: &[f64],
    point: &[f64],
    leaf_bug: bool,
    span: &mut [f64],
    rng: &mut R,
) -> RrcfResult<(usize, f64)> {
    // Values are finite (checked on the way in), so `<` picks exactly what np.minimum does.
    let bottom = |j: usize| {
        let top = if point[j] > hi[j] { point[j] } else { hi[j] };
        if leaf_bug {
            top
        } else if point[j] < lo[j] {
            point[j]
        } else {
            lo[j]
        }
    };
    for (j, sp) in span.iter_mut().enumerate() {
        let top = if point[j] > hi[j] { point[j] } else { hi[j] };
        *sp = top - bottom(j);
    }
    let b_range = pairwise_sum(span);
    if !b_range.is_finite() {
        return Err(RrcfError::SpanOverflow {
            what: "the box of the tree extended by the point",
        });
    }
    let r = 0.0 + (b_range - 0.0) * rng.next_f64();
    let mut cum = 0.0;
    for (j, &sp) in span.iter().enumerate() {
        cum = if j == 0 { sp } else { cum + sp };
        if cum >= r {
            return Ok((j, (bottom(j) + cum) - r));
        }
    }
    Err(RrcfError::CutNotFound)
}

/// One node; 32 bytes so that a step down the tree touches one cache line plus the box.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Node {
    parent: u32,
    left: u32,
    right: u32,
    cut_dim: u32,
    mass: u64,
    cut_val: f64,
}

impl Node {
    const EMPTY: Node = Node {
        parent: NIL,
        left: NIL,
        right: NIL,
        cut_dim: 0,
        mass: 0,
        cut_val: 0.0,
    };
}

/// A robust random cut tree with rrcf's semantics.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RrcfTree {
    behaviour: Behaviour,
    ndim: usize,
    root: u32,
    nodes: Vec<Node>,
    bounds: Vec<f64>,
    generation: Vec<u64>,
    alive: Vec<bool>,
    /// Compat mode: the node's numpy array was an integer array in rrcf 0.4.4 (values assigned
    /// into it are truncated toward zero). Always false in master mode.
    int_box: Vec<bool>,
    free: Vec<u32>,
    next_generation: u64,
    #[serde(skip)]
    scratch: Vec<f64>,
}

impl RrcfTree {
    /// An empty tree.
    pub fn new(behaviour: Behaviour) -> Self {
        RrcfTree {
            behaviour,
            ndim: 0,
            root: NIL,
            nodes: Vec::new(),
            bounds: Vec::new(),
            generation: Vec::new(),
            alive: Vec::new(),
            int_box: Vec::new(),
            free: Vec::new(),
            next_generation: 1,
            scratch: Vec::new(),
        }
    }

    /// Which rrcf this tree reproduces.
    pub fn behaviour(&self) -> Behaviour {
        self.behaviour
    }
    /// Dimension of the points, `None` for an empty tree.
    pub fn ndim(&self) -> Option<usize> {
        (self.root != NIL).then_some(self.ndim)
    }
    /// Root slot, `None` for an empty tree.
    pub fn root(&self) -> Option<u32> {
        (self.root != NIL).then_some(self.root)
    }
    /// Whether `slot` holds a node of generation `generation`.
    pub fn is_valid(&self, slot: u32, generation: u64) -> bool {
        let s = slot as usize;
        s < self.alive.len() && self.alive[s] && self.generation[s] == generation
    }
    /// Generation of the node in `slot`.
    pub fn generation(&self, slot: u32) -> u64 {
        self.generation[slot as usize]
    }
    /// Whether `slot` is a leaf.
    pub fn is_leaf(&self, slot: u32) -> bool {
        self.nodes[slot as usize].left == NIL
    }
    /// Parent slot or `None` at the root.
    pub fn parent(&self, slot: u32) -> Option<u32> {
        let p = self.nodes[slot as usize].parent;
        (p != NIL).then_some(p)
    }
    /// Children `(left, right)` of a branch.
    pub fn children(&self, slot: u32) -> (u32, u32) {
        (
            self.nodes[slot as usize].left,
            self.nodes[slot as usize].right,
        )
    }
    /// Number of points below the node (a leaf's duplicates count).
    pub fn mass(&self, slot: u32) -> u64 {
        self.nodes[slot as usize].mass
    }
    /// Cut `(dimension, value)` of a branch.
    pub fn cut(&self, slot: u32) -> (u32, f64) {
        (
            self.nodes[slot as usize].cut_dim,
            self.nodes[slot as usize].cut_val,
        )
    }
    /// Lower corner of the node's box (a leaf's point).
    pub fn lo(&self, slot: u32) -> &[f64] {
        let s = slot as usize * 2 * self.ndim;
        &self.bounds[s..s + self.ndim]
    }
    /// Upper corner of the node's box (a leaf's point).
    pub fn hi(&self, slot: u32) -> &[f64] {
        let s = (slot as usize * 2 + 1) * self.ndim;
        &self.bounds[s..s + self.ndim]
    }
    /// Number of parents of the node (rrcf's leaf depth `d`).
    pub fn depth(&self, slot: u32) -> usize {
        let mut d = 0;
        let mut s = self.nodes[slot as usize].parent;
        while s != NIL {
            d += 1;
            s = self.nodes[s as usize].parent;
        }
        d
    }
    /// Whether the node's box (a leaf's point) is an integer array in rrcf 0.4.4 (compat mode).
    pub fn is_int(&self, slot: u32) -> bool {
        self.int_box[slot as usize]
    }
    /// Marks a node as holding an integer array (compat mode only; ignored in master mode).
    pub(crate) fn set_int(&mut self, slot: u32, int: bool) {
        self.int_box[slot as usize] = int && self.behaviour == Behaviour::Compat044;
    }
    /// Number of slots (alive or free); valid slots are below this.
    pub fn capacity(&self) -> usize {
        self.alive.len()
    }

    // ---- allocation -------------------------------------------------------------------------

    pub(crate) fn reset(&mut self, ndim: usize) {
        *self = RrcfTree {
            next_generation: self.next_generation,
            ..RrcfTree::new(self.behaviour)
        };
        self.ndim = ndim;
    }

    /// Reserves room for `additional` more nodes.
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.nodes.reserve(additional);
        self.bounds.reserve(additional * 2 * self.ndim);
        self.generation.reserve(additional);
        self.alive.reserve(additional);
        self.int_box.reserve(additional);
    }

    fn alloc(&mut self) -> u32 {
        let g = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1);
        if let Some(s) = self.free.pop() {
            let i = s as usize;
            self.nodes[i] = Node::EMPTY;
            self.generation[i] = g;
            self.alive[i] = true;
            self.int_box[i] = false;
            return s;
        }
        self.nodes.push(Node::EMPTY);
        self.bounds.resize(self.bounds.len() + 2 * self.ndim, 0.0);
        self.generation.push(g);
        self.alive.push(true);
        self.int_box.push(false);
        (self.alive.len() - 1) as u32
    }

    fn release(&mut self, slot: u32) {
        let i = slot as usize;
        self.alive[i] = false;
        self.nodes[i].left = NIL;
        self.nodes[i].right = NIL;
        self.nodes[i].parent = NIL;
        self.free.push(slot);
    }

    pub(crate) fn new_leaf(&mut self, point: &[f64], mass: u64) -> u32 {
        let s = self.alloc();
        let d = self.ndim;
        let b = s as usize * 2 * d;
        self.bounds[b..b + d].copy_from_slice(point);
        self.bounds[b + d..b + 2 * d].copy_from_slice(point);
        self.nodes[s as usize].mass = mass;
        s
    }

    pub(crate) fn new_branch(&mut self, dim: u32, value: f64) -> u32 {
        let s = self.alloc();
        self.nodes[s as usize].cut_dim = dim;
        self.nodes[s as usize].cut_val = value;
        s
    }

    pub(crate) fn link(&mut self, parent: u32, child: u32, is_left: bool) {
        if parent == NIL {
            self.root = child;
        } else if is_left {
            self.nodes[parent as usize].left = child;
        } else {
            self.nodes[parent as usize].right = child;
        }
        self.nodes[child as usize].parent = parent;
    }

    pub(crate) fn set_mass(&mut self, slot: u32, mass: u64) {
        self.nodes[slot as usize].mass = mass;
    }

    pub(crate) fn set_box(&mut self, slot: u32, lo: &[f64], hi: &[f64]) {
        let d = self.ndim;
        let b = slot as usize * 2 * d;
        self.bounds[b..b + d].copy_from_slice(lo);
        self.bounds[b + d..b + 2 * d].copy_from_slice(hi);
    }

    /// Sets a branch's mass and box from its children (rrcf's `_lr_branch_bbox`).
    pub(crate) fn refresh_from_children(&mut self, slot: u32) {
        let (l, r) = self.children(slot);
        self.nodes[slot as usize].mass = self.nodes[l as usize].mass + self.nodes[r as usize].mass;
        self.box_from_children(slot);
    }

    fn box_from_children(&mut self, slot: u32) {
        let d = self.ndim;
        let (l, r) = self.children(slot);
        let (b, bl, br) = (
            slot as usize * 2 * d,
            l as usize * 2 * d,
            r as usize * 2 * d,
        );
        let int = self.int_box[slot as usize];
        for j in 0..d {
            let lo = self.bounds[bl + j].min(self.bounds[br + j]);
            let hi = self.bounds[bl + d + j].max(self.bounds[br + d + j]);
            self.bounds[b + j] = cast(lo, int);
            self.bounds[b + d + j] = cast(hi, int);
        }
    }

    /// rrcf's `_count_all_top_down` and `_get_bbox_top_down`: recomputes the mass and box of every
    /// branch below `node` from its children (children first). On a tree built by this code the
    /// result equals what is stored.
    pub fn refresh_under(&mut self, node: u32) {
        for b in self.branches_under(node) {
            self.refresh_from_children(b);
        }
    }

    /// rrcf's `_tighten_bbox_upwards(node)`: the branch's box from its children, then each
    /// ancestor extended to it until one already contains it.
    pub fn tighten_upwards(&mut self, node: u32) {
        if self.is_leaf(node) {
            return;
        }
        self.box_from_children(node);
        let d = self.ndim;
        let nb = node as usize * 2 * d;
        let mut a = self.nodes[node as usize].parent;
        while a != NIL {
            let b = a as usize * 2 * d;
            let int = self.int_box[a as usize];
            let mut outside = false;
            for j in 0..d {
                let (lo, hi) = (self.bounds[nb + j], self.bounds[nb + d + j]);
                if lo < self.bounds[b + j] {
                    self.bounds[b + j] = cast(lo, int);
                    outside = true;
                }
                if hi > self.bounds[b + d + j] {
                    self.bounds[b + d + j] = cast(hi, int);
                    outside = true;
                }
            }
            if !outside {
                break;
            }
            a = self.nodes[a as usize].parent;
        }
    }

    /// rrcf's `_relax_bbox_upwards(node, point)`: from `node` up, recomputes each branch's box
    /// from its children while `point` lies on the box's boundary.
    pub fn relax_upwards(&mut self, node: u32, point: &[f64]) {
        let d = self.ndim;
        let mut a = node;
        while a != NIL && !self.is_leaf(a) && point.len() == d {
            let b = a as usize * 2 * d;
            let on_boundary = (0..d)
                .any(|j| self.bounds[b + j] == point[j] || self.bounds[b + d + j] == point[j]);
            if !on_boundary {
                break;
            }
            self.box_from_children(a);
            a = self.nodes[a as usize].parent;
        }
    }

    // ---- checks -----------------------------------------------------------------------------

    /// Rejects empty or non-finite points and, in a non-empty tree, a wrong dimension.
    pub fn check_point(&self, point: &[f64]) -> RrcfResult<()> {
        if point.is_empty() {
            return Err(RrcfError::Empty(
                "point is empty; expected at least one coordinate",
            ));
        }
        if let Some(position) = point.iter().position(|v| !v.is_finite()) {
            return Err(RrcfError::NotFinite {
                what: "point",
                position,
            });
        }
        if self.root != NIL && point.len() != self.ndim {
            return Err(RrcfError::Dimension {
                expected: self.ndim,
                got: point.len(),
            });
        }
        Ok(())
    }

    // ---- insert -----------------------------------------------------------------------------

    /// rrcf's `_insert_point_cut`: the cut of the box of `node` extended by `point`.
    fn insert_cut<R: UniformSource + ?Sized>(
        &mut self,
        node: u32,
        point: &[f64],
        rng: &mut R,
    ) -> RrcfResult<(usize, f64)> {
        const STACK_DIMS: usize = 16;
        let d = self.ndim;
        let mut stack_buf = [0.0f64; STACK_DIMS];
        let mut heap_buf = if d > STACK_DIMS {
            let mut v = std::mem::take(&mut self.scratch);
            v.clear();
            v.resize(d, 0.0);
            v
        } else {
            Vec::new()
        };
        let span: &mut [f64] = if d > STACK_DIMS {
            &mut heap_buf
        } else {
            &mut stack_buf[..d]
        };
        // 0.4.4 writes min then max into the same row of a leaf's one-row box, so its "box
        // extended by the point" is max(x, point) in both rows: every span is zero.
        let leaf_bug = self.behaviour == Behaviour::Compat044 && self.is_leaf(node);
        let b = node as usize * 2 * d;
        let (lo, hi) = self.bounds[b..b + 2 * d].split_at(d);
        let found = insert_point_cut(lo, hi, &point[..d], leaf_bug, span, rng);
        if d > STACK_DIMS {
            self.scratch = heap_buf;
        }
        found
    }

    /// Inserts `point` (rrcf's `insert_point` after its index checks).
    ///
    /// A point equal to the leaf `find_duplicate` returns (within `tolerance` if given) only adds
    /// mass. Otherwise the walk draws one cut per level until the cut separates the point.
    pub fn insert<R: UniformSource + ?Sized>(
        &mut self,
        point: &[f64],
        tolerance: Option<f64>,
        rng: &mut R,
    ) -> RrcfResult<Inserted> {
        self.insert_typed(point, false, tolerance, rng)
    }

    /// [`RrcfTree::insert`] of a point that was an integer array (`int_point`): in compat mode
    /// its leaf, and a branch made over it and an integer node, keep rrcf 0.4.4's integer dtype.
    pub fn insert_typed<R: UniformSource + ?Sized>(
        &mut self,
        point: &[f64],
        int_point: bool,
        tolerance: Option<f64>,
        rng: &mut R,
    ) -> RrcfResult<Inserted> {
        self.check_point(point)?;
        if self.root == NIL {
            self.reset(point.len());
            let s = self.new_leaf(point, 1);
            self.set_int(s, int_point);
            self.root = s;
            return Ok(Inserted::New(s));
        }
        if let Some(dup) = self.find_duplicate(point, tolerance)? {
            self.add_mass_upwards(dup, 1);
            return Ok(Inserted::Duplicate(dup));
        }
        let mut node = self.root;
        let mut parent = NIL;
        let mut node_is_left = false;
        let leaf_goes_left = loop {
            let (dim, cut) = self.insert_cut(node, point, rng)?;
            if cut <= self.lo(node)[dim] {
                break Some((dim, cut, true));
            } else if cut >= self.hi(node)[dim] {
                break Some((dim, cut, false));
            } else if self.is_leaf(node) {
                break None;
            }
            let (q, p) = self.cut(node);
            parent = node;
            node_is_left = point[q as usize] <= p;
            node = if node_is_left {
                self.nodes[node as usize].left
            } else {
                self.nodes[node as usize].right
            };
        };
        let Some((dim, cut, leaf_left)) = leaf_goes_left else {
            return Err(RrcfError::InvalidTree(
                "a cut fell inside a leaf's box".into(),
            ));
        };
        let leaf = self.new_leaf(point, 1);
        self.set_int(leaf, int_point);
        let branch = self.new_branch(dim as u32, cut);
        self.link(parent, branch, node_is_left);
        self.link(branch, leaf, leaf_left);
        self.link(branch, node, !leaf_left);
        // np.vstack of the children's rows: an integer array only if both children are.
        let int = self.int_box[node as usize] && int_point;
        self.set_int(branch, int);
        self.refresh_from_children(branch);
        self.add_mass_upwards(parent, 1);
        // rrcf's `_tighten_bbox_upwards`: compare each ancestor with the new branch's box, assign
        // where it is outside (truncated into integer boxes), stop at the first with nothing
        // outside. With exact float boxes this extends every box that misses the point.
        self.tighten_upwards(branch);
        Ok(Inserted::New(leaf))
    }

    fn add_mass_upwards(&mut self, mut slot: u32, inc: u64) {
        while slot != NIL {
            self.nodes[slot as usize].mass += inc;
            slot = self.nodes[slot as usize].parent;
        }
    }

    fn sub_mass_upwards(&mut self, mut slot: u32) {
        while slot != NIL {
            // Masses are consistent (checked on load), so this never saturates.
            self.nodes[slot as usize].mass = self.nodes[slot as usize].mass.saturating_sub(1);
            slot = self.nodes[slot as usize].parent;
        }
    }

    // ---- forget -----------------------------------------------------------------------------

    /// Whether `slot` holds a live leaf.
    pub fn is_live_leaf(&self, slot: u32) -> bool {
        let s = slot as usize;
        s < self.alive.len() && self.alive[s] && self.nodes[s].left == NIL
    }

    /// Removes one point from the leaf at `slot` (rrcf's `forget_point` after the index lookup).
    /// Returns `true` when the leaf itself was removed, `false` when only its mass dropped, and
    /// `false` without a change if `slot` is not a live leaf (see [`RrcfTree::try_forget`]).
    pub fn forget(&mut self, slot: u32) -> bool {
        self.try_forget(slot).unwrap_or(false)
    }

    /// [`RrcfTree::forget`] that reports a slot that is not a live leaf.
    pub fn try_forget(&mut self, slot: u32) -> RrcfResult<bool> {
        if !self.is_live_leaf(slot) {
            return Err(RrcfError::NotALeaf(slot));
        }
        Ok(self.forget_leaf(slot))
    }

    fn forget_leaf(&mut self, slot: u32) -> bool {
        let i = slot as usize;
        if self.nodes[i].mass > 1 {
            self.sub_mass_upwards(slot);
            return false;
        }
        if slot == self.root {
            self.reset(0);
            return true;
        }
        let parent = self.nodes[i].parent;
        let (l, r) = self.children(parent);
        let sibling = if l == slot { r } else { l };
        let grand = self.nodes[parent as usize].parent;
        if grand == NIL {
            self.nodes[sibling as usize].parent = NIL;
            self.root = sibling;
        } else {
            let parent_is_left = self.nodes[grand as usize].left == parent;
            self.link(grand, sibling, parent_is_left);
            self.sub_mass_upwards(grand);
            // Shrink boxes while the removed point lay on their boundary.
            let d = self.ndim;
            let pb = i * 2 * d;
            let mut a = grand;
            while a != NIL {
                let b = a as usize * 2 * d;
                let on_boundary = (0..d).any(|j| {
                    let v = self.bounds[pb + j];
                    self.bounds[b + j] == v || self.bounds[b + d + j] == v
                });
                if !on_boundary {
                    break;
                }
                self.box_from_children(a);
                a = self.nodes[a as usize].parent;
            }
        }
        self.release(parent);
        self.release(slot);
        true
    }
}
