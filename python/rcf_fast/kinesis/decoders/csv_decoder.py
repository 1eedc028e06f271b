"""CSV records: one comma-separated line per record, columns named by the schema."""

from __future__ import annotations

import csv
from collections.abc import Sequence

from rcf_fast.kinesis.errors import DecodeError


class CsvDecoder:
    """Decodes one CSV line into ``{column: text}``.

    ``columns`` names the columns in order; without it columns are ``c0, c1, ...``. A line equal
    to the header (``skip_header``) is rejected as a header, which the error sink records.
    """

    name = "csv"

    def __init__(
        self,
        columns: Sequence[str] | None = None,
        delimiter: str = ",",
        header: Sequence[str] | None = None,
    ) -> None:
        self.columns: list[str] | None = list(columns) if columns else None
        self.delimiter = delimiter
        self.header = list(header) if header else None

    def split(self, text: str) -> list[str]:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if len(lines) != 1:
            raise DecodeError(f"expected one CSV line per record, got {len(lines)}")
        try:
            return next(csv.reader([lines[0]], delimiter=self.delimiter))
        except csv.Error as exc:
            raise DecodeError(f"invalid CSV: {exc}") from None

    def decode_line(self, text: str) -> dict:
        row = self.split(text)
        if self.header is not None and [c.strip() for c in row] == self.header:
            raise DecodeError("CSV header line, not data")
        columns = self.columns or [f"c{i}" for i in range(len(row))]
        if len(row) != len(columns):
            raise DecodeError(
                f"expected {len(columns)} CSV columns ({', '.join(columns)}), got {len(row)}"
            )
        return {name: value.strip() for name, value in zip(columns, row)}
