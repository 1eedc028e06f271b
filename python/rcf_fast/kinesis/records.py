"""Record types flowing through the scoring step.

A Kinesis record is identified by (shard id, sequence number). A KCL-deaggregated KPL user record
adds the record's sub-sequence number, and the events a decoder unpacks from one record (KPL user
records, CloudWatch Logs events) add an event index. Positions compare as integer tuples:
sequence numbers are decimal strings of up to 128 bits.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

Position = tuple[int, int, int]
"""(sequence number, record sub-sequence number, event index): the order of events in a shard."""


@dataclass(frozen=True)
class RawRecord:
    """One Kinesis record as read from a shard (before decoding)."""

    shard_id: str
    sequence_number: str
    data: bytes
    partition_key: str = ""
    arrival_timestamp: float | None = None
    sub_sequence_number: int | None = None  # set for user records the KCL deaggregated


@dataclass(frozen=True)
class Event:
    """One decoded event: the numeric and text fields of one user record / log line."""

    sub_sequence_number: int
    fields: dict[str, Any]
    timestamp: float | None = None
    # A KPL user record's own keys (None: the Kinesis record's partition key applies).
    partition_key: str | None = None
    explicit_hash_key: str | None = None


@dataclass(frozen=True)
class EventSkip:
    """An event that carries no data to score and is no error (a VPC flow NODATA/SKIPDATA
    line, a repeated CSV header): counted as skipped."""

    sub_sequence_number: int
    reason: str


@dataclass(frozen=True)
class EventFailure:
    """One event inside a record that did not decode; the rest of the record still counts."""

    sub_sequence_number: int
    reason: str
    detail: str | None = None


@dataclass
class ScoreResult:
    """The output of score-then-learn for one event."""

    key: str
    shard_id: str
    sequence_number: str
    sub_sequence_number: int
    score: float
    attribution: dict[str, dict[str, float]]
    values: dict[str, float]
    timestamp: Any | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "key": self.key,
            "shard_id": self.shard_id,
            "sequence_number": self.sequence_number,
            "sub_sequence_number": self.sub_sequence_number,
            "score": self.score,
            "attribution": self.attribution,
            "values": self.values,
        }
        if self.timestamp is not None:
            out["timestamp"] = self.timestamp
        out.update(self.extra)
        return out


@dataclass
class ErrorRecord:
    """A record (or one event of it) that went to the error sink instead of the forest."""

    reason: str
    data: bytes
    shard_id: str
    sequence_number: str
    sub_sequence_number: int | None = None
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "reason": self.reason,
            "data": base64.b64encode(self.data).decode("ascii"),
            "shard_id": self.shard_id,
            "sequence_number": self.sequence_number,
        }
        if self.sub_sequence_number is not None:
            out["sub_sequence_number"] = self.sub_sequence_number
        if self.detail is not None:
            out["detail"] = self.detail
        return out


def explain(result: dict[str, Any], top: int = 2) -> list[str]:
    """Human-readable explanation of a result: the fields that contributed most, with direction."""
    parts = []
    # No attribution (null: the step's explain option left it out) explains nothing.
    for name, hl in (result.get("attribution") or {}).items():
        high, low = float(hl.get("high", 0.0)), float(hl.get("low", 0.0))
        if high >= low:
            parts.append((high, f"{name} high (+{high:.2f})"))
        else:
            parts.append((low, f"{name} low (+{low:.2f})"))
    parts.sort(key=lambda p: -p[0])
    # Leave out fields that contributed under a tenth of the main one: they explain nothing.
    cutoff = parts[0][0] * 0.1 if parts else 0.0
    return [text for value, text in parts[:top] if value >= cutoff]
