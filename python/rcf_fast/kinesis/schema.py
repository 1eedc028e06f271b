"""Schemas: field names and types, discovered from a sample of decoded events or given by hand.

A schema names every field of an event and its type (``float``, ``int``, ``str``, ``bool`` or
``timestamp``). The forest sees the numeric fields (``float``/``int``) other than the key, in
schema order, unless the caller names the value fields explicitly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rcf_fast.kinesis.errors import DecodeError, SchemaError

TYPES = ("float", "int", "str", "bool", "timestamp")
NUMERIC = ("float", "int")
PARTITION_KEY = "@partition_key"
_TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")


@dataclass(frozen=True)
class Field:
    """One field of a schema."""

    name: str
    type: str = "float"


@dataclass(frozen=True)
class Schema:
    """An ordered list of fields."""

    fields: tuple[Field, ...]

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def type_of(self, name: str) -> str | None:
        for f in self.fields:
            if f.name == name:
                return f.type
        return None

    def numeric_names(self, exclude: Iterable[str] = ()) -> list[str]:
        skip = set(exclude)
        return [f.name for f in self.fields if f.type in NUMERIC and f.name not in skip]

    def to_spec(self) -> str:
        """The ``--fields`` form: ``name:type,name:type``."""
        return ",".join(f"{f.name}:{f.type}" for f in self.fields)


def parse_fields(spec: Sequence[str] | str) -> Schema:
    """Parse ``--fields``: ``"a:float,b:int"`` or ``["a:float", "b"]`` (type default: float)."""
    items: list[str] = []
    for part in [spec] if isinstance(spec, str) else list(spec):
        items.extend(p.strip() for p in part.split(",") if p.strip())
    if not items:
        raise SchemaError("--fields: expected at least one field as name[:type]")
    fields = []
    seen = set()
    for item in items:
        name, _, ftype = item.partition(":")
        ftype = ftype.strip() or "float"
        name = name.strip()
        if not name:
            raise SchemaError(f"--fields: empty field name in {item!r}")
        if ftype not in TYPES:
            raise SchemaError(
                f"--fields: field {name!r} has unknown type {ftype!r}; "
                f"expected one of {', '.join(TYPES)}"
            )
        if name in seen:
            raise SchemaError(f"--fields: field {name!r} is listed twice")
        seen.add(name)
        fields.append(Field(name, ftype))
    return Schema(tuple(fields))


# Epoch times from 2000-01-01 to 2100-01-01 in seconds, milliseconds, microseconds, nanoseconds.
_EPOCH_WINDOWS = [(946_684_800.0 * f, 4_102_444_800.0 * f) for f in (1, 1e3, 1e6, 1e9)]
_TIME_NAME = re.compile(
    r"(^|[._-])(ts|time|timestamp|date|datetime|epoch|start|end|created|updated|modified)"
    r"([._-]|$)|(_at|_ts|Time|Timestamp|Ts|At|Date)$",
    re.IGNORECASE,
)
_MAX_NUMBER_TEXT = 100  # characters of a number given as text (see Limits.max_number_digits)


def _value_type(value: Any) -> str:
    """The narrowest schema type a single value fits."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float" if math.isfinite(value) else "str"
    if isinstance(value, str):
        text = value.strip()
        if len(text) > _MAX_NUMBER_TEXT:
            return "str"
        try:
            int(text)
            return "int"
        except ValueError:
            pass
        try:
            if math.isfinite(float(text)):
                return "float"
        except ValueError:
            pass
        if text.lower() in ("true", "false"):
            return "bool"
        if _TS_RE.match(text):
            return "timestamp"
    return "str"


def _merge(a: str | None, b: str) -> str:
    if a is None or a == b:
        return b
    if {a, b} == {"int", "float"}:
        return "float"
    return "str"


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:
            return None
    if isinstance(value, str) and len(value) <= _MAX_NUMBER_TEXT:
        try:
            return float(value)
        except ValueError:
            return None
    return None


