"""The polling consumer's edges: shared leases across consumers, initial positions, error
mapping of the boto3 source, lost leases, and the CLI status line."""

from __future__ import annotations

import io
import json
import random
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable

import pytest
from botocore.exceptions import ClientError
from rcf_fast.cli import StatusLine
from rcf_fast.kinesis import (
    Boto3ShardSource,
    Checkpoint,
    ConfigError,
    Consumer,
    ConsumerStatus,
    DynamoDBCheckpointStore,
    ExpiredIteratorError,
    FileStateStore,
    MemorySink,
    MemoryStateStore,
    ScoringStep,
    SQLiteCheckpointStore,
    ThrottledError,
    make_decoder,
)

from .conftest import create_stream
from .fakes import FakeShardSource
from .test_wire import put_all

FOREST = {"num_trees": 10, "sample_size": 32, "seed": 2}


def step(results: MemorySink | None = None) -> ScoringStep:
    return ScoringStep(
        make_decoder("json"),
        FOREST,
        key_field="k",
        value_fields=["v"],
        results=results or MemorySink(),
    )


def rows(n: int, keys: int = 8, start: int = 0) -> list[tuple[str, bytes]]:
    return [
        (f"key-{i % keys}", json.dumps({"k": f"key-{i % keys}", "v": i % 13}).encode())
        for i in range(start, start + n)
    ]


def test_a_second_consumer_takes_no_shard_the_first_holds(
    client: Callable[[str], Any], name: str, tmp_path: Any
) -> None:
    # consume is single-process (max_shards was removed): the leases only keep a second process
    # on the same checkpoint store off the shards the first one holds.
    kinesis = client("kinesis")
    create_stream(kinesis, name, 4)
    records = rows(400, keys=16)
    put_all(kinesis, name, records)
    table = name + "-leases"
    DynamoDBCheckpointStore(client("dynamodb"), table).ensure_table()
    sinks = [MemorySink(), MemorySink()]
    consumers = [
        Consumer(
            Boto3ShardSource(client("kinesis"), name),
            step(sinks[i]),
            DynamoDBCheckpointStore(client("dynamodb"), table, name),
            FileStateStore(str(tmp_path / f"state-{i}")),
            owner=f"worker-{i}",
            idle_sleep=0.05,
            persist_interval=0.2,
        )
        for i in range(2)
    ]
    held_by_second: set[str] = set()
    threads: list[threading.Thread] = []

    def run(i: int) -> None:
        c = consumers[i]
        if i == 1:

            def watch(status: ConsumerStatus) -> None:
                if threads[0].is_alive():  # the first consumer still holds its leases
                    held_by_second.update(c.owned)

            c.on_status = watch
        c.run(stop_after_idle=1.5)

    # Start the second consumer once the first holds every lease (moto's conditional writes
    # are not atomic across concurrent requests; DynamoDB's are).
    threads.extend(threading.Thread(target=run, args=(i,)) for i in range(2))
    threads[0].start()
    deadline = time.monotonic() + 20
    while len(consumers[0].owned) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(consumers[0].owned) == 4
    threads[1].start()
    for t in threads:
        t.join(timeout=60)
    assert held_by_second == set()
    assert sinks[1].items == []
    ids = [(r["shard_id"], r["sequence_number"]) for r in sinks[0].items]
    assert len(ids) == len(set(ids)) == 400  # every record scored once, by the lease holder


def test_latest_and_at_timestamp_initial_positions(
    client: Callable[[str], Any], name: str, tmp_path: Any
) -> None:
    kinesis = client("kinesis")
    create_stream(kinesis, name, 1)
    put_all(kinesis, name, rows(20))
    time.sleep(1.2)
    cut = datetime.now(timezone.utc)
    time.sleep(0.2)
    put_all(kinesis, name, rows(15, start=100))

    def consume(position: str, ts: datetime | None, sub: str) -> MemorySink:
        sink = MemorySink()
        c = Consumer(
            Boto3ShardSource(kinesis, name),
            step(sink),
            SQLiteCheckpointStore(str(tmp_path / f"{sub}.db"), name),
            MemoryStateStore(),
            initial_position=position,
            timestamp=ts,
            idle_sleep=0.05,
        )
        c.run(stop_after_idle=0.5)
        return sink

    assert len(consume("TRIM_HORIZON", None, "th").items) == 35
    assert len(consume("AT_TIMESTAMP", cut, "ts").items) == 15
    assert consume("LATEST", None, "latest").items == []
    with pytest.raises(ConfigError, match="AT_TIMESTAMP needs a timestamp"):
        Consumer(
            Boto3ShardSource(kinesis, name),
            step(),
            SQLiteCheckpointStore(":memory:"),
            MemoryStateStore(),
            initial_position="AT_TIMESTAMP",
        )
    with pytest.raises(ConfigError, match="batch_limit"):
        Consumer(
            Boto3ShardSource(kinesis, name),
            step(),
            SQLiteCheckpointStore(":memory:"),
            MemoryStateStore(),
            batch_limit=20000,
        )


