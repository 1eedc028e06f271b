"""Record stores: the per-key state of the Kinesis layer as named records in a key/value store.

A record store maps a name (``str``) to bytes: ``get(name)`` (None when absent), ``head(name)``
(the first bytes only, enough for a record's header), ``put(name, data)`` (atomic: a reader sees
the old or the new record, whole) and ``names(prefix)``. Implementations:

- ``MemoryRecords``: a dict (tests).
- ``DirRecords``: a directory, one file per record, written to a temporary file and renamed
  (names escaped to ``[A-Za-z0-9_.-]`` plus ``%XX``; long names hashed).
- ``S3Records``: one object per record under a prefix.
- ``DynamoDBRecords``: an item per record. A standard forest is ~0.8 MB and an item is limited
  to 400 KB, so a record is compressed (zlib) and split into chunk items
  ``<prefix><name>#<tag>#<i>`` first; then the head item ``<prefix><name>`` is switched to the
  new tag with the chunk count, the byte count and a CRC-32. A reader reads the head, then every
  chunk of that tag with consistent reads, and checks count, size and CRC: a half-written record
  (chunks without their head) is invisible, the previous version stays readable, and a damaged
  one raises ``StateError``. Old chunks are deleted after the switch.

Every store bounds what it reads (``MAX_RECORD_BYTES``) so a hostile store cannot make a reader
allocate without bound.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import uuid
import zlib
from collections.abc import Iterator
from typing import Any, Protocol

from rcf_fast.kinesis.errors import StateError
from rcf_fast.kinesis.stores.dynamodb_table import ensure_hash_table

MAX_RECORD_BYTES = 256 * 1024 * 1024
HEAD_BYTES = 64 * 1024
CHUNK_BYTES = 350_000
PREFIX_BYTES = 4096  # kept in a DynamoDB head item for head()
_SAFE = re.compile(r"[A-Za-z0-9_.\-]")


class RecordStore(Protocol):
    """Named records (see the module docstring)."""

    def get(self, name: str) -> bytes | None: ...

    def head(self, name: str, size: int = HEAD_BYTES) -> bytes | None: ...

    def put(self, name: str, data: bytes) -> None: ...

    def names(self, prefix: str = "") -> Iterator[str]: ...


def escape(name: str) -> str:
    """A file/object name for a record name: safe characters kept, others ``%XX`` (UTF-8);
    names longer than 200 characters end in a hash of the whole name."""
    out = "".join(
        c if _SAFE.fullmatch(c) else "".join(f"%{b:02X}" for b in c.encode()) for c in name
    )
    if out in (".", "..") or out.startswith("."):
        out = "%2E" + out[1:]
    if len(out) > 200:
        out = out[:150] + "~" + hashlib.blake2b(name.encode(), digest_size=16).hexdigest()
    return out


def _unescape(text: str) -> str | None:
    if "~" in text:
        return None  # hashed: the name is inside the record
    try:
        return re.sub(
            r"(?:%[0-9A-F]{2})+",
            lambda m: bytes.fromhex(m.group(0).replace("%", "")).decode(),
            text,
        )
    except (ValueError, UnicodeDecodeError):
        return None


def _bounded(data: bytes, name: str, limit: int = MAX_RECORD_BYTES) -> bytes:
    if len(data) > limit:
        raise StateError(
            f"state record {name!r} has more than the {limit:,} bytes a record may have"
        )
    return data


class MemoryRecords:
    """Records in a dict (tests; ``fail_after`` puts makes the next put raise)."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.puts = 0

    def get(self, name: str) -> bytes | None:
        return self.data.get(name)

    def head(self, name: str, size: int = HEAD_BYTES) -> bytes | None:
        d = self.data.get(name)
        return None if d is None else d[:size]

    def put(self, name: str, data: bytes) -> None:
        self.data[name] = bytes(data)
        self.puts += 1

    def names(self, prefix: str = "") -> Iterator[str]:
        return iter(sorted(n for n in self.data if n.startswith(prefix)))


