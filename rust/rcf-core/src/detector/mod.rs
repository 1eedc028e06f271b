//! [`AnomalyDetector`]: a forest plus an online thresholder, from scores to alerts.
//!
//! Each observation goes through an optional input transform (normalisation with time-decayed
//! statistics, differencing, or both), is scored by the forest (before it learns the point),
//! and the score goes to the [`Thresholder`], which grades it. An alert (the first point of an
//! anomaly episode) carries an explanation: the attribution per input dimension and, for the
//! dimensions that caused it, the value the forest expected there (a conditional query on the
//! trees: per tree the leaf nearest to the point on its other values, median over trees).
//!
//! Coarse scales (see [`scales`]) watch block means of the transformed input with forests and
//! thresholders of their own; per point the detector emits at most one alert from all streams.
use serde::{Deserialize, Serialize};

use crate::config::ForestConfig;
use crate::error::{RcfError, Result};
use crate::forest::{DiVector, Forest};

mod explain;
pub mod scales;
pub mod thresholder;

use explain::{explain, impute, per_dimension, Explained};
pub use scales::{validate_scales, Scale, DEFAULT_SCALES, MAX_BLOCK, MAX_SCALES};
use scales::{CoarseStep, SavedScales, Scales};
pub use thresholder::{Decision, Thresholder, ThresholderConfig};

/// Transform of the input before the forest sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Transform {
    /// Values as they come.
    None,
    /// `(x - mean) / deviation` with time-decayed statistics per dimension.
    Normalize,
    /// `x - previous x`.
    Difference,
    /// Differencing, then normalisation of the differences.
    NormalizeDifference,
}

impl Transform {
    /// The name used in Python (`"none"`, `"normalize"`, `"difference"`,
    /// `"normalize_difference"`).
    pub fn name(self) -> &'static str {
        match self {
            Transform::None => "none",
            Transform::Normalize => "normalize",
            Transform::Difference => "difference",
            Transform::NormalizeDifference => "normalize_difference",
        }
    }

    /// Parses [`Transform::name`].
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "none" => Transform::None,
            "normalize" => Transform::Normalize,
            "difference" => Transform::Difference,
            "normalize_difference" => Transform::NormalizeDifference,
            other => {
                return Err(RcfError::param(
                    "transform",
                    format!(
                        "expected \"none\", \"normalize\", \"difference\" or \
                         \"normalize_difference\", got {other:?}"
                    ),
                ))
            }
        })
    }
}

/// Everything an [`AnomalyDetector`] is built from.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorConfig {
    /// The forest's parameters.
    pub forest: ForestConfig,
    /// The thresholder's parameters.
    pub thresholder: ThresholderConfig,
    /// Input transform (default `None`).
    pub transform: Transform,
    /// Horizon (points) of the normalisation statistics (default 1000).
    pub transform_horizon: f64,
    /// Coarse scales (default [`DEFAULT_SCALES`]; empty: the forest's scores alone).
    pub scales: Vec<Scale>,
}

impl DetectorConfig {
    /// The defaults for points of `dimensions` values: 100 trees, 256 samples, shingle 8.
    pub fn new(dimensions: usize) -> Self {
        let mut forest = ForestConfig::new(dimensions);
        forest.shingle_size = DEFAULT_SHINGLE_SIZE;
        DetectorConfig {
            forest,
            thresholder: ThresholderConfig::default(),
            transform: Transform::None,
            transform_horizon: 1000.0,
            scales: DEFAULT_SCALES.to_vec(),
        }
    }
}

/// Shingle size of [`DetectorConfig::new`]: a short context makes the shape of a series part of
/// what the forest learns.
pub const DEFAULT_SHINGLE_SIZE: usize = 8;
/// Samples' worth of points (`FUSED_AFTER * sample_size`) learned before a point that could
/// raise an alert is scored and learned in one pass (see [`AnomalyDetector::process`]).
const FUSED_AFTER: usize = 4;
/// Recent raw values kept per dimension (saved state; read by no computation since the
/// expected value became a conditional query on the trees, kept so saved states stay valid).
const CANDIDATES: usize = 32;
/// Rows per chunk of [`AnomalyDetector::process_rows`] (at most), and values (rows times
/// dimensions) per chunk: bounds the memory of a batch.
const CHUNK_ROWS: usize = 1024;
const CHUNK_VALUES: usize = 1 << 16;

