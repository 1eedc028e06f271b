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
import rrcf_readme

oracle = pytest.importorskip("rrcf")

pytestmark = pytest.mark.benchmark


def readme_streaming(rrcf):
    """rrcf's README streaming loop (tests/rrcf_readme.py): the mean CoDisp per index."""
    return rrcf_readme.streaming(rrcf)[1]


BATCH_X = np.random.RandomState(0).randn(256, 3)  # one tree of the README batch example


def batch_build(rrcf):
    return rrcf.RCTree(BATCH_X)


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
    assert readme_streaming(rrcf_readme.compat_module()) == expected  # same scores, bit for bit
    quick = best_time(readme_streaming, fast, rounds=5)
    ratio = slow / quick
    print(f"\nREADME streaming: rrcf 0.4.4 {slow:.3f} s, rcf_fast.rrcf {quick:.4f} s, {ratio:.0f}x")
    assert ratio >= 100


def test_speedup_batch():
    np.random.seed(1)
    a = batch_build(oracle)
    np.random.seed(1)
    assert rrcf_readme.compat_module().RCTree(BATCH_X).to_dict() == a.to_dict()
    slow = best_time(batch_build, oracle, rounds=5)
    quick = best_time(batch_build, fast, rounds=50)
    ratio = slow / quick
    print(
        f"\nRCTree(X) 256x3: rrcf 0.4.4 {slow * 1e3:.2f} ms, rcf_fast.rrcf {quick * 1e6:.1f} us, {ratio:.0f}x"
    )
    assert ratio >= 100