def epoch_like(name: str, values: Sequence[Any]) -> bool:
    """Whether a numeric column holds epoch times: every value lies in one epoch window
    (2000-2100 in s, ms, us or ns), and the name says time (``ts``, ``time``, ``*_at``,
    ``start``, ...) or the values span under 1% of their size (a clock, not a quantity)."""
    nums = [x for x in map(_number, values) if x is not None and math.isfinite(x)]
    if not nums:
        return False
    lo, hi = min(nums), max(nums)
    if not any(a <= lo and hi <= b for a, b in _EPOCH_WINDOWS):
        return False
    return bool(_TIME_NAME.search(name)) or (hi - lo) <= 0.01 * lo


def discover_schema(samples: Sequence[Mapping[str, Any]], min_fraction: float = 0.9) -> Schema:
    """Infer a schema from decoded sample events.

    A field's type is the common type of the values seen for it, counting a field as numeric when
    at least ``min_fraction`` of its values are numbers (so that a few malformed records in the
    sample do not turn a numeric column into text). A numeric field of epoch times
    (``epoch_like``) is a ``timestamp``. Field order is first appearance.
    """
    if not samples:
        raise SchemaError("cannot discover a schema from an empty sample; pass --fields")
    order: list[str] = []
    kinds: dict[str, dict[str, int]] = {}
    for event in samples:
        for name, value in event.items():
            if name not in kinds:
                order.append(name)
                kinds[name] = {}
            t = _value_type(value)
            kinds[name][t] = kinds[name].get(t, 0) + 1
    fields = []
    for name in order:
        counts = kinds[name]
        total = sum(counts.values())
        numeric = counts.get("int", 0) + counts.get("float", 0)
        if numeric >= min_fraction * total:
            ftype = "float" if counts.get("float", 0) else "int"
            if epoch_like(name, [e.get(name) for e in samples if name in e]):
                ftype = "timestamp"
        else:
            merged: str | None = None
            for t in counts:
                merged = _merge(merged, t)
            ftype = merged or "str"
        fields.append(Field(name, ftype))
    return Schema(tuple(fields))


def choose_value_fields(
    samples: Sequence[Mapping[str, Any]],
    schema: Schema,
    exclude: Iterable[str] = (),
    min_presence: float = 0.9,
) -> list[str]:
    """The value fields of a discovered schema: its numeric fields (``int``/``float``, not
    timestamps) that hold a value in at least ``min_presence`` of the sampled events.

    A numeric field seen in fewer events is optional: it is kept in the schema (and can be
    passed through) but not scored, because every event that lacked it would be an error. An
    event that lacks a chosen value field later is an error naming the field.
    """
    if not samples:
        return []
    need = min_presence * len(samples)
    out = []
    for name in schema.numeric_names(exclude):
        present = sum(1 for e in samples if e.get(name) is not None)
        if present >= need:
            out.append(name)
    return out


def to_float(name: str, value: Any) -> float:
    """Convert a field value to a finite float or raise ``DecodeError`` naming the field."""
    if value is None:
        raise DecodeError(f"missing field {name!r}")
    if isinstance(value, bool):
        raise DecodeError(f"field {name!r}: expected a number, got a boolean")
    if isinstance(value, str) and len(value) > _MAX_NUMBER_TEXT:
        raise DecodeError(f"field {name!r}: expected a number, got {len(value)} characters")
    if not isinstance(value, (int, float, str)):
        raise DecodeError(f"field {name!r}: expected a number, got {type(value).__name__}")
    try:
        out = float(value)
    except (TypeError, ValueError, OverflowError):
        raise DecodeError(f"field {name!r}: expected a number, got {str(value)[:40]!r}") from None
    if not math.isfinite(out):
        raise DecodeError(f"field {name!r}: expected a finite number, got {out}")
    return out


def parse_timestamp(value: Any) -> float | None:
    """Seconds since the epoch from a number or an ISO-like string; None if it does not parse."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        try:
            return datetime.fromisoformat(text).timestamp()
        except ValueError:
            return None
    return None
