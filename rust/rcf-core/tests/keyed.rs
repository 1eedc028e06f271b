//! KeyedForests: per-key forests equal to independent ones, batches equal to row loops,
//! eviction and reload that continue exactly, incremental flush, state round trips, failures
//! that change nothing.
use rcf_core::keyed::{key_seed, KeyedError, MemStore, Mode, NoStore, Store};
use rcf_core::{Forest, KeyedConfig, KeyedForests};

fn config() -> KeyedConfig {
    let mut c = KeyedConfig::new(1);
    c.forest.shingle_size = 2;
    c.forest.num_trees = 12;
    c.forest.sample_size = 32;
    c.forest.seed = Some(42);
    c
}

/// `n` rows of `k` keys in a random order: (keys, values).
fn stream(n: usize, k: usize, seed: u64) -> (Vec<String>, Vec<f64>) {
    let mut s = seed;
    let mut keys = Vec::new();
    let mut xs = Vec::new();
    for i in 0..n {
        let r = rcf_core::rng::splitmix64(&mut s);
        let key = (r % k as u64) as usize;
        keys.push(format!("key-{key}"));
        let spike = if r % 97 == 0 { 30.0 } else { 0.0 };
        xs.push((i as f64 * 0.05 + key as f64).sin() * (1.0 + key as f64) + spike);
    }
    (keys, xs)
}

fn refs(keys: &[String]) -> Vec<&str> {
    keys.iter().map(String::as_str).collect()
}

fn batches(
    k: &mut KeyedForests,
    store: &mut impl Store<Error = std::convert::Infallible>,
    keys: &[String],
    xs: &[f64],
    size: usize,
) -> Vec<f64> {
    let mut out = Vec::new();
    for (ks, x) in keys.chunks(size).zip(xs.chunks(size)) {
        let r = k.run_many(store, &refs(ks), x, Mode::ScoreUpdate);
        out.extend(r.unwrap_or_else(|_| panic!("batch failed")));
    }
    out
}

#[test]
fn each_key_matches_its_own_forest_seeded_with_the_documented_seed() {
    let (keys, xs) = stream(3000, 7, 1);
    let mut k = KeyedForests::new(config(), false).unwrap();
    let got = batches(&mut k, &mut NoStore, &keys, &xs, 250);
    let mut forests = std::collections::HashMap::new();
    for (i, (key, x)) in keys.iter().zip(&xs).enumerate() {
        let f = forests.entry(key.clone()).or_insert_with(|| {
            let mut c = config().forest;
            c.seed = Some(key_seed(42, key));
            Forest::new(c).unwrap()
        });
        let want = f.score_update(&[*x]).unwrap();
        assert_eq!(got[i].to_bits(), want.to_bits(), "row {i}");
    }
    assert!(got.iter().any(|&s| s > 1.0));
    assert_eq!(k.len(), 7);
    assert_eq!(k.keys()[0], "key-0");
    for (key, f) in &forests {
        assert_eq!(k.resident_forest(key).unwrap().to_bytes(), {
            let mut g = f.clone();
            g.set_threads(Some(1)).unwrap();
            g.to_bytes()
        });
    }
}

