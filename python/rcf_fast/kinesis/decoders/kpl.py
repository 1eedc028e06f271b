"""KPL aggregated records (magic + protobuf + MD5), read by a small protobuf reader of our own.

The format (``aws-kinesis-agg``'s ``messages.proto``)::

    message AggregatedRecord {
      repeated string partition_key_table     = 1;
      repeated string explicit_hash_key_table = 2;
      repeated Record records                 = 3;
    }
    message Record {
      required uint64 partition_key_index     = 1;
      optional uint64 explicit_hash_key_index = 2;
      required bytes  data                    = 3;
      repeated Tag    tags                    = 4;
    }

Reading it here, rather than through ``aws_kinesis_agg.messages_pb2``, keeps KPL working in a
fresh interpreter (that module imports ``config_pb2`` as a top-level module, which only works
once the library's aggregator has put its own folder on ``sys.path``), needs no protobuf
runtime, and lets the reader stop at ``max_events`` user records before building them.

A record without the KPL magic prefix is a plain user record (as in the KCL). A record with
the magic whose digest or protobuf does not check is an error, not silently passed through as
the library's own deaggregator would do. Each user record keeps its own partition key and
explicit hash key (``@partition_key`` files it under its own key).
"""

from __future__ import annotations

import hashlib

from rcf_fast.kinesis.decoders.base import Decoded, LineDecoder, line_event, text_of
from rcf_fast.kinesis.errors import DecodeError
from rcf_fast.kinesis.limits import DEFAULT_LIMITS, Limits
from rcf_fast.kinesis.records import Event, EventFailure, EventSkip

MAGIC = b"\xf3\x89\x9a\xc2"
DIGEST_SIZE = 16


def _varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise DecodeError("KPL protobuf: truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise DecodeError("KPL protobuf: varint longer than 10 bytes")


def _fields(buf: memoryview, pos: int, end: int):  # type: ignore[no-untyped-def]
    """Yield (field number, wire type, value) of one message; value is an int for varints and
    fixed-size fields, a (start, end) span for length-delimited ones."""
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos, end)
            yield number, wire, value
        elif wire == 2:
            size, pos = _varint(buf, pos, end)
            if pos + size > end:
                raise DecodeError(f"KPL protobuf: field {number} runs past its message")
            yield number, wire, (pos, pos + size)
            pos += size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if pos + size > end:
                raise DecodeError(f"KPL protobuf: field {number} runs past its message")
            yield number, wire, int.from_bytes(buf[pos : pos + size], "little")
            pos += size
        else:
            raise DecodeError(f"KPL protobuf: unsupported wire type {wire} in field {number}")


def _text(buf: memoryview, span: tuple[int, int], what: str) -> str:
    try:
        return bytes(buf[span[0] : span[1]]).decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError(f"KPL protobuf: {what} is not UTF-8") from None


class KplDecoder:
    """Unpacks a KPL aggregate; each user record is decoded by the inner line decoder."""

    name = "kpl"

    def __init__(self, inner: LineDecoder, limits: Limits = DEFAULT_LIMITS) -> None:
        self.inner = inner
        self.limits = limits

    def decode(self, data: bytes) -> Decoded:
        if not data.startswith(MAGIC):
            return [line_event(self.inner, 0, text_of(data), self.limits, "record")]
        body = memoryview(data)[len(MAGIC) :]
        if len(body) <= DIGEST_SIZE:
            raise DecodeError("KPL aggregate too short for its digest")
        message, digest = body[:-DIGEST_SIZE], body[-DIGEST_SIZE:]
        if hashlib.md5(message).digest() != bytes(digest):
            raise DecodeError("KPL aggregate MD5 digest does not match")
        keys: list[str] = []
        hash_keys: list[str] = []
        spans: list[tuple[int, int]] = []
        for number, wire, value in _fields(message, 0, len(message)):
            if wire != 2:
                if number in (1, 2, 3):
                    raise DecodeError(f"KPL protobuf: field {number} is not length-delimited")
                continue
            if number == 1:
                keys.append(_text(message, value, "a partition key"))
            elif number == 2:
                hash_keys.append(_text(message, value, "an explicit hash key"))
            elif number == 3:
                spans.append(value)
                self.limits.check_events(len(spans), "KPL aggregate")
        return [
            self._user_record(message, i, span, keys, hash_keys) for i, span in enumerate(spans)
        ]

    def _user_record(
        self,
        buf: memoryview,
        i: int,
        span: tuple[int, int],
        keys: list[str],
        hash_keys: list[str],
    ) -> Event | EventFailure | EventSkip:
        pk_index = ehk_index = None
        data: tuple[int, int] | None = None
        try:
            for number, wire, value in _fields(buf, span[0], span[1]):
                if number == 1 and wire == 0:
                    pk_index = value
                elif number == 2 and wire == 0:
                    ehk_index = value
                elif number == 3 and wire == 2:
                    data = value
            if pk_index is None or data is None:
                raise DecodeError("no partition key index or no data")
            if pk_index >= len(keys):
                raise DecodeError(f"partition key index {pk_index} out of range ({len(keys)} keys)")
            if ehk_index is not None and ehk_index >= len(hash_keys):
                raise DecodeError(
                    f"explicit hash key index {ehk_index} out of range ({len(hash_keys)} keys)"
                )
            self.limits.check_line(data[1] - data[0], "user record")
            text = text_of(bytes(buf[data[0] : data[1]]))
        except DecodeError as exc:
            return EventFailure(i, f"user record {i}: {exc.reason}")
        item = line_event(self.inner, i, text, self.limits, "user record")
        if isinstance(item, Event):
            return Event(
                i,
                item.fields,
                partition_key=keys[pk_index],
                explicit_hash_key=hash_keys[ehk_index] if ehk_index is not None else None,
            )
        return item
