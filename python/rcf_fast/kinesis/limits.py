"""Bounds on what one record may cost, and the bounded parsers that enforce them.

Every limit is checked before or while the data is expanded, never after: gzip is inflated in
a stream that stops at ``max_decompressed_bytes``; a JSON text's nesting depth and container
count are measured by a linear scan (a regular expression drops strings and scalars, numpy
takes the running depth of the brackets left) before ``json.loads`` builds anything; numbers
are checked for their digit count as they are parsed. Going over a limit raises
``LimitError`` (a ``DecodeError``), which the scoring step turns into one error entry naming
the limit.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from rcf_fast.kinesis.errors import ConfigError, DecodeError, LimitError

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What one Kinesis record may cost (defaults in brackets).

    max_decompressed_bytes [10 MiB]
        Bytes a compressed record (CloudWatch Logs gzip) may inflate to.
    max_events [10,000]
        Events one record may fan out to (log events, KPL user records, CSV rows); CloudWatch
        Logs puts at most 10,000 events in a batch.
    max_line_bytes [1 MiB]
        Bytes of one event's text (a JSON record, a log message, a user record, a CSV row).
    max_field_bytes [256 KiB]
        Characters of one text field value (CloudWatch Logs' own event limit is 256 KB).
    max_fields [1,000]
        Fields of one event after flattening nested objects.
    max_json_depth [64]
        Nesting depth of JSON objects and arrays.
    max_number_digits [100]
        Characters of one number (Python refuses integers over 4,300 digits, and a float
        overflows past ~310).
    max_event_errors [100]
        Per-event error entries listed for one record; past it (or past twice the record's
        size in bytes) failures are counted in the record's entry, not listed.
    """

    max_decompressed_bytes: int = 10 * MIB
    max_events: int = 10_000
    max_line_bytes: int = MIB
    max_field_bytes: int = 256 * 1024
    max_fields: int = 1_000
    max_json_depth: int = 64
    max_number_digits: int = 100
    max_event_errors: int = 100

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"limit {f.name}={value!r}: expected a positive integer")

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def replace(self, **changes: Any) -> Limits:
        unknown = sorted(set(changes) - set(self.names()))
        if unknown:
            raise ConfigError(f"unknown limit(s) {unknown}; expected some of {self.names()}")
        values = {name: getattr(self, name) for name in self.names()}
        values.update({k: v for k, v in changes.items() if v is not None})
        return Limits(**values)

    # -- checks ------------------------------------------------------------------------------

    def check_line(self, n: int, what: str = "event text") -> None:
        if n > self.max_line_bytes:
            raise LimitError("max_line_bytes", self.max_line_bytes, f"{what} of {n} bytes")

    def check_events(self, n: int, what: str = "record") -> None:
        if n > self.max_events:
            raise LimitError("max_events", self.max_events, f"{what} with {n} events")


DEFAULT_LIMITS = Limits()

# -- gzip ---------------------------------------------------------------------------------------


def gunzip(data: bytes, limit: int) -> bytes:
    """Inflate gzip ``data`` (one or more members) to at most ``limit`` bytes.

    Raises ``LimitError`` as soon as the output would pass ``limit`` (memory stays within
    ``limit`` plus one chunk), ``DecodeError`` for data that is not gzip or is truncated.
    """
    out: list[bytes] = []
    total = 0
    rest = data
    while True:
        inflater = zlib.decompressobj(31)
        try:
            chunk = inflater.decompress(rest, limit - total + 1)
            while True:
                total += len(chunk)
                if total > limit:
                    raise LimitError(
                        "max_decompressed_bytes", limit, "gzip payload inflates past the limit"
                    )
                out.append(chunk)
                if not inflater.unconsumed_tail:
                    break
                chunk = inflater.decompress(inflater.unconsumed_tail, limit - total + 1)
        except zlib.error as exc:
            raise DecodeError(f"gzip data is corrupt: {exc}") from None
        if not inflater.eof:
            raise DecodeError("gzip data is truncated")
        rest = inflater.unused_data
        if not rest.strip(b"\0"):
            return b"".join(out)
        if not rest.startswith(b"\x1f\x8b"):
            raise DecodeError("gzip data is followed by bytes that are not gzip")


# -- JSON ---------------------------------------------------------------------------------------

# Every byte but a quote, a backslash and the four brackets: deleted by bytes.translate.
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"\\[]{}')
_CHUNK = 1 << 20


