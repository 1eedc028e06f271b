"""Shard sources: the Kinesis read API the consumer needs, and its boto3 implementation.

The consumer talks to a ``ShardSource`` (ListShards, GetShardIterator, GetRecords) rather than to
boto3, so the fault tests can drive it with an in-process fake that splits and merges shards,
throttles and expires iterators on demand. Errors the consumer retries are mapped to
``ThrottledError`` and ``ExpiredIteratorError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from rcf_fast.kinesis.errors import (
    ExpiredIteratorError,
    ServiceError,
    ThrottledError,
    is_transient,
)
from rcf_fast.kinesis.records import RawRecord

THROTTLE_CODES = {
    "ProvisionedThroughputExceededException",
    "LimitExceededException",
    "ThrottlingException",
    "KMSThrottlingException",
}


@dataclass(frozen=True)
class ShardInfo:
    """One shard of a stream and its lineage."""

    shard_id: str
    parent_shard_id: str | None = None
    adjacent_parent_shard_id: str | None = None
    ending_sequence_number: str | None = None

    @property
    def parents(self) -> tuple[str, ...]:
        return tuple(p for p in (self.parent_shard_id, self.adjacent_parent_shard_id) if p)

    @property
    def is_closed(self) -> bool:
        return self.ending_sequence_number is not None


@dataclass
class RecordsBatch:
    """One GetRecords answer; ``next_iterator`` None means the closed shard is read to its end."""

    records: list[RawRecord]
    next_iterator: str | None
    millis_behind_latest: int = 0


class ShardSource(Protocol):
    """The three Kinesis calls the consumer makes."""

    def list_shards(self) -> list[ShardInfo]: ...

    def get_iterator(
        self,
        shard_id: str,
        iterator_type: str,
        sequence_number: str | None = None,
        timestamp: datetime | None = None,
    ) -> str:
        """``iterator_type``: TRIM_HORIZON, LATEST, AT_TIMESTAMP or AFTER_SEQUENCE_NUMBER."""
        ...

    def get_records(self, shard_id: str, iterator: str, limit: int) -> RecordsBatch:
        """Up to ``limit`` records of ``shard_id`` from ``iterator``."""
        ...


def _code(exc: Exception) -> str | None:
    return getattr(exc, "response", {}).get("Error", {}).get("Code")


class Boto3ShardSource:
    """A ``ShardSource`` over a boto3 Kinesis client."""

    def __init__(self, client: Any, stream_name: str) -> None:
        self.client = client
        self.stream_name = stream_name

    def list_shards(self) -> list[ShardInfo]:
        shards: list[ShardInfo] = []
        kwargs: dict = {"StreamName": self.stream_name}
        while True:
            resp = self._call(self.client.list_shards, **kwargs)
            for s in resp.get("Shards", []):
                shards.append(
                    ShardInfo(
                        s["ShardId"],
                        s.get("ParentShardId"),
                        s.get("AdjacentParentShardId"),
                        s.get("SequenceNumberRange", {}).get("EndingSequenceNumber"),
                    )
                )
            token = resp.get("NextToken")
            if not token:
                return shards
            kwargs = {"NextToken": token}  # ListShards rejects StreamName with NextToken

    def get_iterator(
        self,
        shard_id: str,
        iterator_type: str,
        sequence_number: str | None = None,
        timestamp: datetime | None = None,
    ) -> str:
        kwargs: dict = {
            "StreamName": self.stream_name,
            "ShardId": shard_id,
            "ShardIteratorType": iterator_type,
        }
        if sequence_number is not None:
            kwargs["StartingSequenceNumber"] = sequence_number
        if timestamp is not None:
            kwargs["Timestamp"] = timestamp
        return str(self._call(self.client.get_shard_iterator, **kwargs)["ShardIterator"])

    def get_records(self, shard_id: str, iterator: str, limit: int) -> RecordsBatch:
        resp = self._call(self.client.get_records, ShardIterator=iterator, Limit=limit)
        records = [
            RawRecord(
                shard_id,
                r["SequenceNumber"],
                bytes(r["Data"]),
                r.get("PartitionKey", ""),
                r["ApproximateArrivalTimestamp"].timestamp()
                if r.get("ApproximateArrivalTimestamp")
                else None,
            )
            for r in resp.get("Records", [])
        ]
        return RecordsBatch(
            records, resp.get("NextShardIterator"), int(resp.get("MillisBehindLatest", 0) or 0)
        )

    def _call(self, fn: Any, **kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except Exception as exc:
            code = _code(exc)
            if code in THROTTLE_CODES:
                raise ThrottledError(f"{fn.__name__}: {code}") from exc
            if code == "ExpiredIteratorException":
                raise ExpiredIteratorError(f"{fn.__name__}: shard iterator expired") from exc
            if is_transient(exc):
                raise ServiceError(f"{fn.__name__}: {type(exc).__name__}: {exc}") from exc
            raise
