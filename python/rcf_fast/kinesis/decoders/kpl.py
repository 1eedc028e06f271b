"""KPL aggregated records (magic + protobuf + MD5), unpacked with ``aws-kinesis-agg``'s messages.

A record without the KPL magic prefix is a plain user record (as in the KCL). A record with the
magic whose digest or protobuf does not check is an error, not silently passed through as the
library's own deaggregator would do.
"""

from __future__ import annotations

import hashlib

from rcf_fast.kinesis.decoders.base import Decoded, LineDecoder, text_of
from rcf_fast.kinesis.errors import DecodeError
from rcf_fast.kinesis.records import Event, EventFailure


class KplDecoder:
    """Unpacks a KPL aggregate; each user record is decoded by the inner line decoder."""

    name = "kpl"

    def __init__(self, inner: LineDecoder) -> None:
        self.inner = inner

    def decode(self, data: bytes) -> Decoded:
        import aws_kinesis_agg
        from aws_kinesis_agg import messages_pb2
        from google.protobuf.message import DecodeError as ProtoError

        magic, digest_size = aws_kinesis_agg.MAGIC, aws_kinesis_agg.DIGEST_SIZE
        if not data.startswith(magic):
            return [self._event(0, data)]
        body = data[len(magic) :]
        if len(body) <= digest_size:
            raise DecodeError("KPL aggregate too short for its digest")
        message, digest = body[:-digest_size], body[-digest_size:]
        if hashlib.md5(message).digest() != digest:
            raise DecodeError("KPL aggregate MD5 digest does not match")
        agg = messages_pb2.AggregatedRecord()
        try:
            agg.ParseFromString(message)
        except ProtoError as exc:
            raise DecodeError(f"KPL aggregate protobuf does not parse: {exc}") from None
        return [self._event(i, rec.data) for i, rec in enumerate(agg.records)]

    def _event(self, sub: int, data: bytes) -> Event | EventFailure:
        try:
            return Event(sub, self.inner.decode_line(text_of(data)))
        except DecodeError as exc:
            return EventFailure(sub, f"user record {sub}: {exc.reason}")
