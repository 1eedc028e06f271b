"""Behaviour of RandomCutForest through its public API."""

from __future__ import annotations

import numpy as np
import pytest
import rcf_fast
from rcf_fast import RandomCutForest


def test_defaults_match_the_contract():
    f = RandomCutForest()
    assert (f.dimensions, f.shingle_size, f.num_trees, f.sample_size) == (1, 1, 100, 256)
    assert f.sampler == "decay" and f.scoring == "rcf"
    assert f.time_decay == pytest.approx(0.1 / 256)
    assert f.output_after == 64
    assert f.entries_seen == 0 and not f.is_ready
    assert rcf_fast.__version__


@pytest.mark.parametrize("scoring", ["rcf", "codisp"])
@pytest.mark.parametrize("sampler", ["decay", "window"])
def test_planted_anomalies_score_far_above_the_rest(sine, scoring, sampler):
    x = sine.copy()
    planted = [1500, 2200, 2700]
    x[planted] += [25.0, -30.0, 20.0]
    f = RandomCutForest(shingle_size=4, num_trees=60, seed=3, scoring=scoring, sampler=sampler)
    s = f.score_update_many(x)
    normal = np.delete(s[800:], [p - 800 + k for p in planted for k in range(4)])
    for p in planted:
        # Far above: beyond every normal point and 2.5x the normal 99th percentile.
        assert s[p] > max(2.5 * np.quantile(normal, 0.99), normal.max()), (p, s[p])
    # The highest scores all belong to shingles that contain a planted value.
    windows = {p + k for p in planted for k in range(4)}
    assert set(np.argsort(s)[-6:]) <= windows


def test_scores_are_zero_until_output_after(sine):
    f = RandomCutForest(shingle_size=4, output_after=10, seed=1)
    s = [f.score_update(v) for v in sine[:40]]
    # 3 observations fill the shingle, then 10 points are learned before the first score.
    assert s[:13] == [0.0] * 13
    assert all(v > 0 for v in s[13:])
    assert f.is_ready and f.entries_seen == 40


def test_score_does_not_change_the_forest(sine):
    f = RandomCutForest(seed=2)
    f.update_many(sine[:500])
    before = f.to_bytes()
    a = f.score(3.0)
    assert f.score(3.0) == a
    assert f.to_bytes() == before
    assert f.entries_seen == 500


def test_score_update_is_score_then_update(sine):
    a = RandomCutForest(shingle_size=2, seed=5)
    b = RandomCutForest(shingle_size=2, seed=5)
    for v in sine[:400]:
        s = a.score(v)
        a.update(v)
        assert b.score_update(v) == s
    assert a.to_bytes() == b.to_bytes()


def test_batch_equals_rows_and_threads_do_not_change_results(nyc_taxi):
    x = nyc_taxi[:3000]
    one = RandomCutForest(shingle_size=4, seed=11, threads=1)
    rows = np.array([one.score_update(v) for v in x])
    for threads in (1, 2, None):
        f = RandomCutForest(shingle_size=4, seed=11, threads=threads)
        np.testing.assert_array_equal(f.score_update_many(x), rows)


def test_same_seed_same_scores_different_seed_differs(sine):
    def run(seed):
        f = RandomCutForest(shingle_size=4, seed=seed)
        return f.score_update_many(sine[:1000])

    np.testing.assert_array_equal(run(7), run(7))
    assert not np.array_equal(run(7), run(8))


def test_unseeded_forests_differ(sine):
    a = RandomCutForest(shingle_size=4).score_update_many(sine[:500])
    b = RandomCutForest(shingle_size=4).score_update_many(sine[:500])
    assert not np.array_equal(a, b)


def test_score_many_treats_rows_as_a_continuation(sine):
    f = RandomCutForest(shingle_size=3, seed=4)
    f.update_many(sine[:600])
    batch = f.score_many(sine[600:610])
    # Row i is shingled with the rows before it, without learning.
    g = RandomCutForest.from_bytes(f.to_bytes())
    expected = []
    for v in sine[600:610]:
        expected.append(g.score(v))
        g.update(v)  # advances the shingle; learning changes later scores, so compare the first
    assert batch[0] == expected[0]
    assert f.entries_seen == 600
    assert np.all(batch > 0)


