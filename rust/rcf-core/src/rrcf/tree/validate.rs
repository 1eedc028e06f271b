//! Serialization of an rrcf tree and the check that a decoded (or loaded) tree is one.
//!
//! Everything the tree code later trusts is checked here, without recursion and in time and
//! memory linear in the input: array lengths, the root, parent/child links (every live node is
//! reached exactly once from the root, so there is no cycle and no orphan), the free list
//! (exactly the dead slots, each once), finite cuts and boxes, cut dimensions, leaf boxes equal to
//! their points, masses (leaves at least 1, branches the sum of their children) and generations.
use bincode::Options;

use super::{Node, RrcfTree, NIL};
use crate::rrcf::error::{RrcfError, RrcfResult};
use crate::rrcf::Behaviour;

/// Generations stay far below `u64::MAX`, so counting up never wraps to a used one.
const MAX_GENERATION: u64 = 1 << 62;

fn bad<T>(msg: impl Into<String>) -> RrcfResult<T> {
    Err(RrcfError::InvalidTree(msg.into()))
}

impl RrcfTree {
    /// The tree as bytes (bincode), for pickling.
    pub fn to_bytes(&self) -> Vec<u8> {
        bincode::serialize(self).expect("an rrcf tree always serializes")
    }

    /// A tree from [`RrcfTree::to_bytes`] output, or `None` if the bytes are not one.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        Self::try_from_bytes(bytes).ok()
    }

    /// A tree from [`RrcfTree::to_bytes`] output, or what is wrong with the bytes.
    pub fn try_from_bytes(bytes: &[u8]) -> RrcfResult<Self> {
        // The same encoding as `bincode::serialize`, with the input length as the limit so that
        // no declared length can make the decoder reserve more than the bytes could hold.
        let opts = bincode::DefaultOptions::new()
            .with_fixint_encoding()
            .allow_trailing_bytes()
            .with_limit(bytes.len() as u64);
        let t: RrcfTree = opts
            .deserialize(bytes)
            .map_err(|e| RrcfError::InvalidTree(format!("undecodable tree bytes ({e})")))?;
        t.validate()?;
        Ok(t)
    }

    /// Checks every structural invariant (see the module documentation).
    pub fn validate(&self) -> RrcfResult<()> {
        let n = self.alive.len();
        let d = self.ndim;
        if self.nodes.len() != n
            || self.generation.len() != n
            || self.int_box.len() != n
            || n.checked_mul(2)
                .and_then(|x| x.checked_mul(d))
                .is_none_or(|len| len != self.bounds.len())
        {
            return bad("array lengths disagree");
        }
        if n >= NIL as usize {
            return bad("too many nodes");
        }
        if self.next_generation > MAX_GENERATION {
            return bad("generation counter out of range");
        }
        if self.behaviour == Behaviour::Master && self.int_box.iter().any(|&b| b) {
            return bad("integer boxes in a master-mode tree");
        }
        let alive_count = self.alive.iter().filter(|&&a| a).count();
        // Free list: exactly the dead slots, each once.
        let mut in_free = vec![false; n];
        for &f in &self.free {
            let f = f as usize;
            if f >= n || self.alive[f] || in_free[f] {
                return bad("free list names a live, unknown or repeated slot");
            }
            in_free[f] = true;
        }
        if self.free.len() != n - alive_count {
            return bad("free list misses dead slots");
        }
        if self.root == NIL {
            return if alive_count == 0 {
                Ok(())
            } else {
                bad("live nodes in an empty tree")
            };
        }
        if d == 0 {
            return bad("a non-empty tree of dimension 0");
        }
        let root = self.root as usize;
        if root >= n || !self.alive[root] || self.nodes[root].parent != NIL {
            return bad("root is not a live node without parent");
        }
        let mut seen = vec![false; n];
        let mut stack = vec![self.root];
        let mut reached = 0usize;
        while let Some(s) = stack.pop() {
            let i = s as usize;
            if seen[i] {
                return bad("a node is reached twice (cycle or shared child)");
            }
            seen[i] = true;
            reached += 1;
            if self.generation[i] >= self.next_generation {
                return bad("node generation out of range");
            }
            let node: &Node = &self.nodes[i];
            let b = &self.bounds[i * 2 * d..(i + 1) * 2 * d];
            if b.iter().any(|v| !v.is_finite()) {
                return bad("box or point with NaN or infinity");
            }
            if node.left == NIL {
                if node.right != NIL {
                    return bad("leaf with a right child");
                }
                if node.mass == 0 {
                    return bad("leaf with mass 0");
                }
                if b[..d] != b[d..] {
                    return bad("leaf box differs from its point");
                }
                continue;
            }
            if node.cut_dim as usize >= d || !node.cut_val.is_finite() {
                return bad("branch cut dimension out of range or cut value not finite");
            }
            let mut children_mass = 0u64;
            for c in [node.left, node.right] {
                let ci = c as usize;
                if ci >= n || !self.alive[ci] || self.nodes[ci].parent != s {
                    return bad("branch child is dead, unknown or names another parent");
                }
                children_mass = match children_mass.checked_add(self.nodes[ci].mass) {
                    Some(m) => m,
                    None => return bad("masses overflow"),
                };
                stack.push(c);
            }
            if node.mass != children_mass {
                return bad("branch mass differs from the sum of its children's");
            }
        }
        if reached != alive_count {
            return bad("live nodes not reachable from the root");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::rrcf::{Behaviour, Mt19937, RrcfTree};

    fn sample() -> RrcfTree {
        let mut rng = Mt19937::new(1);
        let mut t = RrcfTree::new(Behaviour::Master);
        for i in 0..20 {
            let p = [f64::from(i).sin(), f64::from(i * 7 % 5)];
            t.insert(&p, None, &mut rng).unwrap();
        }
        t.forget(t.root().map(|r| t.leaves_under(r)[3]).unwrap());
        t
    }

    #[test]
    fn round_trip_is_valid() {
        let t = sample();
        t.validate().unwrap();
        let back = RrcfTree::try_from_bytes(&t.to_bytes()).unwrap();
        assert_eq!(back.to_bytes(), t.to_bytes());
    }

    #[test]
    fn every_mutated_byte_is_rejected_or_gives_a_valid_tree() {
        let t = sample();
        let bytes = t.to_bytes();
        let mut rng = Mt19937::new(5);
        for trial in 0..20_000 {
            let mut b = bytes.clone();
            for _ in 0..=(trial % 3) {
                let pos = (rng.next_u32() as usize) % b.len();
                b[pos] ^= 1 << (rng.next_u32() % 8);
            }
            if let Ok(t2) = RrcfTree::try_from_bytes(&b) {
                // A tree that passes is walkable without panics.
                if let Some(r) = t2.root() {
                    for s in t2.leaves_under(r) {
                        let _ = t2.codisp(s);
                    }
                }
            }
        }
    }

    #[test]
    fn a_huge_declared_length_is_refused_without_allocating() {
        let mut b = sample().to_bytes();
        // The first Vec length after behaviour (u32 tag), ndim (u64), root (u32).
        b[16..24].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
        assert!(RrcfTree::try_from_bytes(&b).is_err());
    }
}
