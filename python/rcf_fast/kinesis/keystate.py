"""Per-key state of the scoring step in a record store, saved incrementally.

Records (names in a ``RecordStore``, see ``stores/records.py``):

- ``meta``: the forest configuration fingerprint, the dimension count, the value fields, the
  schema, and the keys whose forest has a seed other than the engine's derived one (forests
  adopted from a state of the previous release);
- ``pos/<shard id>``: the shard's position: the last (sequence number, sub-sequence number,
  event index) applied;
- ``key/<key>``: the key's forest (``RandomCutForest.to_bytes()``) and, per shard, the position
  of the last event that key applied (learned, or sent to the error sink).

Every record is framed: ``RCFR``, format version, header length, CRC-32 of header and payload,
JSON header, payload; a truncated, damaged, oversized or foreign record raises ``StateError``.

Saving (``save``) writes ``meta`` if it changed, then only the keys changed since their last
save (the engine's ``flush``), then the positions of the shards that advanced. The engine also
writes keys when it evicts them (``memory_limit``/``max_keys``) or when they idle out; before
any key is written the step's sinks are flushed (``before_write``), so a key's record never
covers an event whose result or error is not delivered.

Idempotency with non-atomic writes. Key records and position records are separate writes, so
a crash may leave some keys saved beyond their shard's saved position. The rule that keeps
replays exact: an event (shard s, position p) of key k is skipped if p <= the shard's saved
position, or if p <= the position recorded for shard s *in k's own record*. Why it is sound:
k's record and k's forest are written together (one atomic put), so the forest in the store has
learned exactly k's events up to that recorded position on each shard, and none after. On a
replay, k's events at or before it are already in k's forest (skip: not learned twice), and
k's events after it are not (learn: none lost). The shard position only makes skipping cheaper;
it is never ahead of what the keys' records cover, because it is written after them. Outputs
are at least once: a replayed event not covered by its key's record is emitted again with the
same score (its forest is the same as the first time).

Shard moves and reshards: keys are found by name, whichever shard their records arrive on, so a
consumer restarted on another shard layout (a split: the parent's keys arrive on two children;
a merge) continues each key's forest; positions stay per shard. Two consumers must not write the
same key at once: the key (``--key``) must follow the partition key, so that a key lives on one
shard at a time (the Kinesis lineage order then makes its records arrive in order).
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

from rcf_fast.kinesis.errors import StateError
from rcf_fast.kinesis.records import Position
from rcf_fast.kinesis.stores.records import HEAD_BYTES, RecordStore

RECORD_MAGIC = b"RCFR"
RECORD_VERSION = 1
_FRAME = struct.Struct("<4sHII")  # magic, version, header length, CRC-32
MAX_HEADER = HEAD_BYTES - _FRAME.size
SMALL_HEAD = 4096  # a key's header (name, positions) is usually far smaller
META = "meta"
POS = "pos/"
KEY = "key/"


def encode_record(header: dict[str, Any], payload: bytes = b"") -> bytes:
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    if len(head) > MAX_HEADER:
        raise StateError(f"record header of {len(head)} bytes exceeds {MAX_HEADER}")
    crc = zlib.crc32(payload, zlib.crc32(head))
    return _FRAME.pack(RECORD_MAGIC, RECORD_VERSION, len(head), crc) + head + payload


def _frame(data: bytes, name: str) -> tuple[int, int]:
    if len(data) < _FRAME.size:
        raise StateError(f"state record {name!r} is truncated ({len(data)} bytes)")
    magic, version, head_len, crc = _FRAME.unpack_from(data)
    if magic != RECORD_MAGIC:
        raise StateError(f"state record {name!r} is not an rcf_fast.kinesis record (bad magic)")
    if version != RECORD_VERSION:
        raise StateError(
            f"state record {name!r} has format version {version}; this rcf_fast reads "
            f"version {RECORD_VERSION}"
        )
    if head_len > MAX_HEADER or _FRAME.size + head_len > len(data):
        raise StateError(f"state record {name!r} is truncated in its header")
    return head_len, crc


def _header(data: bytes, head_len: int, name: str) -> dict[str, Any]:
    try:
        header = json.loads(data[_FRAME.size : _FRAME.size + head_len])
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StateError(f"state record {name!r} has a damaged header: {exc}") from None
    if not isinstance(header, dict):
        raise StateError(f"state record {name!r} has a damaged header: not an object")
    return header


def decode_record(data: bytes, name: str) -> tuple[dict[str, Any], bytes]:
    """Header and payload of a whole record, checksum verified."""
    head_len, crc = _frame(data, name)
    body = data[_FRAME.size :]
    if zlib.crc32(body) != crc:
        raise StateError(f"state record {name!r} is damaged or truncated (checksum mismatch)")
    return _header(data, head_len, name), bytes(body[head_len:])


def decode_header(prefix: bytes, name: str) -> dict[str, Any]:
    """The header of a record from its first bytes (payload not verified)."""
    head_len, _ = _frame(prefix, name)
    return _header(prefix, head_len, name)


def _position(value: Any, what: str) -> Position:
    try:
        seq, sub, idx = value
        return (int(seq), int(sub), int(idx))
    except (TypeError, ValueError) as exc:
        raise StateError(f"{what}: bad position {str(value)[:100]}: {exc}") from None


def _positions(value: Any, what: str) -> dict[str, Position]:
    if not isinstance(value, dict):
        raise StateError(f"{what}: positions must be an object, got {type(value).__name__}")
    return {str(s): _position(p, what) for s, p in value.items()}


def _pos_json(p: Position) -> list[Any]:
    return [str(p[0]), p[1], p[2]]


class KeyedState:
    """The step's per-key state in ``records`` (see the module docstring)."""

    def __init__(self, records: RecordStore) -> None:
        self.records = records
        # Per key, per shard: the last event position the key applied (in memory for every key
        # this process touched or loaded).
        self.key_pos: dict[str, dict[str, Position]] = {}
        self._looked_up: set[str] = set()
        self.saved_positions: dict[str, Position] = {}
        self.saved_meta: dict[str, Any] | None = None
        self.before_write: Callable[[], None] | None = None
        # During an engine call: the positions of the rows it is learning, per key and shard
        # (a key of the call is only saved after it learned them: see EngineForests).
        self.inflight: dict[str, dict[str, Position]] = {}

    # -- records --------------------------------------------------------------------------------

    def load_meta(self) -> dict[str, Any] | None:
        data = self.records.get(META)
        if data is None:
            return None
        header, _ = decode_record(data, META)
        self.saved_meta = header
        return header

    def load_positions(self) -> dict[str, Position]:
        out: dict[str, Position] = {}
        for name in self.records.names(POS):
            data = self.records.get(name)
            if data is None:
                continue
            header, _ = decode_record(data, name)
            shard = header.get("shard")
            if not isinstance(shard, str) or POS + shard != name:
                raise StateError(f"state record {name!r} belongs to shard {shard!r}")
            out[shard] = _position(header.get("position"), name)
        self.saved_positions = dict(out)
        return out

    def save_meta(self, meta: dict[str, Any]) -> None:
        if meta != self.saved_meta:
            self.records.put(META, encode_record(meta))
            self.saved_meta = meta

    def save_positions(self, positions: dict[str, Position]) -> None:
        for shard, pos in sorted(positions.items()):
            if self.saved_positions.get(shard) != pos:
                name = POS + shard
                self.records.put(name, encode_record({"shard": shard, "position": _pos_json(pos)}))
                self.saved_positions[shard] = pos

    def key_positions(self, key: str) -> dict[str, Position] | None:
        """Where ``key`` has applied events up to, per shard: from memory, else read once from
        the head of its record (None: the key has no record)."""
        kp = self.key_pos.get(key)
        if kp is not None or key in self._looked_up:
            return kp
        self._looked_up.add(key)
        name = KEY + key
        prefix = self.records.head(name, SMALL_HEAD)
        if prefix is None:
            return None
        if len(prefix) == SMALL_HEAD and _FRAME.size + _frame(prefix, name)[0] > SMALL_HEAD:
            prefix = self.records.head(name) or b""  # a long header: read up to its bound
        header = decode_header(prefix, name)
        kp = _positions(header.get("positions", {}), name)
        self.key_pos[key] = kp
        return kp

    def note(self, key: str, shard: str, pos: Position) -> None:
        """``key`` applied the event at ``pos`` of ``shard``."""
        kp = self.key_pos.get(key)
        if kp is None:
            kp = self.key_positions(key) or {}
            self.key_pos[key] = kp
        last = kp.get(shard)
        if last is None or pos > last:
            kp[shard] = pos

    def read_key(self, key: str) -> bytes | None:
        name = KEY + key
        data = self.records.get(name)
        if data is None:
            return None
        header, payload = decode_record(data, name)
        if header.get("key") != key:
            raise StateError(f"state record {name!r} holds the forest of {header.get('key')!r}")
        kp = _positions(header.get("positions", {}), name)
        if key not in self.key_pos:
            self.key_pos[key] = kp
        self._looked_up.add(key)
        return payload

    def write_key(self, key: str, forest: bytes) -> None:
        if self.before_write is not None:
            self.before_write()
        kp = dict(self.key_pos.get(key, {}))
        for shard, pos in self.inflight.get(key, {}).items():
            if shard not in kp or pos > kp[shard]:
                kp[shard] = pos
        header = {"key": key, "positions": {s: _pos_json(p) for s, p in sorted(kp.items())}}
        self.records.put(KEY + key, encode_record(header, forest))


