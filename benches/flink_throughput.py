"""One PyFlink MiniCluster job for the Flink benchmark (run in its own process).

``python benches/flink_throughput.py MODE CACHE ROWS KEYS TREES SAMPLES BUNDLE_MS`` pushes ROWS
rows (1-d, shingle 4, KEYS keys interleaved) from a collection source through
``RandomCutForestFunction(state=MODE, cache_size=CACHE)`` at parallelism 1 into a discarding sink,
PyFlink bundles of at most BUNDLE_MS, and prints as JSON:

* timestamps inside the job, taken by the Python worker (the function's process): CPU seconds
  (``process_time``, all threads of the worker: the function, Beam's harness, state and data
  channels) and wall seconds at its first row, at row ROWS/2 and at ``close()`` (end of input);
  the span from row ROWS/2 to the end is the steady state (forests full, worker warm);
* ``worker_cpu_total_s``: the worker's CPU seconds since it started (its start-up included);
* ``jvm_cpu_s``: CPU seconds of the JVM (MiniCluster, source, keying, state backend, sink) when
  the job has finished (read from /proc; start-up included), and ``client_cpu_s`` of this script;
* ``net_runtime_ms``: the job's net runtime (includes the workers' start).

Start-up cancels in the difference of two runs of different ROWS (see test_bench_flink.py).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "flink"))

from flinkenv import local_env
from pyflink.common import Row, Types
from pyflink.datastream.connectors import Sink
from pyflink.java_gateway import get_gateway
from rcf_fast.flink import RandomCutForestFunction


def _proc_cpu_s(pid: int) -> float:
    """utime + stime of a process, from /proc/PID/stat (Linux)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except OSError:
                continue
    return out


class Measured(RandomCutForestFunction):
    """Writes the worker's CPU and wall timestamps (first row, half-way, close) to
    RCF_FLINK_BENCH_OUT."""

    total_rows = 0

    def _tick(self) -> None:
        if not hasattr(self, "_t"):
            self._t = {"first": (time.process_time(), time.perf_counter())}
            self._rows = 0
        self._rows += 1
        if self._rows == self.total_rows // 2:
            self._t["half"] = (time.process_time(), time.perf_counter())

    def process_element(self, value, ctx):  # type: ignore[no-untyped-def]
        self._tick()
        yield from super().process_element(value, ctx)

    def close(self) -> None:
        end = (time.process_time(), time.perf_counter())
        t = getattr(self, "_t", {"first": end})
        half = t.get("half", end)
        with open(os.environ["RCF_FLINK_BENCH_OUT"], "w") as f:
            json.dump(
                {
                    "rows": getattr(self, "_rows", 0),
                    "worker_cpu_s": end[0] - t["first"][0],
                    "worker_wall_s": end[1] - t["first"][1],
                    "steady_rows": getattr(self, "_rows", 0) - self.total_rows // 2,
                    "steady_cpu_s": end[0] - half[0],
                    "steady_wall_s": end[1] - half[1],
                    "worker_cpu_total_s": end[0],
                    "worker_pid": os.getpid(),
                },
                f,
            )


class Noop(Measured):
    """The same job with the forest and its state left out: Flink's own cost per row."""

    def process_element(self, value, ctx):  # type: ignore[no-untyped-def]
        self._tick()
        yield Row(ctx.get_current_key(), 0.0, self._rows, None, None, False)


def rows(n: int, keys: int) -> list[tuple[str, list[float]]]:
    return [(f"k{(i * 7919) % keys}", [math.sin(i / 7.0) + 0.01 * (i % 13)]) for i in range(n)]


def main() -> None:
    mode = sys.argv[1]
    cache, n, keys, trees, samples, bundle_ms = map(int, sys.argv[2:8])
    env = local_env(1, **{"python.fn-execution.bundle.time": str(bundle_ms)})
    ds = env.from_collection(
        rows(n, keys), type_info=Types.TUPLE([Types.STRING(), Types.LIST(Types.DOUBLE())])
    )
    cls = Noop if mode == "noop" else Measured
    fn = cls(
        1,
        seed=1,
        state="object" if mode == "noop" else mode,
        cache_size=cache,
        shingle_size=4,
        num_trees=trees,
        sample_size=samples,
    )
    fn.total_rows = n
    out = ds.key_by(lambda r: r[0], key_type=Types.STRING()).process(
        fn, output_type=RandomCutForestFunction.output_type()
    )
    jvm = get_gateway().jvm
    out.sink_to(Sink(jvm.org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink()))
    result = env.execute("rcf-flink-bench")
    with open(os.environ["RCF_FLINK_BENCH_OUT"]) as f:
        stats = json.load(f)
    stats["net_runtime_ms"] = result.get_net_runtime()
    jvms = _children(os.getpid())  # the gateway JVM that runs the MiniCluster
    stats["jvm_cpu_s"] = sum(_proc_cpu_s(p) for p in jvms)
    stats["jvm_pids"] = len(jvms)
    stats["client_cpu_s"] = time.process_time()
    stats["worker_is_client"] = stats.pop("worker_pid") == os.getpid()
    print(json.dumps(stats))


if __name__ == "__main__":
    main()
