"""Per-call overhead of the binding: one-point calls on a tiny forest (one tree of 16 points).

The forest work is a few hundred nanoseconds here, so the median time of a call is mostly the
Python/Rust crossing: argument extraction, the lock, the result float. docs/performance.md
compares these figures for the version-specific and the abi3 build.
"""

from __future__ import annotations

import numpy as np
import pytest
import rcf_fast

pytestmark = pytest.mark.benchmark


def tiny(dimensions: int) -> rcf_fast.RandomCutForest:
    f = rcf_fast.RandomCutForest(
        dimensions=dimensions, num_trees=1, sample_size=16, seed=1, threads=1
    )
    f.update_many(np.random.default_rng(0).normal(size=(64, dimensions)))
    return f


@pytest.mark.parametrize("kind", ["float", "numpy scalar", "list of 4", "ndarray of 4"])
def test_call_overhead(benchmark, kind):
    dims = 1 if kind in ("float", "numpy scalar") else 4
    f = tiny(dims)
    x = {
        "float": 0.5,
        "numpy scalar": np.float64(0.5),
        "list of 4": [0.5, 0.1, -0.2, 0.3],
        "ndarray of 4": np.array([0.5, 0.1, -0.2, 0.3]),
    }[kind]
    benchmark.group = "call overhead: score_update, 1 tree of 16"
    benchmark.extra_info.update(library=f"rcf_fast {kind}", points=1)
    score = benchmark(f.score_update, x)
    assert np.isfinite(score) and score >= 0.0
