//! Arena random cut tree (Guha et al. 2016) with a cut dimension drawn proportionally to the span
//! of the box extended by the new point.
//!
//! Index encoding: a `u16` reference is an internal node id when below [`LEAF`], `LEAF | slot`
//! for leaf slot `slot`, and [`NIL`] for "none". Internal nodes live in `nodes`, leaves in the
//! `leaf` vector: the low 24 bits hold the point id, the high 8 bits the mass (255 means "see
//! `big_mass`"). Free node slots are chained through `Node::left`, free leaf slots through the
//! id bits of a zero-mass leaf. There are no parent links: delete finds a leaf's path by
//! following the cuts with the leaf's own point, which satisfies every cut above it.
//!
//! Boxes: an internal node of mass >= [`BOX_MIN_MASS`] keeps its tight bounding box in `boxes`
//! (slot `node_box[node]`); smaller subtrees compute theirs from their few leaves when needed. That
//! halves a tree's memory and costs at most `BOX_MIN_MASS` point reads per walk.
use serde::{Deserialize, Serialize};

use crate::point_store::PointStore;
use crate::rng::Rng;
use crate::scratch::{BoxRoom, Scratch};

/// Flag bit of a leaf reference.
pub const LEAF: u16 = 0x8000;
/// The "no node" reference.
pub const NIL: u16 = u16::MAX;
const NO_BOX: u16 = u16::MAX;
/// Id bits of a leaf; also "end of the free list" in a free leaf.
pub const ID_MASK: u32 = (1 << 24) - 1;
const MASS_SHIFT: u32 = 24;
const BIG_MASS: u32 = 255;
/// Internal nodes with at least this mass keep their bounding box.
pub const BOX_MIN_MASS: u16 = 12;

/// An internal node: the cut (`x[dim] <= cut` goes left), children, mass and box slot.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
#[repr(C)]
pub struct Node {
    /// Cut value.
    pub cut: f32,
    /// Left child reference.
    pub left: u16,
    /// Right child reference.
    pub right: u16,
    /// Cut dimension.
    pub dim: u16,
    /// Number of points below (duplicates counted).
    pub mass: u16,
}

impl Node {
    /// The child on `q`'s side of the cut.
    #[inline(always)]
    pub(crate) fn child(&self, q: &[f32]) -> u16 {
        // Branch-free: the side is a coin flip to the branch predictor.
        [self.left, self.right][usize::from(q[self.dim as usize] > self.cut)]
    }

    /// The child that is not `child` (which must be one of the two): branch-free.
    #[inline(always)]
    pub(crate) fn other(&self, child: u16) -> u16 {
        self.left ^ self.right ^ child
    }
}

/// A random cut tree over points of a shared [`PointStore`].
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Tree {
    dim: usize,
    root: u16,
    nodes: Vec<Node>,
    /// Cached box slot of each internal node, or `NO_BOX` (kept apart so a node is 12 bytes).
    node_box: Vec<u16>,
    free_node: u16,
    leaf: Vec<u32>,
    /// Masses of 255 and more (many duplicates), by leaf slot; usually empty.
    big_mass: std::collections::BTreeMap<u16, u32>,
    free_leaf: u16,
    boxes: Vec<f32>,
    free_box: Vec<u16>,
}

/// A copy keeps the arrays' room (a derived clone would size them exactly, and the next
/// update of a full tree, which holds one leaf more for a moment, would double them).
impl Clone for Tree {
    fn clone(&self) -> Self {
        fn with_room<T: Clone>(v: &Vec<T>) -> Vec<T> {
            let mut c = Vec::with_capacity(v.capacity());
            c.extend_from_slice(v);
            c
        }
        Tree {
            dim: self.dim,
            root: self.root,
            nodes: with_room(&self.nodes),
            node_box: with_room(&self.node_box),
            free_node: self.free_node,
            leaf: with_room(&self.leaf),
            big_mass: self.big_mass.clone(),
            free_leaf: self.free_leaf,
            boxes: self.boxes.clone(),
            free_box: self.free_box.clone(),
        }
    }
}

#[inline]
pub(crate) fn is_leaf(r: u16) -> bool {
    r != NIL && r & LEAF != 0
}

impl Tree {
    /// An empty tree for points of `dim` values holding at most `capacity` leaves (and, for a
    /// moment during an update, one more: the new point goes in before the old one leaves).
    /// Nothing is reserved up front: the arrays grow with the points (a quarter at a time), so
    /// that a forest's memory follows its data, not its capacity.
    pub fn new(dim: usize, capacity: usize) -> Self {
        debug_assert!(capacity < LEAF as usize);
        Tree {
            dim,
            root: NIL,
            nodes: Vec::new(),
            node_box: Vec::new(),
            free_node: NIL,
            leaf: Vec::new(),
            big_mass: std::collections::BTreeMap::new(),
            free_leaf: NIL,
            boxes: Vec::new(),
            free_box: Vec::new(),
        }
    }

    /// Makes room for one more leaf and node than the tree holds (a restored tree has arrays
    /// of exactly its size, and a full tree holds one leaf more for a moment during an update).
    /// Bounded by the data, unlike reserving for the sampler's capacity.
    pub fn reserve_one_more(&mut self) {
        self.nodes.reserve_exact(1);
        self.node_box.reserve_exact(1);
        self.leaf.reserve_exact(1);
    }

    /// Root reference (`NIL` when empty).
    pub fn root(&self) -> u16 {
        self.root
    }

    /// Total mass (number of points, duplicates counted).
    pub fn mass(&self) -> u32 {
        if self.root == NIL {
            0
        } else {
            self.mass_of(self.root)
        }
    }

