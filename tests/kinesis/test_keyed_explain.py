"""KeyedForests.score_update_explain (attribution only where read) and adopt (forests with a seed
that is not the derived one): equal to the per-row loop over per-key RandomCutForests."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest
from rcf_fast import KeyedForests, RandomCutForest, StateError

PARAMS: dict[str, Any] = {
    "dimensions": 2,
    "shingle_size": 2,
    "num_trees": 16,
    "sample_size": 48,
    "seed": 5,
}


def stream(n: int, k: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, k, n)
    t = np.arange(n)
    a = np.sin(t * 0.07 + ids) * (1 + ids) + rng.normal(0, 0.05, n)
    b = np.cos(t * 0.05) + rng.normal(0, 0.05, n)
    a[rng.random(n) < 0.02] += 25
    return [f"host-{i}" for i in ids], np.column_stack([a, b])


def reference(keys, X, min_score):
    """The per-row loop of today's Kinesis step: attribution(x) then score_update(x)."""
    forests: dict[str, RandomCutForest] = {}
    scores, rows, high, low = [], [], [], []
    for i, (k, x) in enumerate(zip(keys, X)):
        if k not in forests:
            p = {**PARAMS, "seed": KeyedForests.derive_seed(PARAMS["seed"], k)}
            forests[k] = RandomCutForest(**p)
        a = forests[k].attribution(x)
        s = forests[k].score_update(x)
        scores.append(s)
        if s >= (min_score[i] if np.ndim(min_score) else min_score):
            rows.append(i)
            high.append(np.asarray(a.high))
            low.append(np.asarray(a.low))
    return np.array(scores), np.array(rows, dtype=np.int64), high, low, forests


@pytest.mark.parametrize("min_score", [-np.inf, 1.2, 2.0, np.inf])
def test_explain_equals_per_row_loop(min_score):
    keys, X = stream(900, 7)
    kf = KeyedForests(**PARAMS)
    plain = KeyedForests(**PARAMS)
    got_s, got_r, got_h, got_l = [], [], [], []
    for i in range(0, len(keys), 150):
        s, r, h, lo = kf.score_update_explain(keys[i : i + 150], X[i : i + 150], min_score)
        assert h.shape == lo.shape == (len(r), 2)
        got_s.append(s)
        got_r.append(r + i)
        got_h.extend(h)
        got_l.extend(lo)
        # Scores bit-identical to score_update_many.
        assert np.array_equal(s, plain.score_update_many(keys[i : i + 150], X[i : i + 150]))
    ref_s, ref_r, ref_h, ref_l, forests = reference(keys, X, min_score)
    assert np.array_equal(np.concatenate(got_s), ref_s)
    assert np.array_equal(np.concatenate(got_r), ref_r)
    if min_score == np.inf:
        assert len(ref_r) == 0
    if min_score == -np.inf:
        assert len(ref_r) == len(keys)
    if min_score == 2.0:
        assert 0 < len(ref_r) < len(keys)  # the threshold really selects
    assert np.array_equal(np.array(got_h).reshape(-1, 2), np.array(ref_h).reshape(-1, 2))
    assert np.array_equal(np.array(got_l).reshape(-1, 2), np.array(ref_l).reshape(-1, 2))
    # The forests learned exactly what the loop's forests learned.
    for k, f in forests.items():
        assert kf.forest(k).to_bytes() == f.to_bytes()


def test_explain_with_one_bound_per_row_equals_the_loop():
    keys, X = stream(600, 5, seed=3)
    bounds = np.random.default_rng(3).choice([-np.inf, 1.0, 1.5, 3.0, np.inf], len(keys))
    kf = KeyedForests(**PARAMS)
    s, r, h, lo = kf.score_update_explain(keys, X, bounds)
    ref_s, ref_r, ref_h, ref_l, forests = reference(keys, X, bounds)
    assert np.array_equal(s, ref_s) and np.array_equal(r, ref_r)
    assert 0 < len(r) < len(keys)
    assert np.array_equal(h, np.array(ref_h).reshape(-1, 2))
    assert np.array_equal(lo, np.array(ref_l).reshape(-1, 2))
    for k, f in forests.items():
        assert kf.forest(k).to_bytes() == f.to_bytes()