/// What the fine stream decided for one row, and for an alert its explanation.
struct FineStep {
    score: f64,
    decision: Decision,
    alert: Option<Explained>,
}

/// One processed observation.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorResult {
    /// The forest's RCF score of the point (before learning it).
    pub score: f64,
    /// 0 unless the point raises an alert; then in (0, 1].
    pub grade: f64,
    /// The threshold in force (infinite during warm-up).
    pub threshold: f64,
    /// How settled the thresholder's statistics are, in [0, 1].
    pub confidence: f64,
    /// Whether the point lies in an anomaly episode (of the forest's thresholder or of a
    /// scale's: a scale's episode lasts until `episode_gap` of its blocks stay below its
    /// threshold).
    pub in_episode: bool,
    /// For an alert: points back (<= 0) to where the scores began to rise.
    pub relative_index: i64,
    /// For an alert: attribution per input dimension.
    pub attribution: Option<DiVector>,
    /// For an alert: the value the forest expected per input dimension (NaN for dimensions that
    /// did not cause the alert). For a coarse scale's alert: the block mean its forest
    /// expected, in the units its forest sees (the transformed input).
    pub expected: Option<Vec<f64>>,
    /// 1 for the fine forest's alerts and for points without an alert, else the block of the
    /// coarse scale that raised the alert.
    pub scale: usize,
}

