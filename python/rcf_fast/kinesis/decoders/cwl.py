"""CloudWatch Logs subscription payloads: gzip-compressed JSON with a ``logEvents`` array.

DATA_MESSAGE records fan out to one event per log event (sub-sequence = index); each message is
decoded by an inner line decoder (JSON, CSV or VPC flow). CONTROL_MESSAGE records (sent by
CloudWatch Logs to check the destination) carry no data and yield no event.
"""

from __future__ import annotations

import gzip
import json
import zlib

from rcf_fast.kinesis.decoders.base import Decoded, LineDecoder
from rcf_fast.kinesis.errors import DecodeError
from rcf_fast.kinesis.records import Event, EventFailure


class CloudWatchLogsDecoder:
    """Decodes a subscription payload and fans out its log events."""

    name = "cwl"

    def __init__(self, inner: LineDecoder) -> None:
        self.inner = inner

    def decode(self, data: bytes) -> Decoded:
        try:
            text = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DecodeError(f"CloudWatch Logs payload is not gzip: {exc}") from None
        try:
            payload = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DecodeError(f"CloudWatch Logs payload is not JSON: {exc}") from None
        if not isinstance(payload, dict):
            raise DecodeError("CloudWatch Logs payload is not a JSON object")
        kind = payload.get("messageType")
        if kind == "CONTROL_MESSAGE":
            return []
        if kind != "DATA_MESSAGE":
            raise DecodeError(
                f"CloudWatch Logs messageType {kind!r}; expected DATA_MESSAGE or CONTROL_MESSAGE"
            )
        events = payload.get("logEvents")
        if not isinstance(events, list):
            raise DecodeError("CloudWatch Logs payload has no logEvents list")
        context = {"logGroup": payload.get("logGroup"), "logStream": payload.get("logStream")}
        out: Decoded = []
        for i, ev in enumerate(events):
            try:
                if not isinstance(ev, dict) or not isinstance(ev.get("message"), str):
                    raise DecodeError("log event without a message string")
                fields = self.inner.decode_line(ev["message"])
                ts = ev.get("timestamp")
                for name, value in context.items():
                    fields.setdefault(name, value)
                out.append(
                    Event(i, fields, float(ts) / 1000.0 if isinstance(ts, (int, float)) else None)
                )
            except DecodeError as exc:
                detail = ev.get("message") if isinstance(ev, dict) else None
                out.append(
                    EventFailure(
                        i, f"log event {i}: {exc.reason}", str(detail)[:1000] if detail else None
                    )
                )
        return out
