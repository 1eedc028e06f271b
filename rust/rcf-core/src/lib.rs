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

pub mod config;
pub mod error;
pub mod forest;
pub mod helpers;
pub mod input;
pub mod point_store;
pub mod pool;
pub mod rng;
pub mod sampler;
pub mod score;
pub mod scratch;
pub mod serialize;
pub mod shingle;
mod simd;
pub mod tree;

pub use config::{ForestConfig, SamplerKind, ScoringKind, MAX_SAMPLE_SIZE};
pub use error::{RcfError, Result};
pub use forest::{DiVector, Forest};
pub use point_store::PointStore;
pub use tree::Tree;
pub mod rrcf;
