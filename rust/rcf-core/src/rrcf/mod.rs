//! rrcf-compatible robust random cut trees (Guha et al. 2016), as the `rrcf` Python package has them.
//!
//! This module backs `rcf_fast.rrcf`, a drop-in replacement for `rrcf`. It keeps rrcf's data model
//! (one tree per object, user-chosen point indices, duplicate points merged into one leaf with a
//! mass, `CoDisp` scores) and its exact arithmetic, so that with [`Behaviour::Compat044`] and the same
//! MT19937 seed a tree is bit-for-bit the tree `rrcf==0.4.4` builds.
//!
//! * [`mt19937`]: numpy's legacy `RandomState` generator and `random_sample`.
//! * [`numeric`]: numpy's summation, rounding and closeness rules.
//! * [`tree`]: the arena tree with insert, forget, `CoDisp`, query.
//! * [`batch`]: rrcf's batch builder (`RCTree(X)`).
//! * [`load`]: rebuilding a tree from rrcf's `to_dict` node records.
pub mod batch;
pub mod error;
pub mod load;
pub mod mt19937;
pub mod numeric;
pub mod tree;

pub use batch::{build, BatchLeaf};
pub use error::{RrcfError, RrcfResult};
pub use load::{NodeRecord, RecordKind};
pub use mt19937::{Mt19937, UniformSource};
pub use tree::{insert_point_cut, Inserted, RrcfTree, NIL};

use serde::{Deserialize, Serialize};

/// Which rrcf a tree reproduces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Behaviour {
    /// rrcf's master branch: an insertion that reaches a leaf draws its cut over the box of the
    /// leaf's point and the new point, like at any branch.
    Master,
    /// rrcf 0.4.4 bit for bit: at a leaf, the cut is always on dimension 0 at the larger of the two
    /// coordinates (0.4.4 overwrote its one-row box), still consuming one draw.
    Compat044,
}
