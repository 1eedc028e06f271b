"""CloudWatch Logs subscription payloads: gzip-compressed JSON with a ``logEvents`` array.

DATA_MESSAGE records fan out to one event per log event (sub-sequence = index); each message is
decoded by an inner line decoder (JSON, CSV or VPC flow). CONTROL_MESSAGE records (sent by
CloudWatch Logs to check the destination) carry no data and yield no event.

Bounds: the gzip stream is inflated up to ``max_decompressed_bytes``; the payload's objects
and arrays are counted (and its nesting measured) before it is parsed, so a payload of
millions of tiny events is refused before it is built; at most ``max_events`` log events.
"""

from __future__ import annotations

from rcf_fast.kinesis.decoders.base import Decoded, LineDecoder, line_event
from rcf_fast.kinesis.errors import DecodeError
from rcf_fast.kinesis.limits import DEFAULT_LIMITS, Limits, gunzip, loads
from rcf_fast.kinesis.records import Event, EventFailure


class CloudWatchLogsDecoder:
    """Decodes a subscription payload and fans out its log events."""

    name = "cwl"

    def __init__(self, inner: LineDecoder, limits: Limits = DEFAULT_LIMITS) -> None:
        self.inner = inner
        self.limits = limits

    def decode(self, data: bytes) -> Decoded:
        if not data.startswith(b"\x1f\x8b"):
            raise DecodeError(
                f"CloudWatch Logs payload is not gzip: Not a gzipped file ({data[:2]!r})"
            )
        try:
            text = gunzip(data, self.limits.max_decompressed_bytes)
        except DecodeError as exc:
            exc.args = (f"CloudWatch Logs payload: {exc.reason}",)
            exc.reason = exc.args[0]
            raise
        # One object per log event, plus the payload, its lists: refuse a payload with more
        # objects than that before json builds them.
        try:
            payload = loads(text, self.limits, max_containers=2 * self.limits.max_events + 16)
        except DecodeError as exc:
            exc.args = (f"CloudWatch Logs payload is not JSON: {exc.reason}",)
            exc.reason = exc.args[0]
            raise
        del text
        if not isinstance(payload, dict):
            raise DecodeError("CloudWatch Logs payload is not a JSON object")
        kind = payload.get("messageType")
        if kind == "CONTROL_MESSAGE":
            return []
        if kind != "DATA_MESSAGE":
            raise DecodeError(
                f"CloudWatch Logs messageType {str(kind)[:40]!r}; "
                "expected DATA_MESSAGE or CONTROL_MESSAGE"
            )
        events = payload.get("logEvents")
        if not isinstance(events, list):
            raise DecodeError("CloudWatch Logs payload has no logEvents list")
        self.limits.check_events(len(events), "CloudWatch Logs payload")
        context = {
            name: value
            for name in ("logGroup", "logStream")
            if isinstance(value := payload.get(name), str)
        }
        out: Decoded = []
        for i, ev in enumerate(events):
            if not isinstance(ev, dict) or not isinstance(ev.get("message"), str):
                out.append(EventFailure(i, f"log event {i}: no message string"))
                continue
            item = line_event(self.inner, i, ev["message"], self.limits, "log event")
            if isinstance(item, Event):
                for name, value in context.items():
                    item.fields.setdefault(name, value)
                ts = ev.get("timestamp")
                if isinstance(ts, (int, float)) and not isinstance(ts, bool):
                    item = Event(i, item.fields, float(ts) / 1000.0)
            out.append(item)
        return out
