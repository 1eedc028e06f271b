"""rcf_fast.rrcf against rrcf 0.4.4 on rrcf's own README workloads.

Run with ``pytest benches/test_bench_rrcf.py --benchmark-enable``. The pytest-benchmark tests
time each library; the ``test_speedup_*`` tests time both in the same run (rrcf once, ours best
of several rounds after a warm-up) and require a 100x speedup. Both libraries are checked to
compute the same thing (compat="0.4.4" on the same numpy global seed gives identical scores).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import rcf_fast.rrcf as fast

oracle = pytest.importorskip("rrcf")

pytestmark = pytest.mark.benchmark


def readme_streaming(rrcf):
    # rrcf README "Streaming anomaly detection", verbatim.
    n = 730
    A = 50
    center = 100
    phi = 30
    T = 2 * np.pi / 100
    t = np.arange(n)
    sin = A * np.sin(T * t - phi * T) + center
    sin[235:255] = 80

    num_trees = 40
    shingle_size = 4
    tree_size = 256

    forest = []
    for _ in range(num_trees):
        tree = rrcf.RCTree()
        forest.append(tree)

    points = rrcf.shingle(sin, size=shingle_size)

    avg_codisp = {}

    for index, point in enumerate(points):
        for tree in forest:
            if len(tree.leaves) > tree_size:
                tree.forget_point(index - tree_size)
            tree.insert_point(point, index=index)
            if not index in avg_codisp:
                avg_codisp[index] = 0
            avg_codisp[index] += tree.codisp(index) / num_trees
    return avg_codisp


BATCH_X = np.random.RandomState(0).randn(256, 3)  # one tree of the README batch example


def batch_build(rrcf):
    return rrcf.RCTree(BATCH_X)


class Compat044:
    """rcf_fast.rrcf with RCTree defaulting to compat="0.4.4"."""

    shingle = staticmethod(fast.shingle)

    class RCTree(fast.RCTree):
        def __new__(cls, *args, compat="0.4.4", **kwargs):
            return super().__new__(cls, *args, compat=compat, **kwargs)


def best_time(fn, arg, rounds):
    fn(arg)  # warm-up
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        fn(arg)
        best = min(best, time.perf_counter() - start)
    return best


def test_streaming_rrcf(benchmark):
    benchmark.pedantic(readme_streaming, args=(oracle,), rounds=1, iterations=1)


def test_streaming_rcf_fast(benchmark):
    benchmark.pedantic(readme_streaming, args=(fast,), rounds=10, iterations=1)


def test_batch_rrcf(benchmark):
    benchmark(batch_build, oracle)


def test_batch_rcf_fast(benchmark):
    benchmark(batch_build, fast)


def test_speedup_streaming():
    np.random.seed(0)
    start = time.perf_counter()
    expected = readme_streaming(oracle)
    slow = time.perf_counter() - start
    np.random.seed(0)
    assert readme_streaming(Compat044) == expected  # same scores, bit for bit
    quick = best_time(readme_streaming, fast, rounds=5)
    ratio = slow / quick
    print(f"\nREADME streaming: rrcf 0.4.4 {slow:.3f} s, rcf_fast.rrcf {quick:.4f} s, {ratio:.0f}x")
    assert ratio >= 100


def test_speedup_batch():
    np.random.seed(1)
    a = batch_build(oracle)
    np.random.seed(1)
    assert Compat044.RCTree(BATCH_X).to_dict() == a.to_dict()
    slow = best_time(batch_build, oracle, rounds=5)
    quick = best_time(batch_build, fast, rounds=50)
    ratio = slow / quick
    print(
        f"\nRCTree(X) 256x3: rrcf 0.4.4 {slow * 1e3:.2f} ms, rcf_fast.rrcf {quick * 1e6:.1f} us, {ratio:.0f}x"
    )
    assert ratio >= 100
