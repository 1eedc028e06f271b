"""rcf_fast.flink through a local PyFlink MiniCluster: rows per CPU-second of the Python worker
for each way of keeping the forest in keyed state, against the same rows through a dict of
forests in this process; and the state bytes per key.

Standard forests (1-d, shingle 4, 100 trees, 256 samples), 4 keys interleaved, parallelism 1.
Each configuration is one job in its own process (benches/flink_throughput.py). The job's wall
clock is mostly the MiniCluster's and the Python worker's start (~20 s here, the no-op control
shows it); the figures to compare are the worker's rows per CPU-second and per wall-second from
its first row to the end of the input; a busy machine disturbs the CPU figure far less.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest
import rcf_fast

SCRIPT = Path(__file__).resolve().parent / "flink_throughput.py"
sys.path.insert(0, str(SCRIPT.parent))
from flink_throughput import rows

KEYS = 4  # 500 rows per key: every forest is full (256 samples) for most of the run
CONFIGS = [
    # (state mode, cache_size, rows, bundle ms)
    ("noop", 0, 2000, 1000),
    ("object", 128, 2000, 1000),
    ("object", 0, 2000, 1000),
    ("bytes", 0, 2000, 1000),
]


def in_process_cpu_per_row(n: int) -> float:
    forests: dict[str, rcf_fast.RandomCutForest] = {}
    data = rows(n, KEYS)
    t0 = time.process_time()
    for key, values in data:
        f = forests.get(key)
        if f is None:
            f = forests[key] = rcf_fast.RandomCutForest(1, shingle_size=4, seed=1, threads=1)
        f.score_update(values)
    return (time.process_time() - t0) / n


def run_job(mode: str, cache: int, n: int, bundle_ms: int, out: Path) -> dict:
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            mode,
            str(cache),
            str(n),
            str(KEYS),
            "100",
            "256",
            str(bundle_ms),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=1200,
        env={**__import__("os").environ, "RCF_FLINK_BENCH_OUT": str(out)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.parametrize(("mode", "cache", "n", "bundle_ms"), CONFIGS)
def test_flink_rows_per_cpu_second(benchmark, tmp_path, mode, cache, n, bundle_ms) -> None:
    stats: dict = {}

    def job() -> None:
        stats.update(run_job(mode, cache, n, bundle_ms, tmp_path / "stats.json"))

    benchmark.pedantic(job, rounds=1, iterations=1)
    assert stats["rows"] == n
    base = in_process_cpu_per_row(n)
    per_row = stats["worker_cpu_s"] / n
    benchmark.extra_info.update(
        {
            "rows": n,
            "worker_rows_per_cpu_s": round(1 / per_row),
            "in_process_rows_per_cpu_s": round(1 / base),
            "flink_vs_in_process": round(base / per_row, 3),
            "worker_wall_rows_per_s": round(n / stats["worker_wall_s"]),
            "job_wall_s": stats["net_runtime_ms"] / 1000,
        }
    )
    print(f"\n{mode} cache={cache}: {benchmark.extra_info}")


def test_flink_state_bytes_per_key(benchmark) -> None:
    f = rcf_fast.RandomCutForest(1, shingle_size=4, seed=1, threads=1)
    for _, values in rows(3000, 1):
        f.score_update(values)
    raw = benchmark(f.to_bytes)
    benchmark.extra_info.update(
        {"to_bytes": len(raw), "pickled_state": len(pickle.dumps(f)), "memory": f.memory_usage()}
    )
    print(f"\nstate bytes per key: {benchmark.extra_info}")
