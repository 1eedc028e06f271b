//! The online thresholder: turns a stream of RCF scores into graded alerts.
//!
//! The scores' mean and variance are tracked with exponential time decay (horizon `horizon`
//! points). A score is anomalous when it is at least `threshold = max(score_floor, mean +
//! z_factor * deviation)`, once `warmup` scores have been seen. Anomalous points come in
//! episodes: the first one raises an alert (grade > 0), the following ones belong to the same
//! episode until `episode_gap` consecutive scores stay below the threshold. Scores above the
//! threshold enter the statistics capped at the threshold, so an episode does not teach the
//! thresholder that anomalies are normal.
use bincode::Options;
use serde::{Deserialize, Serialize};

use crate::error::{RcfError, Result};

/// Parameters of the thresholder (defaults chosen for streams in general).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ThresholderConfig {
    /// Deviations above the mean score at which a score is anomalous (default 4.0).
    pub z_factor: f64,
    /// Absolute floor of the threshold, in RCF score units (default 1.0: about the score of a
    /// point that isolates at average depth).
    pub score_floor: f64,
    /// Horizon (points) of the time-decayed score statistics (default 2000).
    pub horizon: f64,
    /// Scores observed before any alert (default 100).
    pub warmup: usize,
    /// Consecutive scores below the threshold that end an episode (default 20).
    pub episode_gap: usize,
    /// Scores after an alert during which no new alert is raised (default 256, about one
    /// forest sample: the sample still holds the regime before the anomaly, so scores stay
    /// raised for the same cause); an anomalous score then joins an episode without an alert.
    pub alert_spacing: usize,
}

impl Default for ThresholderConfig {
    fn default() -> Self {
        ThresholderConfig {
            z_factor: 4.0,
            score_floor: 1.0,
            horizon: 2000.0,
            warmup: 100,
            episode_gap: 20,
            alert_spacing: 256,
        }
    }
}

impl ThresholderConfig {
    /// Checks every parameter; the message names the parameter and the accepted range.
    pub fn validate(&self) -> Result<()> {
        if !(self.z_factor.is_finite() && self.z_factor > 0.0) {
            return Err(RcfError::param(
                "z_factor",
                format!("must be a positive number, got {}", self.z_factor),
            ));
        }
        if !(self.score_floor.is_finite() && self.score_floor >= 0.0) {
            return Err(RcfError::param(
                "score_floor",
                format!("must be a finite number >= 0, got {}", self.score_floor),
            ));
        }
        if !(self.horizon.is_finite() && self.horizon >= 1.0) {
            return Err(RcfError::param(
                "horizon",
                format!("must be a finite number >= 1, got {}", self.horizon),
            ));
        }
        if self.warmup > 1_000_000_000 {
            return Err(RcfError::param(
                "warmup",
                format!("must be at most 1e9, got {}", self.warmup),
            ));
        }
        if self.episode_gap == 0 || self.episode_gap > 1_000_000_000 {
            return Err(RcfError::param(
                "episode_gap",
                format!("must be between 1 and 1e9, got {}", self.episode_gap),
            ));
        }
        if self.alert_spacing > 1_000_000_000 {
            return Err(RcfError::param(
                "alert_spacing",
                format!("must be at most 1e9, got {}", self.alert_spacing),
            ));
        }
        Ok(())
    }
}

const MAGIC: &[u8; 8] = b"RCFTHRS\0";
const VERSION: u32 = 1;

/// Scores kept to point back to the start of an anomaly.
pub const LOOKBACK: usize = 64;

/// What the thresholder decided about one score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// The threshold in force for this score (infinite during warm-up).
    pub threshold: f64,
    /// 0 unless this score raises an alert; then in (0, 1], 0.5 at the threshold.
    pub grade: f64,
    /// Whether the point lies in an anomaly episode (the alert's or a later point of it).
    pub in_episode: bool,
    /// For an alert: how many points back (<= 0) the scores started to rise.
    pub relative_index: i64,
    /// How settled the statistics are, in [0, 1].
    pub confidence: f64,
}

/// Time-decayed score statistics, warm-up and episodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thresholder {
    config: ThresholderConfig,
    weight: f64,
    sum: f64,
    sum_sq: f64,
    count: u64,
    in_episode: bool,
    below: usize,
    recent: Vec<f64>,
    recent_at: usize,
    since_alert: u64,
}

