"""One-point `score_update` calls with the default `threads` against `threads=1`, in one process.

    python benches/one_point_threads.py

25,000 points after 5,000 of warm-up, 1-d, shingle 4, 100 trees, three interleaved runs each:
the figure to compare on a busy machine (docs/performance.md, design choices).
"""

import time

import numpy as np
import rcf_fast

x = (np.sin(np.arange(30000) * 0.05) + np.random.default_rng(0).normal(0, 0.1, 30000)).tolist()
res = {}
for rep in range(3):
    for th in (None, 1):
        f = rcf_fast.RandomCutForest(
            shingle_size=4, num_trees=100, sample_size=256, seed=1, threads=th
        )
        for v in x[:5000]:
            f.score_update(v)
        t0 = time.perf_counter()
        c0 = time.process_time()
        for v in x[5000:]:
            f.score_update(v)
        t1 = time.perf_counter()
        c1 = time.process_time()
        res.setdefault(th, []).append(25000 / (t1 - t0))
for th, v in res.items():
    print(f"threads={th}: " + " ".join(f"{a:,.0f}" for a in v) + " pts/s wall")
