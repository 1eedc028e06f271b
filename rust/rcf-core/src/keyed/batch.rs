//! A batch grouped by key, waves of keys that fit the limits, and the keys of a wave run in
//! parallel: each forest visited once per batch, single-threaded, its rows in order.
use std::collections::{HashMap, HashSet};
use std::time::Instant;

use super::{Entry, KeyedError, KeyedForests, Mode, Store};
use crate::error::Result;
use crate::forest::{DiVector, Forest};

/// Scores of a key's rows, and the attributions of the rows explained (row index, value).
pub(crate) type KeyOut = (Vec<f64>, Vec<(usize, DiVector)>);

/// A key's rows in a batch, in order.
pub(crate) struct Group<'a> {
    pub(crate) key: &'a str,
    pub(crate) rows: Vec<usize>,
}

/// Groups row indices by key, keys in order of first appearance.
pub(crate) fn group<'a>(keys: &[&'a str]) -> Vec<Group<'a>> {
    let mut at: HashMap<&str, usize> = HashMap::with_capacity(keys.len().min(4096));
    let mut groups: Vec<Group<'a>> = Vec::new();
    for (i, &k) in keys.iter().enumerate() {
        let g = *at.entry(k).or_insert_with(|| {
            groups.push(Group {
                key: k,
                rows: Vec::new(),
            });
            groups.len() - 1
        });
        groups[g].rows.push(i);
    }
    groups
}

/// One key's work in a wave.
struct Job<'g> {
    group: &'g Group<'g>,
    /// The resident entry, taken out of the map for the wave; `None` for a key scored but
    /// never seen (a fresh forest scores it and is dropped).
    entry: Option<(String, Entry)>,
    result: Result<KeyOut>,
}

/// The process that may use rayon's global pool: a forked child (which inherits no threads)
/// runs serially instead of waiting for workers that do not exist there.
fn pool_usable() -> bool {
    static OWNER: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *OWNER.get_or_init(std::process::id) == std::process::id()
}

/// Runs `f` over consecutive parts of `items`: in parallel on rayon's global pool (several
/// parts per core, so that uneven parts balance) unless `threads == Some(1)`.
pub(crate) fn for_each_chunk<T: Send>(
    threads: Option<usize>,
    items: &mut [T],
    f: impl Fn(&mut [T]) + Sync + Send,
) {
    let n = threads.unwrap_or_else(crate::parallel::cores);
    if n <= 1 || items.len() < 2 || !pool_usable() {
        f(items);
        return;
    }
    #[cfg(feature = "parallel")]
    {
        use rayon::prelude::*;
        let parts = (n * 4).min(items.len());
        let per = items.len().div_ceil(parts);
        items.par_chunks_mut(per).for_each(f);
    }
    #[cfg(not(feature = "parallel"))]
    f(items);
}

/// Asks the cache (L2) for the `len` bytes at `p`: a hint, no effect on results.
#[cfg(target_arch = "x86_64")]
#[inline]
fn hint(p: *const i8, len: usize) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
    let mut off = 0;
    while off < len {
        // SAFETY: `p + off` stays inside the live slice the caller passed (off < len), and a
        // prefetch only hints the cache: it reads nothing and never faults.
        unsafe { _mm_prefetch::<{ _MM_HINT_T1 }>(p.add(off)) };
        off += 64;
    }
}

