//! The forest: shingling, the shared point store, one component (tree + sampler + generator) per
//! tree, scoring and learning, serial or in parallel across trees with identical results.
use serde::{Deserialize, Serialize};

use crate::config::{ForestConfig, SamplerKind, ScoringKind};
use crate::error::{RcfError, Result};
use crate::input::{matrix_to_f32, row_to_f32, value_limit};
use crate::lanes::GROUP;
use crate::point_store::PointStore;
use crate::rng::splitmix64;
use crate::sampler::{Change, Component};
use crate::scratch::{with_scratch, Scratch};
use crate::shingle::Shingle;

/// Rows handled per parallel round of a batch call; bounds the temporary memory.
const CHUNK: usize = 2048;
const NO_POINT: u32 = u32::MAX;

/// Per-dimension attribution of an anomaly score (AWS's DiVector): `high[i]` is the share of the
/// score due to dimension `i` being above what the forest expects, `low[i]` below.
#[derive(Clone, Debug, PartialEq)]
pub struct DiVector {
    /// Contributions of values above the expected range, per input dimension.
    pub high: Vec<f64>,
    /// Contributions of values below the expected range, per input dimension.
    pub low: Vec<f64>,
}

impl DiVector {
    /// Sum of all parts: the anomaly score.
    pub fn total(&self) -> f64 {
        self.high.iter().sum::<f64>() + self.low.iter().sum::<f64>()
    }
}

/// A robust random cut forest over a stream.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Forest {
    pub(crate) config: ForestConfig,
    pub(crate) store: PointStore,
    pub(crate) components: Vec<Component>,
    pub(crate) shingle: Shingle,
    pub(crate) entries_seen: u64,
    pub(crate) points_seen: u64,
}

/// What one tree did with a point of a one-point call.
#[derive(Clone, Copy, Default)]
struct Outcome {
    score: f64,
    change: Change,
}

/// What the serial prelude of a batch decided for one row.
struct Step {
    id: u32,
    t: u64,
    ready: bool,
}

