"""KCL v3 workers across a shard split, on the local ministack emulator (with Kinesis's reshard
semantics: see ministack_reshard.py).

Two workers run on a one-shard stream; while they are in the middle of the shard's records, it is
split in two (SplitShard at the middle of the hash range) and more records arrive, now on the
children. The partition key is the series key, so each key moves from the parent to one child.
Checked: the KCL reads the parent to its end (lease checkpointed at SHARD_END) and then the
children; every record is scored; each key's scores equal a clean single pass over that key's
records in stream order (the parent's, then its child's): the key's forest followed it to the
child shard, whichever worker took the child; the saved forests equal the clean pass's.
"""

from __future__ import annotations

import hashlib
import random
import time
from pathlib import Path
from typing import Any

import pytest
from kinesis.servers import ministack_stream
from rcf_fast.kinesis import MemorySink, ScoringStep, make_decoder

from .kcl_harness import (
    FOREST,
    ids,
    lease_items,
    outputs,
    put,
    saved_forests,
    stop,
    wait_until,
)

HOSTS = ("web-1", "web-2", "db-1", "db-2", "cache-1")  # md5 puts 3 above, 2 below the middle
MIDDLE = 2**127


def lease_checkpoints(ddb: Any, app: str) -> dict[str, str]:
    return {
        it["leaseKey"]["S"]: it.get("checkpoint", {}).get("S", "")
        for it in lease_items(ddb, app)
        if it["leaseKey"]["S"].startswith("shardId-")
    }


@pytest.mark.slow
def test_keys_follow_their_forest_across_a_split(ministack: str, tmp_path: Path) -> None:
    import boto3

    from .kcl_harness import shard_records, start_worker

    halves = {int(hashlib.md5(h.encode()).hexdigest(), 16) >= MIDDLE for h in HOSTS}
    assert halves == {True, False}  # both children get keys
    kinesis, stream, app = ministack_stream(ministack, "rs", 1, tmp_path)
    ddb = boto3.client("dynamodb", endpoint_url=ministack, region_name="us-east-1")
    (parent,) = [s["ShardId"] for s in kinesis.list_shards(StreamName=stream)["Shards"]]
    rng = random.Random(11)
    rows = [
        {"host": HOSTS[i % len(HOSTS)], "cpu": round(40 + 5 * rng.random(), 3)} for i in range(600)
    ]
    rows[450]["cpu"] = 140.0
    put(kinesis, stream, rows[:300])
    workers = [start_worker(tmp_path, f"worker-{w}", ministack, stream, app) for w in "ab"]
    try:
        wait_until(
            lambda: len(ids(outputs(tmp_path))) >= 100,
            "the first records of the parent shard scored",
            workers,
            240,
        )
        kinesis.split_shard(StreamName=stream, ShardToSplit=parent, NewStartingHashKey=str(MIDDLE))
        shards = kinesis.list_shards(StreamName=stream)["Shards"]
        children = [s["ShardId"] for s in shards if s.get("ParentShardId") == parent]
        assert len(children) == 2
        put(kinesis, stream, rows[300:])
        assert {r.shard_id for c in children for r in shard_records(kinesis, stream, c)} == set(
            children
        )
        wait_until(
            lambda: (
                len(ids(outputs(tmp_path))) >= len(rows)
                and all(
                    v == "SHARD_END" or v.isdigit() for v in lease_checkpoints(ddb, app).values()
                )
                and len(lease_checkpoints(ddb, app)) == 3
            ),
            "every record scored, the children's leases checkpointed",
            workers,
            240,
        )
        time.sleep(2.0)  # a checkpoint interval or two
    finally:
        for w in workers:
            stop(w)
    got = outputs(tmp_path)
    leases = lease_checkpoints(ddb, app)
    assert leases[parent] == "SHARD_END"  # the parent was read to its end before its children
    print(f"leases {leases}; result files {sorted(p.name for p in tmp_path.glob('results-*'))}")

    # The clean single pass: every key's records in stream order (the parent's, then the child's).
    before = shard_records(kinesis, stream, parent)
    after = {c: shard_records(kinesis, stream, c) for c in children}
    assert len(before) == 300 and sum(map(len, after.values())) == 300
    clean = ScoringStep(
        make_decoder("json"), FOREST, key_field="host", value_fields=["cpu"], results=MemorySink()
    )
    clean.process(before)
    for c in children:
        clean.process(after[c])
    clean.flush()
    clean_scores = {
        (r["shard_id"], r["sequence_number"], r["sub_sequence_number"]): r["score"]
        for r in clean.results.items  # type: ignore[attr-defined]
    }
    assert len(clean_scores) == len(rows)
    assert ids(got) == set(clean_scores)  # nothing lost
    wrong = {
        (r["shard_id"], r["key"])
        for r in got
        if r["score"]
        != clean_scores[(r["shard_id"], r["sequence_number"], r["sub_sequence_number"])]
    }
    assert not wrong, f"keys whose scores differ from the clean pass (shard, key): {sorted(wrong)}"
    # The saved forests equal the clean pass's, key by key.
    assert saved_forests(tmp_path) == {k: f.to_bytes() for k, f in clean.forests}
