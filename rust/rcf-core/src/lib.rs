//! rcf-core: robust random cut forests for streams, with no Python in it.
//!
//! A [`Forest`] holds `num_trees` random cut trees (Guha et al. 2016) over one shared
//! point store. Each tree samples the stream with a time-decayed reservoir or a sliding
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

mod config;
pub mod detector;
mod error;
mod forest;
mod input;
mod kernels;
pub mod keyed;
mod lanes;
mod lockstep;
mod parallel;
mod point_store;
mod rng;
mod sampler;
mod score;
mod scratch;
mod serialize;
mod shingle;
mod tree;

pub use config::{
    ForestConfig, SamplerKind, ScoringKind, MAX_POINT_DIMENSIONS, MAX_SAMPLE_SIZE, MAX_THREADS,
    MAX_TIME_DECAY, MAX_TREES,
};
pub use error::{RcfError, Result};
pub use forest::{DiVector, Forest};
pub use keyed::{KeyedConfig, KeyedForests};
pub use parallel::{fork_generation, watch_forks};
pub mod rrcf;

/// Internals that the crate's integration tests and the dev tools (`rcf-tools`) reach into;
/// not part of the API and not covered by any stability promise.
#[doc(hidden)]
pub mod testing {
    pub use crate::point_store::PointStore;
    pub use crate::rng::{splitmix64, Rng};
    pub use crate::sampler::{Component, Sampler};
    pub use crate::scratch::Scratch;
    pub use crate::serialize::FORMAT_VERSION;
    pub use crate::tree::Tree;
}
