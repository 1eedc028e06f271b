//! Deletion of one copy of a leaf's point: the leaf's path is found by following the cuts
//! with its own point; masses drop and the cached boxes that held the point on their boundary
//! shrink.
use super::{is_leaf, Tree, BOX_MIN_MASS, ID_MASK, LEAF, NIL, NO_BOX};
use crate::point_store::PointStore;
use crate::scratch::{box_pair, Scratch};

impl Tree {
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
        let (lo, hi) = box_pair(&mut sc.boxes, d);
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
}
