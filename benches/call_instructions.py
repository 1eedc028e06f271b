"""N one-point `score_update` calls, for instruction counts of the call path under callgrind.

    OPENBLAS_NUM_THREADS=1 valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        python benches/call_instructions.py KIND N

KIND: float, np64, ndarray (a tiny forest: one tree of 16 points, so the count is mostly the
Python/Rust crossing) or taxi (a standard forest, threads=1, NYC taxi after 2,000 points of
warm-up). (count at N - count at 0) / N is the cost of one call; docs/performance.md compares the
version-specific and the abi3 build this way (PYTHONPATH pointing at each build's package).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import rcf_fast

kind, n = sys.argv[1], int(sys.argv[2])
if kind == "taxi":
    taxi = Path(__file__).resolve().parent.parent / "data" / "nyc_taxi.csv"
    x = np.loadtxt(taxi, delimiter=",", skiprows=1, usecols=1)
    f = rcf_fast.RandomCutForest(shingle_size=4, seed=1, threads=1)
    f.update_many(x[:2000])
    for v in x[2000 : 2000 + n]:
        f.score_update(v)
else:
    dims = 1 if kind in ("float", "np64") else 4
    f = rcf_fast.RandomCutForest(dimensions=dims, num_trees=1, sample_size=16, seed=1, threads=1)
    f.update_many(np.random.default_rng(0).normal(size=(64, dims)))
    point = {"float": 0.5, "np64": np.float64(0.5), "ndarray": np.array([0.5, 0.1, -0.2, 0.3])}
    p = point[kind]
    for _ in range(n):
        f.score_update(p)