def json_shape(text: bytes | str) -> tuple[int, int]:
    """(maximum nesting depth, number of objects and arrays) of a JSON text, without parsing
    it: linear time in C and numpy, no recursion, no Python loop over the text.

    Escaped backslashes and then escaped quotes are removed, every other byte but quotes and
    brackets is deleted, and a bracket counts when an even number of quotes precedes it (it is
    outside every string). A malformed text gets some answer (its parse fails anyway); the
    answer is never below the depth a parser would reach."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    data = data.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_STRUCTURE)
    data = data.replace(b"\\", b"")
    if not data:
        return 0, 0
    arr = np.frombuffer(data, dtype=np.uint8)
    depth = deepest = containers = 0
    quotes = 0
    for start in range(0, arr.size, _CHUNK):
        part = arr[start : start + _CHUNK]
        inside = ((np.cumsum(part == 0x22) + quotes) & 1).astype(bool)
        quotes = (quotes + int(np.count_nonzero(part == 0x22))) & 1
        opens = ((part == 0x7B) | (part == 0x5B)) & ~inside
        closes = ((part == 0x7D) | (part == 0x5D)) & ~inside
        running = np.cumsum(opens.astype(np.int64) - closes) + depth
        if running.size:
            deepest = max(deepest, int(running.max()))
            depth = int(running[-1])
        containers += int(np.count_nonzero(opens))
    return deepest, containers


class _Numbers:
    """``json.loads`` hooks that refuse numbers of more than ``digits`` characters."""

    def __init__(self, digits: int) -> None:
        self.digits = digits

    def parse_int(self, text: str) -> int:
        if len(text) > self.digits:
            raise LimitError("max_number_digits", self.digits, f"a number of {len(text)} digits")
        return int(text)

    def parse_float(self, text: str) -> float:
        if len(text) > self.digits:
            raise LimitError(
                "max_number_digits", self.digits, f"a number of {len(text)} characters"
            )
        return float(text)


_DECODERS: dict[int, json.JSONDecoder] = {}


def _decoder(digits: int) -> json.JSONDecoder:
    """A JSON decoder whose number hooks enforce ``digits`` (stateless, so shared)."""
    d = _DECODERS.get(digits)
    if d is None:
        hooks = _Numbers(digits)
        d = json.JSONDecoder(parse_int=hooks.parse_int, parse_float=hooks.parse_float)
        if len(_DECODERS) < 64:
            _DECODERS[digits] = d
    return d


def loads(text: bytes | str, limits: Limits, max_containers: int | None = None) -> Any:
    """``json.loads`` with the depth, container and digit limits checked first / on the way."""
    # Cheap exit: fewer brackets than the depth limit cannot nest deeper than it.
    if isinstance(text, str):
        brackets = text.count("{") + text.count("[")
    else:
        brackets = text.count(b"{") + text.count(b"[")
    if brackets > limits.max_json_depth or (
        max_containers is not None and brackets > max_containers
    ):
        depth, containers = json_shape(text)
        if depth > limits.max_json_depth:
            raise LimitError("max_json_depth", limits.max_json_depth, f"JSON nested {depth} deep")
        if max_containers is not None and containers > max_containers:
            raise LimitError(
                "max_events", limits.max_events, f"JSON with {containers} objects and arrays"
            )
    try:
        # What json.loads does, with one decoder per digit limit instead of one per call.
        if isinstance(text, str):
            if text.startswith("\ufeff"):
                raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        else:
            text = text.decode(json.detect_encoding(text), "surrogatepass")
        return _decoder(limits.max_number_digits).decode(text)
    except json.JSONDecodeError as exc:
        raise DecodeError(
            f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except UnicodeDecodeError as exc:
        raise DecodeError(f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    except RecursionError:  # pragma: no cover - the depth check above comes first
        raise LimitError("max_json_depth", limits.max_json_depth, "JSON nested too deep") from None


def flatten(obj: dict, limits: Limits) -> dict:
    """Nested objects flattened to ``a.b`` names, iteratively (no recursion), with the field
    count and text field size limits."""
    out: dict = {}
    stack: list[tuple[str, Any]] = [("", iter(obj.items()))]
    while stack:
        prefix, items = stack[-1]
        for k, v in items:
            name = f"{prefix}{k}"
            if isinstance(v, dict):
                stack.append((name + ".", iter(v.items())))
                break
            if isinstance(v, str) and len(v) > limits.max_field_bytes:
                raise LimitError(
                    "max_field_bytes",
                    limits.max_field_bytes,
                    f"field {name[:60]!r} of {len(v)} characters",
                )
            out[name] = v
            if len(out) > limits.max_fields:
                raise LimitError("max_fields", limits.max_fields, "event with more fields")
        else:
            stack.pop()
    return out


def excerpt(text: Any, size: int = 160) -> str:
    """At most ``size`` characters of a text or bytes, for error entries."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = bytes(text[: size * 4]).decode("utf-8", "replace")
    text = str(text)
    return text if len(text) <= size else text[:size] + "..."