def test_attribution_names_dimension_and_direction():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 3))
    f = RandomCutForest(dimensions=3, seed=9)
    f.update_many(X)
    x = np.array([0.0, 0.0, 9.0])
    a = f.attribution(x)
    assert isinstance(a, rcf_fast.Attribution)
    assert a.high.shape == (3,) and a.low.shape == (3,)
    # Equal up to float32 rounding (boxes and points are stored in float32).
    assert a.total == pytest.approx(f.score(x), rel=1e-6)
    assert a.high[2] > 0.8 * a.total
    y = np.array([-9.0, 0.0, 0.0])
    b = f.attribution(y)
    assert b.low[0] > 0.8 * b.total
    assert "Attribution(" in repr(a)


def test_attribution_sums_shingle_positions_per_input_dimension(sine):
    f = RandomCutForest(dimensions=2, shingle_size=4, seed=1)
    X = np.stack([sine, np.cos(np.arange(len(sine)) / 8.0)], axis=1)
    f.update_many(X[:2000])
    a = f.attribution([sine[2000] + 40.0, X[2000, 1]])
    assert a.high.shape == (2,)
    assert a.high[0] > a.high[1] + a.low[1]
    assert a.high.sum() + a.low.sum() == pytest.approx(a.total)


def test_window_sampler_forgets_old_regime():
    f = RandomCutForest(sampler="window", sample_size=64, seed=1, num_trees=30)
    f.update_many(np.zeros(500))
    f.update_many(np.full(500, 100.0))
    # The old value is now as strange as a new one: the window holds only 100s.
    assert f.score(0.0) > 2.0
    assert f.score(100.0) < 1.0


def test_time_decay_zero_is_a_uniform_reservoir():
    f = RandomCutForest(time_decay=0.0, sample_size=64, seed=1, num_trees=30)
    f.update_many(np.zeros(3000))
    f.update_many(np.full(200, 100.0))
    # A uniform reservoir still mostly holds zeros; a fast decay holds the recent 100s.
    g = RandomCutForest(time_decay=0.1, sample_size=64, seed=1, num_trees=30)
    g.update_many(np.zeros(3000))
    g.update_many(np.full(200, 100.0))
    assert f.score(100.0) > g.score(100.0)
    assert f.time_decay == 0.0


def test_shingle_helper_matches_rrcf_semantics():
    windows = list(rcf_fast.shingle([1, 2, 3, 4, 5], 3))
    assert [w.tolist() for w in windows] == [[1, 2, 3], [2, 3, 4], [3, 4, 5]]
    assert list(rcf_fast.shingle([1, 2], 3)) == []
    with pytest.raises(ValueError, match="positive integer"):
        list(rcf_fast.shingle([1, 2, 3], 0))


def test_repr_and_memory_usage():
    f = RandomCutForest(dimensions=2, seed=1)
    f.update([1.0, 2.0])
    assert "RandomCutForest(dimensions=2" in repr(f)
    assert "entries_seen=1" in repr(f)
    assert f.memory_usage() > 0


def test_threads_property_is_settable(sine):
    f = RandomCutForest(seed=1)
    f.threads = 1
    assert f.threads == 1
    f.threads = None
    assert f.threads is None
    with pytest.raises(ValueError, match="threads"):
        f.threads = 0


def test_one_point_calls_with_explicit_threads_match_serial(nyc_taxi):
    x = nyc_taxi[:1500]
    serial = RandomCutForest(shingle_size=4, seed=3, threads=1)
    split = RandomCutForest(shingle_size=4, seed=3, threads=2)
    a = [serial.score_update(v) for v in x]
    b = [split.score_update(v) for v in x]
    assert a == b
    assert serial.score(9000.0) == split.score(9000.0)
