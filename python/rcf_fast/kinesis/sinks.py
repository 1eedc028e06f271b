"""Sinks for results and errors: a Kinesis stream, a JSON-lines file, stdout, memory, a callback.

Sinks buffer ``write`` calls and deliver on ``flush``; the consumer flushes before it persists
the state that covers the written records, so a crash can duplicate output but never lose it.
``min_score`` drops results scoring below it (errors have no score and always pass).
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Sequence
from typing import IO, Any, Callable

from rcf_fast.kinesis.errors import SinkError

MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 5 * 1024 * 1024
MAX_RECORD_BYTES = 1024 * 1024
# Failing again will not help: the stream is missing, the request is wrong, or access is denied.
NOT_RETRYABLE = {
    "ResourceNotFoundException",
    "ValidationException",
    "InvalidArgumentException",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "KMSAccessDeniedException",
}


class Sink:
    """Base sink: buffering plus the minimum-score filter."""

    def __init__(self, min_score: float | None = None) -> None:
        self.min_score = min_score
        self.buffer: list[dict[str, Any]] = []
        self.written = 0

    def accepts(self, item: dict[str, Any]) -> bool:
        return self.min_score is None or "score" not in item or item["score"] >= self.min_score

    def write(self, item: dict[str, Any]) -> None:
        if self.accepts(item):
            self.buffer.append(item)

    def flush(self) -> None:
        # The buffer is cleared only after delivery: a flush that failed (and raised) can be
        # retried without losing items (some may then be delivered twice: at least once).
        items = self.buffer
        if items:
            self.deliver(items)
            self.written += len(items)
            del self.buffer[: len(items)]

    def deliver(self, items: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def discard(self) -> None:
        """Drop buffered items (their batch failed and will be processed again)."""
        self.buffer.clear()

    def close(self) -> None:
        self.flush()


class MemorySink(Sink):
    """Keeps delivered items in ``items`` (tests, notebooks)."""

    def __init__(self, min_score: float | None = None) -> None:
        super().__init__(min_score)
        self.items: list[dict[str, Any]] = []

    def deliver(self, items: list[dict[str, Any]]) -> None:
        self.items.extend(items)


class CallbackSink(Sink):
    """Calls ``fn(item)`` for each delivered item (alert printers)."""

    def __init__(
        self, fn: Callable[[dict[str, Any]], None], min_score: float | None = None
    ) -> None:
        super().__init__(min_score)
        self.fn = fn

    def deliver(self, items: list[dict[str, Any]]) -> None:
        for item in items:
            self.fn(item)


class JsonLinesSink(Sink):
    """Appends one JSON object per line to a file (path or open text file); ``-`` is stdout."""

    def __init__(self, target: str | IO[str], min_score: float | None = None) -> None:
        super().__init__(min_score)
        self._owned = isinstance(target, str) and target != "-"
        if target == "-":
            self.fh: IO[str] = sys.stdout
        elif isinstance(target, str):
            self.fh = open(target, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        else:
            self.fh = target

    def deliver(self, items: list[dict[str, Any]]) -> None:
        self.fh.write("".join(json.dumps(item, sort_keys=True) + "\n" for item in items))
        self.fh.flush()

    def close(self) -> None:
        super().close()
        if self._owned:
            self.fh.close()


def StdoutSink(min_score: float | None = None) -> JsonLinesSink:
    """JSON lines on stdout."""
    return JsonLinesSink("-", min_score)


class TeeSink(Sink):
    """Writes every item to several sinks (each keeps its own filter)."""

    def __init__(self, sinks: Sequence[Sink]) -> None:
        super().__init__(None)
        self.sinks = list(sinks)

    def write(self, item: dict[str, Any]) -> None:
        for sink in self.sinks:
            sink.write(item)

    def flush(self) -> None:
        for sink in self.sinks:
            sink.flush()

    def discard(self) -> None:
        for sink in self.sinks:
            sink.discard()

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


class KinesisSink(Sink):
    """PutRecords to a stream in batches of at most 500 records / 5 MiB, retrying failed entries.

    The partition key is the item's ``partition_key_field`` (``key`` for results, ``shard_id``
    for errors) so that one series stays ordered in the output stream.
    """

    def __init__(
        self,
        client: Any,
        stream_name: str,
        min_score: float | None = None,
        partition_key_field: str = "key",
        max_retries: int = 8,
        base_delay: float = 0.05,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(min_score)
        self.client = client
        self.stream_name = stream_name
        self.partition_key_field = partition_key_field
        self.max_retries = max_retries
        self.base_delay = base_delay
        self.sleep = sleep
        self.put_calls = 0

    def _entry(self, item: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(item, sort_keys=True).encode()
        if len(data) > MAX_RECORD_BYTES - 256:
            # Only an error record can be this large (its base64 payload): keep the reason.
            item = dict(item, data="", data_truncated=True)
            data = json.dumps(item, sort_keys=True).encode()
        key = str(item.get(self.partition_key_field) or item.get("shard_id") or "rcf")[:256]
        return {"Data": data + b"\n", "PartitionKey": key}

    def deliver(self, items: list[dict[str, Any]]) -> None:
        entries = [self._entry(item) for item in items]
        batch: list[dict[str, Any]] = []
        size = 0
        for entry in entries:
            n = len(entry["Data"]) + len(entry["PartitionKey"])
            if batch and (len(batch) == MAX_BATCH_RECORDS or size + n > MAX_BATCH_BYTES):
                self._put(batch)
                batch, size = [], 0
            batch.append(entry)
            size += n
        if batch:
            self._put(batch)

    def _put(self, entries: list[dict[str, Any]]) -> None:
        pending = entries
        for attempt in range(self.max_retries + 1):
            self.put_calls += 1
            try:
                resp = self.client.put_records(StreamName=self.stream_name, Records=pending)
            except Exception as exc:  # botocore errors: throttling, network
                code = getattr(exc, "response", {}).get("Error", {}).get("Code")
                if attempt == self.max_retries or code in NOT_RETRYABLE:
                    raise SinkError(f"PutRecords to {self.stream_name!r} failed: {exc}") from exc
                self.sleep(self.base_delay * 2**attempt * (0.5 + random.random()))
                continue
            results = resp.get("Records", [])
            # Entries with an ErrorCode failed (throttled, internal); keep their original order.
            pending = [e for e, r in zip(pending, results) if r.get("ErrorCode")]
            if not pending:
                return
            if attempt < self.max_retries:
                self.sleep(self.base_delay * 2**attempt * (0.5 + random.random()))
        raise SinkError(
            f"PutRecords to {self.stream_name!r}: {len(pending)} record(s) still failing "
            f"after {self.max_retries} retries"
        )
