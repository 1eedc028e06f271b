//! Forest configuration: documented defaults and `validate()`. Only a validated config builds a
//! `Forest`.
use serde::{Deserialize, Serialize};

use crate::error::{RcfError, Result};

/// Largest `sample_size`: tree indices are 16-bit (one bit marks a leaf, `u16::MAX` means
/// none), which keeps a standard forest under 1 MB; an update holds one leaf more for a moment.
pub const MAX_SAMPLE_SIZE: usize = 32_766;
/// Largest `num_trees * sample_size`: point ids are 24-bit and a batch chunk needs room too.
pub const MAX_POINTS_HELD: usize = (1 << 24) - 3 * 2048;
/// Largest `num_trees`.
pub const MAX_TREES: usize = 10_000;
/// Largest `threads` accepted (above the number of cores it acts as the number of cores).
pub const MAX_THREADS: usize = 1024;
/// Largest number of values in a (shingled) point: cut dimensions are stored in 16 bits.
pub const MAX_POINT_DIMENSIONS: usize = 65_535;

/// Largest `time_decay`. Above ~709 `e^λ` overflows f64 and the decay sampler would stop
/// keeping points (its weights also leave f32's range sooner); from ~50 on, a point one step
/// older already weighs `e^-50` as much, so the sample is the last `sample_size` points anyway.
pub const MAX_TIME_DECAY: f64 = 100.0;

/// How each tree chooses the points it keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SamplerKind {
    /// Time-decayed weighted reservoir (AWS RCF): priority `ln(-ln u) - t·λ`, smallest kept.
    Decay,
    /// Sliding window: every tree keeps the last `sample_size` points (rrcf's streaming recipe).
    Window,
}

/// Which anomaly score the forest reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScoringKind {
    /// AWS Random Cut Forest anomaly score (KDA's ANOMALY_SCORE scale).
    Rcf,
    /// rrcf's collusive displacement, averaged over trees.
    CoDisp,
}

impl SamplerKind {
    /// The name used in the Python API and in messages.
    pub fn name(self) -> &'static str {
        match self {
            SamplerKind::Decay => "decay",
            SamplerKind::Window => "window",
        }
    }
}

impl std::fmt::Display for SamplerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for SamplerKind {
    type Err = RcfError;

    /// `"decay"` or `"window"`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "decay" => Ok(SamplerKind::Decay),
            "window" => Ok(SamplerKind::Window),
            other => Err(RcfError::param(
                "sampler",
                format!("expected \"decay\" or \"window\", got {other:?}"),
            )),
        }
    }
}

impl ScoringKind {
    /// The name used in the Python API and in messages.
    pub fn name(self) -> &'static str {
        match self {
            ScoringKind::Rcf => "rcf",
            ScoringKind::CoDisp => "codisp",
        }
    }
}

impl std::fmt::Display for ScoringKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ScoringKind {
    type Err = RcfError;

    /// `"rcf"` or `"codisp"`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "rcf" => Ok(ScoringKind::Rcf),
            "codisp" => Ok(ScoringKind::CoDisp),
            other => Err(RcfError::param(
                "scoring",
                format!("expected \"rcf\" or \"codisp\", got {other:?}"),
            )),
        }
    }
}

/// Parameters of a forest. Build one with [`ForestConfig::new`] and adjust the public fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForestConfig {
    /// Values per observation (before shingling). Default 1.
    pub dimensions: usize,
    /// Observations per shingled point. Default 1 (no shingling).
    pub shingle_size: usize,
    /// Number of trees. Default 100.
    pub num_trees: usize,
    /// Points kept per tree. Default 256.
    pub sample_size: usize,
    /// λ of the time-decayed sampler; `None` means `0.1 / sample_size`. 0 is a uniform reservoir;
    /// at most [`MAX_TIME_DECAY`].
    pub time_decay: Option<f64>,
    /// Sampler kind. Default [`SamplerKind::Decay`].
    pub sampler: SamplerKind,
    /// Score kind. Default [`ScoringKind::Rcf`].
    pub scoring: ScoringKind,
    /// Scores are 0 until this many points were learned; `None` means `sample_size / 4`.
    pub output_after: Option<usize>,
    /// Seed of every tree's generator; `None` draws one from the clock and process.
    pub seed: Option<u64>,
    /// Most threads one call works on at once (the caller included), for one-point and batch
    /// calls alike; `None` means one per core, 1 means serial. Threads come from pools shared by
    /// the whole process (see [`crate::parallel`]), so values above the number of cores act as
    /// the number of cores. Results never depend on it.
    pub threads: Option<usize>,
}

impl Default for ForestConfig {
    fn default() -> Self {
        ForestConfig {
            dimensions: 1,
            shingle_size: 1,
            num_trees: 100,
            sample_size: 256,
            time_decay: None,
            sampler: SamplerKind::Decay,
            scoring: ScoringKind::Rcf,
            output_after: None,
            seed: None,
            threads: None,
        }
    }
}

