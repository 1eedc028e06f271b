"""Two KCL v3 workers (MultiLangDaemon, ``kclpy-ext`` jars, ``rcf_fast.kinesis.kcl`` as the record
processor) on one stream of the local ministack emulator on 127.0.0.1. Worker A starts alone and
takes both shards; worker B joins; A is killed (SIGKILL to its process group: the daemon and its
record processors) while records are still arriving, more records arrive, B takes A's leases,
loads those keys' saved forests and continues from A's checkpoints.

Checked: every record scored; a record scored twice (A scored it after its last checkpoint, B
replayed it) has the same score both times, so nothing was learned twice; every score and the
final forests equal a clean single pass of the same records.

State is per key (``RCF_STATE`` = one directory of records both workers share); keys that move
between shards are tested in test_kcl_reshard.py.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest
from kinesis.servers import ministack_stream
from rcf_fast.kinesis import MemorySink, ScoringStep, make_decoder

from .kcl_harness import (
    FOREST,
    ids,
    kill,
    outputs,
    put,
    saved_forests,
    shard_records,
    start_worker,
    stop,
    wait_until,
)

HOSTS = ("web-1", "web-2", "db-1", "db-2", "cache-1")


@pytest.mark.slow
def test_two_workers_one_killed_mid_stream(ministack: str, tmp_path: Path) -> None:
    import boto3

    kinesis, stream, app = ministack_stream(ministack, "fo", 2, tmp_path)
    ddb = boto3.client("dynamodb", endpoint_url=ministack, region_name="us-east-1")
    rng = random.Random(5)
    rows = [
        {"host": HOSTS[i % len(HOSTS)], "cpu": round(40 + 5 * rng.random(), 3)} for i in range(800)
    ]
    rows[500]["cpu"] = 140.0
    put(kinesis, stream, rows[:400])

    a = start_worker(tmp_path, "worker-a", ministack, stream, app)
    b = None
    try:

        def a_checkpointed_both_shards() -> bool:
            try:
                items = ddb.scan(TableName=app)["Items"]
            except ddb.exceptions.ResourceNotFoundException:
                return False  # the lease table does not exist yet
            done = [it for it in items if it.get("checkpoint", {}).get("S", "").isdigit()]
            return len(done) == 2 and len(outputs(tmp_path, "worker-a")) >= 150

        wait_until(a_checkpointed_both_shards, "worker A to checkpoint both shards", [a], 240)
        b = start_worker(tmp_path, "worker-b", ministack, stream, app)
        time.sleep(3.0)

        # Kill A while new records are still arriving (10 every 0.1 s), in the middle of them.
        def feed() -> None:
            for i in range(400, 600, 10):
                put(kinesis, stream, rows[i : i + 10])
                time.sleep(0.1)

        feeder = threading.Thread(target=feed)
        feeder.start()
        try:
            wait_until(
                lambda: len(ids(outputs(tmp_path, "worker-a"))) >= 420,
                "worker A to score new records",
                [a],
                120,
            )
            kill(a)  # the daemon and its record processors, no shutdown
        finally:
            feeder.join()
        scored_by_a = len(ids(outputs(tmp_path, "worker-a")))
        put(kinesis, stream, rows[600:])
        wait_until(
            lambda: len(ids(outputs(tmp_path))) >= len(rows),
            "worker B to score every record",
            [b],
            420,  # the KCL v3 leader lock of the dead worker expires after ~2.5 minutes
        )
        time.sleep(2.0)  # a checkpoint interval or two
    finally:
        kill(a)
        if b is not None:
            stop(b)

    # A clean single pass over each shard's records, in shard order.
    clean: dict[str, ScoringStep] = {}
    clean_scores: dict[tuple[str, str, int], float] = {}
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        sid = shard["ShardId"]
        recs = shard_records(kinesis, stream, sid)
        step = ScoringStep(
            make_decoder("json"),
            FOREST,
            key_field="host",
            value_fields=["cpu"],
            results=MemorySink(),
        )
        step.process(recs)
        step.flush()
        clean[sid] = step
        for r in step.results.items:  # type: ignore[attr-defined]
            clean_scores[(sid, r["sequence_number"], r["sub_sequence_number"])] = r["score"]
    assert len(clean_scores) == len(rows)

    got = outputs(tmp_path)
    assert ids(got) == set(clean_scores)  # nothing lost
    for r in got:  # a replayed record scores as in the clean pass: it was not learned twice
        assert (
            r["score"]
            == clean_scores[(r["shard_id"], r["sequence_number"], r["sub_sequence_number"])]
        )
    by_b = outputs(tmp_path, "worker-b")
    assert {r["shard_id"] for r in by_b} == set(clean)  # B took over both shards
    replayed = ids(by_b) & ids(outputs(tmp_path, "worker-a"))
    print(f"A scored {scored_by_a} before the kill; B re-scored {len(replayed)} of A's records")

    # The final forests equal the clean pass's, key by key.
    assert saved_forests(tmp_path) == {
        k: f.to_bytes() for step in clean.values() for k, f in step.forests
    }