def test_explain_hostile_input_changes_nothing():
    keys, X = stream(200, 3)
    kf = KeyedForests(**PARAMS)
    kf.score_update_many(keys, X)
    before = kf.to_bytes()
    bad_x = X[:4].copy()
    bad_x[2, 1] = np.nan
    with pytest.raises(ValueError, match="(?i)nan|finite"):
        kf.score_update_explain(keys[:4], bad_x, 1.0)
    with pytest.raises(ValueError, match="one key per row"):
        kf.score_update_explain(keys[:3], X[:4], 1.0)
    with pytest.raises(ValueError):
        kf.score_update_explain(keys[:4], X[:4, :1], 1.0)
    with pytest.raises(TypeError, match="position 1"):
        kf.score_update_explain(["a", 3, "b", "c"], X[:4], 1.0)
    with pytest.raises(ValueError, match="min_score"):
        kf.score_update_explain(keys[:4], X[:4], float("nan"))
    with pytest.raises(ValueError, match="min_score"):
        kf.score_update_explain(keys[:4], X[:4], [1.0, 2.0, float("nan"), 1.0])
    with pytest.raises(ValueError, match="one bound per row"):
        kf.score_update_explain(keys[:4], X[:4], [1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="min_score"):
        kf.score_update_explain(keys[:4], X[:4], "high")
    with pytest.raises(ValueError):
        kf.score_update_explain(keys[:1], np.array([[1e300, 0.0]]), 1.0)
    assert kf.to_bytes() == before
    s, r, h, lo = kf.score_update_explain([], np.zeros((0, 2)), 0.0)
    assert len(s) == len(r) == 0 and h.shape == lo.shape == (0, 2)


def legacy_forest(key: str, seed: int, X: np.ndarray) -> RandomCutForest:
    f = RandomCutForest(**{**PARAMS, "seed": seed})
    f.score_update_many(X)
    return f


def test_adopt_continues_a_forest_with_another_seed(tmp_path):
    keys, X = stream(600, 2)
    rows = [x for k, x in zip(keys, X) if k == "host-0"]
    first, rest = np.array(rows[:150]), np.array(rows[150:])
    old = legacy_forest("host-0", 12345, first)
    kf = KeyedForests(**PARAMS, max_keys=1, store=str(tmp_path))
    kf.adopt("host-0", old.to_bytes())
    assert kf.seed_of("host-0") == 12345
    assert kf.seed_overrides() == [("host-0", 12345)]
    # Evicted (max_keys=1) and reloaded from the directory: still accepted and exact.
    kf.score_update_many(["other"], X[:1])
    got = kf.score_update_many(["host-0"] * len(rest), rest)
    want = old.score_update_many(rest)
    assert np.array_equal(got, want)
    # The state (format version 2 with seeds) keeps the override.
    again = pickle.loads(pickle.dumps(kf))
    assert again.seed_of("host-0") == 12345
    assert again.forest("host-0").to_bytes() == kf.forest("host-0").to_bytes()
    # A second collection sharing the store learns the seed with set_key_seed.
    other = KeyedForests(**PARAMS, store=str(tmp_path))
    with pytest.raises(StateError, match="not this collection"):
        other.score_update_many(["host-0"], rest[:1])
    other.set_key_seed("host-0", 12345)
    kf.flush()
    assert np.array_equal(
        other.score_update_many(["host-0"], rest[:1]), old.score(rest[0]) * np.ones(1)
    )


def test_adopt_refuses_foreign_forests():
    kf = KeyedForests(**PARAMS)
    with pytest.raises(StateError):
        kf.adopt("k", b"garbage")
    with pytest.raises(StateError, match="other parameters"):
        kf.adopt("k", RandomCutForest(dimensions=3, seed=1).to_bytes())
    with pytest.raises(TypeError):
        kf.adopt(5, RandomCutForest(**PARAMS).to_bytes())  # type: ignore[arg-type]
    assert len(kf) == 0
