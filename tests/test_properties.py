"""Hypothesis properties of the forest (profile via HYPOTHESIS_PROFILE)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from rcf_fast import RandomCutForest

values = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, width=32)


@given(
    X=arrays(np.float64, st.tuples(st.integers(0, 150), st.integers(1, 3)), elements=values),
    shingle=st.integers(1, 3),
    scoring=st.sampled_from(["rcf", "codisp"]),
    sampler=st.sampled_from(["decay", "window"]),
    seed=st.integers(0, 2**64 - 1),
)
def test_batch_equals_row_by_row_and_state_round_trips(X, shingle, scoring, sampler, seed):
    kw = {
        "dimensions": X.shape[1],
        "shingle_size": shingle,
        "num_trees": 5,
        "sample_size": 16,
        "output_after": 2,
        "scoring": scoring,
        "sampler": sampler,
        "seed": seed,
    }
    a = RandomCutForest(**kw)
    b = RandomCutForest(**kw)
    rows = np.array([a.score_update(r) for r in X])
    batch = b.score_update_many(X)
    np.testing.assert_array_equal(rows, batch)
    assert np.all(np.isfinite(batch)) and np.all(batch >= 0)
    assert a.to_bytes() == b.to_bytes()
    c = RandomCutForest.from_bytes(a.to_bytes())
    probe = X[:5] if len(X) else np.zeros((1, X.shape[1]))
    np.testing.assert_array_equal(c.score_many(probe), a.score_many(probe))


@given(
    x=arrays(np.float64, st.integers(50, 200), elements=values),
    seed=st.integers(0, 1000),
)
def test_duplicates_of_the_learned_value_are_not_anomalous(x, seed):
    f = RandomCutForest(num_trees=10, sample_size=32, seed=seed, output_after=1)
    f.update_many(np.full(100, 7.0))
    # A value seen 100 times scores no higher than a value never seen.
    assert f.score(7.0) <= f.score(8.0)