class StubKinesis:
    def __init__(self, code: str) -> None:
        self.code = code
        self.pages = [
            {
                "Shards": [
                    {"ShardId": "shardId-0", "SequenceNumberRange": {"EndingSequenceNumber": "9"}}
                ],
                "NextToken": "t1",
            },
            {
                "Shards": [
                    {
                        "ShardId": "shardId-1",
                        "ParentShardId": "shardId-0",
                        "SequenceNumberRange": {},
                    }
                ]
            },
        ]
        self.list_calls: list[dict[str, Any]] = []

    def get_records(self, **kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": self.code, "Message": "x"}}, "GetRecords")

    def list_shards(self, **kwargs: Any) -> Any:
        self.list_calls.append(kwargs)
        return self.pages[len(self.list_calls) - 1]


@pytest.mark.parametrize(
    "code, exc",
    [
        ("ProvisionedThroughputExceededException", ThrottledError),
        ("LimitExceededException", ThrottledError),
        ("ExpiredIteratorException", ExpiredIteratorError),
        ("ResourceNotFoundException", ClientError),
    ],
)
def test_boto3_source_maps_errors(code: str, exc: type) -> None:
    with pytest.raises(exc):
        Boto3ShardSource(StubKinesis(code), "s").get_records("shardId-0", "it", 10)


def test_boto3_source_pages_list_shards_and_keeps_lineage() -> None:
    stub = StubKinesis("x")
    shards = Boto3ShardSource(stub, "s").list_shards()
    assert [s.shard_id for s in shards] == ["shardId-0", "shardId-1"]
    assert shards[0].is_closed and not shards[1].is_closed and shards[1].parents == ("shardId-0",)
    assert stub.list_calls == [{"StreamName": "s"}, {"NextToken": "t1"}]


def checkpoint_of(store: SQLiteCheckpointStore) -> Checkpoint:
    cp = store.get("shardId-000000000000")
    assert cp is not None
    return cp


def test_a_consumer_that_loses_its_lease_drops_the_shard(tmp_path: Any) -> None:
    source = FakeShardSource(1, random.Random(0), limit_jitter=False)
    for pk, data in rows(30):
        source.put(data, pk)
    now = [100.0]
    store = SQLiteCheckpointStore(str(tmp_path / "cp.db"), "app", clock=lambda: now[0])
    c = Consumer(
        source,
        step(),
        store,
        MemoryStateStore(),
        owner="a",
        lease_seconds=10,
        persist_interval=0.0,
        batch_limit=10,
        sleep=lambda s: None,
    )
    c.run(max_rounds=1)  # reads 10 records, persists, releases at the end
    assert checkpoint_of(store).sequence_number == source.written[9].sequence_number
    c2 = Consumer(
        source,
        step(),
        store,
        MemoryStateStore(),
        owner="a",
        lease_seconds=10,
        persist_interval=0.0,
        batch_limit=10,
        sleep=lambda s: None,
    )
    c2.load()
    c2._refresh_shards()
    assert store.acquire("shardId-000000000000", "b", 10) is False  # a holds it
    now[0] += 11  # a stalls past its lease; b takes the shard
    assert store.acquire("shardId-000000000000", "b", 10) is True
    c2._poll_round()
    c2.persist()  # the conditional checkpoint fails: a drops the shard instead of crashing
    assert c2.owned == {}
    assert checkpoint_of(store).owner == "b"


def test_status_line() -> None:
    out = io.StringIO()
    line = StatusLine(out)
    status = ConsumerStatus(records=10, anomalies=2, errors=1, lag_ms=2500, shards_owned=3)
    line(status)
    line.last -= 1.0  # a second later, 500 more records
    status.records = 510
    line(status)
    text = out.getvalue()
    assert (
        "\r510 records" in text
        and "lag 2.5s" in text
        and "anomalies 2" in text
        and "errors 1" in text
    )
    assert "rec/s" in text and "shards 3" in text


def test_latest_start_skips_closed_history_but_reads_children_of_what_it_read(
    tmp_path: Any,
) -> None:
    source = FakeShardSource(2, random.Random(1), limit_jitter=False)
    for pk, data in rows(40):
        source.put(data, pk)
    source.split("shardId-000000000000")  # history: a closed parent and two open children
    for pk, data in rows(40, start=40):
        source.put(data, pk)
    sink = MemorySink()
    phase = {"calls": 0}
    new: list[str] = []

    def world() -> None:
        # Once the consumer is reading, new records arrive and another shard splits.
        phase["calls"] += 1
        if phase["calls"] == 5:
            for pk, data in rows(30, start=1000):
                new.append(source.put(data, pk).sequence_number)
            source.split("shardId-000000000001")
            for pk, data in rows(30, start=2000):
                new.append(source.put(data, pk).sequence_number)

    source.on_call = world
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    c = Consumer(
        source,
        step(sink),
        SQLiteCheckpointStore(str(tmp_path / "cp.db"), "app"),
        MemoryStateStore(),
        initial_position="LATEST",
        persist_interval=0.0,
        idle_sleep=0.1,
        shard_refresh_interval=1.0,
        sleep=sleep,
        clock=lambda: now[0],
    )
    c.run(stop_after_idle=3.0)
    assert "shardId-000000000000" in c.skipped
    # Nothing written before the start; everything written after it, across the split.
    assert sorted(r["sequence_number"] for r in sink.items) == sorted(new)
