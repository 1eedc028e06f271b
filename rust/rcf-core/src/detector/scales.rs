//! Coarse scales of the [`AnomalyDetector`](super::AnomalyDetector): anomalies where a whole
//! stretch (a day of a daily series) looks different, which a shingle of a few points cannot
//! see.
//!
//! A scale `(block, shingle_size)` averages the transformed input (what the detector's forest
//! sees before shingling) over blocks of `block` consecutive points, aligned at the detector's
//! first point (block `j` is points `j * block ..= (j + 1) * block - 1`). When a point
//! completes a block, the block's mean vector goes to the scale's own forest (the detector's
//! forest parameters, same seed, half the trees, the scale's shingle size): it is scored
//! before it is learned and the score goes to the scale's own [`Thresholder`] (the detector's
//! z-factor and floor; horizon, warm-up, episode gap and alert spacing counted in blocks).
//! The detector then emits at most one alert per point from the fine and coarse streams (see
//! [`Scales::choose`]).
use serde::{Deserialize, Serialize};

use super::explain::{explain, impute, per_dimension, Explained};
use super::thresholder::{Thresholder, ThresholderConfig};
use crate::config::{ForestConfig, MAX_POINT_DIMENSIONS};
use crate::error::{RcfError, Result};
use crate::forest::Forest;

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