class EngineStore(MutableMapping[str, bytes]):
    """What the engine sees as its store: key -> forest bytes, kept in ``key/<key>`` records
    together with the key's positions."""

    def __init__(self, state: KeyedState) -> None:
        self.state = state

    def __getitem__(self, key: str) -> bytes:
        data = self.state.read_key(key)
        if data is None:
            raise KeyError(key)
        return data

    def __setitem__(self, key: str, value: bytes) -> None:
        self.state.write_key(key, bytes(value))

    def __delitem__(self, key: str) -> None:
        raise KeyError(key)  # keys are never deleted from the state

    def __iter__(self) -> Iterator[str]:
        return (n[len(KEY) :] for n in self.state.records.names(KEY))

    def __len__(self) -> int:
        return sum(1 for _ in self)


class KeyedStateStore:
    """Where a step keeps its per-key state: ``records`` (a ``RecordStore``), plus ``legacy``,
    a whole-blob ``StateStore`` of the previous release read once when ``records`` has no
    state yet (migrated by the first save). ``memory_limit`` (bytes) and ``max_keys`` bound
    the forests kept in memory: least recently used keys are saved and dropped, and loaded
    back when their key is seen again."""

    def __init__(
        self,
        records: RecordStore,
        legacy: Any = None,
        *,
        memory_limit: int | None = None,
        max_keys: int | None = None,
    ) -> None:
        self.records = records
        self.legacy = legacy
        self.memory_limit = memory_limit
        self.max_keys = max_keys


