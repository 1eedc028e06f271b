"""Per-key state saved incrementally: exact continuation, crashes between per-key writes,
reshards (split and merge), eviction, migration of the previous release's blob, and hostile
stored records; record stores on a directory, S3 and DynamoDB (moto)."""

from __future__ import annotations

import json
import math
import os
from typing import Any, Callable

import numpy as np
import pytest
from rcf_fast.kinesis import (
    KeyedForests,
    MemoryStateStore,
    RawRecord,
    ScoringStep,
    StateError,
    make_decoder,
)
from rcf_fast.kinesis.keystate import KeyedStateStore, decode_record, encode_record
from rcf_fast.kinesis.stores.records import (
    DirRecords,
    DynamoDBRecords,
    MemoryRecords,
    S3Records,
    escape,
)

from .fakes import mem

FOREST = {"num_trees": 16, "sample_size": 32, "seed": 11, "shingle_size": 2}


def rows(n: int, keys: int = 6, seed: int = 3) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = int(rng.integers(0, keys))
        a = math.sin(i * 0.1 + k) * 10 + rng.normal(0, 0.1)
        if rng.random() < 0.03:
            a += 60
        out.append({"host": f"h{k}", "a": round(a, 4), "b": round(rng.normal(), 4)})
    return out


def recs(items: list[dict[str, Any]], shard: str, start: int = 100) -> list[RawRecord]:
    return [RawRecord(shard, str(start + i), json.dumps(r).encode()) for i, r in enumerate(items)]


def step(**kw: Any) -> ScoringStep:
    return ScoringStep(
        make_decoder("json"),
        FOREST,
        key_field="host",
        value_fields=["a", "b"],
        explain="always",
        **kw,
    )


def attached(records: Any, **kw: Any) -> ScoringStep:
    s = step()
    s.attach_state(KeyedStateStore(records, **kw))
    return s


def scores(s: ScoringStep) -> list[tuple]:
    return [
        (r["shard_id"], r["sequence_number"], r["key"], r["score"], r["attribution"])
        for r in mem(s.results).items
    ]


def forests(s: ScoringStep) -> dict[str, bytes]:
    return {k: f.to_bytes() for k, f in s.forests}


def replay_and_save(s: ScoringStep, batches: list[list[RawRecord]]) -> None:
    """Processes ``batches``, then saves every key and the positions (a consumer's persist)."""
    for b in batches:
        s.process(b)
    s.flush()
    s.save_state()


def restored_forests(store: Any) -> dict[str, bytes]:
    """Every key's forest as a new step attached to ``store`` loads it."""
    s = attached(store)
    s.process([])
    return forests(s)


def clean_pass(batches: list[list[RawRecord]]) -> ScoringStep:
    s = step()
    for b in batches:
        s.process(b)
    s.flush()
    return s


