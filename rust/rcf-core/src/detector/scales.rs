//! Coarse scales of the [`AnomalyDetector`](super::AnomalyDetector): anomalies where a whole
//! stretch (a day of a daily series) looks different, which a shingle of a few points cannot
//! see.
//!
//! A scale `(block, shingle_size)` averages the transformed input (what the detector's forest
//! sees before shingling) over blocks of `block` consecutive points, aligned at the detector's
//! first point (block `j` is points `j * block ..= (j + 1) * block - 1`). When a point
//! completes a block, the block's mean vector goes to the scale's own forest (the detector's
//! forest parameters, same seed, input dimensions, the scale's shingle size): it is scored
//! before it is learned and the score goes to the scale's own [`Thresholder`] (the detector's
//! z-factor and floor; horizon, warm-up, episode gap and alert spacing counted in blocks).
//! The detector then emits at most one alert per point from the fine and coarse streams (see
//! [`Scales::choose`]).
use serde::{Deserialize, Serialize};

use super::explain::{explain, impute, per_dimension};
use super::thresholder::{Decision, Thresholder, ThresholderConfig};
use crate::config::{ForestConfig, MAX_POINT_DIMENSIONS};
use crate::error::{RcfError, Result};
use crate::forest::{DiVector, Forest};

/// One coarse scale: blocks of `block` points, `shingle_size` consecutive block means per
/// point of its forest (`block * shingle_size` points of context).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Scale {
    /// Points per block (2 to [`MAX_BLOCK`]).
    pub block: usize,
    /// Block means per point of the scale's forest (at least 1).
    pub shingle_size: usize,
}

/// The default scales: 16 x 4 (64 points of context) and 32 x 8 (256 points, about one
/// forest sample).
pub const DEFAULT_SCALES: [Scale; 2] = [
    Scale {
        block: 16,
        shingle_size: 4,
    },
    Scale {
        block: 32,
        shingle_size: 8,
    },
];
/// Most scales of one detector.
pub const MAX_SCALES: usize = 8;
/// Largest block.
pub const MAX_BLOCK: usize = 1_000_000;

fn bad(message: String) -> RcfError {
    RcfError::param("scales", message)
}

/// Checks `scales` for a detector with forest `forest`: at most [`MAX_SCALES`], block in
/// `[2, MAX_BLOCK]`, shingle size in `[1, MAX_POINT_DIMENSIONS / dimensions]`, no duplicate.
pub fn validate_scales(scales: &[Scale], forest: &ForestConfig) -> Result<()> {
    if scales.len() > MAX_SCALES {
        return Err(bad(format!(
            "expected at most {MAX_SCALES} (block, shingle_size) pairs, got {}",
            scales.len()
        )));
    }
    let max_shingle = MAX_POINT_DIMENSIONS / forest.dimensions.max(1);
    for (i, s) in scales.iter().enumerate() {
        if !(2..=MAX_BLOCK).contains(&s.block) {
            return Err(bad(format!(
                "block must be between 2 and {MAX_BLOCK}, got {} (scale {i})",
                s.block
            )));
        }
        if !(1..=max_shingle).contains(&s.shingle_size) {
            return Err(bad(format!(
                "shingle_size must be between 1 and {max_shingle}, got {} (scale {i})",
                s.shingle_size
            )));
        }
        if scales[..i].contains(s) {
            return Err(bad(format!(
                "duplicate scale ({}, {}) (scale {i})",
                s.block, s.shingle_size
            )));
        }
    }
    Ok(())
}

/// The forest of scale `s` for a detector with forest `fine`.
fn forest_config(fine: &ForestConfig, s: Scale) -> ForestConfig {
    ForestConfig {
        shingle_size: s.shingle_size,
        ..fine.clone()
    }
}

/// The thresholder of a scale of `block` for a detector with thresholder `fine`: the same
/// z-factor and floor, the rest counted in blocks (at least 10 warm-up scores, an episode gap
/// of 2, a spacing of 1; a horizon of at least 1).
fn thresholder_config(fine: &ThresholderConfig, block: usize) -> ThresholderConfig {
    ThresholderConfig {
        z_factor: fine.z_factor,
        score_floor: fine.score_floor,
        horizon: (fine.horizon / block as f64).max(1.0),
        warmup: (fine.warmup / block).max(10),
        episode_gap: (fine.episode_gap / block).max(2),
        alert_spacing: (fine.alert_spacing / block).max(1),
    }
}

/// One coarse stream: its forest, thresholder, the running block and the last block means.
#[derive(Debug, Clone)]
struct Stream {
    scale: Scale,
    forest: Forest,
    thresholder: Thresholder,
    // sums of the transformed input over the running block, per dimension
    sum: Vec<f64>,
    // points in the running block (< block)
    count: usize,
    // the last `shingle_size` block means, oldest first (the forest's last point)
    shingled: Vec<f64>,
    // this point's decision while its block point is scored but not yet learned
    pending: Option<Pending>,
}

