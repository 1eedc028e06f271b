"""VPC flow log lines: space-separated, version 2 default format or a custom field list.

Names follow AWS's ``${field}`` names (``srcaddr``, ``bytes``, ...). ``-`` (no data, e.g. a
NODATA/SKIPDATA line) becomes None, so a value field of such a line fails validation and goes
to the error sink with a clear reason instead of being learned as zero.
"""

from __future__ import annotations

from collections.abc import Sequence

from rcf_fast.kinesis.errors import DecodeError

DEFAULT_FIELDS = [
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
]
INT_FIELDS = {
    "version",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "tcp-flags",
    "traffic-type",
    "pkt-src-aws-service",
    "sublocation-id",
}
NUMERIC_FIELDS = ("packets", "bytes", "start", "end", "srcport", "dstport", "protocol", "tcp-flags")


def parse_format(spec: str) -> list[str]:
    """Field list from an AWS log format string (``${version} ${srcaddr} ...``) or plain names."""
    names = [tok.strip().removeprefix("${").removesuffix("}") for tok in spec.split()]
    if not names or any(not n for n in names):
        raise DecodeError(f"invalid VPC flow log format {spec!r}")
    return names


class VpcFlowDecoder:
    """Decodes one flow log line into typed fields."""

    name = "vpc-flow"

    def __init__(self, fields: Sequence[str] | None = None) -> None:
        self.fields = list(fields) if fields else list(DEFAULT_FIELDS)

    def decode_line(self, text: str) -> dict:
        parts = text.split()
        if len(parts) != len(self.fields):
            raise DecodeError(
                f"VPC flow log line has {len(parts)} fields, expected {len(self.fields)} "
                f"({' '.join(self.fields[:4])} ...)"
            )
        out: dict = {}
        for name, value in zip(self.fields, parts):
            if value == "-":
                out[name] = None
            elif name in NUMERIC_FIELDS:
                try:
                    out[name] = int(value)
                except ValueError:
                    raise DecodeError(
                        f"VPC flow field {name!r}: expected an integer, got {value[:40]!r}"
                    ) from None
            else:
                out[name] = value
        if "version" in out and out["version"] not in ("2", "3", "4", "5"):
            raise DecodeError(f"VPC flow field 'version': unsupported version {out['version']!r}")
        return out
