"""Accepted input forms: numbers, lists, tuples, numpy arrays of any numeric dtype or strides."""

from __future__ import annotations

import numpy as np
import pytest
from rcf_fast import RandomCutForest


def fresh(dims=2):
    f = RandomCutForest(dimensions=dims, seed=1, num_trees=20, output_after=4)
    rng = np.random.default_rng(1)
    f.update_many(rng.normal(size=(100, dims)))
    return f


@pytest.mark.parametrize(
    "point",
    [
        [1.5, -2.0],
        (1.5, -2.0),
        np.array([1.5, -2.0]),
        np.array([1.5, -2.0], dtype=np.float32),
        np.array([[1.5, -2.0]]),
        np.array([1.5, 0.0, -2.0])[::2],
        [np.float32(1.5), np.int64(-2)],
    ],
)
def test_point_forms_give_the_same_score(point):
    assert fresh().score(point) == fresh().score([1.5, -2.0])


def test_integer_inputs_are_accepted():
    f = fresh()
    assert f.score(np.array([1, -2], dtype=np.int32)) == f.score([1.0, -2.0])
    assert f.score([1, -2]) == f.score([1.0, -2.0])


def test_scalar_for_one_dimension():
    f = RandomCutForest(seed=1)
    f.update(1)
    f.update(2.5)
    f.update(np.float64(3.0))
    f.update(np.array(4.0))
    assert f.entries_seen == 4


@pytest.mark.parametrize(
    "make",
    [
        lambda X: X,
        lambda X: X.tolist(),
        lambda X: [tuple(r) for r in X],
        lambda X: X.astype(np.float32).astype(np.float64),
        lambda X: np.asfortranarray(X),
        lambda X: np.repeat(X, 2, axis=0)[::2],
        lambda X: X.round().astype(np.int64).astype(np.float64),
    ],
)
def test_batch_forms(make):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 2)) * 10
    Y = np.asarray(make(X), dtype=np.float64)
    a = RandomCutForest(dimensions=2, seed=3).score_update_many(make(X))
    b = RandomCutForest(dimensions=2, seed=3).score_update_many(np.ascontiguousarray(Y))
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float64 and a.shape == (300,)


def test_float32_and_int_batches():
    X = (np.arange(400) % 17).reshape(-1, 1)
    a = RandomCutForest(seed=3).score_update_many(X.astype(np.int32))
    b = RandomCutForest(seed=3).score_update_many(X.astype(np.float32))
    c = RandomCutForest(seed=3).score_update_many(X.astype(np.float64))
    np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(b, c)


def test_one_dimensional_batch_for_one_dimension():
    x = np.sin(np.arange(500) / 5)
    a = RandomCutForest(seed=1).score_update_many(x)
    b = RandomCutForest(seed=1).score_update_many(x.reshape(-1, 1))
    np.testing.assert_array_equal(a, b)


def test_empty_batch():
    f = RandomCutForest(dimensions=3, seed=1)
    out = f.score_update_many(np.empty((0, 3)))
    assert out.shape == (0,)
    assert f.entries_seen == 0


def test_input_array_is_not_modified():
    X = np.random.default_rng(0).normal(size=(200, 2))
    copy = X.copy()
    RandomCutForest(dimensions=2, seed=1).score_update_many(X)
    np.testing.assert_array_equal(X, copy)
