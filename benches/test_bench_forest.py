"""rcf_fast vs krcf, rcf3 and rrcf on the same streams (run with `make bench`).

Each round streams `N` fresh points through a forest that already learned a warm-up stretch,
so every library is measured in its steady state. Scores are checked for sanity, and ratios
against krcf are printed at the end of the run.
"""

from __future__ import annotations

import numpy as np
import pytest
import rcf_fast
from conftest import import_rrcf

WARM = 2000
N = 2000
TREES, SAMPLES, SHINGLE = 100, 256, 4


def krcf_forest(dims, shingle, seed=1, parallel=False):
    import krcf

    return krcf.RandomCutForest(
        {
            "dimensions": dims,
            "shingle_size": shingle,
            "num_trees": TREES,
            "sample_size": SAMPLES,
            "output_after": SAMPLES // 4,
            "random_seed": seed,
            "internal_shingling": True,
            "parallel_execution_enabled": parallel,
        }
    )


def krcf_warmed(dims, shingle, rows, parallel=False):
    f = krcf_forest(dims, shingle, parallel=parallel)
    for r in rows:
        f.update(r)
    return (f,), {}


def krcf_stream(f, rows):
    """krcf's streaming step: score, then update (it has no combined call)."""
    out = []
    for p in rows:
        out.append(f.score(p))
        f.update(p)
    return out


def run(benchmark, group, library, setup, stream, n):
    benchmark.group = group
    benchmark.extra_info.update(library=library, points=n)
    result = benchmark.pedantic(stream, setup=setup, rounds=5, iterations=1, warmup_rounds=0)
    scores = np.asarray(result, dtype=float)
    assert len(scores) == n and np.all(np.isfinite(scores)) and scores.max() > 0


# ---- standard config: 1-d series, shingle 4, one call per point from Python ----------------


@pytest.mark.benchmark
def test_stream_rcf_fast(benchmark, taxi):
    data = taxi[WARM : WARM + N]

    def setup():
        f = rcf_fast.RandomCutForest(
            shingle_size=SHINGLE, num_trees=TREES, sample_size=SAMPLES, seed=1
        )
        f.update_many(taxi[:WARM])
        return (f,), {}

    def stream(f):
        return [f.score_update(v) for v in data]

    run(benchmark, "stream 1-d shingle 4", "rcf_fast", setup, stream, N)


@pytest.mark.benchmark
def test_stream_rcf_fast_serial(benchmark, taxi):
    data = taxi[WARM : WARM + N]

    def setup():
        f = rcf_fast.RandomCutForest(
            shingle_size=SHINGLE, num_trees=TREES, sample_size=SAMPLES, seed=1, threads=1
        )
        f.update_many(taxi[:WARM])
        return (f,), {}

    def stream(f):
        return [f.score_update(v) for v in data]

    run(benchmark, "stream 1-d shingle 4", "rcf_fast (threads=1)", setup, stream, N)


@pytest.mark.benchmark
@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "parallel"])
def test_stream_krcf(benchmark, taxi, parallel):
    data = [[float(v)] for v in taxi[WARM : WARM + N]]
    warm = [[float(v)] for v in taxi[:WARM]]
    run(
        benchmark,
        "stream 1-d shingle 4",
        "krcf" if not parallel else "krcf (parallel)",
        lambda: krcf_warmed(1, SHINGLE, warm, parallel),
        lambda f: krcf_stream(f, data),
        N,
    )


@pytest.mark.benchmark
def test_stream_rcf3(benchmark, taxi):
    import rcf3

    data = [[float(v)] for v in taxi[WARM : WARM + N]]

    def setup():
        f = rcf3.Forest(1, shingle_size=SHINGLE, num_trees=TREES, capacity=SAMPLES, seed=1)
        for v in taxi[:WARM]:
            f.update([float(v)])
        return (f,), {}

    def stream(f):
        return [f.update_and_score(p) for p in data]

    run(benchmark, "stream 1-d shingle 4", "rcf3", setup, stream, N)