impl Thresholder {
    /// A thresholder that has seen nothing.
    pub fn new(config: ThresholderConfig) -> Result<Self> {
        config.validate()?;
        Ok(Thresholder {
            config,
            weight: 0.0,
            sum: 0.0,
            sum_sq: 0.0,
            count: 0,
            in_episode: false,
            below: 0,
            recent: Vec::with_capacity(LOOKBACK),
            recent_at: 0,
            since_alert: u64::MAX,
        })
    }

    /// Its parameters.
    pub fn config(&self) -> &ThresholderConfig {
        &self.config
    }

    /// Whether an anomaly episode is going on (no new alert until it ends).
    pub fn in_episode(&self) -> bool {
        self.in_episode
    }

    /// Whether the next score could raise an alert (warm-up over, no episode going on, the
    /// last alert far enough back).
    pub fn alert_possible(&self) -> bool {
        !self.in_episode
            && self.since_alert.saturating_add(1) > self.config.alert_spacing as u64
            && self.threshold().is_finite()
    }

    /// Whether any of the next `m` scores could raise an alert; false means certainly none:
    /// still warming up for all of them (the threshold is infinite until `warmup` scores were
    /// learned), too close to the last alert for all of them (`since_alert` grows by one per
    /// score and must pass `alert_spacing`), or inside an episode that cannot end before them
    /// (it needs `episode_gap - below` more scores below the threshold).
    pub fn can_alert_within(&self, m: u64) -> bool {
        if m == 0 || self.count.saturating_add(m) <= self.config.warmup as u64 {
            return false;
        }
        if self.since_alert.saturating_add(m) <= self.config.alert_spacing as u64 {
            return false;
        }
        !(self.in_episode && m <= self.config.episode_gap.saturating_sub(self.below) as u64)
    }

    /// Scores seen (zeros of a forest that is not ready are not counted).
    pub fn count(&self) -> u64 {
        self.count
    }

    fn mean_dev(&self) -> (f64, f64) {
        if self.weight <= 0.0 {
            return (0.0, 0.0);
        }
        let mean = self.sum / self.weight;
        let var = (self.sum_sq / self.weight - mean * mean).max(0.0);
        (mean, var.sqrt())
    }

    /// The threshold for the next score.
    pub fn threshold(&self) -> f64 {
        if self.count < self.config.warmup as u64 || self.count == 0 {
            return f64::INFINITY;
        }
        let (mean, dev) = self.mean_dev();
        (mean + self.config.z_factor * dev).max(self.config.score_floor)
    }

    /// Checks a restored state (lengths and finiteness) so that nothing later can panic.
    pub(crate) fn check(&self) -> std::result::Result<(), String> {
        self.config.validate().map_err(|e| e.to_string())?;
        if self.recent.len() > LOOKBACK || self.recent_at >= LOOKBACK.max(1) {
            return Err("thresholder history out of range".into());
        }
        if !(self.weight.is_finite()
            && self.weight >= 0.0
            && self.sum.is_finite()
            && self.sum_sq.is_finite()
            && self.sum_sq >= 0.0)
        {
            return Err("thresholder statistics are not finite".into());
        }
        if self.below >= self.config.episode_gap || (self.below > 0 && !self.in_episode) {
            return Err("thresholder episode counter out of range".into());
        }
        if self.recent.len() < LOOKBACK && self.recent_at != self.recent.len() % LOOKBACK {
            return Err("thresholder history position out of range".into());
        }
        Ok(())
    }

    fn recent_back(&self, k: usize) -> Option<f64> {
        // k = 1: the score before the current one.
        let n = self.recent.len();
        if k == 0 || k > n {
            return None;
        }
        let idx = (self.recent_at + LOOKBACK - k) % LOOKBACK;
        self.recent.get(idx).copied()
    }

    /// Checks scores given from outside (all before any is learned): each must be a finite
    /// number >= 0 (0: the forest was not ready; such a score is neither graded nor learned).
    pub fn check_scores(scores: &[f64]) -> Result<()> {
        if let Some(row) = scores.iter().position(|s| !(s.is_finite() && *s >= 0.0)) {
            return Err(RcfError::InvalidValue {
                what: "score",
                row,
                column: 0,
                message: format!(
                    "expected a finite RCF score >= 0 (0 while the forest is not ready), got {}",
                    scores[row]
                ),
            });
        }
        Ok(())
    }

