"""One PyFlink MiniCluster job for the Flink benchmark (run in its own process).

``python benches/flink_throughput.py MODE CACHE ROWS KEYS TREES SAMPLES BUNDLE_MS`` pushes ROWS
rows (1-d, shingle 4, KEYS keys interleaved) from a collection source through
``RandomCutForestFunction(state=MODE, cache_size=CACHE)`` at parallelism 1 into a discarding sink,
PyFlink bundles of at most BUNDLE_MS, and prints as JSON the job's net runtime (ms) and the CPU
seconds of the Python worker between its first row and the end of the input (``process_time``,
all threads of the worker process: the function, Beam's harness, state and data channels) and the
wall-clock seconds over the same span (the job's net runtime adds the start of the workers).
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


class Measured(RandomCutForestFunction):
    """Writes the worker's CPU seconds from its first row to close() to RCF_FLINK_BENCH_OUT."""

    def process_element(self, value, ctx):  # type: ignore[no-untyped-def]
        if not hasattr(self, "_cpu0"):
            self._cpu0 = time.process_time()
            self._wall0 = time.perf_counter()
            self._rows = 0
        self._rows += 1
        yield from super().process_element(value, ctx)

    def close(self) -> None:
        cpu = time.process_time() - getattr(self, "_cpu0", time.process_time())
        wall = time.perf_counter() - getattr(self, "_wall0", time.perf_counter())
        with open(os.environ["RCF_FLINK_BENCH_OUT"], "w") as f:
            json.dump(
                {"worker_cpu_s": cpu, "worker_wall_s": wall, "rows": getattr(self, "_rows", 0)}, f
            )


class Noop(Measured):
    """The same job with the forest and its state left out: Flink's own cost per row."""

    def process_element(self, value, ctx):  # type: ignore[no-untyped-def]
        if not hasattr(self, "_cpu0"):
            self._cpu0 = time.process_time()
            self._wall0 = time.perf_counter()
            self._rows = 0
        self._rows += 1
        yield Row(ctx.get_current_key(), 0.0, self._rows, None)


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
    out = ds.key_by(lambda r: r[0], key_type=Types.STRING()).process(
        fn, output_type=RandomCutForestFunction.output_type()
    )
    jvm = get_gateway().jvm
    out.sink_to(Sink(jvm.org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink()))
    result = env.execute("rcf-flink-bench")
    with open(os.environ["RCF_FLINK_BENCH_OUT"]) as f:
        stats = json.load(f)
    stats["net_runtime_ms"] = result.get_net_runtime()
    print(json.dumps(stats))


if __name__ == "__main__":
    main()
