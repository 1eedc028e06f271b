"""CSV records: one or more rows per record, columns named by the schema.

A record is split into rows on the row delimiter (newline by default, as in Kinesis Data
Analytics; ``\\r\\n`` works too), empty rows are ignored, and each row is one event with its
own position (sub-sequence = row index). Quoted fields may not contain the row delimiter.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence

from rcf_fast.kinesis.decoders.base import Decoded, SkipEvent, line_event, text_of
from rcf_fast.kinesis.errors import ConfigError, DecodeError
from rcf_fast.kinesis.limits import DEFAULT_LIMITS, Limits
from rcf_fast.kinesis.records import Event, EventSkip


class CsvDecoder:
    """Decodes one CSV row into ``{column: text}``.

    ``columns`` names the columns in order; without it columns are ``c0, c1, ...``. A row equal
    to the header (``header``) is skipped (counted as skipped, not an error).
    """

    name = "csv"

    def __init__(
        self,
        columns: Sequence[str] | None = None,
        delimiter: str = ",",
        header: Sequence[str] | None = None,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        if len(delimiter) != 1:
            raise ConfigError(f"CSV delimiter {delimiter!r}: expected one character")
        self.columns: list[str] | None = list(columns) if columns else None
        self.delimiter = delimiter
        self.header = list(header) if header else None
        self.limits = limits

    def split(self, text: str) -> list[str]:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if len(lines) != 1:
            raise DecodeError(f"expected one CSV line per message, got {len(lines)}")
        try:
            return next(csv.reader([lines[0]], delimiter=self.delimiter))
        except csv.Error as exc:
            raise DecodeError(f"invalid CSV: {exc}") from None

    def decode_line(self, text: str) -> dict:
        row = self.split(text)
        if self.header is not None and [c.strip() for c in row] == self.header:
            raise SkipEvent("CSV header row")
        columns = self.columns or [f"c{i}" for i in range(len(row))]
        if len(row) != len(columns):
            raise DecodeError(
                f"expected {len(columns)} CSV columns ({', '.join(columns[:8])}), got {len(row)}"
            )
        if len(row) > self.limits.max_fields:
            raise DecodeError(f"{len(row)} CSV columns: over the limit max_fields")
        return {name: value.strip() for name, value in zip(columns, row)}


class CsvRecords:
    """A ``Decoder`` for CSV records of one or more rows."""

    name = "csv"

    def __init__(
        self, line_decoder: CsvDecoder, row_delimiter: str = "\n", limits: Limits = DEFAULT_LIMITS
    ) -> None:
        if not row_delimiter:
            raise ConfigError("CSV row delimiter: expected at least one character")
        self.line_decoder = line_decoder
        self.row_delimiter = row_delimiter
        self.limits = limits

    def decode(self, data: bytes) -> Decoded:
        self.limits.check_line(len(data), "record")
        text = text_of(data)
        rows = [r for r in text.split(self.row_delimiter) if r.strip()]
        self.limits.check_events(len(rows), "CSV record")
        if self.row_delimiter == "\n":
            rows = [r.removesuffix("\r") for r in rows]
        if len(rows) == 1:  # a one-row record fails as a record, with the row's own reason
            try:
                return [Event(0, self.line_decoder.decode_line(rows[0]))]
            except SkipEvent as skip:
                return [EventSkip(0, skip.reason)]
        return [
            line_event(self.line_decoder, i, row, self.limits, "row") for i, row in enumerate(rows)
        ]