#[test]
fn batches_equal_one_row_calls_in_every_mode() {
    let (keys, xs) = stream(1200, 5, 2);
    let mut a = KeyedForests::new(config(), false).unwrap();
    let mut b = KeyedForests::new(config(), false).unwrap();
    let got = batches(&mut a, &mut NoStore, &keys, &xs, 100);
    let one: Vec<f64> = keys
        .iter()
        .zip(&xs)
        .map(|(k, x)| b.score_update(&mut NoStore, k, &[*x]).unwrap())
        .collect();
    assert_eq!(got, one);
    // Score only: a key's later rows are shingled with its earlier ones; nothing changes.
    let before = a.to_bytes(&mut NoStore).unwrap();
    let ks = refs(&keys[..50]);
    let s = a
        .run_many(&mut NoStore, &ks, &xs[..50], Mode::Score)
        .unwrap();
    assert_eq!(a.to_bytes(&mut NoStore).unwrap(), before);
    let s2 = b.run_many(&mut NoStore, &ks, &xs[..50], Mode::ScoreUpdate);
    // A key's first row in the batch scores the same either way.
    let mut seen = std::collections::HashSet::new();
    for (i, k) in ks.iter().enumerate() {
        if seen.insert(*k) {
            assert_eq!(s[i], s2.as_ref().unwrap()[i]);
        }
    }
    // Update only learns the same as score-and-update.
    let mut c = KeyedForests::new(config(), false).unwrap();
    for (ks, x) in keys.chunks(100).zip(xs.chunks(100)) {
        c.run_many(&mut NoStore, &refs(ks), x, Mode::Update)
            .unwrap();
    }
    assert_eq!(
        c.to_bytes(&mut NoStore).unwrap(),
        KeyedForests::from_bytes(&before, false)
            .unwrap()
            .to_bytes(&mut NoStore)
            .unwrap()
    );
}

#[test]
fn eviction_and_reload_continue_bit_identically() {
    let (keys, xs) = stream(4000, 9, 3);
    let mut free = KeyedForests::new(config(), false).unwrap();
    let want = batches(&mut free, &mut NoStore, &keys, &xs, 64);
    let full = free.resident_forest("key-0").unwrap().heap_bytes();
    for (max_keys, memory_limit) in [(Some(2), None), (None, Some(3 * full)), (Some(1), Some(1))] {
        let mut c = config();
        c.max_keys = max_keys;
        c.memory_limit = memory_limit;
        let mut k = KeyedForests::new(c, true).unwrap();
        let mut store = MemStore::default();
        let got = batches(&mut k, &mut store, &keys, &xs, 64);
        assert_eq!(got, want, "{max_keys:?} {memory_limit:?}");
        assert!(k.resident_keys().len() <= max_keys.unwrap_or(9));
        if let Some(m) = memory_limit {
            assert!(
                k.memory_usage() <= m.max(full + full / 2),
                "{}",
                k.memory_usage()
            );
        }
        assert_eq!(k.len(), 9);
        assert!(store.puts > 9, "{}", store.puts);
        // A saved record is a plain forest state.
        let saved = store.records.values().next().unwrap();
        Forest::from_bytes(saved).unwrap();
    }
}

#[test]
fn flush_writes_only_changed_keys() {
    let (keys, xs) = stream(600, 6, 4);
    let mut k = KeyedForests::new(config(), true).unwrap();
    let mut store = MemStore::default();
    batches(&mut k, &mut store, &keys, &xs, 100);
    assert_eq!(store.puts, 0);
    assert_eq!(k.flush(&mut store).unwrap(), 6);
    assert_eq!(k.flush(&mut store).unwrap(), 0);
    k.run_many(
        &mut store,
        &["key-1", "key-4", "key-1"],
        &[1.0, 2.0, 3.0],
        Mode::ScoreUpdate,
    )
    .unwrap();
    // Scoring alone changes nothing.
    k.run_many(&mut store, &["key-2"], &[1.0], Mode::Score)
        .unwrap();
    assert_eq!(k.dirty_keys(), vec!["key-1", "key-4"]);
    assert_eq!(k.flush(&mut store).unwrap(), 2);
    assert_eq!(store.puts, 8);
    // A new collection over the same store finds every key's forest.
    let mut again = KeyedForests::new(config(), true).unwrap();
    let a = k.score(&mut store, "key-3", &[5.0]).unwrap();
    let b = again.score(&mut store, "key-3", &[5.0]).unwrap();
    assert_eq!(a.to_bits(), b.to_bits());
    assert!(a > 0.0);
}

