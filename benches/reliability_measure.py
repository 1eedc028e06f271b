"""Issue 10 measurements: `python benches/reliability_measure.py rss|threads|cpu|speed`
(constructor RSS, OS threads for many forests, one-forest CPU time per row/point, wall time)."""

import os
import sys
import time

import numpy as np
from rcf_fast import RandomCutForest as F


def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096


def threads():
    return len(os.listdir("/proc/self/task"))


what = sys.argv[1]
if what == "rss":
    b = rss()
    f = F(num_trees=10_000, sample_size=1677, seed=1)
    a = rss()
    print(
        f"constructor 10000x1677: RSS +{(a - b) / 2**20:.1f} MiB, memory_usage {f.memory_usage() / 2**20:.1f} MiB"
    )
elif what == "threads":
    t0 = threads()
    x = np.random.default_rng(0).normal(size=(600, 1))
    fs = [F(num_trees=16, sample_size=32, seed=i) for i in range(100)]
    for f in fs:
        f.update_many(x)
        f.score_update(0.1)
    t1 = threads()
    gs = [F(num_trees=16, sample_size=32, seed=i, threads=8) for i in range(300)]
    for g in gs:
        g.update_many(x[:100])
    t2 = threads()
    hs = [F(num_trees=16, sample_size=32, seed=i, threads=1024) for i in range(10)]
    for h in hs:
        h.update_many(x[:100])
    t3 = threads()
    print(
        f"threads: start {t0}, +100 default forests {t1 - t0}, +300 threads=8 {t2 - t0}, +10 threads=1024 {t3 - t0}"
    )
elif what == "cpu":
    x = np.sin(np.arange(30_000) / 7.0) + np.random.default_rng(0).normal(0, 0.1, 30_000)
    bb = bp = 1e9
    for _ in range(3):
        f = F(shingle_size=4, seed=1, threads=1)
        t = time.process_time()
        f.score_update_many(x)
        bb = min(bb, time.process_time() - t)
        f = F(shingle_size=4, seed=1, threads=1)
        f.update_many(x[:1000])
        t = time.process_time()
        for v in x[1000:11_000]:
            f.score_update(v)
        bp = min(bp, time.process_time() - t)
    print(
        f"threads=1 CPU time: score_update_many {bb * 1e6 / 30_000:.2f} us/row, score_update {bp * 1e6 / 10_000:.2f} us/point"
    )
elif what == "speed":
    x = np.sin(np.arange(60_000) / 7.0) + np.random.default_rng(0).normal(0, 0.1, 60_000)
    best_b = best_p = 1e9
    for _ in range(3):
        f = F(shingle_size=4, seed=1)
        t = time.perf_counter()
        f.score_update_many(x)
        best_b = min(best_b, time.perf_counter() - t)
        f = F(shingle_size=4, seed=1)
        t = time.perf_counter()
        for v in x[:15_000]:
            f.score_update(v)
        best_p = min(best_p, time.perf_counter() - t)
    print(
        f"speed: score_update_many 60k rows {best_b * 1e6 / 60_000:.2f} us/row, score_update 15k points {best_p * 1e6 / 15_000:.2f} us/point (best of 3)"
    )
