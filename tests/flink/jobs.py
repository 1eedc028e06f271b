"""PyFlink jobs the Flink tests run on a local MiniCluster, each in its own process.

``python tests/flink/jobs.py NAME OUT_JSON [WORK_DIR]`` runs job NAME and writes its collected
output to OUT_JSON. A job runs in a child process so that the JVM PyFlink starts (and its open
pipes) ends with it, not with the test session; functions defined here are shipped to the Python
workers by value (this file is ``__main__``).
"""

from __future__ import annotations

import glob
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from flinkenv import index_source, local_env
from pyflink.common import Types, WatermarkStrategy
from pyflink.datastream import MapFunction
from rcf_fast.flink import RandomCutForestFunction

PARAMS: dict[str, Any] = {"shingle_size": 4, "num_trees": 20, "sample_size": 64}
SEED = 7
# Short warm-up: each key of the equality job has only 60 rows.
GRADING: dict[str, Any] = {"warmup": 10}
ROW_TYPE = Types.TUPLE([Types.STRING(), Types.LIST(Types.DOUBLE())])
# (kind, key, score, count, reason, grade, is_anomaly, attribution high + low)
FLAT = Types.TUPLE(
    [
        Types.STRING(),
        Types.STRING(),
        Types.DOUBLE(),
        Types.LONG(),
        Types.STRING(),
        Types.DOUBLE(),
        Types.BOOLEAN(),
        Types.LIST(Types.DOUBLE()),
    ]
)


def equality_rows(n: int = 240, keys: int = 4) -> list[tuple[str, list[float]]]:
    """Rows for several keys interleaved, one spike 20 rows before the end."""
    out = []
    for i in range(n):
        k = f"host-{(i * 7) % keys}"
        v = math.sin(i / 5.0) + (0.1 * (i % 3))
        out.append((k, [30.0 if i == n - 20 else v]))
    return out


BAD_ROWS = [("host-0", [float("nan")]), ("host-1", [1.0, 2.0])]


# One spike per key after the failure: each is graded (an alert) only by a thresholder that has
# seen the key's scores from before the failure (a fresh one would still be warming up).
FAILOVER_SPIKES = (450, 481, 512)


def failover_row(i: int) -> tuple[str, list[float]]:
    spike = 25.0 if i in FAILOVER_SPIKES else 0.0
    return (f"host-{(i * 7) % 3}", [spike + math.sin(i / 5.0) + 0.1 * (i % 3)])


def equality(out_json: str, work: str) -> None:
    """Both state modes side by side on a collection source; main and side outputs flattened
    to ``FLAT``."""
    env = local_env(2)
    rows = equality_rows()
    ds = env.from_collection(rows[:100] + BAD_ROWS + rows[100:], type_info=ROW_TYPE)
    keyed = ds.key_by(lambda r: r[0], key_type=Types.STRING())
    streams = []
    for mode in ("object", "bytes"):
        fn = RandomCutForestFunction(1, seed=SEED, state=mode, grading=GRADING, **PARAMS)
        out = keyed.process(fn, output_type=RandomCutForestFunction.output_type())
        streams.append(
            out.map(
                lambda r, m=mode: (m, r.key, r.score, r["count"], "", r.grade, r.is_anomaly, []),
                output_type=FLAT,
            )
        )
        streams.append(
            out.get_side_output(RandomCutForestFunction.BAD_ROWS).map(
                lambda r, m=mode: (m + "-bad", r[0], 0.0, 0, r[2], 0.0, False, []),
                output_type=FLAT,
            )
        )
        streams.append(
            out.get_side_output(RandomCutForestFunction.ANOMALIES).map(
                lambda r, m=mode: (
                    m + "-anomaly",
                    r.key,
                    r.score,
                    r["count"],
                    "",
                    r.grade,
                    True,
                    list(r.attribution.high) + list(r.attribution.low),
                ),
                output_type=FLAT,
            )
        )
    result = [list(r) for r in streams[0].union(*streams[1:]).execute_and_collect()]
    Path(out_json).write_text(json.dumps(result))


class FailOnceAfterCheckpoint(MapFunction):  # type: ignore[misc]
    """Turns index i into row i; fails once, at the first index >= ``fail_at`` seen after a
    checkpoint has completed. Logs every index it sees to ``log_dir/seen`` ("before"/"after"
    the failure)."""

    def __init__(self, fail_at: int, ckpt_dir: str, log_dir: str) -> None:
        self.fail_at = fail_at
        self.ckpt_dir = ckpt_dir
        self.log_dir = log_dir

    def map(self, i: int) -> tuple[str, list[float]]:
        marker = os.path.join(self.log_dir, "failed")
        failed = os.path.exists(marker)
        with open(os.path.join(self.log_dir, "seen"), "a") as f:
            f.write(f"{'after' if failed else 'before'} {i}\n")
        checkpointed = glob.glob(os.path.join(self.ckpt_dir, "*", "chk-*", "_metadata"))
        if not failed and i >= self.fail_at and checkpointed:
            with open(marker, "w") as f:
                f.write(str(i))
            raise RuntimeError(f"failing on purpose at row {i}")
        return failover_row(i)


FAILOVER_ROWS = 600
# Mid-way through a run of 60 rows between two checkpoints: rows 300..316 are processed after
# the last checkpoint, lost with the failure, replayed after the restore.
FAIL_AT = 317


def failover(out_json: str, work: str) -> None:
    """Checkpoints every 100 ms (at most 60 rows between two), one failure mid-stream, a restart
    from the last checkpoint."""
    ckpt = Path(work) / "ckpt"
    logs = Path(work) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    n = FAILOVER_ROWS
    env = local_env(
        1,
        **{
            "execution.checkpointing.interval": "100 ms",
            "execution.checkpointing.dir": ckpt.as_uri(),
            "restart-strategy.type": "fixed-delay",
            "restart-strategy.fixed-delay.attempts": "2",
            "restart-strategy.fixed-delay.delay": "200 ms",
        },
    )
    src = env.from_source(
        index_source(n, per_checkpoint=60),
        WatermarkStrategy.no_watermarks(),
        "indices",
        type_info=Types.INT(),
    )
    rows = src.map(FailOnceAfterCheckpoint(FAIL_AT, str(ckpt), str(logs)), output_type=ROW_TYPE)
    out = rows.key_by(lambda r: r[0], key_type=Types.STRING()).process(
        RandomCutForestFunction(1, seed=SEED, **PARAMS),
        output_type=RandomCutForestFunction.output_type(),
    )
    # (kind, key, score, count, grade, is_anomaly); a job must take one of the function's side
    # outputs (PyFlink sends side-output records down the main output otherwise).
    flat = Types.TUPLE(
        [
            Types.STRING(),
            Types.STRING(),
            Types.DOUBLE(),
            Types.LONG(),
            Types.DOUBLE(),
            Types.BOOLEAN(),
        ]
    )
    main = out.map(lambda r: ("main", r[0], r[1], r[2], r[4], r[5]), output_type=flat)
    alerts = out.get_side_output(RandomCutForestFunction.ANOMALIES).map(
        lambda r: ("anomaly", r.key, r.score, r["count"], r.grade, r.attribution.high[0] > 0),
        output_type=flat,
    )
    result = [list(r) for r in main.union(alerts).execute_and_collect()]
    Path(out_json).write_text(json.dumps(result))


JOBS = {"equality": equality, "failover": failover}

if __name__ == "__main__":
    JOBS[sys.argv[1]](sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else ".")
