//! Slot allocation in the arena (leaves, nodes, boxes and their free lists) and the walk over
//! the leaves.
use super::{is_leaf, Node, Tree, ID_MASK, LEAF, MASS_SHIFT, NIL, NO_BOX};

impl Tree {
    pub(super) fn alloc_box(&mut self, lo: &[f32], hi: &[f32]) -> u16 {
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

    pub(super) fn alloc_leaf(&mut self, point: u32) -> u16 {
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

    pub(super) fn free_leaf_slot(&mut self, slot: u16) {
        self.set_slot_mass(slot, 0);
        self.leaf[slot as usize] = if self.free_leaf == NIL {
            ID_MASK
        } else {
            u32::from(self.free_leaf)
        };
        self.free_leaf = slot;
    }

    pub(super) fn alloc_node(&mut self, node: Node, bbox: u16) -> u16 {
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

    pub(super) fn drop_box(&mut self, id: u16) {
        let b = std::mem::replace(&mut self.node_box[id as usize], NO_BOX);
        if b != NO_BOX {
            self.free_box.push(b);
        }
    }

    pub(super) fn free_node_slot(&mut self, id: u16) {
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

    pub(super) fn set_child(&mut self, parent: u16, old: u16, new: u16) {
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

    /// Calls `f` with the reference of every leaf reachable from the root, left before right:
    /// the one walk over leaves.
    pub(crate) fn for_each_leaf(&self, mut f: impl FnMut(u16)) {
        let mut stack = Vec::new();
        if self.root != NIL {
            stack.push(self.root);
        }
        while let Some(r) = stack.pop() {
            if is_leaf(r) {
                f(r);
            } else {
                let n = &self.nodes[r as usize];
                stack.push(n.right);
                stack.push(n.left);
            }
        }
    }

    /// Point ids of all leaves with their masses (for tests and checks).
    pub fn leaves(&self) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        self.for_each_leaf(|r| out.push((self.leaf_point(r), self.mass_of(r))));
        out
    }

    /// Leaf slots reachable from the root with their masses.
    pub fn leaf_slots_with_mass(&self) -> Vec<(u16, u32)> {
        let mut out = Vec::new();
        self.for_each_leaf(|r| out.push((r & !LEAF, self.mass_of(r))));
        out
    }

    /// Replaces every leaf's point id through `map` (used to renumber the store canonically).
    pub(crate) fn remap_points(&mut self, map: &[u32]) {
        let mut slots = Vec::new();
        self.for_each_leaf(|r| slots.push(r & !LEAF));
        for slot in slots {
            let p = &mut self.leaf[slot as usize];
            *p = (*p & !ID_MASK) | map[(*p & ID_MASK) as usize];
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
