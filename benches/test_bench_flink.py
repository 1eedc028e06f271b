"""rcf_fast.flink through a local PyFlink MiniCluster, steady state: rows per second per core
for each way of keeping the forest in keyed state, against the same rows through KeyedForests and
a dict of forests in this process (the reference, same run); and the state bytes per key.

Standard forests (1-d, shingle 4, 100 trees, 256 samples), 4 keys interleaved, parallelism 1.
Each job runs in its own process (benches/flink_throughput.py), twice: SHORT and LONG rows. Start-up
(JVM, MiniCluster, Python worker: ~8 s of wall and ~12 CPU-s here, whatever the length) cancels in
the difference of the two runs:

* ``job_rows_per_cpu_s``: (LONG - SHORT) / (CPU of LONG - CPU of SHORT), CPU = the JVM + the
  Python process running the function (a local job runs PyFlink's Python worker in the client
  process: "loopback" mode), i.e. rows per second per core of the whole job when CPU-bound;
* ``job_rows_per_wall_s``: the same with the jobs' net runtimes (a busy machine lowers it);
* ``worker_steady_rows_per_cpu_s``: timestamps inside the job, the Python process's CPU from row
  LONG/2 to the end of the input (forests full, worker warm).
"""

from __future__ import annotations

import json
import os
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

KEYS = 4  # SHORT: 500 rows per key, every forest full (256 samples) for the second half
SHORT = 2000
CONFIGS = [
    # (state mode, cache_size, LONG rows, bundle ms): LONG - SHORT must cost well above the
    # run-to-run noise of the start-up (about +-1 CPU-s of the JVM here)
    ("noop", 0, 30000, 1000),
    ("object", 128, 20000, 1000),
    ("object", 0, 20000, 1000),
    ("bytes", 0, 6000, 1000),
]


def keyed_forests_cpu(n: int, batch: bool = False) -> float:
    """CPU seconds of n rows through KeyedForests in this process (per-row calls, or one batch
    call)."""
    keyed = rcf_fast.KeyedForests(1, shingle_size=4, seed=1, threads=1)
    data = rows(n, KEYS)
    t0 = time.process_time()
    if batch:
        keyed.score_update_many([k for k, _ in data], [v for _, v in data])
    else:
        for key, values in data:
            keyed.score_update(key, values)
    return time.process_time() - t0


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
        env={**os.environ, "RCF_FLINK_BENCH_OUT": str(out)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.parametrize(("mode", "cache", "LONG", "bundle_ms"), CONFIGS)
def test_flink_rows_per_second_per_core(benchmark, tmp_path, mode, cache, LONG, bundle_ms) -> None:
    def steady_per_row(short: float, long: float) -> float:
        return (long - short) / (LONG - SHORT)

    stats: dict[int, dict] = {}

    def jobs() -> None:
        for n in (SHORT, LONG):
            stats[n] = run_job(mode, cache, n, bundle_ms, tmp_path / f"stats-{n}.json")

    benchmark.pedantic(jobs, rounds=1, iterations=1)
    for n in (SHORT, LONG):
        assert stats[n]["rows"] == n and stats[n]["jvm_pids"] == 1
    s, lg = stats[SHORT], stats[LONG]
    cpu = steady_per_row(s["jvm_cpu_s"] + s["client_cpu_s"], lg["jvm_cpu_s"] + lg["client_cpu_s"])
    wall = steady_per_row(s["net_runtime_ms"] / 1000, lg["net_runtime_ms"] / 1000)
    # References in this run: the same rows (LONG - SHORT, steady) in this process.
    per_row = steady_per_row(keyed_forests_cpu(SHORT), keyed_forests_cpu(LONG))
    batch = steady_per_row(keyed_forests_cpu(SHORT, True), keyed_forests_cpu(LONG, True))
    dict_ref = steady_per_row(
        in_process_cpu_per_row(SHORT) * SHORT, in_process_cpu_per_row(LONG) * LONG
    )
    benchmark.extra_info.update(
        {
            "rows": [SHORT, LONG],
            "job_rows_per_cpu_s": round(1 / cpu) if cpu > 0 else None,
            "job_rows_per_wall_s": round(1 / wall) if wall > 0 else None,
            "worker_steady_rows_per_cpu_s": round(lg["steady_rows"] / lg["steady_cpu_s"]),
            "worker_steady_rows_per_wall_s": round(lg["steady_rows"] / lg["steady_wall_s"]),
            "jvm_cpu_s": [s["jvm_cpu_s"], lg["jvm_cpu_s"]],
            "python_cpu_s": [round(s["client_cpu_s"], 2), round(lg["client_cpu_s"], 2)],
            "net_runtime_s": [s["net_runtime_ms"] / 1000, lg["net_runtime_ms"] / 1000],
            "keyed_forests_rows_per_cpu_s": round(1 / per_row),
            "keyed_forests_batch_rows_per_cpu_s": round(1 / batch),
            "dict_of_forests_rows_per_cpu_s": round(1 / dict_ref),
            "job_vs_keyed_forests": round(per_row / cpu, 3) if cpu > 0 else None,
            "load_average": round(os.getloadavg()[0], 1),
        }
    )
    print(f"\n{mode} cache={cache}: {json.dumps(benchmark.extra_info)}")


def test_flink_state_bytes_per_key(benchmark) -> None:
    f = rcf_fast.RandomCutForest(1, shingle_size=4, seed=1, threads=1)
    for _, values in rows(3000, 1):
        f.score_update(values)
    raw = benchmark(f.to_bytes)
    benchmark.extra_info.update(
        {"to_bytes": len(raw), "pickled_state": len(pickle.dumps(f)), "memory": f.memory_usage()}
    )
    print(f"\nstate bytes per key: {benchmark.extra_info}")
