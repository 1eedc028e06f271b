"""KeyedForests: per-key forests equal to independent ones, batches equal to row loops, eviction
and reload that continue exactly, incremental flush, pickling, hostile input and stores."""

from __future__ import annotations

import copy
import json
import pickle
import subprocess
import sys
import threading
from collections.abc import MutableMapping

import numpy as np
import pytest
from rcf_fast import KeyedForests, RandomCutForest, StateError

PARAMS = {"shingle_size": 2, "num_trees": 16, "sample_size": 48, "seed": 5}
M64 = 2**64 - 1


def derive_seed(seed: int, key: str) -> int:
    """The documented formula, written out: splitmix64(seed ^ fnv1a64(utf-8 key))."""
    h = 0xCBF29CE484222325
    for b in key.encode("utf-8"):
        h = ((h ^ b) * 0x100000001B3) & M64
    z = ((seed ^ h) + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def stream(n: int, k: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, k, n)
    t = np.arange(n)
    x = np.sin(t * 0.07 + ids) * (1 + ids) + rng.normal(0, 0.05, n)
    x[rng.random(n) < 0.01] += 25
    return [f"host-{i}" for i in ids], x.reshape(-1, 1)


def run(kf: KeyedForests, keys: list[str], X: np.ndarray, size: int = 100) -> np.ndarray:
    return np.concatenate([kf.score_update_many(keys[i:i + size], X[i:i + size])
                           for i in range(0, len(keys), size)])


class CountingStore(MutableMapping):
    """A dict that counts writes and can be told to fail."""

    def __init__(self):
        self.d: dict[str, bytes] = {}
        self.writes: list[str] = []
        self.fail_get = self.fail_set = False

    def __getitem__(self, k):
        if self.fail_get:
            raise ConnectionError("store down (get)")
        return self.d[k]

    def __setitem__(self, k, v):
        if self.fail_set:
            raise ConnectionError("store down (set)")
        assert isinstance(v, bytes)
        self.writes.append(k)
        self.d[k] = v

    def __delitem__(self, k):
        del self.d[k]

    def __iter__(self):
        return iter(self.d)

    def __len__(self):
        return len(self.d)


def test_seeds_follow_the_documented_formula():
    for seed, key in [(0, ""), (5, "host-1"), (2**64 - 1, "é/ü"), (123, "x" * 300)]:
        assert KeyedForests.derive_seed(seed, key) == derive_seed(seed, key)
    kf = KeyedForests(seed=9)
    assert kf.seed == 9 and kf.seed_of("a") == derive_seed(9, "a")
    drawn = KeyedForests()
    assert isinstance(drawn.seed, int) and drawn.seed != KeyedForests().seed


def test_parameters_are_those_of_random_cut_forest():
    kf, f = KeyedForests(), RandomCutForest()
    for name in ("dimensions", "shingle_size", "num_trees", "sample_size", "time_decay",
                 "sampler", "scoring", "output_after", "threads"):
        assert getattr(kf, name) == getattr(f, name), name
    assert kf.memory_limit is None and kf.max_keys is None and kf.store is None


def test_each_key_equals_its_own_random_cut_forest():
    keys, X = stream(2500, 6)
    kf = KeyedForests(**PARAMS)
    got = run(kf, keys, X, 250)
    forests: dict[str, RandomCutForest] = {}
    want = []
    for k, x in zip(keys, X):
        if k not in forests:
            forests[k] = RandomCutForest(**{**PARAMS, "seed": derive_seed(5, k)})
        want.append(forests[k].score_update(x))
    np.testing.assert_array_equal(got, np.array(want))
    assert got.max() > 3
    assert sorted(forests) == kf.keys() == list(kf) and len(kf) == 6 and "host-0" in kf
    copy_ = kf.forest("host-3")
    assert copy_.seed == derive_seed(5, "host-3") and copy_.threads is None
    assert copy_.score(7.0) == forests["host-3"].score(7.0) == kf.score("host-3", 7.0)
    a = kf.attribution("host-3", [9.0])
    b = forests["host-3"].attribution([9.0])
    np.testing.assert_array_equal(a.high, b.high)
    assert a.total == b.total > 0
    with pytest.raises(KeyError):
        kf.forest("nobody")


def test_batches_equal_row_by_row_calls_and_scoring_changes_nothing():
    keys, X = stream(1500, 8, seed=1)
    a, b, c = (KeyedForests(**PARAMS) for _ in range(3))
    batch = run(a, keys, X, 333)
    rows = np.array([b.score_update(k, float(x[0])) for k, x in zip(keys, X)])
    np.testing.assert_array_equal(batch, rows)
    for i in range(0, 1500, 200):
        c.update_many(keys[i:i + 200], X[i:i + 200])
    assert c.to_bytes() == a.to_bytes() == b.to_bytes()
    before = a.to_bytes()
    s = a.score_many(keys[:50], X[:50])
    assert a.to_bytes() == before and s.shape == (50,) and np.all(s >= 0)
    assert a.score("never-seen", 1.0) == 0.0 and "never-seen" not in a
    # numpy string arrays and tuples are sequences of str too.
    np.testing.assert_array_equal(a.score_many(np.array(keys[:5]), X[:5]),
                                  a.score_many(tuple(keys[:5]), X[:5].ravel()))


@pytest.mark.parametrize("limit", ["max_keys", "memory_limit", "directory"])
def test_eviction_and_reload_continue_bit_identically(limit, tmp_path):
    keys, X = stream(3000, 7, seed=2)
    ref = KeyedForests(**PARAMS)
    want = run(ref, keys, X)
    one = KeyedForests(**PARAMS)
    run(one, keys[:600], X[:600])
    per_key = max(one.memory_usage() // len(one), 1)
    opts = {
        "max_keys": {"max_keys": 2, "store": CountingStore()},
        "memory_limit": {"memory_limit": 3 * per_key, "store": CountingStore()},
        "directory": {"max_keys": 3, "store": tmp_path / "forests"},
    }[limit]
    kf = KeyedForests(**PARAMS, **opts)
    got = run(kf, keys, X)
    np.testing.assert_array_equal(got, want)
    assert len(kf) == 7 and len(kf.resident_keys()) <= 3
    if limit == "memory_limit":
        assert kf.memory_usage() <= 4 * per_key
    if limit == "directory":
        files = sorted(p.name for p in (tmp_path / "forests").iterdir())
        assert files and all(f.startswith("host-") and f.endswith(".rcf") for f in files)
        saved = RandomCutForest.from_bytes((tmp_path / "forests" / files[0]).read_bytes())
        assert saved.seed == derive_seed(5, files[0][:-4])
    # An evicted key read back as a copy, without becoming resident.
    gone = next(k for k in kf if k not in kf.resident_keys())
    assert kf.forest(gone).to_bytes() == ref.forest(gone).to_bytes()
    assert gone not in kf.resident_keys()


def test_flush_writes_only_changed_keys_and_a_new_collection_finds_them():
    keys, X = stream(800, 5, seed=3)
    store = CountingStore()
    kf = KeyedForests(**PARAMS, store=store)
    run(kf, keys, X)
    assert store.writes == []
    assert kf.flush() == 5 and sorted(store.writes) == sorted(set(keys))
    assert kf.flush() == 0
    store.writes.clear()
    kf.score_update_many(["host-1", "host-4", "host-1"], [1.0, 2.0, 3.0])
    kf.score_many(["host-2"], [1.0])
    kf.score("host-3", 1.0)
    assert kf.flush() == 2 and sorted(store.writes) == ["host-1", "host-4"]
    again = KeyedForests(**PARAMS, store=store)
    assert "host-2" not in again  # found when touched, not by scanning the store
    assert again.score("host-2", 4.0) == kf.score("host-2", 4.0) > 0
    assert again.score_update("host-0", 4.0) == kf.score_update("host-0", 4.0)


def test_a_key_gets_the_same_forest_in_another_process():
    keys, X = stream(400, 3, seed=4)
    kf = KeyedForests(**PARAMS)
    mine = run(kf, keys, X).tolist()
    code = (
        "import json, sys, numpy as np; from rcf_fast import KeyedForests\n"
        "keys, xs, params = json.loads(sys.stdin.read())\n"
        "kf = KeyedForests(**params)\n"
        "print(json.dumps(kf.score_update_many(keys, np.array(xs)).tolist()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         input=json.dumps([keys, X.ravel().tolist(), PARAMS])).stdout
    assert json.loads(out) == mine


@pytest.mark.parametrize("with_store", [False, True])
def test_pickle_and_bytes_round_trips_continue_identically(with_store):
    keys, X = stream(1200, 5, seed=5)
    opts = {"max_keys": 2, "store": CountingStore()} if with_store else {}
    kf = KeyedForests(**PARAMS, **opts)
    run(kf, keys[:800], X[:800])
    state = kf.to_bytes()
    clone = pickle.loads(pickle.dumps(kf))
    copied = copy.deepcopy(kf)
    restored = KeyedForests.from_bytes(state, store=CountingStore() if with_store else None)
    assert len(clone) == len(restored) == 5 and clone.max_keys == kf.max_keys
    want = run(kf, keys[800:], X[800:])
    for other in (clone, copied, restored):
        np.testing.assert_array_equal(run(other, keys[800:], X[800:]), want)
    assert restored.to_bytes() == kf.to_bytes()
    if with_store:
        with pytest.raises(ValueError, match="store"):
            KeyedForests.from_bytes(state)


def test_damaged_state_raises_state_error():
    kf = KeyedForests(**PARAMS)
    kf.score_update_many(["a", "b"] * 50, np.arange(100.0))
    b = kf.to_bytes()
    for bad in (b"", b[:30], b[: len(b) // 2], b[:-1], b[:-3] + b"xyz", b"RCFFAST\0" + b[8:]):
        with pytest.raises(StateError):
            KeyedForests.from_bytes(bad)
    store = {"a": b"garbage"}
    with pytest.raises(StateError, match='"a"'):
        KeyedForests(**PARAMS, store=store).score_update("a", 1.0)
    # Another key's record (its seed differs) is refused, not silently used.
    good = KeyedForests(**PARAMS, store={})
    good.score_update_many(["a"] * 30, np.arange(30.0))
    swapped = {"b": good.forest("a").to_bytes()}
    with pytest.raises(StateError, match="not this collection's"):
        KeyedForests(**PARAMS, store=swapped).score_update("b", 1.0)


def test_hostile_input_leaves_state_unchanged():
    keys, X = stream(600, 4, seed=6)
    store = CountingStore()
    kf = KeyedForests(**PARAMS, max_keys=2, store=store)
    run(kf, keys, X)

    def state():
        fg, fs = store.fail_get, store.fail_set
        store.fail_get = store.fail_set = False
        s = kf.to_bytes()
        store.fail_get, store.fail_set = fg, fs
        return s, len(kf), kf.keys()

    before = state()
    bad_calls = [
        (TypeError, "position 1", lambda: kf.score_update_many(["host-0", 7], [1.0, 2.0])),
        (TypeError, "bytes", lambda: kf.score_update_many([b"host-0"], [1.0])),
        (TypeError, "single str", lambda: kf.score_update_many("host-0", [1.0])),
        (TypeError, "key must be str", lambda: kf.score_update(None, 1.0)),
        (TypeError, "key must be str", lambda: kf.score_update(3, 1.0)),
        (TypeError, "key must be str", lambda: 3 in kf),
        (ValueError, "NaN", lambda: kf.score_update_many(["host-0", "new"], [1.0, np.nan])),
        (ValueError, "infinite", lambda: kf.update_many(["new"], [np.inf])),
        (ValueError, "2 keys and 3 rows", lambda: kf.score_update_many(["a", "b"], [1, 2, 3])),
        (ValueError, "shape", lambda: kf.score_update_many(["a"], np.ones((1, 3)))),
        (ValueError, "values per point", lambda: kf.score_update("host-0", [1.0, 2.0])),
        (TypeError, "numbers", lambda: kf.score_update("host-0", ["x"])),
    ]
    for exc, msg, call in bad_calls:
        with pytest.raises(exc, match=msg):
            call()
        assert state() == before, msg
    assert "new" not in kf
    # The store fails while making room (a write) or while loading (a read).
    evicted = [k for k in kf if k not in kf.resident_keys()]
    store.fail_set = True
    with pytest.raises(ConnectionError, match="set"):
        kf.score_update_many([evicted[0], "new"], [1.0, 2.0])
    assert state() == before
    store.fail_set, store.fail_get = False, True
    with pytest.raises(ConnectionError, match="get"):
        kf.score_update(evicted[0], 1.0)
    store.fail_get = False
    assert state()[::2] == before[::2] and "new" not in kf
    # Afterwards the stream goes on exactly as in an untouched copy.
    twin = KeyedForests.from_bytes(before[0], store=CountingStore())
    np.testing.assert_array_equal(run(kf, keys[:100], X[:100]), run(twin, keys[:100], X[:100]))


def test_bad_stores_and_parameters_are_named():
    with pytest.raises(ValueError, match="need a store"):
        KeyedForests(max_keys=3)
    with pytest.raises(ValueError, match="memory_limit"):
        KeyedForests(memory_limit=0, store={})
    with pytest.raises(ValueError, match="idle_ttl"):
        KeyedForests(idle_ttl=-1.0)
    with pytest.raises(TypeError, match="store"):
        KeyedForests(store=42)
    with pytest.raises(ValueError, match="num_trees"):
        KeyedForests(num_trees=0)
    kf = KeyedForests(**PARAMS, store={"k": "not bytes"})
    with pytest.raises(TypeError, match="expected bytes"):
        kf.score_update("k", 1.0)
    assert len(kf) == 0


def test_idle_keys_are_saved_and_dropped():
    import time

    store = CountingStore()
    kf = KeyedForests(**PARAMS, store=store, idle_ttl=0.05)
    kf.score_update("old", 1.0)
    time.sleep(0.12)
    kf.score_update("new", 1.0)
    assert kf.resident_keys() == ["new"] and "old" in kf and store.writes == ["old"]
    assert KeyedForests(**PARAMS, idle_ttl=0.5).idle_ttl == 0.5


def test_threads_share_one_collection_without_deadlock():
    keys, X = stream(2000, 12, seed=7)
    want = run(KeyedForests(**PARAMS), keys, X)
    store = CountingStore()
    kf = KeyedForests(**PARAMS, max_keys=4, store=store)
    # Each thread owns some keys, so every key's rows keep their order.
    groups = {t: [i for i, k in enumerate(keys) if int(k.split("-")[1]) % 3 == t] for t in range(3)}
    got = np.zeros(len(keys))
    errors = []

    def work(t):
        try:
            idx = groups[t]
            for j in range(0, len(idx), 50):
                part = idx[j:j + 50]
                got[part] = kf.score_update_many([keys[i] for i in part], X[part])
                len(kf), kf.memory_usage()
        except (ValueError, TypeError, RuntimeError, ConnectionError) as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and not any(t.is_alive() for t in threads)
    np.testing.assert_array_equal(got, want)