    /// Values per point.
    pub fn dim(&self) -> usize {
        self.dim
    }

    #[inline]
    pub(crate) fn node(&self, r: u16) -> &Node {
        &self.nodes[r as usize]
    }

    #[inline]
    pub(crate) fn leaf_point(&self, r: u16) -> u32 {
        self.leaf[(r & !LEAF) as usize] & ID_MASK
    }

    #[inline]
    fn slot_mass(&self, slot: u16) -> u32 {
        let m = self.leaf[slot as usize] >> MASS_SHIFT;
        if m == BIG_MASS {
            self.big_mass.get(&slot).copied().unwrap_or(0)
        } else {
            m
        }
    }

    fn set_slot_mass(&mut self, slot: u16, mass: u32) {
        let packed = if mass >= BIG_MASS {
            self.big_mass.insert(slot, mass);
            BIG_MASS
        } else {
            if !self.big_mass.is_empty() {
                self.big_mass.remove(&slot);
            }
            mass
        };
        let l = &mut self.leaf[slot as usize];
        *l = (*l & ID_MASK) | (packed << MASS_SHIFT);
    }

    #[inline]
    pub(crate) fn mass_of(&self, r: u16) -> u32 {
        if is_leaf(r) {
            self.slot_mass(r & !LEAF)
        } else {
            u32::from(self.nodes[r as usize].mass)
        }
    }

    /// The internal nodes (by id; free slots included).
    #[inline(always)]
    pub(crate) fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The child of internal node `n` on `q`'s side of its cut.
    #[inline]
    pub(crate) fn step(&self, n: u16, q: &[f32]) -> u16 {
        self.nodes[n as usize].child(q)
    }