impl DetectorResult {
    /// Whether this point raised an alert (the start of an anomaly episode).
    pub fn is_anomaly(&self) -> bool {
        self.grade > 0.0
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct State {
    thresholder: Thresholder,
    transform: Transform,
    transform_horizon: f64,
    // time-decayed input statistics (of the differenced input for NormalizeDifference)
    weight: f64,
    sum: Vec<f64>,
    sum_sq: Vec<f64>,
    previous: Option<Vec<f64>>,
    // ring of recent raw inputs, row-major, `CANDIDATES` rows
    recent: Vec<f64>,
    recent_len: usize,
    recent_at: usize,
    last_timestamp: Option<f64>,
    // the last `shingle_size` transformed inputs, oldest first (the forest's last point)
    shingled: Vec<f64>,
}

/// A forest plus an online thresholder.
pub struct AnomalyDetector {
    forest: Forest,
    state: State,
    scales: Scales,
}

const MAGIC: &[u8; 4] = b"RCFD";
// 2: the thresholder counts scores since the last alert; 3: coarse scales (a length before the
// state, the scales after it). Version 2 still loads, as a detector without scales.
const VERSION: u8 = 3;
const VERSION_SINGLE_SCALE: u8 = 2;

impl AnomalyDetector {
    /// A detector that has seen nothing.
    pub fn new(config: DetectorConfig) -> Result<Self> {
        let DetectorConfig {
            forest,
            thresholder,
            transform,
            transform_horizon,
            scales,
        } = config;
        if !(transform_horizon.is_finite() && transform_horizon >= 1.0) {
            return Err(RcfError::param(
                "transform_horizon",
                format!("must be a finite number >= 1, got {transform_horizon}"),
            ));
        }
        let fine_thresholder = thresholder;
        let thresholder = Thresholder::new(thresholder)?;
        let forest = Forest::new(forest)?;
        let scales = Scales::new(&scales, forest.config(), &fine_thresholder)?;
        let d = forest.config().dimensions;
        Ok(AnomalyDetector {
            forest,
            scales,
            state: State {
                thresholder,
                transform,
                transform_horizon,
                weight: 0.0,
                sum: vec![0.0; d],
                sum_sq: vec![0.0; d],
                previous: None,
                recent: vec![0.0; d * CANDIDATES],
                recent_len: 0,
                recent_at: 0,
                last_timestamp: None,
                shingled: Vec::new(),
            },
        })
    }

    /// The forest (read-only).
    pub fn forest(&self) -> &Forest {
        &self.forest
    }

    /// The thresholder (read-only).
    pub fn thresholder(&self) -> &Thresholder {
        &self.state.thresholder
    }

    /// The input transform.
    pub fn transform(&self) -> Transform {
        self.state.transform
    }

    /// Horizon of the normalisation statistics.
    pub fn transform_horizon(&self) -> f64 {
        self.state.transform_horizon
    }

    /// The coarse scales, in order (empty: single-scale).
    pub fn scales(&self) -> Vec<Scale> {
        self.scales.scales()
    }

    /// Sets the worker threads of the forest and the scales' forests.
    pub fn set_threads(&mut self, threads: Option<usize>) -> Result<()> {
        self.forest.set_threads(threads)?;
        self.scales.set_threads(threads)
    }

    /// The last timestamp given to [`AnomalyDetector::process`].
    pub fn last_timestamp(&self) -> Option<f64> {
        self.state.last_timestamp
    }

    fn dims(&self) -> usize {
        self.forest.config().dimensions
    }

    fn check_point(&self, x: &[f64], row: usize) -> Result<()> {
        let d = self.dims();
        if x.len() != d {
            return Err(RcfError::DimensionMismatch {
                expected: d,
                got: x.len(),
            });
        }
        for (column, v) in x.iter().enumerate() {
            if !v.is_finite() || v.abs() > f64::from(f32::MAX) {
                return Err(RcfError::InvalidValue {
                    what: if v.is_nan() {
                        "NaN value"
                    } else if v.is_infinite() {
                        "infinite value"
                    } else {
                        "value out of range"
                    },
                    row,
                    column,
                    message: "expected a finite number within the f32 range".into(),
                });
            }
        }
        Ok(())
    }

    /// The transformed input the forest sees for `x` (state not changed).
    fn transformed(&self, x: &[f64], out: &mut Vec<f64>) {
        let s = &self.state;
        out.clear();
        let diff = matches!(
            s.transform,
            Transform::Difference | Transform::NormalizeDifference
        );
        for (j, &v) in x.iter().enumerate() {
            let base = if diff {
                v - s
                    .previous
                    .as_ref()
                    .and_then(|p| p.get(j))
                    .copied()
                    .unwrap_or(v)
            } else {
                v
            };
            out.push(base);
        }
        if matches!(
            s.transform,
            Transform::Normalize | Transform::NormalizeDifference
        ) && s.weight > 0.0
        {
            for (j, o) in out.iter_mut().enumerate() {
                let mean = s.sum[j] / s.weight;
                let var = (s.sum_sq[j] / s.weight - mean * mean).max(0.0);
                let dev = var.sqrt().max(1e-9 * (1.0 + mean.abs()));
                *o = (*o - mean) / dev;
            }
        }
        // keep within the forest's f32 range
        for o in out.iter_mut() {
            *o = o.clamp(-1e30, 1e30);
        }
    }

    fn learn_input(&mut self, x: &[f64]) {
        let s = &mut self.state;
        let d = x.len();
        let diff = matches!(
            s.transform,
            Transform::Difference | Transform::NormalizeDifference
        );
        if matches!(
            s.transform,
            Transform::Normalize | Transform::NormalizeDifference
        ) {
            let keep = 1.0 - 1.0 / s.transform_horizon;
            s.weight = s.weight * keep + 1.0;
            for (j, &v) in x.iter().enumerate() {
                let base = if diff {
                    v - s
                        .previous
                        .as_ref()
                        .and_then(|p| p.get(j))
                        .copied()
                        .unwrap_or(v)
                } else {
                    v
                };
                s.sum[j] = s.sum[j] * keep + base;
                s.sum_sq[j] = s.sum_sq[j] * keep + base * base;
            }
        }
        s.previous = Some(x.to_vec());
        let at = s.recent_at * d;
        if let Some(slot) = s.recent.get_mut(at..at + d) {
            slot.copy_from_slice(x);
        }
        s.recent_at = (s.recent_at + 1) % CANDIDATES;
        s.recent_len = (s.recent_len + 1).min(CANDIDATES);
    }

    /// Processes one observation: scores it, grades the score, explains an alert, then learns
    /// the observation. `timestamp` is kept (for the caller's bookkeeping); it must be finite.
    pub fn process(&mut self, x: &[f64], timestamp: Option<f64>) -> Result<DetectorResult> {
        self.check_point(x, 0)?;
        if let Some(t) = timestamp {
            if !t.is_finite() {
                return Err(RcfError::InvalidValue {
                    what: "timestamp",
                    row: 0,
                    column: 0,
                    message: format!("expected a finite number, got {t}"),
                });
            }
        }
        let mut out = None;
        self.process_rows(x, timestamp.as_ref().map(std::slice::from_ref), |_, r| {
            out = Some(r.clone());
        })?;
        out.ok_or_else(|| RcfError::Internal("no result for the row".into()))
    }

    /// Processes checked rows (`data`: row-major; `timestamps`: one per row or none) in
    /// chunks, calling `each(row, result)` in row order. Within a chunk each stream goes over
    /// all its rows before the next stream starts (each forest's trees stay in the caches),
    /// then the streams' decisions are combined row by row: the results are those of one row
    /// at a time, because no stream depends on another's decisions, only on the transformed
    /// input (see [`scales`]).
    fn process_rows(
        &mut self,
        data: &[f64],
        timestamps: Option<&[f64]>,
        mut each: impl FnMut(usize, &DetectorResult),
    ) -> Result<()> {
        let d = self.dims();
        let rows = (CHUNK_VALUES / d).clamp(1, CHUNK_ROWS);
        let mut y = Vec::with_capacity(d);
        let mut ys = Vec::new();
        let mut fine = Vec::new();
        let mut coarse: Vec<Vec<CoarseStep>> = vec![Vec::new(); self.scales.len()];
        for (c, chunk) in data.chunks(rows * d).enumerate() {
            let first = c * rows;
            ys.clear();
            fine.clear();
            for (k, x) in chunk.chunks_exact(d).enumerate() {
                let t = timestamps.and_then(|t| t.get(first + k).copied());
                fine.push(self.fine_step(x, t, &mut y)?);
                ys.extend_from_slice(&y);
            }
            for (i, steps) in coarse.iter_mut().enumerate() {
                steps.clear();
                for y in ys.chunks_exact(d) {
                    steps.push(self.scales.step(i, y)?);
                }
            }
            for (k, f) in fine.iter_mut().enumerate() {
                let r = self.combine(f, &mut coarse, k);
                each(first + k, &r);
            }
        }
        Ok(())
    }

    /// The fine stream for one row: transforms `x` (into `y`), scores it on the forest, grades
    /// the score, explains an alert, learns the row.
    fn fine_step(
        &mut self,
        x: &[f64],
        timestamp: Option<f64>,
        y: &mut Vec<f64>,
    ) -> Result<FineStep> {
        self.transformed(x, y);
        let d = x.len();
        let size = self.forest.config().shingle_size;
        if self.state.shingled.len() == size * d {
            self.state.shingled.drain(..d);
        }
        self.state.shingled.extend_from_slice(y);
        // An alert is explained on the forest *before* it learns the point (a learned point is
        // its own leaf, which splits its attribution evenly between high and low). While the
        // trees still keep most new points (the first `FUSED_AFTER` samples' worth) and an
        // alert is possible, the point is scored, graded, explained and then learned (two
        // passes). Otherwise one combined pass scores and learns it, and an alert is explained
        // by the trees that did not keep the point: they are exactly as before it.
        let alert_possible = self.state.thresholder.alert_possible();
        let fused = !alert_possible
            || self.forest.points_seen() >= (FUSED_AFTER * self.forest.config().sample_size) as u64;
        let score = if fused {
            self.forest.score_update(y)?
        } else {
            self.forest.score(y)?
        };
        let decision = self.state.thresholder.decide(score);
        let mut alert = None;
        if decision.grade > 0.0 && self.state.shingled.len() == size * d {
            // The forest's point for `y`: the last `shingle_size` transformed inputs.
            let q = self.state.shingled.clone();
            let (per_value, usable) = explain(&self.forest, &q, score, fused)?;
            let (a, top) = per_dimension(&per_value, d, size);
            let mut e = impute(&self.forest, &a, &q, &usable);
            for (j, v) in e.iter_mut().enumerate() {
                if !v.is_nan() {
                    *v = self.untransformed(j, *v, x);
                }
            }
            alert = Some(Explained {
                relative_index: decision.relative_index.min(top as i64 - (size as i64 - 1)),
                attribution: a,
                expected: e,
            });
        }
        if !fused {
            self.forest.update(y)?;
        }
        self.learn_input(x);
        if timestamp.is_some() {
            self.state.last_timestamp = timestamp;
        }
        Ok(FineStep {
            score,
            decision,
            alert,
        })
    }

    /// The result of row `k` of a chunk from the streams' steps: the alert the detector emits
    /// (if any) and its explanation.
    fn combine(
        &mut self,
        fine: &mut FineStep,
        coarse: &mut [Vec<CoarseStep>],
        k: usize,
    ) -> DetectorResult {
        let dec = fine.decision;
        let mut result = DetectorResult {
            score: fine.score,
            grade: dec.grade,
            threshold: dec.threshold,
            confidence: dec.confidence,
            in_episode: dec.in_episode,
            relative_index: dec.relative_index,
            attribution: None,
            expected: None,
            scale: 1,
        };
        let emitted = if self.scales.is_empty() {
            (dec.grade > 0.0).then_some(None)
        } else {
            let grades = coarse
                .iter()
                .map(|steps| steps.get(k).map_or(0.0, |s| s.grade));
            let chosen = self.scales.choose(
                dec.grade,
                grades,
                self.state.thresholder.config().alert_spacing,
            );
            result.grade = chosen.map_or(0.0, |(_, g)| g);
            result.in_episode = dec.in_episode
                || result.grade > 0.0
                || coarse
                    .iter()
                    .any(|steps| steps.get(k).is_some_and(|s| s.in_episode));
            result.relative_index = 0;
            chosen.map(|(which, _)| which)
        };
        let explained = match emitted {
            None => None,
            Some(None) => {
                result.relative_index = dec.relative_index;
                fine.alert.take()
            }
            Some(Some(i)) => {
                result.scale = self.scales.block(i);
                coarse
                    .get_mut(i)
                    .and_then(|steps| steps.get_mut(k))
                    .and_then(|s| s.alert.take())
            }
        };
        if let Some(e) = explained {
            result.relative_index = e.relative_index;
            result.attribution = Some(e.attribution);
            result.expected = Some(e.expected);
        }
        result
    }

    /// The inverse of [`AnomalyDetector::transformed`] for dimension `j` (state not changed).
    fn untransformed(&self, j: usize, y: f64, x: &[f64]) -> f64 {
        let s = &self.state;
        let mut v = y;
        if matches!(
            s.transform,
            Transform::Normalize | Transform::NormalizeDifference
        ) && s.weight > 0.0
        {
            let mean = s.sum[j] / s.weight;
            let var = (s.sum_sq[j] / s.weight - mean * mean).max(0.0);
            let dev = var.sqrt().max(1e-9 * (1.0 + mean.abs()));
            v = v * dev + mean;
        }
        if matches!(
            s.transform,
            Transform::Difference | Transform::NormalizeDifference
        ) {
            v += s
                .previous
                .as_ref()
                .and_then(|p| p.get(j))
                .copied()
                .unwrap_or(x[j]);
        }
        v
    }

    /// Processes each row of `data` (row-major, `n * dimensions` values) in turn, exactly as
    /// [`AnomalyDetector::process`] would; all rows are checked before any is processed.
    pub fn process_many(
        &mut self,
        data: &[f64],
        timestamps: Option<&[f64]>,
        each: impl FnMut(usize, &DetectorResult),
    ) -> Result<()> {
        let d = self.dims();
        if data.len() % d != 0 {
            return Err(RcfError::DimensionMismatch {
                expected: d,
                got: data.len() % d,
            });
        }
        let n = data.len() / d;
        if let Some(ts) = timestamps {
            if ts.len() != n {
                return Err(RcfError::param(
                    "timestamps",
                    format!("expected one timestamp per row ({n}), got {}", ts.len()),
                ));
            }
            if let Some(row) = ts.iter().position(|t| !t.is_finite()) {
                return Err(RcfError::InvalidValue {
                    what: "timestamp",
                    row,
                    column: 0,
                    message: "expected a finite number".into(),
                });
            }
        }
        for (row, x) in data.chunks_exact(d).enumerate() {
            self.check_point(x, row)?;
        }
        self.process_rows(data, timestamps, each)
    }

    /// The full state as versioned bytes: magic, version, the forest (length first), the
    /// detector's state (length first), the coarse scales, a CRC-32 of everything before it.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let internal = |e: bincode::Error| RcfError::Internal(e.to_string());
        let forest = self.forest.to_bytes();
        let state = codec().serialize(&self.state).map_err(internal)?;
        let scales = codec().serialize(&self.scales.saved()).map_err(internal)?;
        let mut out = Vec::with_capacity(forest.len() + state.len() + scales.len() + 32);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&(forest.len() as u64).to_le_bytes());
        out.extend_from_slice(&forest);
        out.extend_from_slice(&(state.len() as u64).to_le_bytes());
        out.extend_from_slice(&state);
        out.extend_from_slice(&scales);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(out)
    }