class DirRecords:
    """One file per record in a directory; each put is a temporary file renamed over the old."""

    def __init__(self, path: str, fsync: bool = False, max_bytes: int = MAX_RECORD_BYTES) -> None:
        self.path = path
        self.fsync = fsync
        self.max_bytes = max_bytes  # the directory is created by the first put

    def _file(self, name: str) -> str:
        return os.path.join(self.path, escape(name))

    def _read(self, name: str, limit: int) -> bytes | None:
        try:
            with open(self._file(name), "rb") as fh:
                data = fh.read(limit + 1)
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise StateError(f"state record {name!r} is a directory, not a file") from None
        return data

    def get(self, name: str) -> bytes | None:
        data = self._read(name, self.max_bytes)
        return None if data is None else _bounded(data, name, self.max_bytes)

    def head(self, name: str, size: int = HEAD_BYTES) -> bytes | None:
        data = self._read(name, size)
        return None if data is None else data[:size]

    def put(self, name: str, data: bytes) -> None:
        os.makedirs(self.path, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".rec-", dir=self.path)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                if self.fsync:
                    fh.flush()
                    os.fsync(fh.fileno())
            os.replace(tmp, self._file(name))
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def names(self, prefix: str = "") -> Iterator[str]:
        out = []
        if not os.path.isdir(self.path):
            return iter(())
        for entry in os.listdir(self.path):
            if entry.startswith(".rec-"):
                continue
            name = _unescape(entry)
            if name is not None and name.startswith(prefix):
                out.append(name)
        return iter(sorted(out))


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


