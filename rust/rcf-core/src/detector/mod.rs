//! [`AnomalyDetector`]: a forest plus an online thresholder, from scores to alerts.
//!
//! Each observation goes through an optional input transform (normalisation with time-decayed
//! statistics, differencing, or both), is scored by the forest (before it learns the point),
//! and the score goes to the [`Thresholder`], which grades it. An alert (the first point of an
//! anomaly episode) carries an explanation: the attribution per input dimension and, for the
//! dimensions that caused it, the value the forest expected there (a conditional query on the
//! trees: per tree the leaf nearest to the point on its other values, median over trees).
use serde::{Deserialize, Serialize};

use crate::config::ForestConfig;
use crate::error::{RcfError, Result};
use crate::forest::{DiVector, Forest};
use crate::input::row_to_f32;
use crate::scratch::with_scratch;

pub mod thresholder;

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
    /// Whether the point lies in an anomaly episode.
    pub in_episode: bool,
    /// For an alert: points back (<= 0) to where the scores began to rise.
    pub relative_index: i64,
    /// For an alert: attribution per input dimension.
    pub attribution: Option<DiVector>,
    /// For an alert: the value the forest expected per input dimension (NaN for dimensions that
    /// did not cause the alert).
    pub expected: Option<Vec<f64>>,
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
}

const MAGIC: &[u8; 4] = b"RCFD";
const VERSION: u8 = 2; // 2: the thresholder counts scores since the last alert