/// The forest of scale `s` for a detector with forest `fine`: its parameters and seed, the
/// scale's shingle size, and half its trees (at least one). A coarse stream only has to tell a
/// block that looks different from the usual ones, and with all the trees the scales cost the
/// detector 27% of its speed instead of 9% (their samples are still filling, so nearly every
/// block goes into every tree); on the 18 local NAB files half the trees score the same.
fn forest_config(fine: &ForestConfig, s: Scale) -> ForestConfig {
    ForestConfig {
        shingle_size: s.shingle_size,
        num_trees: (fine.num_trees / 2).max(1),
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
}

/// What a coarse stream did at one point.
#[derive(Debug, Clone, Default)]
pub(crate) struct CoarseStep {
    /// The grade of its alert (0: none, or no block completed here).
    pub grade: f64,
    /// Whether the stream is in an anomaly episode (its thresholder's, after this point).
    pub in_episode: bool,
    /// For an alert, its explanation.
    pub alert: Option<Explained>,
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

    /// Coarse streams.
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    /// The block of coarse stream `i` (1 if there is none).
    pub fn block(&self, i: usize) -> usize {
        self.streams.get(i).map_or(1, |s| s.scale.block)
    }

    /// Adds the transformed input `y` of one point to the running block of coarse stream `i`.
    /// If it completes the block, the block mean is scored on the scale's forest, the score
    /// graded, an alert explained (on the forest before it learns the block), then the block
    /// learned.
    pub fn step(&mut self, i: usize, y: &[f64]) -> Result<CoarseStep> {
        let Some(s) = self.streams.get_mut(i) else {
            return Ok(CoarseStep::default());
        };
        for (acc, v) in s.sum.iter_mut().zip(y) {
            *acc += v;
        }
        s.count += 1;
        if s.count < s.scale.block {
            return Ok(CoarseStep {
                grade: 0.0,
                in_episode: s.thresholder.in_episode(),
                alert: None,
            });
        }
        let n = s.scale.block as f64;
        let mean: Vec<f64> = s.sum.iter().map(|v| v / n).collect();
        s.sum.fill(0.0);
        s.count = 0;
        let d = mean.len();
        let size = s.scale.shingle_size;
        if s.shingled.len() == size * d {
            s.shingled.drain(..d);
        }
        s.shingled.extend_from_slice(&mean);
        // Scored and learned in one pass unless the score could raise an alert.
        let fused = !s.thresholder.alert_possible();
        let score = if fused {
            s.forest.score_update(&mean)?
        } else {
            s.forest.score(&mean)?
        };
        let decision = s.thresholder.decide(score);
        let mut alert = None;
        if decision.grade > 0.0 && s.shingled.len() == size * d {
            let (per_value, usable) = explain(&s.forest, &s.shingled, score, fused)?;
            let (attribution, top) = per_dimension(&per_value, d, size);
            let blocks_back = decision.relative_index.min(top as i64 - (size as i64 - 1));
            let block = s.scale.block as i64;
            let expected = impute(&s.forest, &attribution, &s.shingled, &usable);
            alert = Some(Explained {
                relative_index: -(block - 1) + blocks_back * block,
                attribution,
                expected,
            });
        }
        if !fused {
            s.forest.update(&mean)?;
        }
        Ok(CoarseStep {
            grade: decision.grade,
            in_episode: decision.in_episode,
            alert,
        })
    }

    /// Chooses the alert the detector emits at a point from the fine stream's grade and the
    /// coarse streams' `grades` there (0: no alert or no block completed): the candidates are
    /// the streams that raised an alert; if there is any and more than `spacing` points passed
    /// since the last alert the detector emitted, the one with the highest grade (ties: the
    /// smaller block) is emitted. Returns `None` (no alert), `Some(None)` (the fine stream's)
    /// or `Some(Some(i))` (coarse stream `i`'s), with its grade. Called once per point.
    pub fn choose(
        &mut self,
        fine_grade: f64,
        grades: impl Iterator<Item = f64>,
        spacing: usize,
    ) -> Option<(Option<usize>, f64)> {
        self.since_emitted = self.since_emitted.saturating_add(1);
        let mut best: Option<(Option<usize>, f64, usize)> = None;
        if fine_grade > 0.0 {
            best = Some((None, fine_grade, 1));
        }
        for (i, (s, grade)) in self.streams.iter().zip(grades).enumerate() {
            if grade <= 0.0 {
                continue;
            }
            let block = s.scale.block;
            if best.is_none_or(|(_, g, b)| grade > g || (grade == g && block < b)) {
                best = Some((Some(i), grade, block));
            }
        }
        let (which, grade, _) = best?;
        if self.since_emitted <= spacing as u64 {
            return None;
        }
        self.since_emitted = 0;
        Some((which, grade))
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

#[cfg(test)]
mod tests {
    use super::super::{AnomalyDetector, DetectorConfig};
    use super::*;

    fn config(scales: &[Scale]) -> DetectorConfig {
        let mut c = DetectorConfig::new(1);
        c.forest.seed = Some(4);
        c.forest.num_trees = 20;
        c.forest.sample_size = 64;
        c.scales = scales.to_vec();
        c
    }

    fn s(block: usize, shingle_size: usize) -> Scale {
        Scale {
            block,
            shingle_size,
        }
    }

    /// A sine of period 96 that stops at its peak for a whole period from `held` (a peak:
    /// 24 mod 96).
    fn held(n: usize, held: usize) -> Vec<f64> {
        assert_eq!(held % 96, 24);
        let wave = |t: usize| 10.0 + 5.0 * (std::f64::consts::TAU * t as f64 / 96.0).sin();
        (0..n)
            .map(|t| match t {
                t if t < held => wave(t),
                t if t < held + 96 => wave(held),
                t => wave(t - 96),
            })
            .collect()
    }

    #[test]
    fn bad_scales_are_refused_naming_scales() {
        let f = ForestConfig::new(3);
        let bad: Vec<Vec<Scale>> = vec![
            vec![s(1, 4)],
            vec![s(MAX_BLOCK + 1, 4)],
            vec![s(16, 0)],
            vec![s(16, MAX_POINT_DIMENSIONS / 3 + 1)],
            vec![s(16, 4), s(16, 4)],
            (2..12).map(|b| s(b, 1)).collect(),
        ];
        for scales in bad {
            match validate_scales(&scales, &f) {
                Err(RcfError::InvalidParameter { name, .. }) => assert_eq!(name, "scales"),
                other => panic!("{scales:?}: {other:?}"),
            }
            let mut c = config(&scales);
            c.forest.dimensions = 3;
            assert!(AnomalyDetector::new(c).is_err());
        }
        validate_scales(&[s(16, 4), s(16, 8), s(2, MAX_POINT_DIMENSIONS / 3)], &f).unwrap();
    }

    #[test]
    fn thresholders_count_in_blocks() {
        let t = ThresholderConfig::default();
        let c = thresholder_config(&t, 16);
        assert_eq!((c.warmup, c.episode_gap, c.alert_spacing), (10, 2, 16));
        assert!((c.horizon - 125.0).abs() < 1e-12 && c.z_factor == t.z_factor);
        let c = thresholder_config(&ThresholderConfig { horizon: 3.0, ..t }, 1000);
        assert!((c.horizon - 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_held_period_is_a_coarse_alert() {
        let xs = held(6000, 4920);
        let mut det = AnomalyDetector::new(config(&DEFAULT_SCALES)).unwrap();
        let mut coarse = vec![];
        for (i, &v) in xs.iter().enumerate() {
            let r = det.process(&[v], None).unwrap();
            if r.is_anomaly() && r.scale > 1 {
                coarse.push((i, r));
            }
        }
        let (i, r) = coarse
            .iter()
            .find(|(i, _)| (4920..4920 + 96 + 32).contains(i))
            .expect("the held period is seen by a coarse scale");
        assert_eq!((i + 1) % r.scale, 0);
        let a = r.attribution.as_ref().unwrap();
        assert!(a.high[0] > a.low[0], "held at the peak: high, {i} {r:?}");
        assert!(r.relative_index <= -(r.scale as i64 - 1));
        assert!(r.expected.as_ref().unwrap()[0] < 14.9, "{r:?}");
    }

    #[test]
    fn bytes_continue_mid_block_and_version_2_loads() {
        let xs = held(3000, 1944);
        let scales = [s(16, 4), s(32, 8), s(5, 2)];
        for cut in [1000, 1007, 1024, 2010] {
            let mut a = AnomalyDetector::new(config(&scales)).unwrap();
            for &v in &xs[..cut] {
                a.process(&[v], None).unwrap();
            }
            let mut b = AnomalyDetector::from_bytes(&a.to_bytes().unwrap()).unwrap();
            assert_eq!(b.scales(), scales.to_vec());
            for &v in &xs[cut..] {
                assert_eq!(
                    a.process(&[v], None).unwrap(),
                    b.process(&[v], None).unwrap()
                );
            }
        }
        // Version 2 (before scales): the forest, then the state, no scales, no state length.
        let mut a = AnomalyDetector::new(config(&[])).unwrap();
        for &v in &xs[..1500] {
            a.process(&[v], None).unwrap();
        }
        let forest = a.forest.to_bytes();
        let mut v2 = b"RCFD\x02".to_vec();
        v2.extend_from_slice(&(forest.len() as u64).to_le_bytes());
        v2.extend_from_slice(&forest);
        v2.extend_from_slice(&bincode::serialize(&a.state).unwrap());
        let crc = crc32fast::hash(&v2);
        v2.extend_from_slice(&crc.to_le_bytes());
        let mut b = AnomalyDetector::from_bytes(&v2).unwrap();
        assert!(b.scales().is_empty());
        for &v in &xs[1500..] {
            assert_eq!(
                a.process(&[v], None).unwrap(),
                b.process(&[v], None).unwrap()
            );
        }
    }

    #[test]
    fn process_many_is_the_loop_across_chunks_of_wide_rows() {
        // 70 dimensions: chunks of 936 rows; a level shift in some dimensions from row 1500.
        let d = 70;
        let mut c = config(&[s(4, 2), s(16, 1)]);
        c.forest.dimensions = d;
        c.forest.shingle_size = 2;
        c.thresholder.warmup = 20;
        c.thresholder.alert_spacing = 0;
        let data: Vec<f64> = (0..2200 * d)
            .map(|k| {
                let (t, j) = (k / d, k % d);
                let v = ((t * 7 + j * 13) % 17) as f64 / 17.0;
                if t >= 1500 && j < 5 {
                    v + 1.5
                } else {
                    v
                }
            })
            .collect();
        let mut a = AnomalyDetector::new(c.clone()).unwrap();
        let mut b = AnomalyDetector::new(c).unwrap();
        let mut many = vec![];
        a.process_many(&data, None, |_, r| many.push(r.clone()))
            .unwrap();
        let looped: Vec<_> = data
            .chunks_exact(d)
            .map(|x| b.process(x, None).unwrap())
            .collect();
        // Compared as text: `expected` holds NaN for the dimensions that did not cause an alert.
        assert_eq!(many.len(), looped.len());
        for (i, (m, l)) in many.iter().zip(&looped).enumerate() {
            assert_eq!(format!("{m:?}"), format!("{l:?}"), "row {i}");
        }
        assert!(many.iter().any(|r| r.is_anomaly() && r.scale > 1));
        assert!(many.iter().any(|r| r.is_anomaly() && r.scale == 1));
    }

    /// Re-seals detector bytes of version 3 with the scales replaced by `saved`.
    fn with_scales(det: &AnomalyDetector, saved: &SavedScales) -> Vec<u8> {
        let bytes = det.to_bytes().unwrap();
        let flen = u64::from_le_bytes(bytes[5..13].try_into().unwrap()) as usize;
        let at = 13 + flen;
        let slen = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
        let mut out = bytes[..at + 8 + slen].to_vec();
        out.extend_from_slice(&bincode::serialize(saved).unwrap());
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    #[test]
    fn inconsistent_scales_are_corrupt_state() {
        let mut det = AnomalyDetector::new(config(&[s(16, 4)])).unwrap();
        for &v in &held(700, 504) {
            det.process(&[v], None).unwrap();
        }
        let good = det.scales.saved();
        assert!(AnomalyDetector::from_bytes(&with_scales(&det, &good)).is_ok());
        let other = AnomalyDetector::new(config(&[s(16, 8)])).unwrap();
        let mut bad = vec![good.clone(); 8];
        bad[0].streams[0].count = 16;
        bad[1].streams[0].sum = vec![0.0; 2];
        bad[2].streams[0].sum = vec![f64::NAN];
        bad[3].streams[0].shingled = vec![1.0; 5];
        bad[4].streams[0].block = 1;
        bad[5].streams[0].forest = other.scales.saved().streams[0].forest.clone();
        bad[6].streams[0].forest.truncate(100);
        bad[7].streams.push(good.streams[0].clone());
        for (k, saved) in bad.iter().enumerate() {
            match AnomalyDetector::from_bytes(&with_scales(&det, saved)) {
                Err(RcfError::Corrupt(_)) => {}
                other => panic!("case {k}: {:?}", other.map(|_| ())),
            }
        }
        // Random scales sections behind a valid header and checksum: refused, never a panic.
        let mut seed = 7u64;
        for n in [0usize, 1, 8, 9, 40, 500] {
            let junk: Vec<u8> = (0..n)
                .map(|_| (crate::rng::splitmix64(&mut seed) & 0xff) as u8)
                .collect();
            let bytes = det.to_bytes().unwrap();
            let cut = bytes.len() - 4 - bincode::serialize(&good).unwrap().len();
            let mut out = bytes[..cut].to_vec();
            out.extend_from_slice(&junk);
            let crc = crc32fast::hash(&out);
            out.extend_from_slice(&crc.to_le_bytes());
            assert!(AnomalyDetector::from_bytes(&out).is_err());
        }
    }
}