class S3Records:
    """One object per record at ``s3://bucket/<prefix><escaped name>``."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"

    def _key(self, name: str) -> str:
        return self.prefix + escape(name)

    def _get(self, name: str, **kw: Any) -> bytes | None:
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=self._key(name), **kw)
        except Exception as exc:
            if _code(exc) in ("NoSuchKey", "404", "NotFound"):
                return None
            if _code(exc) == "InvalidRange":  # an empty object asked for a range
                return b""
            raise
        length = int(resp.get("ContentLength") or 0)
        if length > MAX_RECORD_BYTES:
            raise StateError(
                f"state record {name!r} has {length:,} bytes, more than the "
                f"{MAX_RECORD_BYTES:,} a record may have"
            )
        return bytes(resp["Body"].read(MAX_RECORD_BYTES + 1))

    def get(self, name: str) -> bytes | None:
        data = self._get(name)
        return None if data is None else _bounded(data, name)

    def head(self, name: str, size: int = HEAD_BYTES) -> bytes | None:
        data = self._get(name, Range=f"bytes=0-{size - 1}")
        return None if data is None else data[:size]

    def put(self, name: str, data: bytes) -> None:
        self.client.put_object(
            Bucket=self.bucket,
            Key=self._key(name),
            Body=data,
            ContentType="application/octet-stream",
        )

    def names(self, prefix: str = "") -> Iterator[str]:
        out = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for obj in page.get("Contents", []):
                name = _unescape(obj["Key"][len(self.prefix) :])
                if name is not None and name.startswith(prefix):
                    out.append(name)
        return iter(sorted(out))


class DynamoDBRecords:
    """An item per record (compressed, chunked, CRC-checked; see the module docstring) in a
    table with string hash key ``state_key``."""

    def __init__(self, client: Any, table: str, prefix: str) -> None:
        self.client = client
        self.table = table
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"

    def ensure_table(self) -> None:
        ensure_hash_table(self.client, self.table, "state_key")

    def _item(self, key: str) -> dict | None:
        item: dict | None = self.client.get_item(
            TableName=self.table, Key={"state_key": {"S": key}}, ConsistentRead=True
        ).get("Item")
        return item

    def _head(self, name: str) -> tuple[str, int, int, int] | None:
        item = self._item(self.prefix + name)
        if not item:
            return None
        try:
            tag = item["tag"]["S"]
            parts, size, crc = (int(item[f]["N"]) for f in ("parts", "size", "crc"))
        except (KeyError, TypeError, ValueError):
            raise StateError(f"state record {name!r}: head item is damaged") from None
        if not 0 < parts <= MAX_RECORD_BYTES // 1000 or not 0 <= size <= MAX_RECORD_BYTES:
            raise StateError(f"state record {name!r}: head item has {parts} parts, {size} bytes")
        return tag, parts, size, crc

    def get(self, name: str) -> bytes | None:
        head = self._head(name)
        if head is None:
            return None
        tag, parts, size, crc = head
        chunks = []
        total = 0
        for i in range(parts):
            item = self._item(f"{self.prefix}{name}#{tag}#{i}")
            if not item or "data" not in item or "B" not in item["data"]:
                raise StateError(f"state record {name!r}: chunk {i} of {parts} is missing")
            chunk = bytes(item["data"]["B"])
            total += len(chunk)
            if total > MAX_RECORD_BYTES:
                raise StateError(f"state record {name!r}: chunks exceed {MAX_RECORD_BYTES} bytes")
            chunks.append(chunk)
        packed = b"".join(chunks)
        if zlib.crc32(packed) != crc:
            raise StateError(f"state record {name!r}: checksum mismatch (damaged chunks)")
        try:
            d = zlib.decompressobj()
            data = d.decompress(packed, MAX_RECORD_BYTES + 1)
        except zlib.error as exc:
            raise StateError(f"state record {name!r}: does not decompress: {exc}") from None
        if len(data) != size or d.unconsumed_tail:
            raise StateError(
                f"state record {name!r}: {len(data)} bytes after decompression, head says {size}"
            )
        return data

    def head(self, name: str, size: int = HEAD_BYTES) -> bytes | None:
        # The head item keeps the record's first PREFIX_BYTES (written with it, atomically):
        # enough for a small header without reading the chunks.
        item = self._item(self.prefix + name)
        if not item:
            return None
        first = item.get("first", {}).get("B")
        if first is not None and (len(first) >= size or len(first) < PREFIX_BYTES):
            return bytes(first)[:size]  # the whole wanted prefix, or the whole record
        data = self.get(name)
        return None if data is None else data[:size]

    def put(self, name: str, data: bytes) -> None:
        old = self._item(self.prefix + name)
        packed = zlib.compress(data, 1)
        tag = uuid.uuid4().hex[:12]
        chunks = [packed[i : i + CHUNK_BYTES] for i in range(0, len(packed), CHUNK_BYTES)] or [b""]
        for i, chunk in enumerate(chunks):
            self.client.put_item(
                TableName=self.table,
                Item={"state_key": {"S": f"{self.prefix}{name}#{tag}#{i}"}, "data": {"B": chunk}},
            )
        self.client.put_item(
            TableName=self.table,
            Item={
                "state_key": {"S": self.prefix + name},
                "tag": {"S": tag},
                "parts": {"N": str(len(chunks))},
                "size": {"N": str(len(data))},
                "crc": {"N": str(zlib.crc32(packed))},
                "first": {"B": data[:PREFIX_BYTES]},
            },
        )
        if old and "tag" in old and "parts" in old:
            try:
                for i in range(int(old["parts"]["N"])):
                    self.client.delete_item(
                        TableName=self.table,
                        Key={"state_key": {"S": f"{self.prefix}{name}#{old['tag']['S']}#{i}"}},
                    )
            except (KeyError, ValueError):
                pass

    def names(self, prefix: str = "") -> Iterator[str]:
        out: list[str] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "FilterExpression": "begins_with(state_key, :p) AND attribute_exists(tag)",
            "ExpressionAttributeValues": {":p": {"S": self.prefix + prefix}},
            "ProjectionExpression": "state_key",
        }
        while True:
            resp = self.client.scan(**kwargs)
            out.extend(i["state_key"]["S"][len(self.prefix) :] for i in resp.get("Items", []))
            if "LastEvaluatedKey" not in resp:
                break
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        return iter(sorted(out))
