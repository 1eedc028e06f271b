"""One PyFlink MiniCluster job for the Flink benchmark (run in its own process).

``python benches/flink_throughput.py MODE CACHE ROWS KEYS TREES SAMPLES BUNDLE_MS`` pushes ROWS
rows (1-d, shingle 4, KEYS keys interleaved) from a collection source through
``RandomCutForestFunction(state=MODE, cache_size=CACHE)`` at parallelism 1 into a discarding sink,
PyFlink bundles of at most BUNDLE_MS, and prints the job's net runtime (ms) as JSON.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "flink"))

from flinkenv import local_env
from pyflink.common import Types
from pyflink.datastream.connectors import Sink
from pyflink.java_gateway import get_gateway
from rcf_fast.flink import RandomCutForestFunction


def rows(n: int, keys: int) -> list[tuple[str, list[float]]]:
    return [(f"k{(i * 7919) % keys}", [math.sin(i / 7.0) + 0.01 * (i % 13)]) for i in range(n)]


def main() -> None:
    mode = sys.argv[1]
    cache, n, keys, trees, samples, bundle_ms = map(int, sys.argv[2:8])
    env = local_env(1, **{"python.fn-execution.bundle.time": str(bundle_ms)})
    ds = env.from_collection(
        rows(n, keys), type_info=Types.TUPLE([Types.STRING(), Types.LIST(Types.DOUBLE())])
    )
    fn = RandomCutForestFunction(
        1,
        seed=1,
        state=mode,
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
    print(json.dumps({"net_runtime_ms": result.get_net_runtime()}))


if __name__ == "__main__":
    main()
