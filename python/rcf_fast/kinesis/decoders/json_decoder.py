"""JSON records: one JSON object per record (a trailing newline is fine)."""

from __future__ import annotations

import json

from rcf_fast.kinesis.errors import DecodeError


class JsonDecoder:
    """Decodes one JSON object; nested objects are flattened (``{"a": {"b": 1}}`` -> ``a.b``)."""

    name = "json"

    def decode_line(self, text: str) -> dict:
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DecodeError(
                f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None
        if not isinstance(obj, dict):
            raise DecodeError(f"expected a JSON object, got {type(obj).__name__}")
        return _flatten(obj)


def _flatten(obj: dict, prefix: str = "") -> dict:
    out: dict = {}
    for k, v in obj.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, name + "."))
        else:
            out[name] = v
    return out
