"""Resident memory of a full standard forest (100 trees x 256 samples, 4-d points).

Measured as the growth of the process RSS over many forests, each fed enough points to be full
and in its time-decay steady state; compared with krcf and rcf3 measured the same way.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np
    def rss():
        for line in open('/proc/self/status'):
            if line.startswith('VmRSS'):
                return int(line.split()[1]) * 1024
    lib, count = sys.argv[1], int(sys.argv[2])
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6000, 4)).cumsum(axis=0) * 0.01 + rng.normal(size=(6000, 4))
    rows = X.tolist()
    if lib == 'rcf_fast':
        import rcf_fast
        def make(i):
            f = rcf_fast.RandomCutForest(4, seed=i, threads=1)
            f.update_many(X)
            return f
    elif lib == 'krcf':
        import krcf
        def make(i):
            f = krcf.RandomCutForest({'dimensions': 4, 'shingle_size': 1, 'num_trees': 100,
                                      'sample_size': 256, 'random_seed': i})
            for r in rows: f.update(r)
            return f
    else:
        import rcf3
        def make(i):
            f = rcf3.Forest(4, num_trees=100, capacity=256, seed=i)
            for r in rows: f.update(r)
            return f
    make(-1 % 1000)
    base = rss()
    keep = [make(i) for i in range(count)]
    print((rss() - base) / count)
    """
)


def per_forest_bytes(lib: str, count: int) -> float:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, lib, str(count)], check=True, capture_output=True, text=True
    ).stdout
    return float(out.strip().splitlines()[-1])


@pytest.mark.benchmark
def test_standard_forest_memory(benchmark):
    ours = per_forest_bytes("rcf_fast", 60)
    peers = {lib: per_forest_bytes(lib, 10) for lib in ("krcf", "rcf3")}
    benchmark.extra_info.update(
        rcf_fast_mb=ours / 1e6, **{f"{k}_mb": v / 1e6 for k, v in peers.items()}
    )
    benchmark.pedantic(lambda: None, rounds=1)
    print(
        f"\nRSS per full standard 4-d forest: rcf_fast {ours / 1e6:.3f} MB, "
        + ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in peers.items())
    )
    assert ours <= 1.0e6