#[test]
fn state_round_trip_includes_evicted_keys_and_rejects_damage() {
    let (keys, xs) = stream(900, 5, 5);
    let mut c = config();
    c.max_keys = Some(2);
    let mut k = KeyedForests::new(c, true).unwrap();
    let mut store = MemStore::default();
    batches(&mut k, &mut store, &keys, &xs, 100);
    let bytes = k.to_bytes(&mut store).unwrap();
    let mut r = KeyedForests::from_bytes(&bytes, true).unwrap();
    assert_eq!(r.len(), 5);
    let mut other = MemStore::default();
    r.enforce(&mut other).unwrap();
    assert_eq!(r.resident_keys().len(), 2);
    let more = stream(300, 5, 6);
    let a = batches(&mut k, &mut store, &more.0, &more.1, 50);
    let b = batches(&mut r, &mut other, &more.0, &more.1, 50);
    assert_eq!(a, b);
    assert!(
        KeyedForests::from_bytes(&bytes, false).is_err(),
        "limits need a store"
    );
    for cut in [0, 10, 24, bytes.len() / 2, bytes.len() - 1] {
        assert!(KeyedForests::from_bytes(&bytes[..cut], true).is_err());
    }
    let mut bad = bytes.clone();
    let n = bad.len();
    bad[n - 5] ^= 1;
    assert!(KeyedForests::from_bytes(&bad, true).is_err());
}

/// A store that fails on demand.
struct Flaky {
    inner: MemStore,
    fail_get: bool,
    fail_put: bool,
}

impl Store for Flaky {
    type Error = String;
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, String> {
        if self.fail_get {
            return Err("get failed".into());
        }
        Ok(self.inner.get(key).unwrap())
    }
    fn put(&mut self, key: &str, bytes: &[u8]) -> Result<(), String> {
        if self.fail_put {
            return Err("put failed".into());
        }
        self.inner.put(key, bytes).unwrap();
        Ok(())
    }
}

#[test]
fn bad_input_and_failing_stores_change_nothing() {
    let (keys, xs) = stream(500, 4, 7);
    let mut c = config();
    c.max_keys = Some(2);
    let mut k = KeyedForests::new(c, true).unwrap();
    let mut store = Flaky {
        inner: MemStore::default(),
        fail_get: false,
        fail_put: false,
    };
    for (ks, x) in keys.chunks(50).zip(xs.chunks(50)) {
        k.run_many(&mut store, &refs(ks), x, Mode::ScoreUpdate)
            .map_err(|_| ())
            .unwrap();
    }
    let snapshot = |k: &KeyedForests, s: &mut Flaky| {
        let (g, p) = (s.fail_get, s.fail_put);
        s.fail_get = false;
        s.fail_put = false;
        let b = k.to_bytes(s).map_err(|_| ()).unwrap();
        s.fail_get = g;
        s.fail_put = p;
        let b = b
            .iter()
            .fold(0u64, |h, &x| h.wrapping_mul(31).wrapping_add(u64::from(x)));
        (b, k.resident_keys(), k.len())
    };
    let before = snapshot(&k, &mut store);
    // NaN in the last row, and too few values.
    let r = k.run_many(
        &mut store,
        &["key-0", "key-1"],
        &[1.0, f64::NAN],
        Mode::ScoreUpdate,
    );
    assert!(matches!(r, Err(KeyedError::Forest(_))));
    let r = k.run_many(&mut store, &["key-0", "key-1"], &[1.0], Mode::ScoreUpdate);
    assert!(matches!(r, Err(KeyedError::Forest(_))));
    assert_eq!(snapshot(&k, &mut store), before);
    // Loading an evicted key fails; saving the key that must leave fails.
    let evicted: Vec<String> = k
        .keys()
        .into_iter()
        .filter(|x| !k.resident_keys().contains(x))
        .collect();
    assert_eq!(k.dirty_keys().len(), 2);
    store.fail_put = true;
    let r = k.run_many(
        &mut store,
        &[evicted[0].as_str()],
        &[1.0],
        Mode::ScoreUpdate,
    );
    assert!(matches!(r, Err(KeyedError::Store(_))));
    assert_eq!(snapshot(&k, &mut store), before);
    store.fail_put = false;
    store.fail_get = true;
    let r = k.run_many(
        &mut store,
        &[evicted[0].as_str(), "new"],
        &[1.0, 2.0],
        Mode::ScoreUpdate,
    );
    assert!(matches!(r, Err(KeyedError::Store(_))));
    store.fail_get = false;
    // The keys that made room were saved and dropped: the same state, elsewhere.
    let after = snapshot(&k, &mut store);
    assert_eq!((after.0, after.2), (before.0, before.2));
    assert!(!k.contains("new"));
    // Once the store works again, the stream goes on as if nothing happened.
    let mut twin =
        KeyedForests::from_bytes(&k.to_bytes(&mut store).map_err(|_| ()).unwrap(), true).unwrap();
    let mut twin_store = MemStore::default();
    let a = k
        .run_many(&mut store, &refs(&keys[..40]), &xs[..40], Mode::ScoreUpdate)
        .map_err(|_| ())
        .unwrap();
    let b = twin
        .run_many(
            &mut twin_store,
            &refs(&keys[..40]),
            &xs[..40],
            Mode::ScoreUpdate,
        )
        .unwrap();
    assert_eq!(a, b);
}