    /// Restores [`AnomalyDetector::to_bytes`] output (and version 2, from before the scales,
    /// as a detector without scales); damaged bytes give `RcfError::Corrupt`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let bad = |m: &str| RcfError::Corrupt(format!("detector state: {m}"));
        if bytes.len() < 4 + 1 + 8 + 4 {
            return Err(bad("too short"));
        }
        if &bytes[..4] != MAGIC {
            return Err(bad("not an rcf_fast AnomalyDetector (wrong magic bytes)"));
        }
        let version = bytes[4];
        if version != VERSION && version != VERSION_SINGLE_SCALE {
            return Err(bad(&format!(
                "version {version} not supported (expected {VERSION_SINGLE_SCALE} or {VERSION})"
            )));
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        let mut crc_bytes = [0u8; 4];
        crc_bytes.copy_from_slice(crc);
        if crc32fast::hash(body) != u32::from_le_bytes(crc_bytes) {
            return Err(bad("checksum mismatch (truncated or damaged)"));
        }
        let (flen, rest) = take_length(&body[5..]).ok_or_else(|| bad("forest length"))?;
        if flen > rest.len() {
            return Err(bad("forest length beyond the end"));
        }
        let forest = Forest::from_bytes(&rest[..flen])?;
        let rest = &rest[flen..];
        let limit = rest.len() as u64;
        let (state, saved): (State, Option<SavedScales>) = if version == VERSION_SINGLE_SCALE {
            let state = codec()
                .allow_trailing_bytes()
                .with_limit(limit)
                .deserialize(rest)
                .map_err(|e| bad(&e.to_string()))?;
            (state, None)
        } else {
            let (slen, rest) = take_length(rest).ok_or_else(|| bad("state length"))?;
            if slen > rest.len() {
                return Err(bad("state length beyond the end"));
            }
            let state = codec()
                .with_limit(limit)
                .deserialize(&rest[..slen])
                .map_err(|e| bad(&e.to_string()))?;
            let saved = codec()
                .with_limit(limit)
                .deserialize(&rest[slen..])
                .map_err(|e| bad(&e.to_string()))?;
            (state, Some(saved))
        };
        let d = forest.config().dimensions;
        state.thresholder.check().map_err(|e| bad(&e))?;
        if state.sum.len() != d
            || state.sum_sq.len() != d
            || state.recent.len() != d * CANDIDATES
            || state.recent_len > CANDIDATES
            || state.recent_at >= CANDIDATES
            || state.previous.as_ref().is_some_and(|p| p.len() != d)
            || state.shingled.len() > d * forest.config().shingle_size
            || state.shingled.len() % d != 0
            || !state.shingled.iter().all(|v| v.is_finite())
            || !(state.transform_horizon.is_finite() && state.transform_horizon >= 1.0)
        {
            return Err(bad("inconsistent sizes"));
        }
        let t = *state.thresholder.config();
        let scales = match saved {
            None => Scales::new(&[], forest.config(), &t)?,
            Some(s) => Scales::restore(s, forest.config(), &t).map_err(|e| bad(&e))?,
        };
        Ok(AnomalyDetector {
            forest,
            state,
            scales,
        })
    }
}