impl ForestConfig {
    /// The default configuration for points of `dimensions` values.
    pub fn new(dimensions: usize) -> Self {
        ForestConfig {
            dimensions,
            ..ForestConfig::default()
        }
    }

    /// Values in one shingled point (`dimensions * shingle_size`).
    pub fn point_dimensions(&self) -> usize {
        self.dimensions * self.shingle_size
    }

    /// λ in force: the explicit one or `0.1 / sample_size`.
    pub fn effective_time_decay(&self) -> f64 {
        self.time_decay.unwrap_or(0.1 / self.sample_size as f64)
    }

    /// Points to learn before scores are reported: explicit or `sample_size / 4`.
    pub fn effective_output_after(&self) -> usize {
        self.output_after.unwrap_or(self.sample_size / 4)
    }

    /// Checks every parameter; the message names the parameter and the accepted range.
    pub fn validate(&self) -> Result<()> {
        if self.dimensions == 0 {
            return Err(RcfError::param("dimensions", "must be at least 1, got 0"));
        }
        if self.shingle_size == 0 {
            return Err(RcfError::param("shingle_size", "must be at least 1, got 0"));
        }
        if self
            .dimensions
            .checked_mul(self.shingle_size)
            .is_none_or(|d| d > MAX_POINT_DIMENSIONS)
        {
            return Err(RcfError::param(
                "shingle_size",
                format!(
                    "dimensions * shingle_size must be at most {MAX_POINT_DIMENSIONS}, got {} * {}",
                    self.dimensions, self.shingle_size
                ),
            ));
        }
        if self.num_trees == 0 || self.num_trees > MAX_TREES {
            return Err(RcfError::param(
                "num_trees",
                format!("must be between 1 and {MAX_TREES}, got {}", self.num_trees),
            ));
        }
        if self.sample_size < 2 || self.sample_size > MAX_SAMPLE_SIZE {
            return Err(RcfError::param(
                "sample_size",
                format!(
                    "must be between 2 and {MAX_SAMPLE_SIZE}, got {}",
                    self.sample_size
                ),
            ));
        }
        // Point ids are 24-bit: every tree's points plus a batch in flight must fit.
        if self.num_trees * self.sample_size > MAX_POINTS_HELD {
            return Err(RcfError::param(
                "num_trees",
                format!(
                    "num_trees * sample_size must be at most {MAX_POINTS_HELD}, got {} * {}",
                    self.num_trees, self.sample_size
                ),
            ));
        }
        if let Some(l) = self.time_decay {
            if !(0.0..=MAX_TIME_DECAY).contains(&l) {
                return Err(RcfError::param(
                    "time_decay",
                    format!("must be between 0 and {MAX_TIME_DECAY} (or None), got {l}"),
                ));
            }
        }
        if let Some(t) = self.threads {
            if t == 0 || t > MAX_THREADS {
                return Err(RcfError::param(
                    "threads",
                    format!("must be between 1 and {MAX_THREADS} (or None for all cores), got {t}"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_and_print_themselves() {
        for k in [SamplerKind::Decay, SamplerKind::Window] {
            assert_eq!(k.to_string().parse::<SamplerKind>().unwrap(), k);
        }
        for k in [ScoringKind::Rcf, ScoringKind::CoDisp] {
            assert_eq!(k.to_string().parse::<ScoringKind>().unwrap(), k);
        }
        let e = "Decay".parse::<SamplerKind>().unwrap_err().to_string();
        assert!(e.contains("sampler") && e.contains("\"window\""), "{e}");
        let e = "x".parse::<ScoringKind>().unwrap_err().to_string();
        assert!(e.contains("scoring") && e.contains("\"codisp\""), "{e}");
    }

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let c = ForestConfig::default();
        c.validate().unwrap();
        assert_eq!(c.effective_output_after(), 64);
        assert!((c.effective_time_decay() - 0.1 / 256.0).abs() < 1e-15);
    }

    #[test]
    fn bad_parameters_name_themselves() {
        let mut c = ForestConfig::new(1);
        c.sample_size = 1;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("sample_size") && e.contains("between 2"), "{e}");
        let mut c = ForestConfig::new(0);
        c.num_trees = 3;
        assert!(c.validate().unwrap_err().to_string().contains("dimensions"));
        for bad in [-1.0, f64::NAN, f64::INFINITY, 1e37, MAX_TIME_DECAY * 1.01] {
            let mut c = ForestConfig::new(2);
            c.time_decay = Some(bad);
            let e = c.validate().unwrap_err().to_string();
            assert!(
                e.contains("time_decay") && e.contains("between 0 and"),
                "{e}"
            );
        }
    }
}