    /// The full state (parameters, statistics, episode, recent scores) as versioned bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let payload = bincode::DefaultOptions::new()
            .with_fixint_encoding()
            .with_little_endian()
            .serialize(self)
            .map_err(|e| RcfError::Internal(e.to_string()))?;
        Ok(crate::serialize::seal(MAGIC, VERSION, &payload))
    }

    /// Restores [`Thresholder::to_bytes`] output; damaged bytes give `RcfError::Corrupt`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let (_, payload) = crate::serialize::unseal(bytes, MAGIC, "Thresholder", |v| {
            if v == VERSION {
                Ok(())
            } else {
                Err(RcfError::Corrupt(format!(
                    "Thresholder state version {v} is not supported (expected {VERSION})"
                )))
            }
        })?;
        let t: Thresholder = bincode::DefaultOptions::new()
            .with_fixint_encoding()
            .with_little_endian()
            .with_limit(payload.len() as u64)
            .deserialize(payload)
            .map_err(|e| RcfError::Corrupt(format!("Thresholder state: {e}")))?;
        t.check()
            .map_err(|e| RcfError::Corrupt(format!("Thresholder state: {e}")))?;
        Ok(t)
    }

    /// Decides about `score` (a forest score, 0 while the forest is not ready), then learns it.
    pub fn decide(&mut self, score: f64) -> Decision {
        if score <= 0.0 || !score.is_finite() {
            // The forest is not ready yet: nothing to learn from.
            return Decision {
                threshold: f64::INFINITY,
                grade: 0.0,
                in_episode: false,
                relative_index: 0,
                confidence: 0.0,
            };
        }
        let threshold = self.threshold();
        let (mean, dev) = self.mean_dev();
        self.since_alert = self.since_alert.saturating_add(1);
        let above = score >= threshold;
        let mut grade = 0.0;
        let mut relative_index = 0i64;
        if self.in_episode {
            if above {
                self.below = 0;
            } else {
                self.below += 1;
                if self.below >= self.config.episode_gap {
                    self.in_episode = false;
                    self.below = 0;
                }
            }
        } else if above && self.since_alert <= self.config.alert_spacing as u64 {
            // Too soon after the last alert: an episode without a new alert.
            self.in_episode = true;
            self.below = 0;
        } else if above {
            self.in_episode = true;
            self.below = 0;
            self.since_alert = 0;
            let span = (threshold - mean).max(1e-9);
            grade = ((score - mean) / (2.0 * span)).clamp(1e-6, 1.0);
            // Point back while the earlier scores were already elevated (above mean + dev).
            let rise = mean + dev;
            let mut k = 1;
            while let Some(s) = self.recent_back(k) {
                if s < rise {
                    break;
                }
                k += 1;
            }
            relative_index = -((k - 1) as i64);
        }
        let in_episode = self.in_episode || grade > 0.0;
        // Learn the score, capped at the threshold in force.
        let learned = if threshold.is_finite() {
            score.min(threshold)
        } else {
            score
        };
        let keep = 1.0 - 1.0 / self.config.horizon;
        self.weight = self.weight * keep + 1.0;
        self.sum = self.sum * keep + learned;
        self.sum_sq = self.sum_sq * keep + learned * learned;
        self.count = self.count.saturating_add(1);
        if self.recent.len() < LOOKBACK {
            self.recent.push(score);
        } else if let Some(slot) = self.recent.get_mut(self.recent_at) {
            *slot = score;
        }
        self.recent_at = (self.recent_at + 1) % LOOKBACK;
        let confidence = (self.weight / self.config.horizon.min(1e9)).min(1.0)
            * if threshold.is_finite() { 1.0 } else { 0.0 };
        Decision {
            threshold,
            grade,
            in_episode,
            relative_index,
            confidence,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_one_alert_per_episode() {
        let cfg = ThresholderConfig {
            warmup: 10,
            episode_gap: 3,
            alert_spacing: 0,
            ..ThresholderConfig::default()
        };
        let mut t = Thresholder::new(cfg).unwrap();
        for i in 0..50 {
            let d = t.decide(0.8 + 0.01 * f64::from(i % 3));
            assert_eq!(d.grade, 0.0);
            if i < 10 {
                assert!(d.threshold.is_infinite());
            }
        }
        let a = t.decide(5.0);
        assert!(a.grade > 0.0 && a.grade <= 1.0 && a.in_episode);
        // still in the episode: no second alert
        let b = t.decide(5.0);
        assert_eq!(b.grade, 0.0);
        assert!(b.in_episode);
        for _ in 0..3 {
            t.decide(0.8);
        }
        let c = t.decide(5.0);
        assert!(c.grade > 0.0, "a new episode after the gap");
    }

    #[test]
    fn relative_index_points_back_to_the_rise() {
        let cfg = ThresholderConfig {
            warmup: 10,
            score_floor: 0.0,
            ..ThresholderConfig::default()
        };
        let mut t = Thresholder::new(cfg).unwrap();
        for i in 0..200 {
            t.decide(1.0 + 0.05 * f64::from(i % 2));
        }
        // Two elevated scores below the threshold, then the alert.
        let th = t.threshold();
        t.decide(th - 0.01);
        t.decide(th - 0.01);
        let d = t.decide(th + 1.0);
        assert!(d.grade > 0.0);
        assert_eq!(d.relative_index, -2);
    }

    #[test]
    fn bytes_continue_exactly_and_damage_is_rejected() {
        let mut a = Thresholder::new(ThresholderConfig {
            warmup: 10,
            ..ThresholderConfig::default()
        })
        .unwrap();
        let scores: Vec<f64> = (0..300)
            .map(|i| {
                if i % 97 == 50 {
                    6.0
                } else {
                    0.8 + 0.01 * f64::from(i % 7)
                }
            })
            .collect();
        for s in &scores[..150] {
            a.decide(*s);
        }
        let bytes = a.to_bytes().unwrap();
        let mut b = Thresholder::from_bytes(&bytes).unwrap();
        assert_eq!(a, b);
        for s in &scores[150..] {
            assert_eq!(a.decide(*s), b.decide(*s));
        }
        for cut in [0, 7, 23, bytes.len() / 2, bytes.len() - 1] {
            assert!(matches!(
                Thresholder::from_bytes(&bytes[..cut]),
                Err(RcfError::Corrupt(_))
            ));
        }
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(matches!(
            Thresholder::from_bytes(&flipped),
            Err(RcfError::Corrupt(_))
        ));
        assert!(Thresholder::check_scores(&[0.0, 1.5]).is_ok());
        for bad in [f64::NAN, f64::INFINITY, -0.5] {
            assert!(Thresholder::check_scores(&[1.0, bad]).is_err());
        }
    }

    #[test]
    fn inconsistent_state_is_refused() {
        let good = Thresholder::new(ThresholderConfig::default()).unwrap();
        let mut bad = [good.clone(), good.clone(), good.clone(), good];
        bad[0].below = 20; // == episode_gap
        bad[1].below = 3; // counting outside an episode
        bad[2].recent_at = 5; // with an empty history
        bad[3].sum = f64::NAN;
        for t in bad {
            let bytes = t.to_bytes().unwrap();
            assert!(matches!(
                Thresholder::from_bytes(&bytes),
                Err(RcfError::Corrupt(_))
            ));
        }
    }

    #[test]
    fn no_new_alert_within_the_spacing() {
        let cfg = ThresholderConfig {
            warmup: 10,
            episode_gap: 2,
            alert_spacing: 30,
            ..ThresholderConfig::default()
        };
        let mut t = Thresholder::new(cfg).unwrap();
        for i in 0..100 {
            t.decide(0.8 + 0.01 * f64::from(i % 3));
        }
        assert!(t.alert_possible());
        assert!(t.decide(5.0).grade > 0.0);
        for _ in 0..5 {
            t.decide(0.8);
        }
        assert!(!t.in_episode() && !t.alert_possible());
        // 7 scores after the alert: anomalous, but an episode without an alert.
        let d = t.decide(5.0);
        assert!(d.grade == 0.0 && d.in_episode);
        for _ in 0..30 {
            t.decide(0.8);
        }
        assert!(t.alert_possible());
        assert!(t.decide(5.0).grade > 0.0, "a new alert after the spacing");
    }

    #[test]
    fn rejects_bad_parameters() {
        for cfg in [
            ThresholderConfig {
                z_factor: f64::NAN,
                ..ThresholderConfig::default()
            },
            ThresholderConfig {
                score_floor: -1.0,
                ..ThresholderConfig::default()
            },
            ThresholderConfig {
                horizon: 0.5,
                ..ThresholderConfig::default()
            },
            ThresholderConfig {
                episode_gap: 0,
                ..ThresholderConfig::default()
            },
        ] {
            assert!(matches!(
                Thresholder::new(cfg),
                Err(RcfError::InvalidParameter { .. })
            ));
        }
    }
}
