//! The structural check of a tree (run on every loaded state): never panics, whatever the
//! contents.
use super::{is_leaf, Tree, BIG_MASS, BOX_MIN_MASS, ID_MASK, LEAF, MASS_SHIFT, NIL, NO_BOX};
use crate::point_store::PointStore;

impl Tree {
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
