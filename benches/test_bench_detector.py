"""AnomalyDetector.process_many against score_update_many with the same forest settings.

The issue's goal: process_many at >= 0.8x the points/s of score_update_many. Both run in the
same session on the same taxi stretch; the ratio is printed by pytest-benchmark's table (compare
the `detector` group's two rows).
"""

from __future__ import annotations

import numpy as np
import pytest
import rcf_fast

WARM = 2000
N = 4000
SHINGLE = 8


def _warm(make, taxi):
    def setup():
        f = make()
        rows = taxi[:WARM].reshape(-1, 1)
        if isinstance(f, rcf_fast.AnomalyDetector):
            f.process_many(rows)
        else:
            f.update_many(rows)
        return (f,), {}

    return setup


@pytest.mark.benchmark
@pytest.mark.parametrize("threads", [None, 1])
def test_score_update_many(benchmark, taxi, threads):
    benchmark.group = "detector"
    data = taxi[WARM : WARM + N].reshape(-1, 1)
    setup = _warm(
        lambda: rcf_fast.RandomCutForest(shingle_size=SHINGLE, seed=1, threads=threads), taxi
    )
    out = benchmark.pedantic(lambda f: f.score_update_many(data), setup=setup, rounds=5)
    assert np.isfinite(out).all() and out.max() > 0


@pytest.mark.benchmark
@pytest.mark.parametrize(("threads", "scales"), [(None, "default"), (1, "default"), (1, "none")])
def test_detector_process_many(benchmark, taxi, threads, scales):
    benchmark.group = "detector"
    data = taxi[WARM : WARM + N].reshape(-1, 1)
    kw = {} if scales == "default" else {"scales": ()}
    setup = _warm(
        lambda: rcf_fast.AnomalyDetector(shingle_size=SHINGLE, seed=1, threads=threads, **kw), taxi
    )
    out = benchmark.pedantic(lambda d: d.process_many(data), setup=setup, rounds=5)
    assert np.isfinite(out["score"]).all() and out["score"].max() > 0