    /// Heap bytes held by this tree.
    pub fn heap_bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.node_box.capacity() * 2
            + self.leaf.capacity() * 4
            + self.big_mass.len() * 32
            + self.boxes.capacity() * 4
            + self.free_box.capacity() * 2
    }

    /// Widens `lo`/`hi` to contain the subtree `r`.
    pub(crate) fn extend_box(&self, store: &PointStore, r: u16, lo: &mut [f32], hi: &mut [f32]) {
        self.extend_box_d::<0>(store, r, lo, hi);
    }

    /// Visits the parts that together cover subtree `r`, each once: `leaf` gets the point id of
    /// every leaf, `cached` the box slot of every cached box, both with `acc`. The walk behind
    /// every box computed from leaves.
    #[inline(always)]
    fn for_box_parts<A>(
        &self,
        r: u16,
        acc: &mut A,
        leaf: impl Fn(&mut A, u32),
        cached: impl Fn(&mut A, u16),
    ) {
        if is_leaf(r) {
            // The common case at the bottom of a tree: a single leaf.
            leaf(acc, self.leaf_point(r));
            return;
        }
        // Uncached subtrees hold fewer than BOX_MIN_MASS leaves, so a small stack suffices.
        let mut stack = [0u16; 2 * BOX_MIN_MASS as usize + 2];
        let mut top = 1;
        stack[0] = r;
        while top > 0 {
            top -= 1;
            let r = stack[top];
            if is_leaf(r) {
                leaf(acc, self.leaf_point(r));
                continue;
            }
            let b = self.node_box[r as usize];
            if b == NO_BOX {
                let n = &self.nodes[r as usize];
                stack[top] = n.left;
                stack[top + 1] = n.right;
                top += 2;
            } else {
                cached(acc, b);
            }
        }
    }

    /// [`Tree::extend_box`] for `D` dimensions (0: any).
    #[inline(always)]
    pub(crate) fn extend_box_d<const D: usize>(
        &self,
        store: &PointStore,
        r: u16,
        lo: &mut [f32],
        hi: &mut [f32],
    ) {
        self.for_box_parts(
            r,
            &mut (lo, hi),
            |(lo, hi), id| {
                let p = store.point_d::<D>(id);
                widen_d::<D>(lo, hi, p, p);
            },
            |(lo, hi), slot| {
                let (blo, bhi) = self.cached_box_d::<D>(slot);
                widen_d::<D>(lo, hi, blo, bhi);
            },
        );
    }

    /// The cached box in slot `slot` for points of `4·N` values, as vectors.
    #[inline(always)]
    pub(crate) fn cached_box_x4<const N: usize>(
        &self,
        slot: u16,
    ) -> (crate::simd::Lanes<N>, crate::simd::Lanes<N>) {
        let start = slot as usize * 8 * N;
        let b = &self.boxes[start..start + 8 * N];
        (
            crate::simd::load::<N>(b),
            crate::simd::load::<N>(&b[4 * N..]),
        )
    }

    /// [`Tree::extend_box`] for points of `4·N` values, on vectors.
    #[inline(always)]
    pub(crate) fn extend_box_x4<const N: usize>(
        &self,
        store: &PointStore,
        r: u16,
        lo: &mut crate::simd::Lanes<N>,
        hi: &mut crate::simd::Lanes<N>,
    ) {
        self.for_box_parts(
            r,
            &mut (lo, hi),
            |(lo, hi), id| {
                let p = store.point_x4::<N>(id);
                crate::simd::widen(lo, hi, &p, &p);
            },
            |(lo, hi), slot| {
                let (blo, bhi) = self.cached_box_x4::<N>(slot);
                crate::simd::widen(lo, hi, &blo, &bhi);
            },
        );
    }

    /// Sets `lo`/`hi` to the tight box of subtree `r`, for `D` dimensions (0: any).
    #[inline]
    pub(crate) fn box_of_d<const D: usize>(
        &self,
        store: &PointStore,
        r: u16,
        lo: &mut [f32],
        hi: &mut [f32],
    ) {
        let n = dims::<D>(lo.len());
        let (lo, hi) = (&mut lo[..n], &mut hi[..n]);
        if is_leaf(r) {
            let p = &store.point(self.leaf_point(r))[..n];
            lo.copy_from_slice(p);
            hi.copy_from_slice(p);
            return;
        }
        let b = self.node_box[r as usize];
        if b == NO_BOX {
            lo.fill(f32::INFINITY);
            hi.fill(f32::NEG_INFINITY);
            self.extend_box_d::<D>(store, r, lo, hi);
        } else {
            let (blo, bhi) = self.cached_box(b);
            lo.copy_from_slice(&blo[..n]);
            hi.copy_from_slice(&bhi[..n]);
        }
    }

    /// The cached box of internal node `r`, if it has one.
    #[inline]
    pub(crate) fn box_if_cached(&self, r: u16) -> Option<(&[f32], &[f32])> {
        if is_leaf(r) {
            return None;
        }
        let b = self.node_box[r as usize];
        (b != NO_BOX).then(|| self.cached_box(b))
    }

    #[inline]
    fn cached_box(&self, slot: u16) -> (&[f32], &[f32]) {
        self.cached_box_d::<0>(slot)
    }

    /// [`Tree::cached_box`] for `D` dimensions (0: any).
    #[inline(always)]
    pub(crate) fn cached_box_d<const D: usize>(&self, slot: u16) -> (&[f32], &[f32]) {
        let d = dims::<D>(self.dim);
        let start = slot as usize * 2 * d;
        let b = &self.boxes[start..start + 2 * d];
        b.split_at(d)
    }

    /// The cached box slot of internal node `n` (`None` for small subtrees).
    #[inline(always)]
    pub(crate) fn box_slot(&self, n: u16) -> Option<u16> {
        let b = self.node_box[n as usize];
        (b != NO_BOX).then_some(b)
    }

    fn cached_box_mut(&mut self, slot: u16) -> (&mut [f32], &mut [f32]) {
        self.cached_box_mut_d::<0>(slot)
    }

    /// [`Tree::cached_box_mut`] for `D` dimensions (0: any).
    #[inline(always)]
    fn cached_box_mut_d<const D: usize>(&mut self, slot: u16) -> (&mut [f32], &mut [f32]) {
        let d = dims::<D>(self.dim);
        let start = slot as usize * 2 * d;
        self.boxes[start..start + 2 * d].split_at_mut(d)
    }

    fn alloc_box(&mut self, lo: &[f32], hi: &[f32]) -> u16 {
        if let Some(slot) = self.free_box.pop() {
            let (blo, bhi) = self.cached_box_mut(slot);
            blo.copy_from_slice(lo);
            bhi.copy_from_slice(hi);
            slot
        } else {
            let slot = (self.boxes.len() / (2 * self.dim)) as u16;
            if self.boxes.len() == self.boxes.capacity() {
                // Grow by a few boxes at a time: doubling would waste up to half of them.
                self.boxes.reserve_exact(8 * 2 * self.dim);
            }
            self.boxes.extend_from_slice(lo);
            self.boxes.extend_from_slice(hi);
            slot
        }
    }

    fn alloc_leaf(&mut self, point: u32) -> u16 {
        debug_assert!(point < ID_MASK);
        let packed = point | (1 << MASS_SHIFT);
        if self.free_leaf == NIL {
            grow_by_quarter(&mut self.leaf);
            self.leaf.push(packed);
            (self.leaf.len() - 1) as u16
        } else {
            let slot = self.free_leaf;
            let next = self.leaf[slot as usize] & ID_MASK;
            self.free_leaf = if next == ID_MASK { NIL } else { next as u16 };
            self.leaf[slot as usize] = packed;
            slot
        }
    }

    fn free_leaf_slot(&mut self, slot: u16) {
        self.set_slot_mass(slot, 0);
        self.leaf[slot as usize] = if self.free_leaf == NIL {
            ID_MASK
        } else {
            u32::from(self.free_leaf)
        };
        self.free_leaf = slot;
    }

    fn alloc_node(&mut self, node: Node, bbox: u16) -> u16 {
        if self.free_node == NIL {
            grow_by_quarter(&mut self.nodes);
            grow_by_quarter(&mut self.node_box);
            self.nodes.push(node);
            self.node_box.push(bbox);
            (self.nodes.len() - 1) as u16
        } else {
            let id = self.free_node;
            self.free_node = self.nodes[id as usize].left;
            self.nodes[id as usize] = node;
            self.node_box[id as usize] = bbox;
            id
        }
    }

    fn drop_box(&mut self, id: u16) {
        let b = std::mem::replace(&mut self.node_box[id as usize], NO_BOX);
        if b != NO_BOX {
            self.free_box.push(b);
        }
    }

    fn free_node_slot(&mut self, id: u16) {
        self.drop_box(id);
        self.nodes[id as usize] = Node {
            cut: 0.0,
            left: self.free_node,
            right: NIL,
            dim: 0,
            mass: 0,
        };
        self.free_node = id;
    }

    fn set_child(&mut self, parent: u16, old: u16, new: u16) {
        if parent == NIL {
            self.root = new;
        } else {
            let p = &mut self.nodes[parent as usize];
            if p.left == old {
                p.left = new;
            } else {
                debug_assert_eq!(p.right, old);
                p.right = new;
            }
        }
    }

    /// Inserts point `id`. Returns the leaf slot now holding it and whether that leaf is new
    /// (false when the point merged into an equal leaf).
    pub fn insert(
        &mut self,
        store: &PointStore,
        id: u32,
        rng: &mut Rng,
        sc: &mut Scratch,
    ) -> (u16, bool) {
        let (slot, added, _) = self.insert_scored(store, id, rng, sc, None);
        (slot, added)
    }

    /// [`Tree::insert`], also returning the RCF score the point had in the tree before it went
    /// in: the insertion walks the same path and boxes as [`Tree::rcf_score`], so the score
    /// costs a few operations per level instead of a walk of its own. The score is bit for bit
    /// the one [`Tree::rcf_score`] gives (same boxes, same operations in the same order).
    /// `walked`: the leaf the point reaches when the caller already descended this tree with
    /// it and left the path (root first) in `sc.path`.
    pub fn insert_scored(
        &mut self,
        store: &PointStore,
        id: u32,
        rng: &mut Rng,
        sc: &mut Scratch,
        walked: Option<u16>,
    ) -> (u16, bool, f64) {
        by_point_size!(self.dim, D => self.insert_d::<D>(store, id, rng, sc, walked))
    }

    /// Insertion as a walk down and back up: descend to the leaf `q` reaches, climb while
    /// collecting the tight boxes of the nodes whose box does not contain `q` (the box of a
    /// node is its child's box widened by the sibling, or the cached one), then draw cuts from
    /// the highest such node down. A node whose box contains `q` can never be separated from
    /// `q` (its cut would fall inside the box), so no draw is spent there; the tree has the
    /// distribution of the top-down insertion of Guha et al.
    fn insert_d<const D: usize>(
        &mut self,
        store: &PointStore,
        id: u32,
        rng: &mut Rng,
        sc: &mut Scratch,
        walked: Option<u16>,
    ) -> (u16, bool, f64) {
        if self.root == NIL {
            let slot = self.alloc_leaf(id);
            self.root = LEAF | slot;
            return (slot, true, 0.0);
        }
        let d = dims::<D>(self.dim);
        let q = &store.point(id)[..d];
        let path = &mut sc.path;
        let leaf = if let Some(leaf) = walked {
            leaf
        } else {
            path.clear();
            let mut node = self.root;
            while !is_leaf(node) {
                path.push(node);
                node = self.step(node, q);
            }
            node
        };
        debug_assert_eq!(path.first().copied().unwrap_or(leaf), self.root);
        let len = path.len();
        let p = &store.point(self.leaf_point(leaf))[..d];
        if p == q {
            let slot = leaf & !LEAF;
            let m = self.slot_mass(slot);
            let score = crate::score::duplicate_score(len, m, self.mass());
            for &n in path.iter() {
                self.add_mass_d::<D>(store, n, q, false);
            }
            self.set_slot_mass(slot, m + 1);
            return (slot, false, score);
        }
        // seps[2i], seps[2i+1]: out-of-box distance of q and total span of the box of level i
        // widened by q (level 0: the leaf's point; level i: the node at depth `len - i`), for
        // the levels whose box does not hold q. The score's climb computes them.
        let mut seps = std::mem::take(&mut sc.work);
        seps.clear();
        let (o, t) = crate::score::separation_any::<D>(p, p, q);
        seps.push(o);
        seps.push(t);
        let climbed = self.climb_levels::<D, true>(store, q, leaf, path, &mut sc.boxes, &mut seps);
        let score = climbed * crate::score::norm_of(f64::from(self.mass()));
        let top = len + 1 - seps.len() / 2;
        let result = self.place_d::<D>(store, id, q, leaf, top, &seps, rng, sc);
        sc.work = seps;
        (result.0, result.1, score)
    }

    /// The second half of an insertion: one draw per level from the highest one whose box does
    /// not hold `q` (path index `top`) down to the leaf, against the measure of the cuts that
    /// separate `q` there; the first hit gets the new branch.
    #[allow(clippy::too_many_arguments)]
    fn place_d<const D: usize>(
        &mut self,
        store: &PointStore,
        id: u32,
        q: &[f32],
        leaf: u16,
        top: usize,
        seps: &[f64],
        rng: &mut Rng,
        sc: &mut Scratch,
    ) -> (u16, bool) {
        let d = q.len();
        let len = sc.path.len();
        for j in top..=len {
            let level = len - j;
            let (out, total) = (seps[2 * level], seps[2 * level + 1]);
            // The cut is uniform over the box ∪ q's spans; the part of measure `out` lying
            // between the box and q separates q (always at the leaf: its box is one point).
            let r = rng.next_f64() * total;
            if r >= out && j < len {
                continue;
            }
            let at = if j == len { leaf } else { sc.path[j] };
            // The box of the subtree the new branch goes above, then widened by q.
            let mut room = BoxRoom::new(d);
            let (blo, bhi) = room.pair();
            self.box_of_d::<D>(store, at, blo, bhi);
            let (cut_dim, cut) = separating_cut::<D>(blo, bhi, q, r);
            let q_left = q[cut_dim] <= cut;
            widen_d::<D>(blo, bhi, q, q);
            let parent = if j == 0 { NIL } else { sc.path[j - 1] };
            for k in 0..j {
                // Levels from `top` down do not hold q: their cached boxes widen.
                self.add_mass_d::<D>(store, sc.path[k], q, k >= top);
            }
            let slot = self.alloc_leaf(id);
            let new_leaf = LEAF | slot;
            let mass = self.mass_of(at) + 1;
            let (left, right) = if q_left {
                (new_leaf, at)
            } else {
                (at, new_leaf)
            };
            let bbox = if mass >= u32::from(BOX_MIN_MASS) {
                self.alloc_box(blo, bhi)
            } else {
                NO_BOX
            };
            let branch = self.alloc_node(
                Node {
                    cut,
                    left,
                    right,
                    dim: cut_dim as u16,
                    mass: mass as u16,
                },
                bbox,
            );
            self.set_child(parent, at, branch);
            return (slot, true);
        }
        unreachable!("a cut at the leaf always separates two different points")
    }

    /// One more point (`q`) below internal node `n`: its mass grows and, when `q` lies outside
    /// its box (`outside`), its cached box widens; a node reaching [`BOX_MIN_MASS`] gets a box.
    /// Runs for every node above a new leaf: the common case (a count and at most a widening)
    /// is inline, the first box of a node is not.
    #[inline(always)]
    fn add_mass_d<const D: usize>(&mut self, store: &PointStore, n: u16, q: &[f32], outside: bool) {
        let nd = &mut self.nodes[n as usize];
        nd.mass += 1;
        let mass = nd.mass;
        let b = self.node_box[n as usize];
        if b != NO_BOX {
            if outside {
                let (blo, bhi) = self.cached_box_mut_d::<D>(b);
                widen_d::<D>(blo, bhi, q, q);
            }
        } else if mass >= BOX_MIN_MASS {
            self.first_box_d::<D>(store, n, q);
        }
    }

    /// Gives node `n` (which just reached [`BOX_MIN_MASS`] with `q`, not yet linked below it)
    /// its cached box.
    #[cold]
    #[inline(never)]
    fn first_box_d<const D: usize>(&mut self, store: &PointStore, n: u16, q: &[f32]) {
        let mut room = BoxRoom::new(q.len());
        let (lo, hi) = room.pair();
        self.box_of_d::<D>(store, n, lo, hi);
        widen_d::<D>(lo, hi, q, q);
        let slot = self.alloc_box(lo, hi);
        self.node_box[n as usize] = slot;
    }

    /// Removes one copy of the point in leaf `slot`. Returns the point id when the leaf itself
    /// went (its last copy), `None` when only its mass dropped. `Err` means the tree is damaged.
    pub fn delete(
        &mut self,
        store: &PointStore,
        slot: u16,
        sc: &mut Scratch,
    ) -> Result<Option<u32>, String> {
        by_point_size!(self.dim, D => self.delete_d::<D>(store, slot, sc))
    }

    fn delete_d<const D: usize>(
        &mut self,
        store: &PointStore,
        slot: u16,
        sc: &mut Scratch,
    ) -> Result<Option<u32>, String> {
        let target = LEAF | slot;
        if slot as usize >= self.leaf.len() {
            return Err(format!("leaf slot {slot} out of range"));
        }
        let id = self.leaf[slot as usize] & ID_MASK;
        let mass = self.slot_mass(slot);
        if mass == 0 {
            return Err(format!("leaf slot {slot} is not in use"));
        }
        let q = store.point(id);
        sc.path.clear();
        let mut node = self.root;
        while node != NIL && !is_leaf(node) {
            sc.path.push(node);
            node = self.step(node, q);
        }
        if node != target {
            return Err(format!("leaf slot {slot} is not where its point leads"));
        }
        if mass > 1 {
            self.set_slot_mass(slot, mass - 1);
            for &a in &sc.path {
                let n = &mut self.nodes[a as usize];
                n.mass -= 1;
                if n.mass < BOX_MIN_MASS {
                    self.drop_box(a);
                }
            }
            return Ok(None);
        }
        self.free_leaf_slot(slot);
        let Some(parent) = sc.path.pop() else {
            self.root = NIL;
            return Ok(Some(id));
        };
        let p = self.nodes[parent as usize];
        let sibling = if p.left == target { p.right } else { p.left };
        let grand = sc.path.last().copied().unwrap_or(NIL);
        self.set_child(grand, parent, sibling);
        self.free_node_slot(parent);
        let d = self.dim;
        let mut shrink = true;
        let (lo, hi) = crate::scratch::box_pair(&mut sc.boxes, d);
        for &a in sc.path.iter().rev() {
            let n = &mut self.nodes[a as usize];
            n.mass -= 1;
            let b = self.node_box[a as usize];
            if b == NO_BOX {
                continue;
            }
            if n.mass < BOX_MIN_MASS {
                self.drop_box(a);
                continue;
            }
            if shrink {
                let (left, right) = (n.left, n.right);
                let (blo, bhi) = self.cached_box(b);
                // A box changes only if the removed point was on its boundary; above the first
                // unchanged box nothing changes either.
                shrink = (0..d).any(|i| q[i] == blo[i] || q[i] == bhi[i]);
                if shrink {
                    self.box_of_d::<D>(store, left, lo, hi);
                    self.extend_box_d::<D>(store, right, lo, hi);
                    let (blo, bhi) = self.cached_box_mut(b);
                    blo.copy_from_slice(lo);
                    bhi.copy_from_slice(hi);
                }
            }
        }
        Ok(Some(id))
    }

    /// Point ids of all leaves with their masses (for tests and checks).
    pub fn leaves(&self) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        let mut stack = Vec::new();
        if self.root != NIL {
            stack.push(self.root);
        }
        while let Some(r) = stack.pop() {
            if is_leaf(r) {
                out.push((self.leaf_point(r), self.mass_of(r)));
            } else {
                let n = &self.nodes[r as usize];
                stack.push(n.right);
                stack.push(n.left);
            }
        }
        out
    }

    /// Verifies every invariant; on success adds one reference per leaf to `refs`.
    /// Checks: references in range, each node reached once, masses add up, cuts finite and
    /// separating the children, cached boxes are exactly the tight boxes, boxes cached iff the
    /// mass is at least `BOX_MIN_MASS`, free lists account for every unused slot. Never panics, whatever the
    /// contents, and allocates only in proportion to the arrays it was given (no per-node box:
    /// a separation needs one dimension of each child's box, read from a cached box or from the
    /// fewer than `BOX_MIN_MASS` leaves of an uncached subtree). The store's shape must have
    /// been checked first ([`PointStore::check_shape`]).
    pub fn check(&self, store: &PointStore, refs: &mut [u32]) -> Result<(), String> {
        let d = self.dim;
        if d == 0 || store.dim() != d {
            return Err("tree and point store disagree on the dimension".into());
        }
        if self.boxes.len() % (2 * d) != 0 {
            return Err("box storage has a partial box".into());
        }
        let n_nodes = self.nodes.len();
        let n_leaves = self.leaf.len();
        if self.node_box.len() != n_nodes || n_leaves > LEAF as usize || n_nodes >= LEAF as usize {
            return Err("tree arrays have inconsistent sizes".into());
        }
        if let Some(i) = self.nodes.iter().position(|n| !n.cut.is_finite()) {
            return Err(format!("node {i} has a non-finite cut"));
        }
        let mut node_seen = vec![false; n_nodes];
        let mut leaf_seen = vec![false; n_leaves];
        let valid = |r: u16| {
            if is_leaf(r) {
                ((r & !LEAF) as usize) < n_leaves
            } else {
                (r as usize) < n_nodes
            }
        };
        // Pre-order walk with an explicit stack; then bottom-up in reverse order.
        let mut order = Vec::new();
        if self.root != NIL {
            if !valid(self.root) {
                return Err("root out of range".into());
            }
            let mut stack = vec![self.root];
            while let Some(r) = stack.pop() {
                if is_leaf(r) {
                    let s = (r & !LEAF) as usize;
                    if std::mem::replace(&mut leaf_seen[s], true) {
                        return Err(format!("leaf {s} reached twice"));
                    }
                } else {
                    let i = r as usize;
                    if std::mem::replace(&mut node_seen[i], true) {
                        return Err(format!("node {i} reached twice"));
                    }
                    let n = &self.nodes[i];
                    if !valid(n.left) || !valid(n.right) || n.left == NIL || n.right == NIL {
                        return Err(format!("node {i} has a child out of range"));
                    }
                    if n.dim as usize >= d {
                        return Err(format!("node {i} cuts dimension {} of {d}", n.dim));
                    }
                    stack.push(n.left);
                    stack.push(n.right);
                }
                order.push(r);
            }
        }
        // Masses bottom-up, leaves' points alive.
        let at = |r: u16| {
            if is_leaf(r) {
                n_nodes + (r & !LEAF) as usize
            } else {
                r as usize
            }
        };
        let mut mass = vec![0u32; n_nodes + n_leaves];
        for &r in order.iter().rev() {
            let k = at(r);
            if is_leaf(r) {
                let s = (r & !LEAF) as usize;
                let pid = self.leaf[s] & ID_MASK;
                if !store.is_live(pid) {
                    return Err(format!("leaf {s} holds a dead point {pid}"));
                }
                mass[k] = self.slot_mass(s as u16);
                if mass[k] == 0 {
                    return Err(format!("leaf {s} has mass 0"));
                }
                refs[pid as usize] += 1;
                continue;
            }
            let n = &self.nodes[r as usize];
            let sum = mass[at(n.left)].checked_add(mass[at(n.right)]);
            if sum != Some(u32::from(n.mass)) {
                return Err(format!(
                    "node {r}: mass {} but children hold more or less",
                    n.mass
                ));
            }
            mass[k] = u32::from(n.mass);
            let should_cache = n.mass >= BOX_MIN_MASS;
            if should_cache != (self.node_box[r as usize] != NO_BOX) {
                return Err(format!("node {r}: box cache does not match its mass"));
            }
        }
        // Cuts and cached boxes bottom-up: a child's box is verified before its parent's.
        let n_boxes = self.boxes.len() / (2 * d);
        let mut box_used = vec![false; n_boxes];
        let mut child = [vec![0f32; 2 * d], vec![0f32; 2 * d]];
        let mut stack = Vec::with_capacity(2 * BOX_MIN_MASS as usize);
        for &r in order.iter().rev() {
            if is_leaf(r) {
                continue;
            }
            let n = &self.nodes[r as usize];
            let c = n.dim as usize;
            let left_hi = self.check_extent(store, n.left, c, true, &mut stack);
            let right_lo = self.check_extent(store, n.right, c, false, &mut stack);
            if !(left_hi <= n.cut && right_lo > n.cut) {
                return Err(format!("node {r}: cut does not separate its children"));
            }
            let bbox = self.node_box[r as usize];
            if bbox == NO_BOX {
                continue;
            }
            if bbox as usize >= n_boxes || std::mem::replace(&mut box_used[bbox as usize], true) {
                return Err(format!("node {r}: box slot invalid or shared"));
            }
            for (side, b) in [n.left, n.right].into_iter().zip(child.iter_mut()) {
                let (lo, hi) = b.split_at_mut(d);
                self.check_box(store, side, lo, hi, &mut stack);
            }
            let (blo, bhi) = self.cached_box(bbox);
            let (llo, lhi) = child[0].split_at(d);
            let (rlo, rhi) = child[1].split_at(d);
            for i in 0..d {
                if blo[i] != llo[i].min(rlo[i]) || bhi[i] != lhi[i].max(rhi[i]) {
                    return Err(format!("node {r}: cached box is not the tight box"));
                }
            }
        }
        for (&slot, &m) in &self.big_mass {
            let packed = self.leaf.get(slot as usize).map_or(0, |l| l >> MASS_SHIFT);
            if packed != BIG_MASS || m < BIG_MASS {
                return Err(format!("leaf {slot}: stale large-mass entry"));
            }
        }
        // Free lists must cover exactly the unused slots.
        let mut f = self.free_node;
        while f != NIL {
            let i = f as usize;
            if i >= n_nodes || std::mem::replace(&mut node_seen[i], true) {
                return Err("node free list is inconsistent".into());
            }
            f = self.nodes[i].left;
        }
        let mut f = self.free_leaf;
        while f != NIL {
            let i = f as usize;
            if i >= n_leaves || std::mem::replace(&mut leaf_seen[i], true) {
                return Err("leaf free list is inconsistent".into());
            }
            if self.leaf[i] >> MASS_SHIFT != 0 {
                return Err("a free leaf has a mass".into());
            }
            let next = self.leaf[i] & ID_MASK;
            if next != ID_MASK && next > 0x7FFF {
                return Err("leaf free list is inconsistent".into());
            }
            f = if next == ID_MASK { NIL } else { next as u16 };
        }
        if node_seen.iter().any(|s| !s) || leaf_seen.iter().any(|s| !s) {
            return Err("tree has unreachable slots".into());
        }
        for &b in &self.free_box {
            if b as usize >= n_boxes || std::mem::replace(&mut box_used[b as usize], true) {
                return Err("box free list is inconsistent".into());
            }
        }
        if box_used.iter().any(|u| !u) {
            return Err("box storage has unaccounted slots".into());
        }
        Ok(())
    }

    /// For [`Tree::check`]: the largest (`high`) or smallest value in dimension `c` below `r`,
    /// whose subtree passed the mass and box-cache checks: a cached box (already verified) or
    /// fewer than `BOX_MIN_MASS` leaves.
    fn check_extent(
        &self,
        store: &PointStore,
        r: u16,
        c: usize,
        high: bool,
        stack: &mut Vec<u16>,
    ) -> f32 {
        if !is_leaf(r) {
            if let Some((lo, hi)) = self.box_if_cached(r) {
                return if high { hi[c] } else { lo[c] };
            }
        }
        let mut out = if high {
            f32::NEG_INFINITY
        } else {
            f32::INFINITY
        };
        self.each_small_leaf(r, stack, |pid| {
            let v = store.point(pid)[c];
            out = if high { out.max(v) } else { out.min(v) };
        });
        out
    }

    /// For [`Tree::check`]: the tight box below `r` into `lo`, `hi` (as [`Tree::check_extent`]).
    fn check_box(
        &self,
        store: &PointStore,
        r: u16,
        lo: &mut [f32],
        hi: &mut [f32],
        stack: &mut Vec<u16>,
    ) {
        if !is_leaf(r) {
            if let Some((blo, bhi)) = self.box_if_cached(r) {
                lo.copy_from_slice(blo);
                hi.copy_from_slice(bhi);
                return;
            }
        }
        lo.fill(f32::INFINITY);
        hi.fill(f32::NEG_INFINITY);
        self.each_small_leaf(r, stack, |pid| {
            for ((l, h), &v) in lo.iter_mut().zip(hi.iter_mut()).zip(store.point(pid)) {
                *l = l.min(v);
                *h = h.max(v);
            }
        });
    }

    /// The point of every leaf below `r`, a subtree of verified mass below `BOX_MIN_MASS`.
    fn each_small_leaf(&self, r: u16, stack: &mut Vec<u16>, mut f: impl FnMut(u32)) {
        stack.clear();
        stack.push(r);
        while let Some(x) = stack.pop() {
            if is_leaf(x) {
                f(self.leaf_point(x));
            } else {
                let n = &self.nodes[x as usize];
                stack.push(n.left);
                stack.push(n.right);
            }
        }
    }
}

