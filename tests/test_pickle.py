"""Saved state: round trips, exact continuation, versioning, damage detection."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from rcf_fast import RandomCutForest, StateError


@pytest.mark.parametrize("scoring", ["rcf", "codisp"])
@pytest.mark.parametrize("sampler", ["decay", "window"])
def test_restored_forest_continues_with_identical_scores(nyc_taxi, scoring, sampler):
    f = RandomCutForest(shingle_size=4, seed=21, scoring=scoring, sampler=sampler)
    f.update_many(nyc_taxi[:2000])
    g = RandomCutForest.from_bytes(f.to_bytes())
    h = pickle.loads(pickle.dumps(f))
    rest = nyc_taxi[2000:3500]
    expected = f.score_update_many(rest)
    np.testing.assert_array_equal(np.array([g.score_update(v) for v in rest]), expected)
    np.testing.assert_array_equal(h.score_update_many(rest), expected)
    assert g.to_bytes() == f.to_bytes() == h.to_bytes()


def test_restart_does_not_score_zeros(nyc_taxi):
    f = RandomCutForest(shingle_size=4, seed=1)
    f.update_many(nyc_taxi[:1000])
    g = pickle.loads(pickle.dumps(f))
    assert g.is_ready
    assert g.score_update(nyc_taxi[1000]) > 0
    assert g.entries_seen == 1001


def test_configuration_survives():
    f = RandomCutForest(
        dimensions=3,
        shingle_size=2,
        num_trees=7,
        sample_size=50,
        time_decay=0.01,
        sampler="window",
        scoring="codisp",
        output_after=5,
        seed=99,
        threads=1,
    )
    g = RandomCutForest.from_bytes(f.to_bytes())
    for attr in (
        "dimensions",
        "shingle_size",
        "num_trees",
        "sample_size",
        "time_decay",
        "sampler",
        "scoring",
        "output_after",
        "seed",
        "threads",
    ):
        assert getattr(g, attr) == getattr(f, attr), attr


def test_copy_and_deepcopy_are_independent(sine):
    f = RandomCutForest(seed=1)
    f.update_many(sine[:300])
    g = copy.deepcopy(f)
    h = copy.copy(f)
    f.update_many(sine[300:600])
    assert g.entries_seen == h.entries_seen == 300
    assert g.to_bytes() == h.to_bytes() != f.to_bytes()


def test_every_single_byte_flip_is_detected(sine):
    f = RandomCutForest(seed=1, num_trees=5, sample_size=16)
    f.update_many(sine[:100])
    data = bytearray(f.to_bytes())
    for pos in range(0, len(data), max(1, len(data) // 300)):
        damaged = bytearray(data)
        damaged[pos] ^= 0xFF
        with pytest.raises(StateError):
            RandomCutForest.from_bytes(bytes(damaged))


def test_truncated_and_unknown_version(sine):
    f = RandomCutForest(seed=1, num_trees=5)
    f.update_many(sine[:100])
    data = f.to_bytes()
    with pytest.raises(StateError, match="truncated"):
        RandomCutForest.from_bytes(data[:-10])
    future = bytearray(data)
    future[8:12] = (99).to_bytes(4, "little")
    with pytest.raises(StateError, match="version 99 is not supported"):
        RandomCutForest.from_bytes(bytes(future))


def test_bytes_are_canonical_regardless_of_call_pattern(sine):
    a = RandomCutForest(shingle_size=2, seed=4)
    b = RandomCutForest(shingle_size=2, seed=4)
    for v in sine[:700]:
        a.score_update(v)
    b.score_update_many(sine[:700])
    assert a.to_bytes() == b.to_bytes()
