"""The decoder interface: bytes of one Kinesis record -> events (or per-event failures).

A decoder raises ``DecodeError`` when the whole record is unusable, and returns an
``EventFailure`` for one bad event inside a record that fans out (a log event, a user record,
a CSV row), so that the good events of the record are still scored. ``EventSkip`` marks an
event with nothing to score that is no error (VPC flow NODATA). Sub-sequence numbers number
the events of one record 0, 1, 2, ... in order; they are part of the idempotency position.

Every decoder takes ``Limits`` and checks them before expanding data; the scoring step also
contains anything else a decoder might raise, so no record content can stop a consumer.
"""

from __future__ import annotations

from typing import Protocol, Union

from rcf_fast.kinesis.errors import DecodeError
from rcf_fast.kinesis.limits import DEFAULT_LIMITS, Limits
from rcf_fast.kinesis.records import Event, EventFailure, EventSkip

Decoded = list[Union[Event, EventFailure, EventSkip]]


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
        """Return the fields of one message; raise ``DecodeError`` if it is malformed
        (``SkipEvent`` if it carries nothing to score)."""
        ...


class SkipEvent(Exception):
    """Raised by a line decoder for a line that is neither data nor an error."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def text_of(data: bytes) -> str:
    """UTF-8 text of a record, or ``DecodeError``."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None


def line_event(
    line_decoder: LineDecoder, index: int, text: str, limits: Limits, what: str = "event"
) -> Event | EventFailure | EventSkip:
    """One event from one message, with its failure (or skip) contained."""
    try:
        limits.check_line(len(text), what)
        return Event(index, line_decoder.decode_line(text))
    except SkipEvent as skip:
        return EventSkip(index, skip.reason)
    except DecodeError as exc:
        return EventFailure(index, f"{what} {index}: {exc.reason}", text[:160])


class SingleLine:
    """Adapts a ``LineDecoder`` to a ``Decoder``: one record is one event."""

    def __init__(self, line_decoder: LineDecoder, limits: Limits = DEFAULT_LIMITS) -> None:
        self.line_decoder = line_decoder
        self.name = line_decoder.name
        self.limits = limits

    def decode(self, data: bytes) -> Decoded:
        self.limits.check_line(len(data), "record")
        try:
            return [Event(0, self.line_decoder.decode_line(text_of(data)))]
        except SkipEvent as skip:
            return [EventSkip(0, skip.reason)]