@pytest.mark.benchmark
def test_stream_rrcf(benchmark, taxi):
    rrcf = import_rrcf()
    n = 20  # rrcf manages about 15 points/s at 100 trees
    points = np.array(list(rrcf.shingle(taxi[: 300 + n + SHINGLE], SHINGLE)))

    def setup():
        np.random.seed(0)
        forest = [rrcf.RCTree() for _ in range(TREES)]
        for i, p in enumerate(points[:300]):
            for t in forest:
                t.insert_point(p, index=i)
        return (forest,), {}

    def stream(forest):
        out = []
        for i in range(300, 300 + n):
            s = 0.0
            for t in forest:
                if len(t.leaves) > SAMPLES:
                    t.forget_point(i - SAMPLES)
                t.insert_point(points[i], index=i)
                s += t.codisp(i) / TREES
            out.append(s)
        return out

    benchmark.group = "stream 1-d shingle 4"
    benchmark.extra_info.update(library="rrcf", points=n)
    res = benchmark.pedantic(stream, setup=setup, rounds=1, iterations=1)
    assert len(res) == n


# ---- same config, one 2-D batch with all cores -----------------------------------------------


@pytest.mark.benchmark
def test_batch_rcf_fast(benchmark, taxi):
    data = taxi[WARM : WARM + 4 * N]

    def setup():
        f = rcf_fast.RandomCutForest(
            shingle_size=SHINGLE, num_trees=TREES, sample_size=SAMPLES, seed=1
        )
        f.update_many(taxi[:WARM])
        return (f,), {}

    run(
        benchmark,
        "batch 1-d shingle 4",
        "rcf_fast score_update_many",
        setup,
        lambda f: f.score_update_many(data),
        len(data),
    )


@pytest.mark.benchmark
def test_batch_krcf(benchmark, taxi):
    # krcf has no batch call: its best is the per-point loop (parallel mode measured above).
    data = [[float(v)] for v in taxi[WARM : WARM + N]]
    warm = [[float(v)] for v in taxi[:WARM]]
    run(
        benchmark,
        "batch 1-d shingle 4",
        "krcf",
        lambda: krcf_warmed(1, SHINGLE, warm),
        lambda f: krcf_stream(f, data),
        N,
    )


# ---- 16-d points -------------------------------------------------------------------------------


@pytest.mark.benchmark
@pytest.mark.parametrize("mode", ["stream", "batch"])
def test_16d_rcf_fast(benchmark, points16, mode):
    data = points16[WARM : WARM + N]

    def setup():
        f = rcf_fast.RandomCutForest(dimensions=16, num_trees=TREES, sample_size=SAMPLES, seed=1)
        f.update_many(points16[:WARM])
        return (f,), {}

    if mode == "stream":

        def stream(f):
            return [f.score_update(r) for r in data]
    else:

        def stream(f):
            return f.score_update_many(data)

    run(benchmark, "16-d points", f"rcf_fast {mode}", setup, stream, N)


@pytest.mark.benchmark
def test_16d_krcf(benchmark, points16):
    data = points16[WARM : WARM + N].tolist()
    warm = points16[:WARM].tolist()
    run(
        benchmark,
        "16-d points",
        "krcf",
        lambda: krcf_warmed(16, 1, warm),
        lambda f: krcf_stream(f, data),
        N,
    )


@pytest.mark.benchmark
def test_16d_rcf3(benchmark, points16):
    import rcf3

    data = points16[WARM : WARM + N].tolist()

    def setup():
        f = rcf3.Forest(16, num_trees=TREES, capacity=SAMPLES, seed=1)
        for r in points16[:WARM].tolist():
            f.update(r)
        return (f,), {}

    run(benchmark, "16-d points", "rcf3", setup, lambda f: [f.update_and_score(p) for p in data], N)