class FailingRecords(MemoryRecords):
    """Raises on the put after ``fail_after`` more puts (a crash between writes)."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_after: int | None = None

    def put(self, name: str, data: bytes) -> None:
        if self.fail_after is not None:
            if self.fail_after == 0:
                raise OSError("injected crash")
            self.fail_after -= 1
        super().put(name, data)


def test_saves_only_changed_keys_and_continues_exactly() -> None:
    items = rows(300)
    batches = [recs(items[i : i + 100], "A", 100 + i) for i in range(0, 300, 100)]
    clean = clean_pass(batches)
    store = MemoryRecords()
    s = attached(store)
    s.process(batches[0])
    s.flush()
    assert s.save_state() == 6
    puts = store.puts
    s.process(recs([{"host": "h1", "a": 1.0, "b": 0.0}], "A", 5000))
    assert s.save_state() == 1  # only h1 changed
    assert store.puts == puts + 2  # h1's record and shard A's position
    assert sorted(store.data) == ["key/h" + str(i) for i in range(6)] + ["meta", "pos/A"]
    # Another process continues from the saved state.
    s2 = attached(store)
    assert s2.forests.positions == {"A": (5000, 0, 0)}
    s3 = attached(MemoryRecords())
    s3.process(batches[0])
    s3.flush()
    s3.save_state()
    again = attached(s3.forests.state.records)  # type: ignore[union-attr]
    for b in batches[1:]:
        again.process(b)
    again.flush()
    assert scores(again) == scores(clean)[100:]
    assert forests(again) == forests(clean)


@pytest.mark.parametrize("fail_after", [0, 1, 3, 6])  # 6: all keys, not the position
def test_crash_between_key_writes_neither_learns_twice_nor_loses(fail_after: int) -> None:
    items = rows(400)
    batches = [recs(items[i : i + 100], "A", 100 + i) for i in range(0, 400, 100)]
    clean = clean_pass(batches)
    store = FailingRecords()
    s = attached(store)
    s.process(batches[0])
    s.flush()
    s.save_state()
    s.process(batches[1])
    s.process(batches[2])
    s.flush()
    store.fail_after = fail_after  # meta unchanged: key records, then positions
    with pytest.raises(OSError, match="injected"):
        s.save_state()
    store.fail_after = None
    written = [n for n in store.data if n.startswith("key/")]
    assert written
    # The consumer restarts from the last saved position and replays batches 1..3.
    r = attached(store)
    assert r.forests.positions == {"A": (199, 0, 0)}
    replay_and_save(r, batches[1:])
    # Every forest equals the clean single pass: none learned twice, none lost.
    assert restored_forests(store) == forests(clean)
    # Every result emitted after the restart has the clean pass's score for that event.
    want = {(x[0], x[1]): x for x in scores(clean)}
    for got in scores(r):
        assert got == want[(got[0], got[1])]
    # Events of keys whose record was saved before the crash were skipped, not re-emitted.
    emitted = {x[1] for x in scores(r)}
    replay = {x[1] for x in scores(clean)[100:300]}
    first = {x[1] for x in scores(s)[100:300]}
    assert emitted | first >= replay


def test_crash_inside_an_eviction_replays_exactly() -> None:
    items = rows(300, keys=8)
    batches = [recs(items[i : i + 50], "A", 100 + i) for i in range(0, 300, 50)]
    clean = clean_pass(batches)
    store = FailingRecords()
    s = attached(store, max_keys=3)
    s.process(batches[0])
    s.flush()
    s.save_state()
    s.process(batches[1])
    store.fail_after = 2  # evictions write keys during the next batch, then fail
    with pytest.raises(OSError, match="injected"):
        s.process(batches[2])
    store.fail_after = None
    replay_and_save(attached(store, max_keys=3), batches[1:])
    assert restored_forests(store) == forests(clean)


def test_eviction_keeps_scores_identical_and_memory_bounded() -> None:
    items = rows(400, keys=10)
    batches = [recs(items[i : i + 80], "A", 100 + i) for i in range(0, 400, 80)]
    clean = clean_pass(batches)
    s = attached(MemoryRecords(), max_keys=3)
    for b in batches:
        s.process(b)
        assert len(s.forests.engine.resident_keys()) <= 3  # type: ignore[union-attr]
    s.flush()
    assert scores(s) == scores(clean)


@pytest.mark.parametrize("layout", ["split", "merge"])
def test_keys_follow_a_reshard(layout: str) -> None:
    items = rows(500, keys=6)
    first, rest = items[:250], items[250:]
    clean = clean_pass([recs(items, "X")])
    store = MemoryRecords()
    a = attached(store)
    if layout == "split":
        a.process(recs(first, "parent", 100))
    else:  # keys h0-h2 on one parent, h3-h5 on the other
        a.process([r for r in recs(first, "p1", 100) if json.loads(r.data)["host"] < "h3"])
        a.process([r for r in recs(first, "p2", 100) if json.loads(r.data)["host"] >= "h3"])
    a.flush()
    a.save_state()
    # A new consumer reads the continuation on the child shard(s), sharing the store.
    b = attached(store)
    tail = recs(rest, "?", 350)
    if layout == "split":
        b.process(
            [
                RawRecord("child-B" if json.loads(r.data)["host"] < "h3" else "child-C", *x)
                for r in tail
                for x in [(r.sequence_number, r.data)]
            ]
        )
    else:
        b.process([RawRecord("child", r.sequence_number, r.data) for r in tail])
    b.flush()
    b.save_state()
    got: list[tuple] = [(x[2], x[3], x[4]) for x in scores(a) + scores(b)]
    by_key: dict[str, list] = {}
    for x in got:
        by_key.setdefault(x[0], []).append(x)
    want: dict[str, list] = {}
    for x in scores(clean):
        want.setdefault(x[2], []).append((x[2], x[3], x[4]))
    assert by_key == want  # every score bit-identical, per key in order
    assert restored_forests(store) == forests(clean)
    assert sorted(n for n in store.data if n.startswith("pos/")) == (
        ["pos/child-B", "pos/child-C", "pos/parent"]
        if layout == "split"
        else ["pos/child", "pos/p1", "pos/p2"]
    )


def test_previous_release_blob_is_migrated_on_first_save() -> None:
    items = rows(300)
    old = step(forests=KeyedForests(FOREST))
    old.process(recs(items[:200], "A"))
    blob = old.state_bytes()
    old.process(recs(items[200:], "A", 300))
    old.flush()
    store = MemoryRecords()
    s = step()
    s.attach_state(KeyedStateStore(store, MemoryStateStore(blob)))
    s.process(recs(items[150:250], "A", 250))  # 150..199 are replays: skipped
    s.flush()
    s.save_state()
    # The adopted keys' BLAKE2b seeds are in meta; every key was written (migrated).
    assert sorted(decode_record(store.data["meta"], "meta")[0]["seeds"]) == sorted(
        k for k, _ in old.forests
    )
    assert sorted(n for n in store.data if n.startswith("key/")) == sorted(
        "key/" + k for k, _ in old.forests
    )
    # A restart reads the records only (the legacy blob is not needed any more).
    r = step()
    r.attach_state(KeyedStateStore(store))
    r.process(recs(items[250:], "A", 350))
    r.flush()
    got = [(x[2], x[3], x[4]) for x in scores(s) + scores(r)]
    want = [(x["key"], x["score"], x["attribution"]) for x in mem(old.results).items[200:]]
    assert got == want
    assert forests(r) == forests(old)


@pytest.mark.parametrize(
    "damage",
    [
        "truncate",
        "garbage",
        "flip",
        "empty",
        "huge_header",
        "other_key",
        "bad_meta_seeds",
        "framed_garbage_forest",
        "framed_bad_positions",
    ],
)
def test_hostile_records_raise_state_error(damage: str) -> None:
    store = MemoryRecords()
    s = attached(store)
    s.process(recs(rows(60), "A"))
    s.flush()
    s.save_state()
    name = "key/h1"
    data = store.data[name]
    if damage == "truncate":
        store.data[name] = data[: len(data) // 2]
    elif damage == "garbage":
        store.data[name] = os.urandom(len(data))
    elif damage == "flip":
        store.data[name] = data[:-100] + bytes([data[-100] ^ 1]) + data[-99:]
    elif damage == "empty":
        store.data[name] = b""
    elif damage == "huge_header":
        store.data[name] = data[:6] + (2**31).to_bytes(4, "little") + data[10:]
    elif damage == "other_key":
        store.data[name] = store.data["key/h2"]
    elif damage == "framed_garbage_forest":  # a valid frame and CRC around garbage
        store.data[name] = encode_record({"key": "h1", "positions": {}}, os.urandom(5000))
    elif damage == "framed_bad_positions":
        store.data[name] = encode_record(
            {"key": "h1", "positions": {"A": ["x", None]}}, decode_record(data, name)[1]
        )
    else:
        header, _ = decode_record(store.data["meta"], "meta")
        store.data["meta"] = encode_record({**header, "seeds": {"h1": "not a number"}})
    with pytest.raises(StateError):
        r = attached(store)
        r.process(recs([{"host": "h1", "a": 1.0, "b": 1.0}], "A", 10_000))


def test_record_names_escape_and_list() -> None:
    assert escape("key/a b") == "key%2Fa%20b"
    assert escape("..") == "%2E."
    assert len(escape("k" * 1000)) < 220


def check_store(records: Any) -> None:
    assert records.get("key/x") is None and records.head("key/x") is None
    big = os.urandom(900_000)  # more than one DynamoDB item
    records.put("key/host 1/é", big)
    records.put("meta", b"m")
    assert records.get("key/host 1/é") == big
    assert records.head("key/host 1/é", 100) == big[:100]
    records.put("key/host 1/é", big[:10])
    assert records.get("key/host 1/é") == big[:10]
    assert list(records.names("key/")) == ["key/host 1/é"]
    assert list(records.names()) == ["key/host 1/é", "meta"]


def test_dir_records(tmp_path: Any) -> None:
    check_store(DirRecords(str(tmp_path / "state")))
    assert not [f for f in os.listdir(tmp_path / "state") if f.startswith(".rec-")]


def test_s3_records(client: Callable[[str], Any], name: str) -> None:
    s3 = client("s3")
    s3.create_bucket(Bucket=name)
    check_store(S3Records(s3, name, "state"))


def test_dynamodb_records_chunks_and_half_written_records(
    client: Callable[[str], Any], name: str
) -> None:
    ddb = client("dynamodb")
    records = DynamoDBRecords(ddb, name, "app/")
    records.ensure_table()
    check_store(records)
    big = os.urandom(800_000)
    records.put("key/k", big)
    # A writer that died after its chunks but before switching the head: the old record stays.
    ddb.put_item(TableName=name, Item={"state_key": {"S": "app/key/k#dead#0"}, "data": {"B": b"x"}})
    assert records.get("key/k") == big
    # A missing chunk or a damaged head never loads silently.
    head = ddb.get_item(TableName=name, Key={"state_key": {"S": "app/key/k"}})["Item"]
    ddb.put_item(TableName=name, Item={**head, "parts": {"N": str(int(head["parts"]["N"]) + 1)}})
    with pytest.raises(StateError, match="missing"):
        records.get("key/k")
    ddb.put_item(TableName=name, Item={**head, "crc": {"N": "1"}})
    with pytest.raises(StateError, match="checksum"):
        records.get("key/k")
    ddb.put_item(TableName=name, Item={**head, "parts": {"N": "999999999"}})
    with pytest.raises(StateError):
        records.get("key/k")
    ddb.put_item(TableName=name, Item={**head, "size": {"N": "5"}})
    with pytest.raises(StateError):
        records.get("key/k")
    # head() of a big record comes from the head item, without reading the chunks.
    records.put("key/big", big)
    ddb.delete_item(
        TableName=name,
        Key={"state_key": {"S": "app/key/big#" + records._item("app/key/big")["tag"]["S"] + "#0"}},  # type: ignore[index]
    )
    assert records.head("key/big", 100) == big[:100]
    with pytest.raises(StateError, match="missing"):
        records.get("key/big")


def test_dynamodb_state_of_a_step(client: Callable[[str], Any], name: str) -> None:
    ddb = client("dynamodb")
    records = DynamoDBRecords(ddb, name, "app/")
    records.ensure_table()
    items = rows(200)
    clean = clean_pass([recs(items, "A")])
    s = attached(records)
    s.process(recs(items[:100], "A"))
    s.flush()
    s.save_state()
    r = attached(records)
    r.process(recs(items[100:], "A", 200))
    r.flush()
    assert scores(s) + scores(r) == scores(clean)


def test_oversized_record_is_refused_without_reading_it_all(tmp_path: Any) -> None:
    records = DirRecords(str(tmp_path), max_bytes=1000)
    records.put("key/a", b"x" * 5000)
    with pytest.raises(StateError, match="more than the 1,000 bytes"):
        records.get("key/a")
    assert records.head("key/a", 10) == b"x" * 10


def test_open_state_store_migrates_a_blob_file(tmp_path: Any) -> None:
    from rcf_fast.kinesis.keystate import open_state_store

    items = rows(120)
    old = step(forests=KeyedForests(FOREST))
    old.process(recs(items[:80], "A"))
    path = tmp_path / "state.bin"
    path.write_bytes(old.state_bytes())
    store = open_state_store(str(path))
    assert isinstance(store.records, DirRecords) and store.records.path == f"{path}.d"
    s = step()
    s.attach_state(store)
    s.process(recs(items[80:], "A", 180))
    s.flush()
    s.save_state()
    # Restarted on the same spec: the records win; the blob is no longer read.
    path.write_bytes(b"garbage that must not be read")
    again = step()
    again.attach_state(open_state_store(str(path)))
    assert again.forests.positions == {"A": (219, 0, 0)}
    fresh = open_state_store(str(tmp_path / "new"))
    assert isinstance(fresh.records, DirRecords) and fresh.legacy is None
