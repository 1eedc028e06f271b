"""Checkpoint stores (SQLite, DynamoDB on moto) and state stores (file, S3, DynamoDB on moto)."""

from __future__ import annotations

import os
from typing import Any, Callable

import pytest
from rcf_fast.kinesis import (
    ConflictError,
    DynamoDBCheckpointStore,
    DynamoDBStateStore,
    FileStateStore,
    S3StateStore,
    SQLiteCheckpointStore,
    StateError,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "dynamodb"])
def stores(request: pytest.FixtureRequest, tmp_path: Any) -> Callable[[Clock], Any]:
    """A factory: each call is another process's view of one checkpoint store."""
    if request.param == "sqlite":
        return lambda clock: SQLiteCheckpointStore(str(tmp_path / "cp.db"), "app", clock=clock)
    client = request.getfixturevalue("client")("dynamodb")
    table = request.getfixturevalue("name")
    DynamoDBCheckpointStore(client, table).ensure_table()
    return lambda clock: DynamoDBCheckpointStore(client, table, "app", clock=clock)


def test_two_owners_never_own_one_shard(stores: Callable[[Clock], Any]) -> None:
    clock = Clock()
    a, b = stores(clock), stores(clock)
    assert a.acquire("s-0", "A", 30) is True
    assert b.acquire("s-0", "B", 30) is False
    assert a.acquire("s-0", "A", 30) is True  # renew
    a.checkpoint("s-0", "A", "123", lease_seconds=30)
    with pytest.raises(ConflictError, match="s-0"):
        b.checkpoint("s-0", "B", "999")
    cp = b.get("s-0")
    assert (cp.sequence_number, cp.finished, cp.owner) == ("123", False, "A")
    clock.now += 31  # A's lease expires: B may take the shard, and A can no longer checkpoint
    assert b.acquire("s-0", "B", 30) is True
    with pytest.raises(ConflictError):
        a.checkpoint("s-0", "A", "124")
    b.checkpoint("s-0", "B", "200", finished=True)
    cp = a.get("s-0")
    assert (cp.sequence_number, cp.finished, cp.owner) == ("200", True, "B")
    b.release("s-0", "B")
    assert a.acquire("s-0", "A", 30) is True
    assert a.get("s-0").sequence_number == "200"
    assert a.get("unknown") is None


def test_file_state_store_is_atomic(tmp_path: Any) -> None:
    store = FileStateStore(str(tmp_path / "sub" / "state.bin"))
    assert store.load() is None
    store.save(b"one")
    store.save(b"two")
    assert store.load() == b"two"
    assert os.listdir(tmp_path / "sub") == ["state.bin"]  # no temporary files left behind


def test_s3_state_store(client: Callable[[str], Any], name: str) -> None:
    s3 = client("s3")
    s3.create_bucket(Bucket=name)
    store = S3StateStore(s3, name, "rcf/state.bin")
    assert store.load() is None
    blob = os.urandom(2_000_000)
    store.save(blob)
    assert S3StateStore(s3, name, "rcf/state.bin").load() == blob


def test_dynamodb_state_store_chunks_versions_and_conflicts(
    client: Callable[[str], Any], name: str
) -> None:
    ddb = client("dynamodb")
    first = DynamoDBStateStore(ddb, name, "consumer-1")
    first.ensure_table()
    assert first.load() is None
    big = os.urandom(900_000)  # over DynamoDB's 400 KB item limit: three chunks
    first.save(big)
    second = DynamoDBStateStore(ddb, name, "consumer-1")
    assert second.load() == big and second.version == 1 and second.parts == 3
    second.save(b"small")
    with pytest.raises(ConflictError, match="another process"):
        first.save(b"stale writer")  # loaded version 1, but version 2 exists
    assert DynamoDBStateStore(ddb, name, "consumer-1").load() == b"small"
    # Old chunks were deleted; only the head and the live chunk remain.
    items: list[Any] = ddb.scan(TableName=name)["Items"]
    assert len(items) == 2
    assert DynamoDBStateStore(ddb, name, "other").load() is None


def test_dynamodb_state_store_missing_chunk_is_a_state_error(
    client: Callable[[str], Any], name: str
) -> None:
    ddb = client("dynamodb")
    store = DynamoDBStateStore(ddb, name, "c")
    store.ensure_table()
    store.save(b"x" * 10)
    ddb.delete_item(TableName=name, Key={"state_key": {"S": f"c#{store.tag}#0"}})
    with pytest.raises(StateError, match="chunk 0 of 1 is missing"):
        DynamoDBStateStore(ddb, name, "c").load()