/// Makes room for one more element by a quarter of the length (at least 8) instead of doubling:
/// a full tree holds one leaf more for a moment, and doubling then would waste nearly half.
fn grow_by_quarter<T>(v: &mut Vec<T>) {
    if v.len() == v.capacity() {
        v.reserve_exact((v.len() / 4).max(8));
    }
}

/// Minimum for values known not to be NaN (one instruction, unlike `f32::min`).
#[inline(always)]
pub(crate) fn fmin(a: f32, b: f32) -> f32 {
    if b < a {
        b
    } else {
        a
    }
}

/// Maximum for values known not to be NaN.
#[inline(always)]
pub(crate) fn fmax(a: f32, b: f32) -> f32 {
    if b > a {
        b
    } else {
        a
    }
}

/// The number of dimensions a kernel works on: the compile-time `D` (so loops unroll and bounds
/// checks vanish), or the run-time `n` when `D == 0`.
#[inline(always)]
pub(crate) const fn dims<const D: usize>(n: usize) -> usize {
    if D == 0 {
        n
    } else {
        D
    }
}

/// Widens `lo/hi` by the box `blo/bhi` (a point when both are the same slice), for `D`
/// dimensions (0: any).
#[inline(always)]
pub(crate) fn widen_d<const D: usize>(lo: &mut [f32], hi: &mut [f32], blo: &[f32], bhi: &[f32]) {
    let n = dims::<D>(lo.len());
    let (lo, hi, blo, bhi) = (&mut lo[..n], &mut hi[..n], &blo[..n], &bhi[..n]);
    for i in 0..n {
        lo[i] = fmin(lo[i], blo[i]);
        hi[i] = fmax(hi[i], bhi[i]);
    }
}

