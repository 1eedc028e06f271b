"""Hostile Kinesis records, one builder per class the hardening issue lists (shared by the tests
and ``benches/test_bench_kinesis.py``). Self-contained: no relative imports, no aws-kinesis-agg
(KPL aggregates are written by ``kpl_aggregate``, a small protobuf writer of the KPL format)."""

from __future__ import annotations

import functools
import hashlib
import json
import zlib
from collections.abc import Sequence

KPL_MAGIC = b"\xf3\x89\x9a\xc2"
CWL_HEAD = (
    b'{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"/hostile",'
    b'"logStream":"s","subscriptionFilters":["f"],"logEvents":['
)


def deep_json(depth: int = 100_000) -> bytes:
    """A JSON record nested ``depth`` deep (RecursionError in a recursive parser)."""
    return b'{"svc": "api", "x": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"


def deep_list_unclosed(depth: int = 100_000) -> bytes:
    """``[[[[...`` never closed: a parser recurses before it finds the end."""
    return b"[" * depth


def big_int_json(digits: int = 5000) -> bytes:
    """A 5,000-digit integer (over Python's int digit limit)."""
    return b'{"svc": "api", "latency": ' + b"7" * digits + b"}"


def overflow_int_json(digits: int = 400) -> bytes:
    """An integer that parses but overflows a float."""
    return b'{"svc": "api", "latency": ' + b"9" * digits + b"}"


def _gzip_stream(parts: Sequence[bytes], repeat: int = 1, level: int = 9) -> bytes:
    comp = zlib.compressobj(level, zlib.DEFLATED, 31)
    out: list[bytes] = []
    for _ in range(repeat):
        out.extend(comp.compress(p) for p in parts)
    out.append(comp.flush())
    return b"".join(out)


@functools.cache
def gzip_bomb(gib: int = 1) -> bytes:
    """gzip of ``gib`` GiB of zeros: 1,043,656 bytes for 1 GiB, fits in one Kinesis record."""
    return _gzip_stream([b"\0" * 2**20], repeat=1024 * gib)


def cwl_many_events(n: int = 3_000_000) -> bytes:
    """A CloudWatch Logs payload of ``n`` tiny log events (~323 KB gzip for 3M)."""
    ev = b'{"id":"","timestamp":0,"message":""},'
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [comp.compress(CWL_HEAD)]
    for _ in range((n - 1) // 1000):
        out.append(comp.compress(ev * 1000))
    out.append(comp.compress(ev * ((n - 1) % 1000) + ev[:-1] + b"]}"))
    out.append(comp.flush())
    return b"".join(out)


def cwl_payload(messages: Sequence[str], start_ms: int = 1_700_000_000_000) -> bytes:
    body = {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": "/hostile",
        "logStream": "s",
        "subscriptionFilters": ["f"],
        "logEvents": [
            {"id": str(i), "timestamp": start_ms + i, "message": m} for i, m in enumerate(messages)
        ],
    }
    return _gzip_stream([json.dumps(body).encode()])


def cwl_malformed(n: int = 20_000) -> bytes:
    """A CloudWatch Logs payload of ``n`` malformed JSON messages (~50 KB gzip)."""
    return cwl_payload([f"{{{i}" for i in range(n)])


def vpc_line(i: int) -> str:
    return (
        f"2 123456789012 eni-{i % 50:04x} 10.0.{i % 200}.5 10.0.1.9 {40000 + i % 999} 443 6 "
        f"{10 + i % 7} {840 + i % 300} {1_700_000_000 + i} {1_700_000_060 + i} ACCEPT OK"
    )


def cwl_vpc_as_json(n: int = 2000) -> bytes:
    """A realistic CloudWatch Logs payload of VPC flow lines, read as JSON: all ``n`` fail."""
    return cwl_payload([vpc_line(i) for i in range(n)])


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(num: int, payload: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def kpl_aggregate(
    records: Sequence[tuple[str, bytes]], explicit_hash_keys: Sequence[str | None] | None = None
) -> bytes:
    """A KPL aggregated record of (partition key, data) user records, in the KPL wire format."""
    pks: list[str] = []
    ehks: list[str] = []
    body = bytearray()
    for i, (pk, data) in enumerate(records):
        if pk not in pks:
            pks.append(pk)
        rec = _varint(1 << 3 | 0) + _varint(pks.index(pk))
        ehk = explicit_hash_keys[i] if explicit_hash_keys else None
        if ehk is not None:
            if ehk not in ehks:
                ehks.append(ehk)
            rec += _varint(2 << 3 | 0) + _varint(ehks.index(ehk))
        rec += _field(3, data)
        body += _field(3, rec)
    head = b"".join(_field(1, pk.encode()) for pk in pks)
    head += b"".join(_field(2, e.encode()) for e in ehks)
    message = head + bytes(body)
    return KPL_MAGIC + message + hashlib.md5(message).digest()


def kpl_bad(n: int = 20_000) -> bytes:
    """A KPL aggregate of ``n`` malformed JSON user records (~140 KB)."""
    return kpl_aggregate([("pk", b"{")] * n)


HOSTILE = {
    "deep_json": deep_json,
    "deep_list_unclosed": deep_list_unclosed,
    "big_int_json": big_int_json,
    "overflow_int_json": overflow_int_json,
    "gzip_bomb": gzip_bomb,
    "cwl_many_events": cwl_many_events,
    "cwl_malformed": cwl_malformed,
    "cwl_vpc_as_json": cwl_vpc_as_json,
    "kpl_bad": kpl_bad,
}
"""Hostile record builders by class name; the first four are JSON records, the CloudWatch Logs
ones are read with ``--format cwl``, ``kpl_bad`` with ``--format kpl``."""