#[derive(Debug, Clone)]
struct Pending {
    mean: Vec<f64>,
    score: f64,
    learned: bool,
}

/// An alert of a coarse scale, explained.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CoarseAlert {
    pub relative_index: i64,
    pub attribution: DiVector,
    pub expected: Vec<f64>,
}

/// The coarse streams of a detector and when it last emitted an alert.
#[derive(Debug, Clone)]
pub(crate) struct Scales {
    streams: Vec<Stream>,
    // points since the detector last emitted an alert (u64::MAX: never)
    since_emitted: u64,
}

impl Scales {
    /// Coarse streams for `scales` (validated) of a detector with forest `fine` and
    /// thresholder `thresholder`.
    pub fn new(
        scales: &[Scale],
        fine: &ForestConfig,
        thresholder: &ThresholderConfig,
    ) -> Result<Self> {
        validate_scales(scales, fine)?;
        let d = fine.dimensions;
        let streams = scales
            .iter()
            .map(|&scale| {
                Ok(Stream {
                    scale,
                    forest: Forest::new(forest_config(fine, scale))?,
                    thresholder: Thresholder::new(thresholder_config(thresholder, scale.block))?,
                    sum: vec![0.0; d],
                    count: 0,
                    shingled: Vec::new(),
                    pending: None,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Scales {
            streams,
            since_emitted: u64::MAX,
        })
    }

    /// No coarse scale: the detector is its fine stream alone.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// The scales, in order.
    pub fn scales(&self) -> Vec<Scale> {
        self.streams.iter().map(|s| s.scale).collect()
    }

    /// Sets the worker threads of the coarse forests.
    pub fn set_threads(&mut self, threads: Option<usize>) -> Result<()> {
        for s in &mut self.streams {
            s.forest.set_threads(threads)?;
        }
        Ok(())
    }

    /// Adds the transformed input `y` of one point to every running block; for each block it
    /// completes, scores the block mean on the scale's forest and grades the score. Returns per
    /// stream the decision (`None` where no block completed). A block point that could be an
    /// alert stays unlearned until [`Scales::learn`].
    pub fn observe(&mut self, y: &[f64], out: &mut Vec<Option<Decision>>) -> Result<()> {
        out.clear();
        for s in &mut self.streams {
            for (acc, v) in s.sum.iter_mut().zip(y) {
                *acc += v;
            }
            s.count += 1;
            if s.count < s.scale.block {
                out.push(None);
                continue;
            }
            let n = s.scale.block as f64;
            let mean: Vec<f64> = s.sum.iter().map(|v| v / n).collect();
            s.sum.fill(0.0);
            s.count = 0;
            let d = mean.len();
            if s.shingled.len() == s.scale.shingle_size * d {
                s.shingled.drain(..d);
            }
            s.shingled.extend_from_slice(&mean);
            let learned = !s.thresholder.alert_possible();
            let score = if learned {
                s.forest.score_update(&mean)?
            } else {
                s.forest.score(&mean)?
            };
            out.push(Some(s.thresholder.decide(score)));
            s.pending = Some(Pending {
                mean,
                score,
                learned,
            });
        }
        Ok(())
    }

    /// Chooses the alert the detector emits at this point from the fine stream's grade and the
    /// coarse `decisions` (of [`Scales::observe`]): the candidates are the streams that raised
    /// an alert here; if there is any and more than `spacing` points passed since the last
    /// alert the detector emitted, the one with the highest grade (ties: the finer one) is
    /// emitted. Returns `None` (no alert), `Some(None)` (the fine stream's) or `Some(Some(i))`
    /// (coarse stream `i`'s), with its grade.
    pub fn choose(
        &mut self,
        fine_grade: f64,
        decisions: &[Option<Decision>],
        spacing: usize,
    ) -> Option<(Option<usize>, f64)> {
        self.since_emitted = self.since_emitted.saturating_add(1);
        let mut best: Option<(Option<usize>, f64, usize)> = None;
        if fine_grade > 0.0 {
            best = Some((None, fine_grade, 1));
        }
        for (i, (s, dec)) in self.streams.iter().zip(decisions).enumerate() {
            let Some(dec) = dec else { continue };
            if dec.grade <= 0.0 {
                continue;
            }
            let better = best.is_none_or(|(_, g, block)| {
                dec.grade > g || (dec.grade == g && s.scale.block < block)
            });
            if better {
                best = Some((Some(i), dec.grade, s.scale.block));
            }
        }
        let (which, grade, _) = best?;
        if self.since_emitted <= spacing as u64 {
            return None;
        }
        self.since_emitted = 0;
        Some((which, grade))
    }

    /// Explains the alert of coarse stream `i` whose decision was `dec` (before its block
    /// point is learned): the attribution of the block point summed over shingle positions per
    /// input dimension, the expected block mean (in the forest's input units) for the
    /// dimensions that caused it, and how many points back the anomaly began.
    pub fn explain(&self, i: usize, dec: &Decision) -> Result<Option<CoarseAlert>> {
        let Some(s) = self.streams.get(i) else {
            return Ok(None);
        };
        let Some(p) = &s.pending else {
            return Ok(None);
        };
        let d = p.mean.len();
        let size = s.scale.shingle_size;
        if s.shingled.len() != size * d {
            return Ok(None);
        }
        let (per_value, usable) = explain(&s.forest, &s.shingled, p.score, p.learned)?;
        let (attribution, top) = per_dimension(&per_value, d, size);
        let blocks_back = dec.relative_index.min(top as i64 - (size as i64 - 1));
        let block = s.scale.block as i64;
        let expected = impute(&s.forest, &attribution, &s.shingled, &usable);
        Ok(Some(CoarseAlert {
            relative_index: -(block - 1) + blocks_back * block,
            attribution,
            expected,
        }))
    }

    /// Learns the block points scored by [`Scales::observe`] and not yet learned.
    pub fn learn(&mut self) -> Result<()> {
        for s in &mut self.streams {
            if let Some(p) = s.pending.take() {
                if !p.learned {
                    s.forest.update(&p.mean)?;
                }
            }
        }
        Ok(())
    }

    /// The saved form (forests as their own bytes).
    pub fn saved(&self) -> SavedScales {
        SavedScales {
            since_emitted: self.since_emitted,
            streams: self
                .streams
                .iter()
                .map(|s| SavedStream {
                    block: s.scale.block as u64,
                    shingle_size: s.scale.shingle_size as u64,
                    forest: s.forest.to_bytes(),
                    thresholder: s.thresholder.clone(),
                    sum: s.sum.clone(),
                    count: s.count as u64,
                    shingled: s.shingled.clone(),
                })
                .collect(),
        }
    }

    /// Restores [`Scales::saved`] for a detector with forest `fine` and thresholder
    /// `thresholder`, checking everything a later call relies on (error: what is wrong).
    pub fn restore(
        saved: SavedScales,
        fine: &ForestConfig,
        thresholder: &ThresholderConfig,
    ) -> std::result::Result<Self, String> {
        let d = fine.dimensions;
        let mut scales = Vec::with_capacity(saved.streams.len());
        for s in &saved.streams {
            let block = usize::try_from(s.block).map_err(|_| "scale block out of range")?;
            let shingle_size =
                usize::try_from(s.shingle_size).map_err(|_| "scale shingle size out of range")?;
            scales.push(Scale {
                block,
                shingle_size,
            });
        }
        validate_scales(&scales, fine).map_err(|e| e.to_string())?;
        let mut streams = Vec::with_capacity(scales.len());
        for (scale, s) in scales.into_iter().zip(saved.streams) {
            let forest = Forest::from_bytes(&s.forest).map_err(|e| e.to_string())?;
            let mut want = forest_config(fine, scale);
            want.threads = forest.config().threads;
            if *forest.config() != want {
                return Err("a scale's forest does not match the detector's".into());
            }
            if *s.thresholder.config() != thresholder_config(thresholder, scale.block) {
                return Err("a scale's thresholder does not match the detector's".into());
            }
            s.thresholder.check()?;
            let count = usize::try_from(s.count).map_err(|_| "block count out of range")?;
            if s.sum.len() != d
                || !s.sum.iter().all(|v| v.is_finite())
                || count >= scale.block
                || s.shingled.len() > d * scale.shingle_size
                || s.shingled.len() % d.max(1) != 0
                || !s.shingled.iter().all(|v| v.is_finite())
            {
                return Err("a scale's running block is inconsistent".into());
            }
            streams.push(Stream {
                scale,
                forest,
                thresholder: s.thresholder,
                sum: s.sum,
                count,
                shingled: s.shingled,
                pending: None,
            });
        }
        Ok(Scales {
            streams,
            since_emitted: saved.since_emitted,
        })
    }
}

/// The saved state of the coarse streams (detector state version 3).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SavedScales {
    since_emitted: u64,
    streams: Vec<SavedStream>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SavedStream {
    block: u64,
    shingle_size: u64,
    forest: Vec<u8>,
    thresholder: Thresholder,
    sum: Vec<f64>,
    count: u64,
    shingled: Vec<f64>,
}