/// The cut at offset `r` in `[0, out)` along the stretches between the box `lo/hi` and `q`
/// (dimension by dimension), which all separate `q` from the box. The value stays inside its
/// stretch `[a, b)`, so f32 rounding can never put it on the wrong side.
fn separating_cut<const D: usize>(lo: &[f32], hi: &[f32], q: &[f32], mut r: f64) -> (usize, f32) {
    let n = dims::<D>(q.len());
    let (lo, hi, q) = (&lo[..n], &hi[..n], &q[..n]);
    let mut last = None;
    for i in 0..n {
        let (a, b) = if q[i] < lo[i] {
            (q[i], lo[i])
        } else if q[i] > hi[i] {
            (hi[i], q[i])
        } else {
            continue;
        };
        let gap = f64::from(b) - f64::from(a);
        last = Some((i, a, b));
        if r < gap {
            return (i, cut_in(a, b, r));
        }
        r -= gap;
    }
    // Rounding ran past the last stretch: cut at its top.
    let (i, a, b) = last.expect("q lies outside the box");
    (i, cut_in(a, b, f64::from(b) - f64::from(a)))
}

#[inline]
fn cut_in(a: f32, b: f32, r: f64) -> f32 {
    let c = (f64::from(a) + r) as f32;
    if c >= b {
        b.next_down().max(a)
    } else {
        c.max(a)
    }
}

