//! The structural check of a tree (run on every loaded state): never panics, whatever the
//! contents.
use super::{is_leaf, Tree, BIG_MASS, BOX_MIN_MASS, ID_MASK, LEAF, MASS_SHIFT, NIL, NO_BOX};
use crate::point_store::PointStore;

impl Tree {
    /// children, cached boxes are exactly the tight boxes, boxes cached iff mass >= BOX_MIN_MASS,
    /// free lists account for every unused slot. Never panics, whatever the contents.
    pub fn check(&self, store: &PointStore, refs: &mut [u32]) -> Result<(), String> {
        let d = self.dim;
        if self.boxes.len() % (2 * d.max(1)) != 0 {
            return Err("box storage has a partial box".into());
        }
        let n_nodes = self.nodes.len();
        let n_leaves = self.leaf.len();
        if self.node_box.len() != n_nodes || n_leaves > LEAF as usize || n_nodes >= LEAF as usize {
            return Err("tree arrays have inconsistent sizes".into());
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
        // Pre-order walk with an explicit stack; then boxes bottom-up in reverse order.
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
        let mut box_lo = vec![0f32; (n_nodes + n_leaves) * d];
        let mut box_hi = vec![0f32; (n_nodes + n_leaves) * d];
        let mut mass = vec![0u32; n_nodes + n_leaves];
        let at = |r: u16| {
            if is_leaf(r) {
                n_nodes + (r & !LEAF) as usize
            } else {
                r as usize
            }
        };
        let n_boxes = self.boxes.len() / (2 * d.max(1));
        let mut box_used = vec![false; n_boxes];
        for &r in order.iter().rev() {
            let k = at(r);
            if is_leaf(r) {
                let s = (r & !LEAF) as usize;
                let pid = self.leaf[s] & ID_MASK;
                if !store.is_live(pid) {
                    return Err(format!("leaf {s} holds a dead point {pid}"));
                }
                if self.slot_mass(s as u16) == 0 {
                    return Err(format!("leaf {s} has mass 0"));
                }
                refs[pid as usize] += 1;
                let p = store.point(pid);
                box_lo[k * d..(k + 1) * d].copy_from_slice(p);
                box_hi[k * d..(k + 1) * d].copy_from_slice(p);
                mass[k] = self.slot_mass(s as u16);
                continue;
            }
            let n = &self.nodes[r as usize];
            let (l, rr) = (at(n.left), at(n.right));
            let c = n.dim as usize;
            if box_hi[l * d + c] > n.cut || box_lo[rr * d + c] <= n.cut {
                return Err(format!("node {r}: cut does not separate its children"));
            }
            mass[k] = mass[l] + mass[rr];
            if mass[k] != u32::from(n.mass) {
                return Err(format!(
                    "node {r}: mass {} but children hold {}",
                    n.mass, mass[k]
                ));
            }
            for i in 0..d {
                box_lo[k * d + i] = box_lo[l * d + i].min(box_lo[rr * d + i]);
                box_hi[k * d + i] = box_hi[l * d + i].max(box_hi[rr * d + i]);
            }
            let should_cache = n.mass >= BOX_MIN_MASS;
            let bbox = self.node_box[r as usize];
            if should_cache != (bbox != NO_BOX) {
                return Err(format!("node {r}: box cache does not match its mass"));
            }
            if bbox != NO_BOX {
                if bbox as usize >= n_boxes || std::mem::replace(&mut box_used[bbox as usize], true)
                {
                    return Err(format!("node {r}: box slot invalid or shared"));
                }
                let (blo, bhi) = self.cached_box(bbox);
                if blo != &box_lo[k * d..(k + 1) * d] || bhi != &box_hi[k * d..(k + 1) * d] {
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
            f = if next == ID_MASK {
                NIL
            } else {
                u16::try_from(next).unwrap_or(0x7FFF_u16)
            };
            if next != ID_MASK && next > 0x7FFF {
                return Err("leaf free list is inconsistent".into());
            }
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
}
