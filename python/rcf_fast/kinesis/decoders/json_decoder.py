"""JSON records: one JSON object per record (a trailing newline is fine)."""

from __future__ import annotations

from rcf_fast.kinesis.errors import DecodeError
from rcf_fast.kinesis.limits import DEFAULT_LIMITS, Limits, flatten, loads


class JsonDecoder:
    """Decodes one JSON object; nested objects are flattened (``{"a": {"b": 1}}`` -> ``a.b``).

    Nesting depth, number size, field count and text field size are bounded by ``limits``
    (checked without recursion, before the text is parsed or while it is)."""

    name = "json"

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits

    def decode_line(self, text: str) -> dict:
        obj = loads(text, self.limits)
        if not isinstance(obj, dict):
            raise DecodeError(f"expected a JSON object, got {type(obj).__name__}")
        return flatten(obj, self.limits)