impl Tree {
    /// Leaf slots reachable from the root with their masses.
    pub fn leaf_slots_with_mass(&self) -> Vec<(u16, u32)> {
        let mut out = Vec::new();
        let mut stack = Vec::new();
        if self.root != NIL {
            stack.push(self.root);
        }
        while let Some(r) = stack.pop() {
            if is_leaf(r) {
                out.push((r & !LEAF, self.mass_of(r)));
            } else {
                let n = &self.nodes[r as usize];
                stack.push(n.right);
                stack.push(n.left);
            }
        }
        out
    }

    /// Replaces every leaf's point id through `map` (used to renumber the store canonically).
    pub(crate) fn remap_points(&mut self, map: &[u32]) {
        for (slot, mass) in self.leaf_slots_with_mass() {
            let _ = mass;
            let p = &mut self.leaf[slot as usize];
            *p = (*p & !ID_MASK) | map[(*p & ID_MASK) as usize];
        }
    }
}

impl Tree {
    /// Mass-weighted mean depth of the leaves and the maximum leaf depth.
    pub fn depth_stats(&self) -> (f64, usize) {
        let mut stack = Vec::new();
        if self.root != NIL {
            stack.push((self.root, 0usize));
        }
        let (mut sum, mut count, mut max) = (0.0, 0.0, 0);
        while let Some((r, d)) = stack.pop() {
            if is_leaf(r) {
                let m = f64::from(self.mass_of(r));
                sum += m * d as f64;
                count += m;
                max = max.max(d);
            } else {
                let n = &self.nodes[r as usize];
                stack.push((n.left, d + 1));
                stack.push((n.right, d + 1));
            }
        }
        (if count > 0.0 { sum / count } else { 0.0 }, max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inserting q = (3, 2) into the tree of {(0, 0), (1, 0)}: Guha et al. cut the root's box
    /// widened by q, [0, 3] × [0, 2] (spans 3 + 2), uniformly. The cut separates q at the root
    /// with probability (2 + 2)/5, then in dimension 0 or 1 with equal odds, uniformly in
    /// [1, 3) or [0, 2); otherwise q goes on down.
    #[test]
    fn insertion_cuts_with_the_papers_distribution() {
        let mut store = PointStore::new(2);
        let a = store.add(&[0.0, 0.0]);
        let b = store.add(&[1.0, 0.0]);
        let q = store.add(&[3.0, 2.0]);
        let mut sc = Scratch::default();
        let n = 20_000;
        let (mut at_root, mut dim0, mut sum0, mut sum1) = (0u32, 0u32, 0.0f64, 0.0f64);
        for seed in 0..n {
            let mut rng = Rng::from_seed(seed);
            let mut t = Tree::new(2, 4);
            t.insert(&store, a, &mut rng, &mut sc);
            t.insert(&store, b, &mut rng, &mut sc);
            let (slot, added) = t.insert(&store, q, &mut rng, &mut sc);
            assert!(added);
            t.check(&store, &mut [0, 0, 0]).unwrap();
            let root = *t.node(t.root());
            if root.left == LEAF | slot || root.right == LEAF | slot {
                at_root += 1;
                if root.dim == 0 {
                    dim0 += 1;
                    sum0 += f64::from(root.cut);
                } else {
                    sum1 += f64::from(root.cut);
                }
            }
        }
        let p_root = f64::from(at_root) / f64::from(n as u32);
        assert!(
            (p_root - 0.8).abs() < 0.015,
            "separated at the root in {p_root}"
        );
        let p_dim0 = f64::from(dim0) / f64::from(at_root);
        assert!((p_dim0 - 0.5).abs() < 0.02, "dimension 0 in {p_dim0}");
        let mean0 = sum0 / f64::from(dim0);
        let mean1 = sum1 / f64::from(at_root - dim0);
        assert!(
            (mean0 - 2.0).abs() < 0.03,
            "mean cut in dimension 0: {mean0}"
        );
        assert!(
            (mean1 - 1.0).abs() < 0.03,
            "mean cut in dimension 1: {mean1}"
        );
    }
}