def is_keyed_store(store: Any) -> bool:
    """True for a per-key state store (``KeyedStateStore``), False for a whole-blob one."""
    return isinstance(store, KeyedStateStore)


def open_state_store(
    spec: str,
    client: Callable[[str], Any] | None = None,
    *,
    memory_limit: int | None = None,
    max_keys: int | None = None,
) -> KeyedStateStore:
    """The per-key state store of a ``--state`` spec (``client(service)`` makes boto3 clients):

    - ``s3://bucket/prefix``: one object per record under ``prefix/`` (the previous release's
      blob at ``s3://bucket/prefix`` is migrated);
    - ``dynamodb://table/id``: items ``id/<record>`` (the previous release's state ``id`` is
      migrated); the table is created if missing;
    - a path: a directory of records; if the path is a file (the previous release's blob), the
      records live in ``<path>.d`` and the file is migrated.
    """
    import os

    from rcf_fast.kinesis.stores.dynamodb_state import DynamoDBStateStore
    from rcf_fast.kinesis.stores.file_state import FileStateStore
    from rcf_fast.kinesis.stores.records import DirRecords, DynamoDBRecords, S3Records
    from rcf_fast.kinesis.stores.s3_state import S3StateStore

    limits = {"memory_limit": memory_limit, "max_keys": max_keys}
    if spec.startswith("s3://"):
        assert client is not None, "an S3 state needs a client factory"
        bucket, _, key = spec[5:].partition("/")
        key = key.rstrip("/") or "rcf-fast.state"
        s3 = client("s3")
        return KeyedStateStore(
            S3Records(s3, bucket, key + "/"), S3StateStore(s3, bucket, key), **limits
        )
    if spec.startswith("dynamodb://"):
        assert client is not None, "a DynamoDB state needs a client factory"
        table, _, state_id = spec[11:].partition("/")
        state_id = state_id or "rcf-fast"
        ddb = client("dynamodb")
        records = DynamoDBRecords(ddb, table, state_id + "/")
        records.ensure_table()
        return KeyedStateStore(records, DynamoDBStateStore(ddb, table, state_id), **limits)
    if os.path.isfile(spec):
        return KeyedStateStore(DirRecords(spec + ".d"), FileStateStore(spec), **limits)
    return KeyedStateStore(DirRecords(spec), **limits)
