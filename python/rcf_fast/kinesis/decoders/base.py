"""The decoder interface: bytes of one Kinesis record -> events (or per-event failures).

A decoder raises ``DecodeError`` when the whole record is unusable, and returns an
``EventFailure`` for one bad event inside a record that fans out (a log event, a user record),
so that the good events of the record are still scored. Sub-sequence numbers number the events
of one record 0, 1, 2, ... in order; they are part of the idempotency position.
"""

from __future__ import annotations

from typing import Protocol, Union

from rcf_fast.kinesis.records import Event, EventFailure

Decoded = list[Union[Event, EventFailure]]


class Decoder(Protocol):
    """Turns the data of one Kinesis record into events."""

    name: str

    def decode(self, data: bytes) -> Decoded:
        """Decode one record; raise ``DecodeError`` if none of it is usable."""
        ...


class LineDecoder(Protocol):
    """Decodes one text line / message into the fields of one event (used inside fan-outs)."""

    name: str

    def decode_line(self, text: str) -> dict:
        """Return the fields of one message; raise ``DecodeError`` if it is malformed."""
        ...


def text_of(data: bytes) -> str:
    """UTF-8 text of a record, or ``DecodeError``."""
    from rcf_fast.kinesis.errors import DecodeError

    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None


class SingleLine:
    """Adapts a ``LineDecoder`` to a ``Decoder``: one record is one event."""

    def __init__(self, line_decoder: LineDecoder) -> None:
        self.line_decoder = line_decoder
        self.name = line_decoder.name

    def decode(self, data: bytes) -> Decoded:
        return [Event(0, self.line_decoder.decode_line(text_of(data)))]
