"""Bad input raises a clear, typed error and leaves the forest unchanged."""

from __future__ import annotations

import numpy as np
import pytest
from rcf_fast import RandomCutForest, StateError


@pytest.fixture
def forest():
    f = RandomCutForest(dimensions=2, shingle_size=2, seed=1, num_trees=20)
    f.update_many(np.random.default_rng(0).normal(size=(200, 2)))
    return f


BAD_POINTS = [
    ([1.0], ValueError, "expected 2 values"),
    ([1.0, 2.0, 3.0], ValueError, "expected 2 values"),
    ([1.0, float("nan")], ValueError, "NaN value at row 0, column 1"),
    ([float("inf"), 1.0], ValueError, "infinite value"),
    ([1e300, 1.0], ValueError, "does not fit in float32"),
    (["a", 1.0], TypeError, "expected numbers, got str"),
    ([None, 1.0], TypeError, "expected numbers, got NoneType"),
    (np.array(["a", "b"]), TypeError, "numeric array"),
    (np.array([1 + 2j, 1]), TypeError, "numeric array"),
    (np.zeros((2, 2)), ValueError, r"shape \(2,\)"),
    (3.0, ValueError, "single number"),
]


@pytest.mark.parametrize("method", ["score", "update", "score_update", "attribution"])
@pytest.mark.parametrize("point,exc,message", BAD_POINTS)
def test_bad_points_raise_and_change_nothing(forest, method, point, exc, message):
    before = forest.to_bytes()
    with pytest.raises(exc, match=message):
        getattr(forest, method)(point)
    assert forest.to_bytes() == before


BAD_BATCHES = [
    (np.zeros((5, 3)), ValueError, r"shape \(n, 2\)"),
    (np.zeros(5), ValueError, r"shape \(n, 2\)"),
    (np.zeros((2, 2, 2)), ValueError, r"shape \(n, 2\)"),
    (np.array([[1.0, 2.0], [3.0, np.nan]]), ValueError, "NaN value at row 1, column 1"),
    (np.array([[1.0, 2.0], [np.inf, 1.0]]), ValueError, "infinite value at row 1, column 0"),
    (np.array([["a", "b"]]), TypeError, "numeric array"),
    ([[1.0, 2.0], [3.0]], ValueError, "sequence or an array of numbers"),
    ([[1.0, 2.0], ["x", 3.0]], TypeError, "numeric array"),
]


@pytest.mark.parametrize("method", ["score_update_many", "score_many", "update_many"])
@pytest.mark.parametrize("batch,exc,message", BAD_BATCHES)
def test_bad_batches_raise_and_change_nothing(forest, method, batch, exc, message):
    before = forest.to_bytes()
    with pytest.raises(exc, match=message):
        getattr(forest, method)(batch)
    assert forest.to_bytes() == before


def test_a_bad_row_late_in_a_batch_rejects_the_whole_batch(forest):
    before = forest.to_bytes()
    X = np.random.default_rng(1).normal(size=(5000, 2))
    X[4999, 0] = np.nan
    with pytest.raises(ValueError, match="row 4999"):
        forest.score_update_many(X)
    assert forest.to_bytes() == before


@pytest.mark.parametrize(
    "kwargs,exc,message",
    [
        ({"dimensions": 0}, ValueError, "dimensions"),
        ({"dimensions": -1}, ValueError, "dimensions"),
        ({"shingle_size": 0}, ValueError, "shingle_size"),
        ({"num_trees": 0}, ValueError, "num_trees"),
        ({"sample_size": 1}, ValueError, "sample_size"),
        ({"sample_size": 40000}, ValueError, "sample_size"),
        ({"time_decay": -0.5}, ValueError, "time_decay"),
        ({"time_decay": float("nan")}, ValueError, "time_decay"),
        ({"sampler": "fifo"}, ValueError, "sampler"),
        ({"scoring": "density"}, ValueError, "scoring"),
        ({"output_after": -3}, ValueError, "output_after"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": "abc"}, TypeError, "seed"),
        ({"seed": 1.5}, TypeError, "seed"),
        ({"threads": 0}, ValueError, "threads"),
        ({"dimensions": 1.5}, TypeError, "int"),
    ],
)
def test_bad_parameters(kwargs, exc, message):
    with pytest.raises(exc, match=message):
        RandomCutForest(**kwargs)


def test_numpy_integer_seed_is_accepted():
    a = RandomCutForest(seed=np.int64(5)).score_update_many(np.arange(200.0))
    b = RandomCutForest(seed=5).score_update_many(np.arange(200.0))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "data,message",
    [
        (b"", "not an rcf_fast forest"),
        (b"garbage bytes that are long enough to have a header", "not an rcf_fast forest"),
    ],
)
def test_foreign_bytes(data, message):
    with pytest.raises(StateError, match=message):
        RandomCutForest.from_bytes(data)


def test_state_error_is_a_value_error():
    assert issubclass(StateError, ValueError)
