//! Forests keyed by string: one independent [`Forest`] per key (a host, a card, a service), all
//! with the same parameters, each seeded from the collection's seed and the key
//! ([`seed::key_seed`]), so a key gets the same forest in any process.
//!
//! Batch calls take one key per row. Rows are grouped by key (a key's rows keep their order),
//! every forest is visited once per batch, and different keys run in parallel on rayon's
//! global pool; each key's forest works single-threaded. Results are bit-identical to feeding
//! each key's rows one by one to its own forest.
//!
//! Bounded memory: with `memory_limit` (bytes of resident forests) and/or `max_keys`, the least
//! recently used keys are saved to a [`Store`] and dropped; touching one loads it back and it
//! continues exactly. `idle_ttl` drops keys idle for that many seconds (saved first when there
//! is a store). A batch whose keys do not all fit at once runs in waves of keys that do.
//!
//! Failures: every input is checked before any forest changes. Store I/O of a wave (saving the
//! keys it evicts, loading the keys it needs) happens before the wave's forests change, so a
//! store error leaves the collection as it was, except that the earlier waves of a batch too
//! large to fit at once stay applied.
use std::collections::{HashMap, HashSet};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::config::ForestConfig;
use crate::error::{RcfError, Result};
use crate::forest::{DiVector, Forest};

mod batch;
mod lru;
pub mod seed;
mod state;
pub mod store;

pub use seed::key_seed;
pub use store::{DirStore, MemStore, NoStore, Store};

/// Parameters of a keyed collection: every key's forest has `forest` (with its own seed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyedConfig {
    /// Parameters of every key's forest. `seed` is the collection's seed (`None`: one is drawn
    /// when the collection is built, and kept in its state); `threads` is the number of keys
    /// processed at once (`None`: all cores); each forest itself runs single-threaded.
    pub forest: ForestConfig,
    /// Bytes of resident forests to stay under (needs a store).
    pub memory_limit: Option<usize>,
    /// Resident keys to stay under (needs a store).
    pub max_keys: Option<usize>,
    /// Seconds after which an untouched key is dropped (saved first when there is a store).
    pub idle_ttl: Option<f64>,
}

impl KeyedConfig {
    /// Defaults of [`ForestConfig::new`] and no limits.
    pub fn new(dimensions: usize) -> Self {
        KeyedConfig {
            forest: ForestConfig::new(dimensions),
            memory_limit: None,
            max_keys: None,
            idle_ttl: None,
        }
    }

    /// Checks every parameter; `has_store` says whether evicted keys have somewhere to go.
    pub fn validate(&self, has_store: bool) -> Result<()> {
        self.forest.validate()?;
        if self.memory_limit == Some(0) {
            return Err(RcfError::param(
                "memory_limit",
                "must be at least 1 byte, got 0",
            ));
        }
        if self.max_keys == Some(0) {
            return Err(RcfError::param("max_keys", "must be at least 1, got 0"));
        }
        if let Some(t) = self.idle_ttl {
            if !t.is_finite() || t < 0.0 {
                return Err(RcfError::param(
                    "idle_ttl",
                    format!("must be a finite number of seconds >= 0, got {t}"),
                ));
            }
        }
        if !has_store && (self.memory_limit.is_some() || self.max_keys.is_some()) {
            return Err(RcfError::param(
                "store",
                "memory_limit and max_keys need a store (a directory or a mapping) to save \
                 evicted keys in, got none",
            ));
        }
        Ok(())
    }
}

/// An error of a keyed call: the forest's, or the store's own.
#[derive(Debug)]
pub enum KeyedError<E> {
    /// Bad input, bad saved bytes, or a broken invariant.
    Forest(RcfError),
    /// The store failed.
    Store(E),
}

impl<E> From<RcfError> for KeyedError<E> {
    fn from(e: RcfError) -> Self {
        KeyedError::Forest(e)
    }
}

/// What a batch call does with each row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Score, then learn.
    ScoreUpdate,
    /// Learn only.
    Update,
    /// Score only (a key's later rows are shingled with its earlier ones).
    Score,
}

/// A resident key.
pub(crate) struct Entry {
    pub(crate) forest: Forest,
    /// Changed since it was last saved (or never saved).
    pub(crate) dirty: bool,
    /// Recency: larger is more recent.
    pub(crate) tick: u64,
    pub(crate) used: Instant,
    /// `forest.heap_bytes()` after its last change.
    pub(crate) bytes: usize,
}

