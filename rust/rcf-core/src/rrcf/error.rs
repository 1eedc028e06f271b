//! Errors of the rrcf trees; each names what was wrong and what was expected.
use thiserror::Error;

/// What can go wrong in an rrcf tree operation.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum RrcfError {
    /// A point or data row holds NaN or an infinity.
    #[error(
        "{what} contains NaN or infinity at position {position}; rrcf trees need finite values"
    )]
    NotFinite {
        /// Which input was checked.
        what: &'static str,
        /// Flat position of the first bad value.
        position: usize,
    },
    /// A point has the wrong number of coordinates.
    #[error("point has {got} coordinates, expected {expected} (the dimension of the points in the tree)")]
    Dimension {
        /// The tree's dimension.
        expected: usize,
        /// The point's length.
        got: usize,
    },
    /// An empty point or data set.
    #[error("{0}")]
    Empty(&'static str),
    /// A node handle that no longer belongs to the tree.
    #[error("this node was removed from the tree (or belongs to another tree)")]
    StaleNode,
    /// rrcf's "Cut dimension is not finite." (the span sum rounded above the cumulative sum).
    #[error("Cut dimension is not finite.")]
    CutNotFound,
    /// A random cut left one side empty (the draw hit the top of the range).
    #[error(
        "a random cut left no point on its right side (degenerate draw); rrcf 0.4.4 fails here too"
    )]
    EmptyCut,
    /// A box (or the data) spans more than the largest float64, so no cut can be drawn; rrcf 0.4.4
    /// fails here too (`ValueError` from `RandomState.choice`, `OverflowError` from `uniform`).
    #[error("{what} spans more than the largest float64 (a range between values is infinite); no random cut can be drawn. Scale the data down (rrcf 0.4.4 cannot cut it either)")]
    SpanOverflow {
        /// What overflowed.
        what: &'static str,
    },
    /// Rounding the data to `precision` decimals overflowed (`np.around` gives inf or NaN).
    #[error("X rounded to precision={precision} decimals is not finite (10**precision overflows float64); use a precision between -308 and 308, like rrcf's default 9")]
    Rounding {
        /// The precision asked for.
        precision: i32,
    },
    /// A node handle or index slot that is not a leaf of the tree.
    #[error("slot {0} is not a leaf of this tree (the tree state is inconsistent)")]
    NotALeaf(u32),
    /// A node record list that does not describe a tree.
    #[error("invalid tree description: {0}")]
    InvalidTree(String),
}

/// Result of rrcf tree operations.
pub type RrcfResult<T> = std::result::Result<T, RrcfError>;
