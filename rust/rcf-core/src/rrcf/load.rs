//! Rebuilding a tree from node records (rrcf's `to_dict` nodes, as `load_dict` reads them).
//!
//! Records come in any order in which a parent precedes its children (pre-order from a nested
//! dict walk). Masses and boxes are taken as given, like rrcf's `load_dict` does, after checking that they
//! are consistent ([`RrcfTree::validate`]).
use super::error::{RrcfError, RrcfResult};
use super::tree::{RrcfTree, NIL};
use super::Behaviour;

/// What a record describes.
#[derive(Clone, Debug, PartialEq)]
pub enum RecordKind {
    /// A branch: cut dimension `q`, cut value `p`, mass `n`, box `lo`/`hi`.
    Branch {
        /// Cut dimension.
        q: usize,
        /// Cut value.
        p: f64,
        /// Mass.
        n: u64,
        /// Lower corner.
        lo: Vec<f64>,
        /// Upper corner.
        hi: Vec<f64>,
    },
    /// A leaf with point `x` and mass `n`.
    Leaf {
        /// The point.
        x: Vec<f64>,
        /// Mass (number of merged duplicates).
        n: u64,
    },
}

/// One node: its parent (index into the record list, `None` for the root), side and content.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeRecord {
    /// Index of the parent record.
    pub parent: Option<usize>,
    /// Whether this node is its parent's left child.
    pub is_left: bool,
    /// Content.
    pub kind: RecordKind,
    /// The node's values were all integers (`np.asarray` makes an integer array; compat mode
    /// keeps rrcf 0.4.4's integer dtype).
    pub int_values: bool,
}

impl RrcfTree {
    /// Builds a tree from records; returns it and the slot of each record.
    pub fn from_records(
        behaviour: Behaviour,
        records: &[NodeRecord],
    ) -> RrcfResult<(RrcfTree, Vec<u32>)> {
        let mut tree = RrcfTree::new(behaviour);
        if records.is_empty() {
            return Ok((tree, Vec::new()));
        }
        let bad = |m: String| Err(RrcfError::InvalidTree(m));
        let ndim = match records.iter().find_map(|r| match &r.kind {
            RecordKind::Leaf { x, .. } => Some(x.len()),
            RecordKind::Branch { .. } => None,
        }) {
            Some(d) if d > 0 => d,
            _ => return bad("no leaf with a non-empty point 'x'".into()),
        };
        tree.reset(ndim);
        let mut slots = Vec::with_capacity(records.len());
        let mut filled = vec![[false; 2]; records.len()];
        for (k, rec) in records.iter().enumerate() {
            let slot = match &rec.kind {
                RecordKind::Branch { q, p, n, lo, hi } => {
                    if *q >= ndim || lo.len() != ndim || hi.len() != ndim {
                        return bad(format!(
                            "branch {k}: q={q} and box sides {}/{} must fit dimension {ndim}",
                            lo.len(),
                            hi.len()
                        ));
                    }
                    let s = tree.new_branch(*q as u32, *p);
                    tree.set_mass(s, *n);
                    tree.set_box(s, lo, hi);
                    s
                }
                RecordKind::Leaf { x, n } => {
                    if x.len() != ndim {
                        return bad(format!(
                            "leaf {k}: point has {} coordinates, expected {ndim}",
                            x.len()
                        ));
                    }
                    if *n == 0 {
                        return bad(format!("leaf {k}: mass n must be at least 1"));
                    }
                    tree.new_leaf(x, *n)
                }
            };
            tree.set_int(slot, rec.int_values);
            match rec.parent {
                None if k == 0 => tree.link(NIL, slot, true),
                None => return bad(format!("node {k} has no parent but is not the first node")),
                Some(p) if p < k && matches!(records[p].kind, RecordKind::Branch { .. }) => {
                    let side = usize::from(!rec.is_left);
                    if filled[p][side] {
                        return bad(format!("branch {p} has two children on one side"));
                    }
                    filled[p][side] = true;
                    tree.link(slots[p], slot, rec.is_left);
                }
                Some(p) => {
                    return bad(format!(
                        "node {k} names parent {p}, which is not an earlier branch"
                    ))
                }
            }
            slots.push(slot);
        }
        for (k, rec) in records.iter().enumerate() {
            if matches!(rec.kind, RecordKind::Branch { .. }) && filled[k] != [true, true] {
                return bad(format!("branch {k} needs both a left and a right child"));
            }
        }
        // Masses must add up (a branch's 'n' is the sum of its children's), cuts and boxes be
        // finite: later operations rely on it.
        tree.validate()?;
        Ok((tree, slots))
    }
}
