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
//!
//! The tree's code by concern: this file holds the arena (nodes, leaves, masses) and its
//! accessors; [`boxes`] the bounding boxes; [`arena`] slot allocation and the walk over leaves;
//! [`climb`] the descent and the score's climb (an insertion draws its cut from the climb);
//! [`insert`] and [`delete`] the two changes; [`check`] the structural check of a loaded tree.
use serde::{Deserialize, Serialize};

mod arena;
mod boxes;
mod check;
mod climb;
mod delete;
mod insert;

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

    /// Gives back the room the arrays grew beyond `max_leaves` leaves (and as many nodes): a
    /// tree never holds more, and growing by a quarter overshoots the last step by up to 13%
    /// (a full standard forest: 1.02 MB of heap instead of 0.96 MB).
    pub fn fit(&mut self, max_leaves: usize) {
        // A fresh exact allocation, the old one freed whole (shrinking in place left the tails
        // as small free chunks: 18 KB more resident memory per standard forest).
        fn refit<T: Clone>(v: &mut Vec<T>, cap: usize) {
            if v.capacity() > cap.max(v.len()) {
                let mut exact = Vec::with_capacity(cap.max(v.len()));
                exact.extend_from_slice(v);
                *v = exact;
            }
        }
        refit(&mut self.nodes, max_leaves);
        refit(&mut self.node_box, max_leaves);
        refit(&mut self.leaf, max_leaves);
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
    /// The tree's arrays a walk or a change reads, as (start, bytes): for cache hints only.
    pub(crate) fn regions(&self) -> [(*const u8, usize); 4] {
        [
            (
                self.nodes.as_ptr().cast(),
                std::mem::size_of_val(&self.nodes[..]),
            ),
            (
                self.node_box.as_ptr().cast(),
                std::mem::size_of_val(&self.node_box[..]),
            ),
            (
                self.leaf.as_ptr().cast(),
                std::mem::size_of_val(&self.leaf[..]),
            ),
            (
                self.boxes.as_ptr().cast(),
                std::mem::size_of_val(&self.boxes[..]),
            ),
        ]
    }

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
}