impl Forest {
    /// A new forest; the configuration is validated first.
    pub fn new(config: ForestConfig) -> Result<Self> {
        config.validate()?;
        let seed = config.seed.unwrap_or_else(entropy_seed);
        let mut sm = seed;
        let dim = config.point_dimensions();
        let window = config.sampler == SamplerKind::Window;
        let components = (0..config.num_trees)
            .map(|_| Component::new(dim, config.sample_size, window, splitmix64(&mut sm)))
            .collect();
        Ok(Forest {
            store: PointStore::new(dim),
            shingle: Shingle::new(config.dimensions, config.shingle_size),
            components,
            entries_seen: 0,
            points_seen: 0,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ForestConfig {
        &self.config
    }

    /// Changes the most threads one call works on (`None`: all cores, 1: serial; see
    /// [`ForestConfig::threads`]). Results do not depend on it.
    pub fn set_threads(&mut self, threads: Option<usize>) -> Result<()> {
        let mut c = self.config.clone();
        c.threads = threads;
        c.validate()?;
        self.config = c;
        Ok(())
    }

    /// Observations given to `update` so far.
    pub fn entries_seen(&self) -> u64 {
        self.entries_seen
    }

    /// Shingled points learned so far.
    pub fn points_seen(&self) -> u64 {
        self.points_seen
    }

    /// True once `output_after` points were learned: scores are reported from then on.
    pub fn is_ready(&self) -> bool {
        self.points_seen >= self.config.effective_output_after() as u64
    }

    /// The components (tree, sampler, generator), in tree order: for the dev tools and tests.
    #[doc(hidden)]
    pub fn components(&self) -> &[Component] {
        &self.components
    }

    /// The shared point store: for the dev tools and tests.
    #[doc(hidden)]
    pub fn store(&self) -> &PointStore {
        &self.store
    }

    /// Approximate heap bytes held by the forest.
    pub fn heap_bytes(&self) -> usize {
        self.store.heap_bytes()
            + self
                .components
                .iter()
                .map(Component::heap_bytes)
                .sum::<usize>()
            + self.components.capacity() * std::mem::size_of::<Component>()
    }

    /// Largest magnitude of an input value ([`value_limit`] of the shingled point size).
    pub fn value_limit(&self) -> f64 {
        value_limit(self.config.point_dimensions())
    }

    fn observation(&self, x: &[f64]) -> Result<Vec<f32>> {
        let mut v = vec![0f32; self.config.dimensions];
        row_to_f32(x, self.config.dimensions, 0, self.value_limit(), &mut v)?;
        Ok(v)
    }

    #[inline]
    fn tree_score(&self, c: &Component, q: &[f32], sc: &mut Scratch) -> f64 {
        tree_score(self.config.scoring, c, &self.store, q, sc)
    }

    fn score_point(&self, q: &[f32]) -> f64 {
        let scoring = self.config.scoring;
        let store = &self.store;
        let mut trees: Vec<&Component> = self.components.iter().collect();
        let per_tree = crate::parallel::helpers::map_blocks(
            self.config.threads,
            &mut trees,
            GROUP,
            |share, scores: &mut [f64]| {
                with_scratch(|sc| scores_of_share(scoring, share, store, q, sc, scores));
            },
        );
        let mut total = 0.0;
        for s in per_tree {
            total += s;
        }
        total / self.components.len() as f64
    }

    /// Anomaly score of observation `x` (after shingling with the recent history); the forest
    /// is not changed. 0 before the forest is ready.
    pub fn score(&self, x: &[f64]) -> Result<f64> {
        let x = self.observation(x)?;
        let mut q = Vec::new();
        if !self.is_ready() || !self.shingle.point_for(&x, &mut q) {
            return Ok(0.0);
        }
        Ok(self.score_point(&q))
    }

    /// Learns observation `x`.
    pub fn update(&mut self, x: &[f64]) -> Result<()> {
        let x = self.observation(x)?;
        self.learn(&x, false).map(|_| ())
    }

    /// Scores observation `x`, then learns it: the streaming call.
    pub fn score_update(&mut self, x: &[f64]) -> Result<f64> {
        let x = self.observation(x)?;
        self.learn(&x, true)
    }

    /// The bookkeeping of one observation before the trees see it: shingling, counters, and the
    /// shingled point (left in `q`) added to the store. `want_score`: the caller reports a
    /// score for it (given once the forest is ready).
    fn admit(&mut self, x: &[f32], q: &mut Vec<f32>, want_score: bool) -> Step {
        let step = if self.shingle.point_for(x, q) {
            let s = Step {
                id: self.store.add(q),
                t: self.points_seen,
                ready: want_score && self.is_ready(),
            };
            self.points_seen += 1;
            s
        } else {
            Step {
                id: NO_POINT,
                t: 0,
                ready: false,
            }
        };
        self.shingle.push(x);
        self.entries_seen += 1;
        step
    }

    /// The bookkeeping after the trees took new points: the points of `added` (one entry per
    /// new leaf) gain a reference, then those of `removed` (one per leaf gone) lose one, then
    /// new points that no tree kept (`new`) are freed. Gains come first so that a point added
    /// and removed within one batch never drops to zero on the way; then a failed tree's
    /// message becomes the error.
    fn settle(
        &mut self,
        added: impl IntoIterator<Item = u32>,
        removed: impl IntoIterator<Item = u32>,
        new: impl IntoIterator<Item = u32>,
        failure: Option<String>,
    ) -> Result<()> {
        for id in added {
            self.store.inc(id);
        }
        for id in removed {
            self.store.dec(id);
        }
        for id in new {
            self.store.release_if_unused(id);
        }
        failure.map_or(Ok(()), |e| Err(RcfError::Internal(e)))
    }

    fn learn(&mut self, x: &[f32], want_score: bool) -> Result<f64> {
        let mut q = Vec::new();
        let step = self.admit(x, &mut q, want_score);
        let Step { id, ready, .. } = step;
        if id == NO_POINT {
            return Ok(0.0);
        }
        let how = Learning::of(&self.config, &self.store);
        let failure = std::sync::Mutex::new(None);
        let per_tree = crate::parallel::helpers::map_blocks(
            self.config.threads,
            &mut self.components,
            GROUP,
            |share, outcomes: &mut [Outcome]| {
                with_scratch(|sc| {
                    if let Err(e) = learn_point(&how, &step, &q, share, outcomes, sc) {
                        *failure
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
                    }
                });
            },
        );
        let mut total = 0.0;
        for o in &per_tree {
            total += o.score;
        }
        let failure = failure
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.settle(
            per_tree.iter().filter(|o| o.change.added).map(|_| id),
            per_tree.iter().filter_map(|o| o.change.removed),
            [id],
            failure,
        )?;
        Ok(if ready {
            total / self.components.len() as f64
        } else {
            0.0
        })
    }

    /// Scores each row of `data` (row-major, `dimensions` columns) without learning. Rows are
    /// consecutive observations: row i is shingled with the history and rows before it.
    pub fn score_many(&self, data: &[f64]) -> Result<Vec<f64>> {
        let d = self.config.dimensions;
        let xs = matrix_to_f32(data, d, self.value_limit())?;
        let n = xs.len() / d;
        if !self.is_ready() {
            return Ok(vec![0.0; n]);
        }
        let mut history = self.shingle.clone();
        let mut out = Vec::with_capacity(n);
        for chunk in xs.chunks(CHUNK * d) {
            let mut points: Vec<Option<Vec<f32>>> = Vec::with_capacity(chunk.len() / d);
            for x in chunk.chunks(d) {
                let mut q = Vec::new();
                points.push(history.point_for(x, &mut q).then_some(q));
                history.push(x);
            }
            let per_tree = crate::parallel::pool::map(self.config.threads, &self.components, |c| {
                with_scratch(|sc| {
                    points
                        .iter()
                        .map(|q| q.as_ref().map_or(0.0, |q| self.tree_score(c, q, sc)))
                        .collect::<Vec<f64>>()
                })
            });
            sum_in_tree_order(&per_tree, points.len(), self.components.len(), &mut out);
        }
        Ok(out)
    }

    /// Scores then learns each row of `data` in turn; the same scores as `score_update` row by
    /// row, computed with every tree consuming the batch in parallel.
    pub fn score_update_many(&mut self, data: &[f64]) -> Result<Vec<f64>> {
        let d = self.config.dimensions;
        let xs = matrix_to_f32(data, d, self.value_limit())?;
        let mut out = Vec::with_capacity(xs.len() / d);
        for chunk in xs.chunks(CHUNK * d) {
            self.learn_chunk(chunk, &mut out)?;
        }
        Ok(out)
    }

    /// Learns each row of `data` in turn (no scores).
    pub fn update_many(&mut self, data: &[f64]) -> Result<()> {
        let d = self.config.dimensions;
        let xs = matrix_to_f32(data, d, self.value_limit())?;
        let mut sink = Vec::new();
        for chunk in xs.chunks(CHUNK * d) {
            sink.clear();
            self.learn_chunk_inner(chunk, &mut sink, false)?;
        }
        Ok(())
    }

    fn learn_chunk(&mut self, xs: &[f32], out: &mut Vec<f64>) -> Result<()> {
        self.learn_chunk_inner(xs, out, true)
    }

    fn learn_chunk_inner(&mut self, xs: &[f32], out: &mut Vec<f64>, want: bool) -> Result<()> {
        let d = self.config.dimensions;
        let mut q = Vec::new();
        let steps: Vec<Step> = xs.chunks(d).map(|x| self.admit(x, &mut q, want)).collect();
        let how = Learning::of(&self.config, &self.store);
        let results =
            crate::parallel::pool::map_mut(self.config.threads, &mut self.components, |c| {
                with_scratch(|sc| learn_run(&how, &steps, c, sc))
            });
        let mut per_tree = Vec::with_capacity(results.len());
        let mut failure = None;
        for r in results {
            match r {
                Ok(done) => per_tree.push(done),
                Err(e) => failure = Some(e),
            }
        }
        self.settle(
            per_tree
                .iter()
                .flat_map(|(_, added, _)| added.iter().copied()),
            per_tree
                .iter()
                .flat_map(|(_, _, removed)| removed.iter().copied()),
            steps.iter().map(|s| s.id).filter(|&id| id != NO_POINT),
            failure,
        )?;
        if want {
            let scores: Vec<Vec<f64>> = per_tree.into_iter().map(|(s, _, _)| s).collect();
            sum_in_tree_order(&scores, steps.len(), self.components.len(), out);
        }
        Ok(())
    }

    /// Score of a whole shingled point `q` (`dimensions * shingle_size` values, oldest
    /// observation first), without the forest's shingle history; 0 before the forest is ready.
    pub fn score_shingled(&self, q: &[f64]) -> Result<f64> {
        let mut v = vec![0f32; self.config.point_dimensions()];
        row_to_f32(q, v.len(), 0, self.value_limit(), &mut v)?;
        Ok(if self.is_ready() {
            self.score_point(&v)
        } else {
            0.0
        })
    }

    /// Attribution of a whole shingled point `q` per value of the point (positions not summed).
    pub fn attribution_shingled(&self, q: &[f64]) -> Result<DiVector> {
        let pd = self.config.point_dimensions();
        let mut v = vec![0f32; pd];
        row_to_f32(q, pd, 0, self.value_limit(), &mut v)?;
        let mut high = vec![0.0; pd];
        let mut low = vec![0.0; pd];
        if self.is_ready() {
            with_scratch(|sc| {
                for c in &self.components {
                    c.tree
                        .add_attribution(&self.store, &v, sc, &mut high, &mut low);
                }
            });
            let n = self.components.len() as f64;
            high.iter_mut().chain(low.iter_mut()).for_each(|x| *x /= n);
        }
        Ok(DiVector { high, low })
    }

    /// Attribution of the score of `x` per input dimension (shingle positions summed).
    pub fn attribution(&self, x: &[f64]) -> Result<DiVector> {
        let x = self.observation(x)?;
        let dims = self.config.dimensions;
        let mut result = DiVector {
            high: vec![0.0; dims],
            low: vec![0.0; dims],
        };
        let mut q = Vec::new();
        if !self.is_ready() || !self.shingle.point_for(&x, &mut q) {
            return Ok(result);
        }
        let pd = q.len();
        let mut high = vec![0.0; pd];
        let mut low = vec![0.0; pd];
        with_scratch(|sc| {
            for c in &self.components {
                c.tree
                    .add_attribution(&self.store, &q, sc, &mut high, &mut low);
            }
        });
        let n = self.components.len() as f64;
        for (i, (h, l)) in high.iter().zip(&low).enumerate() {
            result.high[i % dims] += h / n;
            result.low[i % dims] += l / n;
        }
        Ok(result)
    }
}

/// What every tree needs to learn points: the store and the sampler's and score's parameters.
struct Learning<'a> {
    store: &'a PointStore,
    scoring: ScoringKind,
    lambda: f64,
    cap: usize,
}

impl<'a> Learning<'a> {
    fn of(config: &ForestConfig, store: &'a PointStore) -> Self {
        Learning {
            store,
            scoring: config.scoring,
            lambda: config.effective_time_decay(),
            cap: config.sample_size,
        }
    }
}

/// One share of the trees (at most [`GROUP`]) takes the point `q` of `step`: scores when the
/// step is ready (with the RCF score, a tree that keeps `q` scores it while inserting it), then
/// each tree whose sampler keeps `q` inserts it. Every tree is handled; the last failure is
/// returned.
fn learn_point(
    how: &Learning,
    step: &Step,
    q: &[f32],
    share: &mut [Component],
    outcomes: &mut [Outcome],
    sc: &mut Scratch,
) -> std::result::Result<(), String> {
    let &Learning {
        store,
        scoring,
        lambda,
        cap,
    } = how;
    let mut scores = [0.0; GROUP];
    let scores = &mut scores[..share.len()];
    let mut keeps = [false; GROUP];
    for (k, c) in keeps.iter_mut().zip(share.iter()) {
        *k = c.keeps(step.t, cap);
    }
    let by_insert = step.ready && scoring == ScoringKind::Rcf;
    if by_insert {
        crate::lockstep::rcf_scores_except(
            share,
            |c: &Component| &c.tree,
            |i| keeps[i],
            store,
            q,
            sc,
            scores,
        );
    } else if step.ready {
        scores_of_share(scoring, share, store, q, sc, scores);
    }
    let mut failure = Ok(());
    for (j, (((c, s), o), &keep)) in share
        .iter_mut()
        .zip(scores)
        .zip(outcomes)
        .zip(&keeps)
        .enumerate()
    {
        if keep {
            let own = by_insert.then_some(&mut *s);
            // The lockstep walk descended this tree too (one group: a share has at most GROUP
            // trees): its insertion starts from that leaf.
            let walked = if by_insert {
                crate::lockstep::walked(sc, j)
            } else {
                None
            };
            match c.update(store, step.id, step.t, lambda, cap, sc, own, walked) {
                Ok(change) => o.change = change,
                Err(e) => failure = Err(e),
            }
        }
        o.score = *s;
    }
    failure
}

/// One tree's scores of a batch's points, the points it added and the points it removed.
type TreeBatch = (Vec<f64>, Vec<u32>, Vec<u32>);

/// One tree takes a batch's points in turn (`steps`): the runs of points it does not keep are
/// scored together (the tree does not change in between), each point it keeps is scored (by
/// its insertion, with the RCF score) and inserted.
fn learn_run(
    how: &Learning,
    steps: &[Step],
    c: &mut Component,
    sc: &mut Scratch,
) -> std::result::Result<TreeBatch, String> {
    let &Learning {
        store,
        scoring,
        lambda,
        cap,
    } = how;
    let mut scores = vec![0.0; steps.len()];
    let mut added = Vec::new();
    let mut removed = Vec::new();
    let mut run: Vec<&[f32]> = Vec::new();
    let mut run_at: Vec<usize> = Vec::new();
    let mut run_out: Vec<f64> = Vec::new();
    let mut i = 0;
    while i < steps.len() {
        // Points this tree does not keep leave it unchanged: score that run of
        // points together, then the point that changes the tree.
        run.clear();
        run_at.clear();
        let mut j = i;
        while j < steps.len() {
            let s = &steps[j];
            if s.id != NO_POINT {
                if c.keeps(s.t, cap) {
                    break;
                }
                if s.ready {
                    run.push(store.point(s.id));
                    run_at.push(j);
                }
            }
            j += 1;
        }
        if !run.is_empty() {
            run_out.clear();
            run_out.resize(run.len(), 0.0);
            scores_in_tree(scoring, c, store, &run, sc, &mut run_out);
            for (&at, &v) in run_at.iter().zip(&run_out) {
                scores[at] = v;
            }
        }
        if j == steps.len() {
            break;
        }
        let s = &steps[j];
        let q = store.point(s.id);
        // As in `learn`: the RCF score of a kept point comes from its insertion.
        let by_insert = s.ready && scoring == ScoringKind::Rcf;
        if s.ready && !by_insert {
            scores[j] = tree_score(scoring, c, store, q, sc);
        }
        let own = by_insert.then_some(&mut scores[j]);
        let ch = c.update(store, s.id, s.t, lambda, cap, sc, own, None)?;
        if ch.added {
            added.push(s.id);
        }
        if let Some(r) = ch.removed {
            removed.push(r);
        }
        i = j + 1;
    }
    Ok((scores, added, removed))
}

/// Scores of `q` in every tree of `share`, in order: RCF descents run in lockstep groups.
fn scores_of_share<C: std::borrow::Borrow<Component>>(
    scoring: ScoringKind,
    share: &[C],
    store: &PointStore,
    q: &[f32],
    sc: &mut Scratch,
    out: &mut [f64],
) {
    match scoring {
        ScoringKind::Rcf => {
            crate::lockstep::rcf_scores(share, |c: &C| &c.borrow().tree, store, q, sc, out);
        }
        ScoringKind::CoDisp => {
            for (c, o) in share.iter().zip(out.iter_mut()) {
                *o = c.borrow().tree.codisp_expected(store, q, sc);
            }
        }
    }
}

/// One tree's scores of the points `qs` (the tree does not change in between).
fn scores_in_tree(
    scoring: ScoringKind,
    c: &Component,
    store: &PointStore,
    qs: &[&[f32]],
    sc: &mut Scratch,
    out: &mut [f64],
) {
    match scoring {
        ScoringKind::Rcf => crate::lockstep::rcf_scores_of_points(&c.tree, store, qs, sc, out),
        ScoringKind::CoDisp => {
            for (q, o) in qs.iter().zip(out.iter_mut()) {
                *o = c.tree.codisp_expected(store, q, sc);
            }
        }
    }
}

/// One tree's score of `q` of the configured kind.
#[inline]
fn tree_score(
    scoring: ScoringKind,
    c: &Component,
    store: &PointStore,
    q: &[f32],
    sc: &mut Scratch,
) -> f64 {
    match scoring {
        ScoringKind::Rcf => c.tree.rcf_score(store, q, sc),
        ScoringKind::CoDisp => c.tree.codisp_expected(store, q, sc),
    }
}

/// Forest score of each row: tree scores added in tree order (as the one-row path does), then
/// divided by the number of trees, so that serial and parallel runs agree bit for bit.
fn sum_in_tree_order(per_tree: &[Vec<f64>], rows: usize, trees: usize, out: &mut Vec<f64>) {
    let start = out.len();
    out.resize(start + rows, 0.0);
    let dst = &mut out[start..];
    for scores in per_tree {
        for (o, s) in dst.iter_mut().zip(scores) {
            *o += s;
        }
    }
    for o in dst.iter_mut() {
        *o /= trees as f64;
    }
}

/// A seed from the clock, the process and a counter, for forests built without one.
fn entropy_seed() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut s = nanos
        ^ (u64::from(std::process::id()) << 32)
        ^ COUNTER.fetch_add(0x9E37_79B9, Ordering::Relaxed);
    splitmix64(&mut s)
}
