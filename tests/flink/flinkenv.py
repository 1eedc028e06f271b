"""Local PyFlink MiniCluster helpers shared by the Flink tests, example and benchmark."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from pyflink.common import Configuration, Types
from pyflink.datastream import StreamExecutionEnvironment
from pyflink.datastream.connectors import Source
from pyflink.java_gateway import get_gateway


def local_env(parallelism: int = 1, **conf: str) -> StreamExecutionEnvironment:
    """A MiniCluster environment whose Python workers run this interpreter.

    ``conf`` holds extra Flink configuration entries (keys as Flink spells them, passed by
    ``**{"a.b": "c"}``).
    """
    cfg = Configuration()
    cfg.set_string("python.executable", sys.executable)
    cfg.set_string("python.client.executable", sys.executable)
    # Small managed memory, short bundles: two cores are shared by everything on this machine.
    cfg.set_string("taskmanager.memory.managed.size", "64m")
    cfg.set_string("python.fn-execution.bundle.time", "100")
    for k, v in conf.items():
        cfg.set_string(k, v)
    env = StreamExecutionEnvironment.get_execution_environment(cfg)
    env.set_parallelism(parallelism)
    return env


def index_source(count: int, per_checkpoint: int | None = None) -> Source:
    """A checkpointed source of the ints ``0 .. count-1`` (Flink's DataGeneratorSource).

    With ``per_checkpoint`` at most that many rows are emitted between two checkpoints, so
    checkpoints fall mid-stream whatever the machine's speed. Unlike ``from_collection`` (a legacy
    source without checkpointed position) it resumes where the restored checkpoint left it.
    """
    gw = get_gateway()
    jvm = gw.jvm
    j_list = jvm.java.util.ArrayList()
    for i in range(count):
        j_list.add(i)  # py4j passes a small int as java.lang.Integer
    j_type = Types.INT().get_java_type_info()
    fn = jvm.org.apache.flink.connector.datagen.functions.IndexLookupGeneratorFunction(
        j_type, j_list
    )
    limits = jvm.org.apache.flink.api.connector.source.util.ratelimit.RateLimiterStrategy
    rate = limits.perCheckpoint(per_checkpoint) if per_checkpoint else limits.noOp()
    j_source = jvm.org.apache.flink.connector.datagen.source.DataGeneratorSource(
        fn, count, rate, j_type
    )
    return Source(j_source)


def reference_scores(
    rows: Sequence[tuple[str, Sequence[float]]], dimensions: int, seed: int, **params: Any
) -> dict[str, list[float]]:
    """Each key's scores from ``rcf_fast.KeyedForests(dimensions, seed=seed, **params)`` fed the
    rows in order."""
    import rcf_fast

    keyed = rcf_fast.KeyedForests(dimensions, seed=seed, **params)
    out: dict[str, list[float]] = {}
    for key, values in rows:
        out.setdefault(key, []).append(float(keyed.score_update(key, list(values))))
    return out


def reference_grades(
    scores: dict[str, list[float]], **grading: Any
) -> dict[str, list[tuple[float, bool]]]:
    """Each key's (grade, is_anomaly) from its own ``rcf_fast.Thresholder(**grading)`` fed the
    key's scores in order."""
    import rcf_fast

    out: dict[str, list[tuple[float, bool]]] = {}
    for key, key_scores in scores.items():
        t = rcf_fast.Thresholder(**grading)
        graded = [t.process(s) for s in key_scores]
        out[key] = [(float(g["grade"]), bool(g["is_anomaly"])) for g in graded]
    return out