/// Forests keyed by string. See the module documentation.
pub struct KeyedForests {
    pub(crate) config: KeyedConfig,
    pub(crate) has_store: bool,
    pub(crate) resident: HashMap<String, Entry>,
    /// Keys saved in the store and not resident.
    pub(crate) stored: HashSet<String>,
    pub(crate) tick: u64,
    pub(crate) resident_bytes: usize,
    /// Largest forest seen: the room a key about to be loaded or created is given.
    pub(crate) peak_bytes: usize,
    pub(crate) last_idle_scan: Instant,
    /// Keys whose forest has a seed other than the derived one ([`KeyedForests::adopt`]).
    pub(crate) seeds: HashMap<String, u64>,
}

impl KeyedForests {
    /// An empty collection; `has_store` says whether the caller provides a store.
    pub fn new(mut config: KeyedConfig, has_store: bool) -> Result<Self> {
        config.validate(has_store)?;
        if config.forest.seed.is_none() {
            config.forest.seed = Some(entropy_seed());
        }
        let mut k = KeyedForests {
            config,
            has_store,
            resident: HashMap::new(),
            stored: HashSet::new(),
            tick: 0,
            resident_bytes: 0,
            peak_bytes: 0,
            last_idle_scan: Instant::now(),
            seeds: HashMap::new(),
        };
        k.peak_bytes = k.fresh("").heap_bytes().max(k.full_size_guess());
        Ok(k)
    }

    /// The parameters.
    pub fn config(&self) -> &KeyedConfig {
        &self.config
    }

    /// The collection's seed (drawn at construction when none was given).
    pub fn seed(&self) -> u64 {
        self.config.forest.seed.unwrap_or(0)
    }

    /// The seed of `key`'s forest: [`key_seed`]`(seed, key)`, unless the key was given
    /// another one ([`KeyedForests::set_key_seed`], [`KeyedForests::adopt`]).
    pub fn key_seed(&self, key: &str) -> u64 {
        self.seeds
            .get(key)
            .copied()
            .unwrap_or_else(|| key_seed(self.seed(), key))
    }

