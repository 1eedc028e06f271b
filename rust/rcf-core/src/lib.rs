//! rcf-core: robust random cut forests for streams, with no Python in it.
//!
//! A [`Forest`] holds `num_trees` random cut trees (Guha et al. 2016) over one shared
//! [`PointStore`]. Each tree samples the stream with a time-decayed reservoir or a sliding
//! window, and scores points with the AWS Random Cut Forest score or rrcf's CoDisp.
//!
//! ```
//! use rcf_core::{Forest, ForestConfig};
//! let mut config = ForestConfig::new(1);
//! config.num_trees = 20;
//! config.seed = Some(7);
//! let mut forest = Forest::new(config).unwrap();
//! for i in 0..500 {
//!     forest.score_update(&[(i as f64 * 0.1).sin()]).unwrap();
//! }
//! assert!(forest.score(&[25.0]).unwrap() > forest.score(&[0.5]).unwrap());
//! ```
#![warn(missing_docs)]

/// Runs `$body` with the const `$D` set to `$n` for the point sizes that have kernels of their
/// own (1, 2, 3, 4, 8, 16) and to 0 ("any size") otherwise: one place lists the sizes.
macro_rules! by_point_size {
    ($n:expr, $D:ident => $body:expr) => {
        match $n {
            1 => {
                const $D: usize = 1;
                $body
            }
            2 => {
                const $D: usize = 2;
                $body
            }
            3 => {
                const $D: usize = 3;
                $body
            }
            4 => {
                const $D: usize = 4;
                $body
            }
            8 => {
                const $D: usize = 8;
                $body
            }
            16 => {
                const $D: usize = 16;
                $body
            }
            _ => {
                const $D: usize = 0;
                $body
            }
        }
    };
}

pub mod config;
pub mod error;
pub mod forest;
pub mod input;
mod kernels;
mod lanes;
pub mod lockstep;
pub mod parallel;
pub mod point_store;
pub mod rng;
pub mod sampler;
pub mod score;
pub mod scratch;
pub mod serialize;
pub mod shingle;
pub mod tree;

pub use config::{ForestConfig, SamplerKind, ScoringKind, MAX_SAMPLE_SIZE, MAX_TIME_DECAY};
pub use error::{RcfError, Result};
pub use forest::{DiVector, Forest};
pub use point_store::PointStore;
pub use tree::Tree;
pub mod rrcf;
