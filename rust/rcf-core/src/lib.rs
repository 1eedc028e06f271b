//! rcf-core: robust random cut forests for streams, with no Python in it.
#![warn(missing_docs)]
pub mod rrcf;