/// Prefetches the next key's forest while the current key is scored: every tree's arrays
/// (nodes, box slots, leaves, cached boxes), its sampler's heap and the points. Measured on 300
/// keys (CPU time per point, threads=1, busy machine, three interleaved runs each): nodes and
/// points alone 5-10% faster than no hint; every array another 2-16% (mean 8%).
#[inline]
fn prefetch(f: &Forest) {
    #[cfg(target_arch = "x86_64")]
    {
        for c in f.components() {
            for (p, len) in c.tree.regions() {
                hint(p.cast::<i8>(), len);
            }
            if let crate::sampler::Sampler::Decay {
                weights, leaves, ..
            } = &c.sampler
            {
                hint(
                    weights.as_ptr().cast::<i8>(),
                    std::mem::size_of_val(&weights[..]),
                );
                hint(
                    leaves.as_ptr().cast::<i8>(),
                    std::mem::size_of_val(&leaves[..]),
                );
            }
        }
        let s = f.store();
        let slots = s.len() + s.free_len();
        if slots > 0 && s.dim() > 0 {
            // Points are stored contiguously from id 0: `slots` of them.
            hint(s.point(0).as_ptr().cast::<i8>(), slots * s.dim() * 4);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = f;
}

/// Score-then-learn of a key's rows that also returns, for every row scoring at least its
/// `min_scores` entry, the attribution of that row on the forest before it learns the row (what
/// `attribution(x)` then `score_update(x)` give). `-inf` explains every row: attribution, then
/// the fused score-and-learn pass. `+inf` explains none: the fused pass alone. Otherwise each
/// row is scored (read-only), explained if needed, then learned; the second walk finds the
/// forest's paths in cache. `score(x)` then `update(x)` leave the forest and give the score
/// exactly as `score_update(x)` does (tested), so scores are bit-identical to `ScoreUpdate`.
fn run_key_explain(
    forest: &mut Forest,
    rows: &[usize],
    data: &[f64],
    min_scores: &[f64],
) -> Result<KeyOut> {
    let d = forest.config().dimensions;
    let row = |i: usize| &data[i * d..(i + 1) * d];
    let mut scores = Vec::with_capacity(rows.len());
    let mut explained = Vec::new();
    for &i in rows {
        let x = row(i);
        // Row `i`'s own bound (one value per row of the call).
        let min_score = min_scores[i];
        if min_score == f64::NEG_INFINITY {
            explained.push((i, forest.attribution(x)?));
            scores.push(forest.score_update(x)?);
        } else if min_score == f64::INFINITY {
            scores.push(forest.score_update(x)?);
        } else {
            let s = forest.score(x)?;
            if s >= min_score {
                explained.push((i, forest.attribution(x)?));
            }
            forest.update(x)?;
            scores.push(s);
        }
    }
    Ok((scores, explained))
}

/// One key's rows through its forest, the way `mode` says (`explain`: see `run_key_explain`,
/// only with `Mode::ScoreUpdate`).
fn run_key(
    forest: &mut Forest,
    rows: &[usize],
    data: &[f64],
    mode: Mode,
    explain: Option<&[f64]>,
) -> Result<KeyOut> {
    if let (Mode::ScoreUpdate, Some(min)) = (mode, explain) {
        return run_key_explain(forest, rows, data, min);
    }
    run_key_plain(forest, rows, data, mode).map(|s| (s, Vec::new()))
}

/// One key's rows through its forest, the way `mode` says.
fn run_key_plain(
    forest: &mut Forest,
    rows: &[usize],
    data: &[f64],
    mode: Mode,
) -> Result<Vec<f64>> {
    let d = forest.config().dimensions;
    let row = |i: usize| &data[i * d..(i + 1) * d];
    // Learning goes row by row through the one-point path: its lockstep walks of eight trees
    // keep more cache misses in flight, which is what a cold forest needs. Measured on 300 keys
    // (~3 rows per key and batch): 1.4x the batch path (`score_update_many`), same scores.
    match mode {
        Mode::ScoreUpdate => rows.iter().map(|&i| forest.score_update(row(i))).collect(),
        Mode::Update => rows
            .iter()
            .map(|&i| forest.update(row(i)).map(|()| 0.0))
            .collect(),
        Mode::Score => {
            if let [i] = rows {
                return Ok(vec![forest.score(row(*i))?]);
            }
            let mut buf = Vec::with_capacity(rows.len() * d);
            for &i in rows {
                buf.extend_from_slice(row(i));
            }
            forest.score_many(&buf)
        }
    }
}

/// Saved forests read from the store at once, then decoded on the pool.
const LOAD_CHUNK: usize = 16;

/// A key being loaded: its saved bytes, then its decoded forest.
type Pending<'a> = (&'a str, Vec<u8>, Option<Result<Forest>>);

impl KeyedForests {
    /// Makes the wave's keys resident from the store; returns the keys it has not seen. The
    /// records are read in order, [`LOAD_CHUNK`] at a time (bounding the bytes in flight), and
    /// decoded on the pool, by the threads that also run and grow the forests: decoded on the
    /// calling thread, loaded forests came from glibc's arena of that thread while evictions
    /// freed memory in the pool threads' arenas, and after a cold phase (every row a reload)
    /// resident memory reached 2.2x `memory_limit` (1,200 keys, limit 300 MB: 643 MB; with
    /// one arena, 346 MB). A key whose record does not decode stops the wave (its error); the
    /// keys decoded before it stay resident.
    fn load_wave<'a, S: Store>(
        &mut self,
        store: &mut S,
        groups: &[Group<'a>],
    ) -> std::result::Result<Vec<&'a str>, KeyedError<S::Error>> {
        let mut unknown = Vec::new();
        let missing: Vec<&'a str> = groups
            .iter()
            .map(|g| g.key)
            .filter(|k| !self.resident.contains_key(*k))
            .collect();
        if !self.has_store {
            return Ok(missing);
        }
        for keys in missing.chunks(LOAD_CHUNK) {
            let mut todo: Vec<Pending<'a>> = Vec::new();
            for &k in keys {
                match store.get(k).map_err(KeyedError::Store)? {
                    Some(bytes) => todo.push((k, bytes, None)),
                    None => unknown.push(k),
                }
            }
            let this = &*self;
            for_each_chunk(self.config.forest.threads, &mut todo, |part| {
                for (k, bytes, out) in part {
                    *out = Some(this.decode(k, bytes));
                    *bytes = Vec::new();
                }
            });
            for (k, _, forest) in todo {
                match forest {
                    Some(Ok(f)) => self.insert(k.to_owned(), f, false),
                    Some(Err(e)) => return Err(e.into()),
                    None => unreachable!("every record of the chunk is decoded"),
                }
            }
        }
        Ok(unknown)
    }

    /// End of the wave that starts at group `start`: as many groups as fit the limits (at
    /// least one).
    pub(crate) fn wave_end(&self, groups: &[Group<'_>], start: usize) -> usize {
        if self.config.memory_limit.is_none() && self.config.max_keys.is_none() {
            return groups.len();
        }
        let max_keys = self.config.max_keys.unwrap_or(usize::MAX);
        let max_bytes = self.config.memory_limit.unwrap_or(usize::MAX);
        let mut bytes = 0usize;
        let mut end = start;
        while end < groups.len() {
            let b = self
                .resident
                .get(groups[end].key)
                .map_or(self.peak_bytes, |e| e.bytes.max(self.peak_bytes));
            if end > start && (end - start + 1 > max_keys || bytes + b > max_bytes) {
                break;
            }
            bytes += b;
            end += 1;
        }
        end
    }

    /// Runs one wave: room first (evictions), then loads, then new keys, then the forests.
    pub(crate) fn run_wave<S: Store>(
        &mut self,
        store: &mut S,
        groups: &[Group<'_>],
        data: &[f64],
        mode: Mode,
        explain: Option<&[f64]>,
        out: &mut [f64],
        explained: &mut Vec<(usize, DiVector)>,
    ) -> std::result::Result<(), KeyedError<S::Error>> {
        let keep: HashSet<&str> = groups.iter().map(|g| g.key).collect();
        let (mut extra_keys, mut extra_bytes) = (0, 0);
        for g in groups {
            if let Some(e) = self.resident.get(g.key) {
                extra_bytes += self.peak_bytes.saturating_sub(e.bytes);
            } else {
                extra_keys += 1;
                extra_bytes += self.peak_bytes;
            }
        }
        self.enforce_room(store, &keep, extra_keys, extra_bytes)?;
        // Loads before new keys: a store error leaves no key created.
        let unknown = self.load_wave(store, groups)?;
        if mode != Mode::Score {
            for k in unknown {
                let f = self.fresh(k);
                self.insert(k.to_owned(), f, true);
            }
        }
        let mut jobs: Vec<Job<'_>> = groups
            .iter()
            .map(|g| Job {
                group: g,
                entry: self.resident.remove_entry(g.key),
                result: Ok((Vec::new(), Vec::new())),
            })
            .collect();
        let fresh_for_score: Vec<Option<Forest>> = jobs
            .iter()
            .map(|j| j.entry.is_none().then(|| self.fresh(j.group.key)))
            .collect();
        let mut work: Vec<(Job<'_>, Option<Forest>)> =
            jobs.drain(..).zip(fresh_for_score).collect();
        for_each_chunk(self.config.forest.threads, &mut work, |part| {
            for i in 0..part.len() {
                if let Some((next, _)) = part.get(i + 1) {
                    if let Some((_, e)) = &next.entry {
                        prefetch(&e.forest);
                    }
                }
                let (job, temp) = &mut part[i];
                let forest = match (&mut job.entry, temp) {
                    (Some((_, e)), _) => &mut e.forest,
                    (None, Some(f)) => f,
                    (None, None) => unreachable!("a job has a resident or a fresh forest"),
                };
                job.result = run_key(forest, &job.group.rows, data, mode, explain);
            }
        });
        let now = Instant::now();
        let mut error = None;
        for (job, _) in work {
            match job.result {
                Ok((scores, attributions)) => {
                    for (&i, s) in job.group.rows.iter().zip(scores) {
                        out[i] = s;
                    }
                    explained.extend(attributions);
                }
                Err(e) => error = Some(e),
            }
            if let Some((k, mut e)) = job.entry {
                let tick = self.next_tick();
                e.tick = tick;
                e.used = now;
                if mode != Mode::Score {
                    e.dirty = true;
                    let b = e.forest.heap_bytes();
                    self.resident_bytes = self.resident_bytes - e.bytes + b;
                    self.peak_bytes = self.peak_bytes.max(b);
                    e.bytes = b;
                }
                self.resident.insert(k, e);
            }
        }
        match error {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }
}