/// The encoding of the saved state: bincode, fixed-width integers, little endian.
fn codec() -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
}

/// A little-endian u64 length at the start of `bytes` and the bytes after it.
fn take_length(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<8>()?;
    Some((usize::try_from(u64::from_le_bytes(*len)).ok()?, rest))
}

use bincode::Options;

#[cfg(test)]
mod tests {
    use super::*;

    fn detector(seed: u64) -> AnomalyDetector {
        let mut c = DetectorConfig::new(1);
        c.forest.seed = Some(seed);
        c.forest.num_trees = 30;
        AnomalyDetector::new(c).unwrap()
    }

    fn series(n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| {
                let base = (i as f64 * 0.2).sin();
                if i == 1500 {
                    base + 8.0
                } else {
                    base
                }
            })
            .collect()
    }

    #[test]
    fn spike_raises_one_alert_with_explanation() {
        let mut det = detector(3);
        let xs = series(2000);
        let mut alerts = vec![];
        for (i, &v) in xs.iter().enumerate() {
            let r = det.process(&[v], None).unwrap();
            if r.is_anomaly() {
                alerts.push((i, r));
            }
        }
        let hit = alerts
            .iter()
            .find(|(i, _)| *i == 1500)
            .expect("spike alerted");
        let e = hit.1.expected.as_ref().unwrap()[0];
        assert!(e.abs() <= 1.0, "expected value near the sine, got {e}");
        let a = hit.1.attribution.as_ref().unwrap();
        assert!(
            a.high[0] > 2.0 * a.low[0],
            "a spike up is explained as high: {a:?}"
        );
        assert!(alerts.len() <= 3, "{} alerts", alerts.len());
    }

    #[test]
    fn process_many_equals_the_loop_and_bytes_continue_exactly() {
        let xs = series(1800);
        let mut a = detector(5);
        let mut b = detector(5);
        let mut loop_results = vec![];
        for &v in &xs[..1000] {
            loop_results.push(a.process(&[v], None).unwrap());
        }
        let mut many = vec![];
        b.process_many(&xs[..1000], None, |_, r| many.push(r.clone()))
            .unwrap();
        assert_eq!(loop_results, many);
        let bytes = b.to_bytes().unwrap();
        let mut c = AnomalyDetector::from_bytes(&bytes).unwrap();
        for &v in &xs[1000..] {
            let r1 = a.process(&[v], None).unwrap();
            let r2 = c.process(&[v], None).unwrap();
            assert_eq!(r1, r2);
        }
    }

    #[test]
    fn damaged_bytes_are_rejected() {
        let mut det = detector(1);
        for &v in &series(300) {
            det.process(&[v], None).unwrap();
        }
        let bytes = det.to_bytes().unwrap();
        for cut in [0, 3, 10, bytes.len() / 2, bytes.len() - 1] {
            assert!(matches!(
                AnomalyDetector::from_bytes(&bytes[..cut]),
                Err(RcfError::Corrupt(_))
            ));
        }
        let mut flipped = bytes.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x40;
        assert!(AnomalyDetector::from_bytes(&flipped).is_err());
    }

    #[test]
    fn transforms_and_bad_input() {
        for t in ["none", "normalize", "difference", "normalize_difference"] {
            let mut c = DetectorConfig::new(2);
            c.transform = Transform::parse(t).unwrap();
            c.forest.num_trees = 10;
            let mut det = AnomalyDetector::new(c).unwrap();
            for i in 0..400 {
                let v = f64::from(i) * 0.5;
                let r = det.process(&[v, -v], Some(f64::from(i))).unwrap();
                assert!(r.score.is_finite() && (0.0..=1.0).contains(&r.grade));
            }
            assert_eq!(Transform::parse(t).unwrap().name(), t);
        }
        assert!(Transform::parse("log").is_err());
        let mut det = detector(2);
        assert!(det.process(&[f64::NAN], None).is_err());
        assert!(det.process(&[1.0, 2.0], None).is_err());
        assert!(det.process(&[1.0], Some(f64::INFINITY)).is_err());
        assert!(det
            .process_many(&[1.0, 2.0], Some(&[1.0]), |_, _| {})
            .is_err());
    }
}
