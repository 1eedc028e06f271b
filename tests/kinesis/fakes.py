"""In-process test doubles: a Kinesis shard source with resharding and injected faults, a kill
switch, and a recording forest double that logs exactly what it learned."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Callable

import numpy as np
from rcf_fast.kinesis.errors import ExpiredIteratorError, ThrottledError
from rcf_fast.kinesis.records import Event, EventFailure, RawRecord
from rcf_fast.kinesis.sinks import MemorySink
from rcf_fast.kinesis.source import RecordsBatch, ShardInfo

HASH_MAX = 2**128
SEQ_BASE = 49_600_000_000_000_000_000_000_000_000_000_000  # wider than 64 bits, like Kinesis


class Killed(BaseException):
    """The process 'dies' here: nothing in memory survives (BaseException, so nobody catches it)."""


class KillSwitch:
    """Raises ``Killed`` at a hook with probability ``p`` (seeded)."""

    def __init__(self, rng: random.Random, p: float) -> None:
        self.rng = rng
        self.p = p
        self.kills = 0
        self.armed = True

    def maybe(self, where: str) -> None:
        if self.armed and self.rng.random() < self.p:
            self.kills += 1
            raise Killed(where)


@dataclass
class FakeShard:
    shard_id: str
    lo: int
    hi: int  # hash key range [lo, hi)
    parent: str | None = None
    adjacent: str | None = None
    records: list[RawRecord] = field(default_factory=list)
    closed: bool = False


class FakeShardSource:
    """A stream in memory with real lineage semantics (writes after a split go to the children)."""

    def __init__(
        self,
        shards: int,
        rng: random.Random,
        throttle_p: float = 0.0,
        expire_p: float = 0.0,
        kill: KillSwitch | None = None,
        limit_jitter: bool = True,
    ) -> None:
        self.rng = rng
        self.throttle_p = throttle_p
        self.expire_p = expire_p
        self.kill = kill
        self.limit_jitter = limit_jitter
        self.shards: dict[str, FakeShard] = {}
        self.next_shard = 0
        self.next_seq = 0
        self.written: list[RawRecord] = []  # global write order
        self.on_call: Callable[[], None] | None = None  # the 'world' moving on during reads
        self.calls = {"get_records": 0, "throttled": 0, "expired": 0}
        step = HASH_MAX // shards
        for i in range(shards):
            self._new_shard(i * step, HASH_MAX if i == shards - 1 else (i + 1) * step)

    def _new_shard(
        self, lo: int, hi: int, parent: str | None = None, adjacent: str | None = None
    ) -> FakeShard:
        shard = FakeShard(f"shardId-{self.next_shard:012d}", lo, hi, parent, adjacent)
        self.next_shard += 1
        self.shards[shard.shard_id] = shard
        return shard

    def open_shards(self) -> list[FakeShard]:
        return sorted((s for s in self.shards.values() if not s.closed), key=lambda s: s.lo)

    # -- writes and resharding -------------------------------------------------------------

    def put(self, data: bytes, partition_key: str) -> RawRecord:
        h = int.from_bytes(hashlib.md5(partition_key.encode()).digest(), "big")
        shard = next(s for s in self.open_shards() if s.lo <= h < s.hi)
        self.next_seq += 1
        rec = RawRecord(shard.shard_id, str(SEQ_BASE + self.next_seq * 7), data, partition_key)
        shard.records.append(rec)
        self.written.append(rec)
        return rec

    def split(self, shard_id: str) -> None:
        parent = self.shards[shard_id]
        parent.closed = True
        mid = (parent.lo + parent.hi) // 2
        self._new_shard(parent.lo, mid, parent.shard_id)
        self._new_shard(mid, parent.hi, parent.shard_id)

    def merge(self, a: str, b: str) -> None:
        sa, sb = self.shards[a], self.shards[b]
        assert sa.hi == sb.lo and not sa.closed and not sb.closed
        sa.closed = sb.closed = True
        self._new_shard(sa.lo, sb.hi, a, b)

    def reshard_randomly(self) -> str:
        opened = self.open_shards()
        if len(opened) >= 2 and self.rng.random() < 0.5:
            i = self.rng.randrange(len(opened) - 1)
            self.merge(opened[i].shard_id, opened[i + 1].shard_id)
            return "merge"
        self.split(self.rng.choice(opened).shard_id)
        return "split"

    # -- the ShardSource API ---------------------------------------------------------------

    def _maybe_throttle(self) -> None:
        if self.rng.random() < self.throttle_p:
            self.calls["throttled"] += 1
            raise ThrottledError("LimitExceededException")

    def list_shards(self) -> list[ShardInfo]:
        self._maybe_throttle()
        out = []
        for s in self.shards.values():
            ending = (
                s.records[-1].sequence_number
                if s.closed and s.records
                else (str(SEQ_BASE) if s.closed else None)
            )
            out.append(ShardInfo(s.shard_id, s.parent, s.adjacent, ending))
        return out

    def get_iterator(
        self,
        shard_id: str,
        iterator_type: str,
        sequence_number: str | None = None,
        timestamp: object = None,
    ) -> str:
        self._maybe_throttle()
        shard = self.shards[shard_id]
        if iterator_type == "TRIM_HORIZON":
            index = 0
        elif iterator_type == "LATEST":
            index = len(shard.records)
        elif iterator_type == "AFTER_SEQUENCE_NUMBER":
            assert sequence_number is not None
            found = next(
                (
                    i + 1
                    for i, r in enumerate(shard.records)
                    if r.sequence_number == sequence_number
                ),
                None,
            )
            assert found is not None, f"{sequence_number} not in {shard_id}"
            index = found
        else:
            raise AssertionError(iterator_type)
        return json.dumps([shard_id, index])

    def get_records(self, shard_id: str, iterator: str, limit: int) -> RecordsBatch:
        self.calls["get_records"] += 1
        if self.on_call:
            self.on_call()
        if self.kill:
            self.kill.maybe("get_records")
        if self.rng.random() < self.throttle_p:
            self.calls["throttled"] += 1
            raise ThrottledError("ProvisionedThroughputExceededException")
        if self.rng.random() < self.expire_p:
            self.calls["expired"] += 1
            raise ExpiredIteratorError("ExpiredIteratorException")
        sid, index = json.loads(iterator)
        assert sid == shard_id
        shard = self.shards[sid]
        n = self.rng.randint(1, limit) if self.limit_jitter else limit
        records = shard.records[index : index + n]
        end = index + len(records)
        nxt = None if shard.closed and end >= len(shard.records) else json.dumps([sid, end])
        return RecordsBatch(list(records), nxt, (len(shard.records) - end) * 1000)


class RecordingForest:
    """A forest double whose state is exactly the list of points it learned (and whose score is a
    deterministic function of that state), so 'learned twice' and 'order' are visible directly."""

    def __init__(self, dimensions: int = 1, seed: int | None = None, **params: object) -> None:
        self.dimensions = dimensions
        self.seed = seed
        self.params = params
        self.points: list[list[float]] = []

    def _check(self, x: object) -> np.ndarray:
        arr = np.asarray(x, dtype=np.float64)
        if arr.shape != (self.dimensions,):
            raise ValueError(f"expected {self.dimensions} values, got shape {arr.shape}")
        return arr

    def attribution(self, x: object) -> SimpleNamespace:
        arr = self._check(x)
        return SimpleNamespace(
            high=np.abs(arr) * 0.01,
            low=np.zeros(self.dimensions),
            total=float(np.abs(arr).sum()) * 0.01,
        )

    def score_update(self, x: object) -> float:
        arr = self._check(x)
        score = (len(self.points) * 0.5 + float(arr.sum()) + (self.seed or 0) % 97) % 5.0
        self.points.append([float(v) for v in arr])
        return score

    @property
    def entries_seen(self) -> int:
        return len(self.points)

    def to_bytes(self) -> bytes:
        return json.dumps({"d": self.dimensions, "seed": self.seed, "points": self.points}).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> RecordingForest:
        obj = json.loads(data)
        forest = cls(obj["d"], obj["seed"])
        forest.points = obj["points"]
        return forest


def mem(sink: object) -> MemorySink:
    """The sink as a ``MemorySink`` (what the step builds by default)."""
    assert isinstance(sink, MemorySink)
    return sink


def event_of(item: object) -> Event:
    assert isinstance(item, Event), item
    return item


def failure_of(item: object) -> EventFailure:
    assert isinstance(item, EventFailure), item
    return item


def failed_event_ids(errors: list[dict]) -> set[tuple]:
    """(shard, sequence number, sub-sequence number) of every failed event an error sink lists:
    a record entry stands for its one failed event; when several events of a record failed,
    the record entry summarises them and each has its own event entry."""
    out = set()
    for e in errors:
        if e.get("kind") == "record" and e.get("failed_events", 1) > 1:
            continue
        out.add((e["shard_id"], e["sequence_number"], e.get("sub_sequence_number")))
    return out


def failed_event_count(errors: list[dict]) -> int:
    """Failed events an error sink accounts for (record entries carry the count)."""
    return sum(e.get("failed_events", 1) for e in errors if e.get("kind", "record") == "record")
