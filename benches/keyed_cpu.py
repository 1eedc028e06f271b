"""CPU time per point, KeyedForests against a dict of krcf forests, both on one thread.

    python benches/keyed_cpu.py WARM [THREADS]

300 keys, each warmed with WARM points (300: reservoirs just full, most trees keep each new point;
3000: the steady state of the default time decay), then random-key batches of 1,000 rows: three
batches through `score_update_many`, one through krcf (score + update per row), twice,
interleaved. Prints points per CPU-second and the ratios (docs/performance.md, many keys).
"""

import os
import sys
import time

import numpy as np
import rcf_fast

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_bench_keyed import krcf_forest, stream_rows, values

K = 300
WARM = int(sys.argv[1])
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 1
ids = np.arange(K)
kf = rcf_fast.KeyedForests(shingle_size=4, num_trees=100, sample_size=256, seed=1, threads=threads)
kr = {}
t0 = time.process_time()
for i in range(K):
    x = values(np.full(WARM, i), np.arange(WARM), 1).reshape(-1, 1)
    kf.update_many([f"key-{i}"] * WARM, x)
t1 = time.process_time()
for i in range(K):
    x = values(np.full(WARM, i), np.arange(WARM), 1)
    f = krcf_forest(1000 + i)
    for v in x.tolist():
        f.update([v])
    kr[f"key-{i}"] = f
t2 = time.process_time()
print(
    f"warm {WARM}/key: rcf_fast {K * WARM / (t1 - t0):,.0f} pts/CPU-s, krcf {K * WARM / (t2 - t1):,.0f}"
)


def stream(seed):
    keys, X = stream_rows(K, 1000, seed)
    # continue each key's time axis past the warm-up
    return keys, X


res = {}
for rep in range(2):
    for lib in ("rcf", "krcf"):
        keys, X = stream(10 + rep)
        w0, c0 = time.perf_counter(), time.process_time()
        if lib == "rcf":
            for _ in range(3):
                kf.score_update_many(keys, X)
            n = 3000
        else:
            for k, v in zip(keys, X[:, 0].tolist()):
                f = kr[k]
                f.score([v])
                f.update([v])
            n = 1000
        w1, c1 = time.perf_counter(), time.process_time()
        res.setdefault(lib, []).append((n / (w1 - w0), n / (c1 - c0)))
for lib, v in res.items():
    print(lib, " ".join(f"wall {a:,.0f} cpu {b:,.0f}" for a, b in v))
r = [a[1] / b[1] for a, b in zip(res["rcf"], res["krcf"])]
print(
    "ratio per CPU-s",
    [f"{x:.1f}" for x in r],
    "wall",
    [f"{a[0] / b[0]:.1f}" for a, b in zip(res["rcf"], res["krcf"])],
)