    /// Keys with a seed other than the derived one, sorted.
    pub fn seed_overrides(&self) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self.seeds.iter().map(|(k, s)| (k.clone(), *s)).collect();
        v.sort_unstable();
        v
    }

    /// Declares that `key`'s forest has seed `seed` instead of the derived one: a forest
    /// adopted from elsewhere (a state of an older release that derived seeds differently)
    /// and saved in the store is then accepted when the key is loaded. Refused for a resident
    /// key whose forest has another seed.
    pub fn set_key_seed(&mut self, key: &str, seed: u64) -> Result<()> {
        if let Some(e) = self.resident.get(key) {
            if e.forest.config().seed != Some(seed) {
                return Err(RcfError::param(
                    "seed",
                    format!("key {key:?} is resident with another seed"),
                ));
            }
        }
        if seed == key_seed(self.seed(), key) {
            self.seeds.remove(key);
        } else {
            self.seeds.insert(key.to_owned(), seed);
        }
        Ok(())
    }

    /// Makes `bytes` (a [`Forest::to_bytes`] record with this collection's parameters, any
    /// seed) the forest of `key`, replacing what the key had; it continues exactly that forest.
    /// Its seed is kept for the key ([`KeyedForests::set_key_seed`]). The key counts as
    /// changed (saved by the next flush).
    pub fn adopt<S: Store>(
        &mut self,
        store: &mut S,
        key: &str,
        bytes: &[u8],
    ) -> std::result::Result<(), KeyedError<S::Error>> {
        let f = Forest::from_bytes(bytes).map_err(|e| match e {
            RcfError::Corrupt(m) => {
                RcfError::Corrupt(format!("forest adopted for key {key:?}: {m}"))
            }
            other => other,
        })?;
        let Some(seed) = f.config().seed else {
            return Err(
                RcfError::Corrupt(format!("forest adopted for key {key:?} has no seed")).into(),
            );
        };
        let want = ForestConfig {
            seed: Some(seed),
            threads: Some(1),
            ..self.config.forest.clone()
        };
        let got = ForestConfig {
            threads: Some(1),
            ..f.config().clone()
        };
        if got != want {
            return Err(RcfError::Corrupt(format!(
                "forest adopted for key {key:?} has other parameters than this collection \
                 (expected {want:?}, found {got:?})"
            ))
            .into());
        }
        let mut f = f;
        f.set_threads(Some(1))?;
        let keep: HashSet<&str> = std::iter::once(key).collect();
        if !self.resident.contains_key(key) {
            self.enforce_room(store, &keep, 1, self.peak_bytes.max(f.heap_bytes()))?;
        }
        if let Some(old) = self.resident.remove(key) {
            self.resident_bytes -= old.bytes;
        }
        if seed == key_seed(self.seed(), key) {
            self.seeds.remove(key);
        } else {
            self.seeds.insert(key.to_owned(), seed);
        }
        self.insert(key.to_owned(), f, true);
        self.enforce_limits(store, &HashSet::new())?;
        Ok(())
    }

    /// The configuration of `key`'s forest (single-threaded).
    pub fn forest_config(&self, key: &str) -> ForestConfig {
        ForestConfig {
            seed: Some(self.key_seed(key)),
            threads: Some(1),
            ..self.config.forest.clone()
        }
    }

    /// A new forest for `key`.
    pub(crate) fn fresh(&self, key: &str) -> Forest {
        Forest::new(self.forest_config(key)).expect("the configuration was validated")
    }

    /// Rough heap bytes of a full forest (refined by what is observed).
    fn full_size_guess(&self) -> usize {
        let c = &self.config.forest;
        c.num_trees * c.sample_size * (28 + 2 * c.point_dimensions())
    }

    /// Keys known: resident or saved by this collection.
    pub fn len(&self) -> usize {
        self.resident.len() + self.stored.len()
    }

    /// True when no key is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when `key` is resident or was saved by this collection.
    pub fn contains(&self, key: &str) -> bool {
        self.resident.contains_key(key) || self.stored.contains(key)
    }

    /// Every known key, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut k: Vec<String> = self
            .resident
            .keys()
            .chain(self.stored.iter())
            .cloned()
            .collect();
        k.sort_unstable();
        k
    }

    /// Resident keys, sorted.
    pub fn resident_keys(&self) -> Vec<String> {
        let mut k: Vec<String> = self.resident.keys().cloned().collect();
        k.sort_unstable();
        k
    }

    /// Keys changed since they were last saved, sorted.
    pub fn dirty_keys(&self) -> Vec<String> {
        let mut k: Vec<String> = self
            .resident
            .iter()
            .filter(|(_, e)| e.dirty)
            .map(|(k, _)| k.clone())
            .collect();
        k.sort_unstable();
        k
    }

    /// How many keys a batch call runs in one wave (None: no limit): `max_keys`, and
    /// `memory_limit` over the room given to each key (the largest forest seen). A batch with at
    /// most that many distinct keys runs in one wave, so its keys are only saved (evicted) after
    /// all their rows were learned.
    pub fn keys_at_once(&self) -> Option<usize> {
        let by_bytes = self
            .config
            .memory_limit
            .map(|m| (m / self.peak_bytes.max(1)).max(1));
        match (self.config.max_keys, by_bytes) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Approximate heap bytes of the resident forests.
    pub fn memory_usage(&self) -> usize {
        self.resident_bytes
    }

    /// The resident forest of `key`, if any (no store access, no change of recency).
    pub fn resident_forest(&self, key: &str) -> Option<&Forest> {
        self.resident.get(key).map(|e| &e.forest)
    }

    /// `key`'s forest as saved bytes ([`Forest::to_bytes`]): from memory, else from the store;
    /// `None` for a key neither holds. Recency is not changed.
    pub fn forest_bytes<S: Store>(
        &self,
        store: &mut S,
        key: &str,
    ) -> std::result::Result<Option<Vec<u8>>, KeyedError<S::Error>> {
        if let Some(e) = self.resident.get(key) {
            return Ok(Some(e.forest.to_bytes()));
        }
        if !self.has_store {
            return Ok(None);
        }
        match store.get(key).map_err(KeyedError::Store)? {
            Some(b) => {
                self.decode(key, &b)?;
                Ok(Some(b))
            }
            None => Ok(None),
        }
    }

    /// Decodes a saved record of `key`, checking that it is this collection's forest of `key`.
    pub(crate) fn decode(&self, key: &str, bytes: &[u8]) -> Result<Forest> {
        let mut f = Forest::from_bytes(bytes).map_err(|e| match e {
            RcfError::Corrupt(m) => RcfError::Corrupt(format!("saved forest of key {key:?}: {m}")),
            other => other,
        })?;
        let want = self.forest_config(key);
        let got = ForestConfig {
            threads: Some(1),
            ..f.config().clone()
        };
        if got != want {
            return Err(RcfError::Corrupt(format!(
                "the saved forest of key {key:?} is not this collection's (parameters or seed \
                 differ: expected {want:?}, found {got:?})"
            )));
        }
        f.set_threads(Some(1))?;
        Ok(f)
    }

    /// Scores (per `mode`) the rows of `data` (row-major, `dimensions` columns), row `i`
    /// belonging to `keys[i]`. The scores of `Mode::Update` are all 0.
    pub fn run_many<S: Store>(
        &mut self,
        store: &mut S,
        keys: &[&str],
        data: &[f64],
        mode: Mode,
    ) -> std::result::Result<Vec<f64>, KeyedError<S::Error>> {
        self.run_many_explained(store, keys, data, mode, None)
            .map(|(s, _)| s)
    }

    /// Score-then-learn like `run_many(.., Mode::ScoreUpdate)` (bit-identical scores), plus
    /// the attribution of every row scoring at least `min_score`, computed on its key's forest
    /// before that row is learned (what [`Forest::attribution`] then `score_update` give;
    /// shingle positions summed per input dimension). `f64::NEG_INFINITY` explains every row,
    /// `f64::INFINITY` none; NaN is refused. Explained rows come in row order.
    #[allow(clippy::type_complexity)]
    pub fn score_update_explain<S: Store>(
        &mut self,
        store: &mut S,
        keys: &[&str],
        data: &[f64],
        min_score: f64,
    ) -> std::result::Result<(Vec<f64>, Vec<(usize, DiVector)>), KeyedError<S::Error>> {
        let bounds = vec![min_score; keys.len()];
        self.score_update_explain_rows(store, keys, data, &bounds)
    }

    /// [`KeyedForests::score_update_explain`] with a bound per row: row `i` is explained when
    /// it scores at least `min_scores[i]` (for instance each key's alert threshold, or a lower
    /// bound of it). `min_scores` has one entry per row; NaN is refused.
    #[allow(clippy::type_complexity)]
    pub fn score_update_explain_rows<S: Store>(
        &mut self,
        store: &mut S,
        keys: &[&str],
        data: &[f64],
        min_scores: &[f64],
    ) -> std::result::Result<(Vec<f64>, Vec<(usize, DiVector)>), KeyedError<S::Error>> {
        if min_scores.iter().any(|m| m.is_nan()) {
            return Err(RcfError::param(
                "min_score",
                "must be a number (-inf explains every row, inf none), got NaN",
            )
            .into());
        }
        if min_scores.len() != keys.len() {
            return Err(RcfError::param(
                "min_score",
                format!(
                    "expected one bound per row: got {} bounds and {} keys",
                    min_scores.len(),
                    keys.len()
                ),
            )
            .into());
        }
        let (scores, mut explained) =
            self.run_many_explained(store, keys, data, Mode::ScoreUpdate, Some(min_scores))?;
        explained.sort_unstable_by_key(|(i, _)| *i);
        Ok((scores, explained))
    }

    #[allow(clippy::type_complexity)]
    fn run_many_explained<S: Store>(
        &mut self,
        store: &mut S,
        keys: &[&str],
        data: &[f64],
        mode: Mode,
        explain: Option<&[f64]>,
    ) -> std::result::Result<(Vec<f64>, Vec<(usize, DiVector)>), KeyedError<S::Error>> {
        let d = self.config.forest.dimensions;
        if data.len() != keys.len() * d {
            return Err(RcfError::param(
                "X",
                format!(
                    "expected {} rows of {d} values (one per key), got {} values",
                    keys.len(),
                    data.len()
                ),
            )
            .into());
        }
        // Every value is checked before any forest changes.
        crate::input::matrix_to_f32(
            data,
            d,
            crate::input::value_limit(self.config.forest.point_dimensions()),
        )?;
        self.expire_idle(store, false)?;
        let groups = batch::group(keys);
        let mut out = vec![0.0; keys.len()];
        let mut explained = Vec::new();
        let mut start = 0;
        while start < groups.len() {
            let end = self.wave_end(&groups, start);
            self.run_wave(
                store,
                &groups[start..end],
                data,
                mode,
                explain,
                &mut out,
                &mut explained,
            )?;
            start = end;
        }
        self.enforce_limits(store, &HashSet::new())?;
        Ok((out, explained))
    }

    /// Score of one observation of `key` (the forest is not changed).
    pub fn score<S: Store>(
        &mut self,
        store: &mut S,
        key: &str,
        x: &[f64],
    ) -> std::result::Result<f64, KeyedError<S::Error>> {
        Ok(self.run_many(store, &[key], x, Mode::Score)?[0])
    }

    /// Scores one observation of `key`, then learns it.
    pub fn score_update<S: Store>(
        &mut self,
        store: &mut S,
        key: &str,
        x: &[f64],
    ) -> std::result::Result<f64, KeyedError<S::Error>> {
        Ok(self.run_many(store, &[key], x, Mode::ScoreUpdate)?[0])
    }

    /// Attribution of the score of `x` for `key` (zeros for a key not seen yet).
    pub fn attribution<S: Store>(
        &mut self,
        store: &mut S,
        key: &str,
        x: &[f64],
    ) -> std::result::Result<DiVector, KeyedError<S::Error>> {
        crate::input::matrix_to_f32(
            x,
            self.config.forest.dimensions,
            crate::input::value_limit(self.config.forest.point_dimensions()),
        )?;
        if x.len() != self.config.forest.dimensions {
            return Err(RcfError::DimensionMismatch {
                expected: self.config.forest.dimensions,
                got: x.len(),
            }
            .into());
        }
        self.expire_idle(store, false)?;
        let keep: HashSet<&str> = std::iter::once(key).collect();
        if !self.resident.contains_key(key) {
            self.enforce_room(store, &keep, 1, self.peak_bytes)?;
            self.load(store, key)?;
        }
        let tick = self.next_tick();
        let r = match self.resident.get_mut(key) {
            Some(e) => {
                e.tick = tick;
                e.used = Instant::now();
                e.forest.attribution(x)?
            }
            None => self.fresh(key).attribution(x)?,
        };
        self.enforce_limits(store, &HashSet::new())?;
        Ok(r)
    }

    /// Saves every key changed since it was last saved; returns how many were written. On a
    /// store error the keys written so far count as saved, the others stay changed.
    pub fn flush<S: Store>(
        &mut self,
        store: &mut S,
    ) -> std::result::Result<usize, KeyedError<S::Error>> {
        if !self.has_store {
            return Ok(0);
        }
        let keys = self.dirty_keys();
        let mut written = 0;
        for chunk in keys.chunks(lru::SAVE_CHUNK) {
            let saved = self.serialize(chunk);
            for (k, b) in &saved {
                store.put(k, b).map_err(KeyedError::Store)?;
                if let Some(e) = self.resident.get_mut(k.as_str()) {
                    e.dirty = false;
                }
                written += 1;
            }
        }
        Ok(written)
    }

    /// Drops idle keys and evicts least recently used ones until the limits hold (after
    /// [`KeyedForests::from_bytes`], or to apply `idle_ttl` without a call).
    pub fn enforce<S: Store>(
        &mut self,
        store: &mut S,
    ) -> std::result::Result<(), KeyedError<S::Error>> {
        self.expire_idle(store, true)?;
        self.enforce_limits(store, &HashSet::new())
    }

    pub(crate) fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// Makes `key` resident from the store if it is there; returns whether it is resident.
    pub(crate) fn load<S: Store>(
        &mut self,
        store: &mut S,
        key: &str,
    ) -> std::result::Result<bool, KeyedError<S::Error>> {
        if self.resident.contains_key(key) {
            return Ok(true);
        }
        if !self.has_store {
            return Ok(false);
        }
        let Some(bytes) = store.get(key).map_err(KeyedError::Store)? else {
            return Ok(false);
        };
        let forest = self.decode(key, &bytes)?;
        self.insert(key.to_owned(), forest, false);
        Ok(true)
    }

    pub(crate) fn insert(&mut self, key: String, forest: Forest, dirty: bool) {
        let bytes = forest.heap_bytes();
        self.stored.remove(&key);
        self.resident_bytes += bytes;
        self.peak_bytes = self.peak_bytes.max(bytes);
        let tick = self.next_tick();
        let old = self.resident.insert(
            key,
            Entry {
                forest,
                dirty,
                tick,
                used: Instant::now(),
                bytes,
            },
        );
        if let Some(o) = old {
            self.resident_bytes -= o.bytes;
        }
    }
}

/// A seed from the clock, the process and a counter, for a collection built without one.
fn entropy_seed() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut s = nanos
        ^ (u64::from(std::process::id()) << 32)
        ^ COUNTER
            .fetch_add(0x9E37_79B9, Ordering::Relaxed)
            .rotate_left(17);
    crate::rng::splitmix64(&mut s)
}