#[test]
fn a_record_of_another_key_or_collection_is_refused() {
    let mut k = KeyedForests::new(config(), true).unwrap();
    let mut store = MemStore::default();
    for i in 0..40 {
        k.score_update(&mut store, "a", &[f64::from(i)]).unwrap();
    }
    k.flush(&mut store).unwrap();
    let rec = store.records["a"].clone();
    store.records.insert("b".into(), rec);
    let mut fresh = KeyedForests::new(config(), true).unwrap();
    let r = fresh.score_update(&mut store, "b", &[1.0]);
    match r {
        Err(KeyedError::Forest(e)) => assert!(e.to_string().contains("\"b\""), "{e}"),
        _ => panic!("expected a refused record"),
    }
    assert!(!fresh.contains("b"));
    let mut c = config();
    c.forest.seed = Some(43);
    let mut other = KeyedForests::new(c, true).unwrap();
    assert!(other.score_update(&mut store, "a", &[1.0]).is_err());
}

#[test]
fn parameters_are_checked() {
    let mut c = config();
    c.max_keys = Some(3);
    assert!(KeyedForests::new(c.clone(), false)
        .err()
        .unwrap()
        .to_string()
        .contains("store"));
    c.max_keys = Some(0);
    assert!(KeyedForests::new(c, true).is_err());
    let mut c = config();
    c.idle_ttl = Some(f64::NAN);
    assert!(KeyedForests::new(c, false).is_err());
    let mut c = config();
    c.forest.seed = None;
    let a = KeyedForests::new(c.clone(), false).unwrap();
    let b = KeyedForests::new(c, false).unwrap();
    assert_ne!(a.seed(), b.seed());
}

#[test]
fn idle_keys_leave_after_their_time() {
    let mut c = config();
    c.idle_ttl = Some(0.05);
    let mut k = KeyedForests::new(c, true).unwrap();
    let mut store = MemStore::default();
    k.score_update(&mut store, "old", &[1.0]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(80));
    k.score_update(&mut store, "new", &[1.0]).unwrap();
    assert_eq!(k.resident_keys(), vec!["new"]);
    assert!(store.records.contains_key("old") && k.contains("old"));
    let mut c = config();
    c.idle_ttl = Some(0.0);
    let mut k = KeyedForests::new(c, false).unwrap();
    k.score_update(&mut NoStore, "gone", &[1.0]).unwrap();
    k.enforce(&mut NoStore).unwrap();
    assert!(k.is_empty(), "without a store idle keys are forgotten");
}