impl AnomalyDetector {
    /// A detector that has seen nothing.
    pub fn new(config: DetectorConfig) -> Result<Self> {
        let DetectorConfig {
            forest,
            thresholder,
            transform,
            transform_horizon,
        } = config;
        if !(transform_horizon.is_finite() && transform_horizon >= 1.0) {
            return Err(RcfError::param(
                "transform_horizon",
                format!("must be a finite number >= 1, got {transform_horizon}"),
            ));
        }
        let thresholder = Thresholder::new(thresholder)?;
        let forest = Forest::new(forest)?;
        let d = forest.config().dimensions;
        Ok(AnomalyDetector {
            forest,
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

    /// Sets the forest's worker threads.
    pub fn set_threads(&mut self, threads: Option<usize>) -> Result<()> {
        self.forest.set_threads(threads)
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
        let mut y = Vec::with_capacity(x.len());
        self.process_checked(x, timestamp, &mut y)
    }

    fn process_checked(
        &mut self,
        x: &[f64],
        timestamp: Option<f64>,
        y: &mut Vec<f64>,
    ) -> Result<DetectorResult> {
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
        let mut relative_index = decision.relative_index;
        let (attribution, expected) =
            if decision.grade > 0.0 && self.state.shingled.len() == size * d {
                // The forest's point for `y`: the last `shingle_size` transformed inputs.
                let q = self.state.shingled.clone();
                let (per_value, usable) = self.explain(&q, score, fused)?;
                let mut a = DiVector {
                    high: vec![0.0; d],
                    low: vec![0.0; d],
                };
                let mut by_position = vec![0.0; size];
                for (i, (h, l)) in per_value.high.iter().zip(&per_value.low).enumerate() {
                    a.high[i % d] += h;
                    a.low[i % d] += l;
                    by_position[i / d] += h + l;
                }
                if size > 1 {
                    let mut top = size - 1;
                    for (p, v) in by_position.iter().enumerate() {
                        if *v > by_position[top] {
                            top = p;
                        }
                    }
                    relative_index = relative_index.min(top as i64 - (size as i64 - 1));
                }
                let e = self.expected(x, &a, &q, &usable);
                (Some(a), Some(e))
            } else {
                (None, None)
            };
        if !fused {
            self.forest.update(y)?;
        }
        self.learn_input(x);
        if timestamp.is_some() {
            self.state.last_timestamp = timestamp;
        }
        Ok(DetectorResult {
            score,
            grade: decision.grade,
            threshold: decision.threshold,
            confidence: decision.confidence,
            in_episode: decision.in_episode,
            relative_index,
            attribution,
            expected,
        })
    }

    /// Attribution per value of the shingled point `q` and the trees it comes from. After a
    /// combined pass (`learned`), the trees that kept `q` (it is one of their leaves) are left
    /// out, unless fewer than half would remain; the attribution is scaled to sum to `score`
    /// (the score of all trees before they learned `q`).
    fn explain(&self, q: &[f64], score: f64, learned: bool) -> Result<(DiVector, Vec<bool>)> {
        let pd = q.len();
        let mut v = vec![0f32; pd];
        row_to_f32(q, pd, 0, self.forest.value_limit(), &mut v)?;
        let store = self.forest.store();
        let trees = self.forest.components();
        let mut high = vec![0.0; pd];
        let mut low = vec![0.0; pd];
        let usable = with_scratch(|sc| {
            let mut usable: Vec<bool> = trees
                .iter()
                .map(|c| {
                    !learned
                        || c.tree.mass() == 0
                        || store.point(c.tree.leaf_point(c.tree.descend(&v, &mut sc.path))) != v
                })
                .collect();
            if usable.iter().filter(|u| **u).count() * 2 < usable.len() {
                usable.fill(true);
            }
            for (c, u) in trees.iter().zip(&usable) {
                if *u {
                    c.tree.add_attribution(store, &v, sc, &mut high, &mut low);
                }
            }
            usable
        });
        let total: f64 = high.iter().chain(&low).sum();
        let scale = if total > 0.0 { score / total } else { 0.0 };
        high.iter_mut()
            .chain(low.iter_mut())
            .for_each(|x| *x *= scale);
        Ok((DiVector { high, low }, usable))
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

    /// For the dimensions carrying at least half of the largest attribution, the value the
    /// forest expected there: a conditional query on the trees in the spirit of AWS's
    /// imputation. In every tree, the leaf nearest to the point on all its *other* values
    /// (the earlier observations of the shingle and the other dimensions; L1 distance with
    /// each value scaled by its spread in the forest's sample) gives its value for the
    /// missing one; the expected value is the median over trees, mapped back through the
    /// input transform.
    fn expected(&self, x: &[f64], a: &DiVector, q: &[f64], usable: &[bool]) -> Vec<f64> {
        let d = x.len();
        let per_dim: Vec<f64> = a.high.iter().zip(&a.low).map(|(h, l)| h + l).collect();
        let top = per_dim.iter().copied().fold(0.0, f64::max);
        let mut out = vec![f64::NAN; d];
        if top <= 0.0 || !self.forest.is_ready() {
            return out;
        }
        let last = q.len() - d;
        let missing: Vec<usize> = (0..d).filter(|&j| per_dim[j] >= 0.5 * top).collect();
        let store = self.forest.store();
        let leaves: Vec<Vec<u32>> = self
            .forest
            .components()
            .iter()
            .zip(usable)
            .filter(|(_, u)| **u)
            .map(|(c, _)| c.tree.leaves().into_iter().map(|(id, _)| id).collect())
            .collect();
        let pd = q.len();
        // Spread of each value over the forest's sample (scale of the distance).
        let mut lo = vec![f64::INFINITY; pd];
        let mut hi = vec![f64::NEG_INFINITY; pd];
        for &id in leaves.iter().flatten() {
            for (k, v) in store.point(id).iter().enumerate().take(pd) {
                lo[k] = lo[k].min(f64::from(*v));
                hi[k] = hi[k].max(f64::from(*v));
            }
        }
        let mut free = vec![false; pd];
        for &j in &missing {
            free[last + j] = true;
        }
        let weight: Vec<f64> = (0..pd)
            .map(|k| {
                let spread = hi[k] - lo[k];
                if free[k] || !(spread.is_finite() && spread > 0.0) {
                    0.0
                } else {
                    1.0 / spread
                }
            })
            .collect();
        let mut answers: Vec<Vec<f64>> = vec![Vec::with_capacity(leaves.len()); missing.len()];
        for tree in &leaves {
            let mut best: Option<(f64, u32)> = None;
            for &id in tree {
                let p = store.point(id);
                let dist: f64 = p
                    .iter()
                    .zip(q)
                    .zip(&weight)
                    .map(|((v, t), w)| w * (f64::from(*v) - t).abs())
                    .sum();
                if best.is_none_or(|(b, _)| dist < b) {
                    best = Some((dist, id));
                }
            }
            if let Some((_, id)) = best {
                let p = store.point(id);
                for (m, &j) in missing.iter().enumerate() {
                    if let Some(v) = p.get(last + j) {
                        answers[m].push(f64::from(*v));
                    }
                }
            }
        }
        for (m, &j) in missing.iter().enumerate() {
            let vals = &mut answers[m];
            if vals.is_empty() {
                continue;
            }
            vals.sort_by(f64::total_cmp);
            let n = vals.len();
            let median = if n % 2 == 1 {
                vals[n / 2]
            } else {
                0.5 * (vals[n / 2 - 1] + vals[n / 2])
            };
            out[j] = self.untransformed(j, median, x);
        }
        out
    }

    /// Processes each row of `data` (row-major, `n * dimensions` values) in turn, exactly as
    /// [`AnomalyDetector::process`] would; all rows are checked before any is processed.
    pub fn process_many(
        &mut self,
        data: &[f64],
        timestamps: Option<&[f64]>,
        mut each: impl FnMut(usize, &DetectorResult),
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
        let mut y = Vec::with_capacity(d);
        for (row, x) in data.chunks_exact(d).enumerate() {
            let r =
                self.process_checked(x, timestamps.and_then(|t| t.get(row).copied()), &mut y)?;
            each(row, &r);
        }
        Ok(())
    }

    /// The full state as versioned bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let forest = self.forest.to_bytes();
        let state =
            bincode::serialize(&self.state).map_err(|e| RcfError::Internal(e.to_string()))?;
        let mut out = Vec::with_capacity(forest.len() + state.len() + 32);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&(forest.len() as u64).to_le_bytes());
        out.extend_from_slice(&forest);
        out.extend_from_slice(&state);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(out)
    }

    /// Restores [`AnomalyDetector::to_bytes`] output; damaged bytes give `RcfError::Corrupt`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let bad = |m: &str| RcfError::Corrupt(format!("detector state: {m}"));
        if bytes.len() < 4 + 1 + 8 + 4 {
            return Err(bad("too short"));
        }
        if &bytes[..4] != MAGIC {
            return Err(bad("not an rcf_fast AnomalyDetector (wrong magic bytes)"));
        }
        if bytes[4] != VERSION {
            return Err(bad(&format!(
                "version {} not supported (expected {VERSION})",
                bytes[4]
            )));
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        let mut crc_bytes = [0u8; 4];
        crc_bytes.copy_from_slice(crc);
        if crc32fast::hash(body) != u32::from_le_bytes(crc_bytes) {
            return Err(bad("checksum mismatch (truncated or damaged)"));
        }
        let mut len_bytes = [0u8; 8];
        len_bytes.copy_from_slice(&body[5..13]);
        let flen = usize::try_from(u64::from_le_bytes(len_bytes)).map_err(|_| bad("length"))?;
        let rest = &body[13..];
        if flen > rest.len() {
            return Err(bad("forest length beyond the end"));
        }
        let forest = Forest::from_bytes(&rest[..flen])?;
        let state: State = bincode::DefaultOptions::new()
            .with_fixint_encoding()
            .allow_trailing_bytes()
            .with_limit(rest.len() as u64)
            .deserialize(&rest[flen..])
            .map_err(|e| bad(&e.to_string()))?;
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
        Ok(AnomalyDetector { forest, state })
    }
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
